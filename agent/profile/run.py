"""Run the real pipeline over a script of WAVs once per variant and round; turn the events into rows.

Each variant run is a fresh ``ScriptRunner`` (simulated mic and speaker in real time, a fresh
``VoicePipeline``, an empty conversation) on the shared, already-warm models. With ``repeat`` > 1
the variants are interleaved round by round, so a change in machine load hits them all alike.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import QuickturnConfig
from ..events import Event, LatencyReport, SpeculationDiscarded
from ..pipeline import Services
from ..report import meta, summarize, turn_row
from ..simulate import ScriptItem, ScriptRunner
from .recorder import TimedEventBus, overhead_summary
from .timeline import timelines
from .variants import ServicePool, Variant

RATIO_KEYS = ("p50", "p95", "mean")


@dataclass
class VariantRun:
    variant: Variant
    round: int
    reply_model: str
    events: list[Event]
    rows: list[dict[str, Any]]
    overhead: list[tuple[float, int, float | None]] = field(default_factory=list)
    timed_out: int = 0
    late_resyncs: int = 0


class _ProgressRunner(ScriptRunner):
    """A ScriptRunner that reports each clip as it finishes (for the progress bar)."""

    def __init__(self, *args, on_item_done: Callable[[ScriptItem], None] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.on_item_done = on_item_done

    async def _run_item(self, item, clip, next_action):
        result = await super()._run_item(item, clip, next_action)
        if self.on_item_done is not None:
            self.on_item_done(item)
        return result


def rows_from_events(
    events: list[Event],
    reports: list[tuple[LatencyReport, str | None, str | None]],
    bus: TimedEventBus,
    variant: str,
    round_: int,
) -> tuple[list[dict[str, Any]], list[tuple[float, int, float | None]]]:
    """Rows (report schema + variant, timeline, profiling cost) for (report, file, reference text)."""
    tls = timelines(events)
    rows, overhead = [], []
    for report, file, reference in reports:
        row = {"variant": variant, "round": round_, **turn_row(report, events, file, reference)}
        turn_events = [e for e in events if e.turn == report.turn]
        row["discarded_ms"] = round(
            sum(e.wasted_ms for e in turn_events if isinstance(e, SpeculationDiscarded)), 2
        )
        row["profiling_us"] = round(bus.cost_s.get(report.turn, 0.0) * 1e6, 1)
        tl = tls.get(report.turn)
        row["timeline"] = tl.to_dict() if tl is not None else None
        rows.append(row)
        overhead.append((bus.cost_s.get(report.turn, 0.0), bus.calls.get(report.turn, 0), row["v2v_ms"]))
    return rows, overhead


async def run_variant(
    variant: Variant,
    services: Services,
    items: list[ScriptItem],
    round_: int = 0,
    on_item_done: Callable[[ScriptItem], None] | None = None,
) -> VariantRun:
    bus = TimedEventBus(record=False)  # the runner records the events itself
    runner = _ProgressRunner(variant.cfg, services, bus, record=False, on_item_done=on_item_done)
    results = await runner.run(items)
    reports = [(rep, r.item.file.name, r.item.text) for r in results for rep in r.reports]
    rows, overhead = rows_from_events(runner.events, reports, bus, variant.name, round_)
    kinds = {r.item.file.name: r.item.extra.get("kind") for r in results}  # e.g. paused / complete
    for row in rows:
        if kinds.get(row["file"]):
            row["kind"] = kinds[row["file"]]
    return VariantRun(
        variant,
        round_,
        services.reply.name,
        runner.events,
        rows,
        overhead,
        timed_out=sum(1 for r in results if r.timed_out),
        late_resyncs=runner.speaker.late_resyncs,
    )


def run_profile(
    variants: list[Variant],
    pool: ServicePool,
    items: list[ScriptItem],
    repeat: int = 1,
    progress=None,
) -> list[VariantRun]:
    """Every variant over every item, ``repeat`` rounds; ``progress``: a rich Progress or None."""
    task = None
    if progress is not None:
        task = progress.add_task("profiling", total=len(items) * len(variants) * repeat)

    def advance(_item: ScriptItem) -> None:
        if progress is not None:
            progress.advance(task)
            progress.refresh()

    runs = []
    for rnd in range(repeat):
        for variant in variants:
            label = variant.name + (f" · round {rnd + 1}/{repeat}" if repeat > 1 else "")
            if progress is not None:
                progress.update(task, description=f"preparing {label}")
                progress.refresh()
            services = pool.services_for(variant)  # blocking model loads happen outside the loop
            if progress is not None:
                progress.update(task, description=label)
                progress.refresh()
            runs.append(asyncio.run(run_variant(variant, services, items, rnd, advance)))
    return runs


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def build_profile_report(
    cfg: QuickturnConfig,
    runs: list[VariantRun],
    variants: list[Variant],
    reference: int = 0,
    extra_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report: ``meta``, ``turns`` (all variants), ``summary`` (the reference variant) and
    ``variants`` (one block per variant with its own summary and V2V ratios to the reference)."""
    rows = [row for run in runs for row in run.rows]
    ref = variants[reference]
    by_variant = {v.name: [r for r in rows if r["variant"] == v.name] for v in variants}
    ref_summary = summarize(by_variant[ref.name])
    blocks = []
    for v in variants:
        s = summarize(by_variant[v.name])
        v_runs = [r for r in runs if r.variant.name == v.name]
        blocks.append(
            {
                **v.to_dict(),
                "reference": v is ref,
                "reply_model": v_runs[0].reply_model if v_runs else None,
                "timed_out_items": sum(r.timed_out for r in v_runs),
                "summary": s,
                "v2v_ratio_to_reference": {
                    k: _ratio(s["v2v_ms"][k], ref_summary["v2v_ms"][k]) for k in RATIO_KEYS
                },
            }
        )
    overhead = overhead_summary([o for run in runs for o in run.overhead])
    extra = {
        "mode": "profile",
        "reference_variant": ref.name,
        "profiling_overhead": overhead,
        "speaker_late_resyncs": sum(r.late_resyncs for r in runs),
        **(extra_meta or {}),
    }
    return {
        "meta": meta(cfg, extra),
        "turns": rows,
        "summary": {"variant": ref.name, **ref_summary},
        "variants": blocks,
    }


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
