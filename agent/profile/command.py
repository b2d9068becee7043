"""Command line of ``quickturn profile`` (wired in ``agent/cli.py``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from dlm_core import DLMError

from ..config import QuickturnConfig
from ..errors import CommandError, UsageError
from ..pipeline import Services
from ..simulate import InputError, ScriptItem, load_clip, load_items
from . import compare as compare_mod
from .live import LiveAudioError, check_devices, live_variant_run, run_live
from .run import VariantRun, build_profile_report, load_average, run_profile
from .table import print_report
from .variants import ProfileError, ServicePool, Variant, build_variants


def _check_outputs(args) -> None:
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise ProfileError(f"--plot {args.plot}: the plot is a PNG, name it *.png")
    for flag in ("json", "csv", "plot", "trace", "markdown"):
        path = getattr(args, flag)
        if path and Path(path).is_dir():
            raise ProfileError(f"--{flag} {path} is a folder; give a file name")
    if args.repeat < 1:
        raise ProfileError("--repeat must be ≥ 1")


def write_outputs(
    report: dict,
    json_path: str | None = None,
    csv_path: str | None = None,
    plot_path: str | None = None,
    trace_path: str | None = None,
    markdown_path: str | None = None,
) -> list[str]:
    """Write the requested files; returns what was written (for the user)."""
    from ..report import write_csv, write_json

    written = []
    if json_path:
        written.append(str(write_json(report, json_path)))
    if csv_path:
        rows = [{k: v for k, v in r.items() if k != "timeline"} for r in report["turns"]]
        written.append(str(write_csv(rows, csv_path)))
    if plot_path:
        from .plot import write_plot

        written.append(str(write_plot(report, plot_path)))
    if trace_path:
        from .trace import write_trace

        written.append(f"{write_trace(report, trace_path)} (open in ui.perfetto.dev)")
    if markdown_path:
        from .markdown import write_markdown

        written.append(str(write_markdown(report, markdown_path)))
    return written


def _progress(console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # No auto-refresh thread: the bar redraws only when a clip finishes, so it never competes with
    # the pipeline for the CPU while a turn is being timed.
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        auto_refresh=False,
        transient=True,
    )


def profile_items(
    cfg: QuickturnConfig,
    services: Services,
    items: list[ScriptItem],
    variants: list[Variant],
    reference: int = 0,
    repeat: int = 1,
    console=None,
    extra_meta: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[VariantRun]]:
    """Profile WAV items: every variant, ``repeat`` rounds, on ``services`` (loaded for ``cfg``).

    Returns the report and the runs (their raw events included). Model errors propagate.
    """
    load_start = load_average()
    t0 = time.monotonic()
    pool = ServicePool(cfg, services)
    if console is not None:
        with _progress(console) as progress:
            runs = run_profile(variants, pool, items, repeat, progress)
    else:
        runs = run_profile(variants, pool, items, repeat)
    extra = dict(extra_meta or {})
    extra["notes"] = list(extra.get("notes", [])) + [f"loaded for a variant: {x}" for x in pool.loaded]
    extra.update(
        {
            "items": len(items),
            "repeat": repeat,
            "variants": [v.to_dict() for v in variants],
            "load_average": {"start": load_start, "end": load_average()},
            "wall_s": round(time.monotonic() - t0, 1),
        }
    )
    return build_profile_report(cfg, runs, variants, reference, extra), runs


def _live(args, cfg: QuickturnConfig, services: Services, devices, console) -> dict[str, Any]:
    console.print(
        f"[bold]profiling live[/bold]: speak to {cfg.agent.name}; "
        + (f"stops after {args.duration:.0f} s" if args.duration > 0 else "Ctrl-C to stop")
    )
    load_start = load_average()
    try:
        live = asyncio.run(
            run_live(
                cfg,
                services,
                devices,
                args.duration,
                args.turns,
                on_turn=lambda r: console.print(f"turn {r.turn}: V2V {r.v2v_ms} ms"),
            )
        )
    except LiveAudioError as exc:
        raise CommandError(str(exc)) from None
    for err in live.errors:
        console.print(f"[red]error:[/red] {err}")
    variant, run = live_variant_run(cfg, live, services.reply.name)
    extra = {
        "mode": "profile-live",
        "input": "live",
        "stopped_by": live.stopped_by,
        "mic_dropped_blocks": live.dropped_blocks,
        "variants": [variant.to_dict()],
        "load_average": {"start": load_start, "end": load_average()},
        "wall_s": round(live.seconds, 1),
        "notes": [],
    }
    return build_profile_report(cfg, [run], [variant], 0, extra)


def main(args, console, load_config, load_services) -> int:
    """Raises UsageError (exit 2) for a request that cannot run, before any model loads;
    CommandError (exit 1) for a failure while running."""
    if args.compare:
        if args.compare[0] != "compare":
            raise UsageError(
                f"unexpected argument {args.compare[0]!r} "
                "(did you mean: quickturn profile compare A.json B.json, or --input PATH?)"
            )
        return compare_mod.main(args.compare[1:], console)
    if bool(args.input) == bool(args.live):
        raise UsageError("give --input PATH (an audio file or a folder of them) or --live")
    cfg = load_config(args)
    try:  # everything that can be wrong with the request fails here, before any model loads
        _check_outputs(args)
        if args.live:
            if args.sweep or args.baseline or args.repeat != 1:
                raise ProfileError("--sweep, --baseline and --repeat need --input (a live session runs once)")
            devices = check_devices(cfg)
        else:
            items = load_items(Path(args.input))
            for item in items:  # read every clip now: a bad file fails before models load
                load_clip(item, cfg.audio.sample_rate)
            variants, reference, notes = build_variants(cfg, args.sweep, args.baseline, args.no_teacher)
    except (InputError, ProfileError, LiveAudioError) as exc:
        raise UsageError(str(exc)) from None
    services = load_services(cfg, console)
    if args.live:
        report = _live(args, cfg, services, devices, console)
    else:
        try:
            report, _ = profile_items(
                cfg, services, items, variants, reference, args.repeat, console,
                {"input": str(args.input), "notes": notes},
            )  # fmt: skip
        except (DLMError, ValueError, RuntimeError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from None
    print_report(console, report)
    for w in write_outputs(report, args.json, args.csv, args.plot, args.trace, args.markdown):
        console.print(f"wrote {w}")
    if not report["summary"]["turns"] and not args.live:
        console.print(
            "[yellow]no finished turns: was speech detected in the input? (see vad.* settings)[/yellow]"
        )
        return 1
    return 0
