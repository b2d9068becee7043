"""Terminal output of a profile report (rich tables): stage statistics, turns, variants."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ..latency import STAGES

LABELS = {
    "endpoint_ms": "endpoint (last voiced → commit)",
    "asr_final_ms": "ASR final (last voiced → text)",
    "asr_compute_ms": "  ASR final pass compute",
    "lm_ms": "LM reply (all blocks)",
    "lm_prefill_ms": "  LM prompt prefill",
    "lm_ms_per_step": "  LM per denoising step",
    "gate_ms": "  reply gate (judging; in LM reply)",
    "tts_first_chunk_ms": "TTS first clause",
    "reply_ready_ms": "reply ready (last voiced → audio)",
    "output_ms": "output (ready/commit → 1st sample)",
    "v2v_ms": "V2V (last voiced → 1st reply sample)",
}


def _ms(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def stage_table(summary: dict[str, Any], title: str) -> Table:
    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    t.add_column("stage (ms)")
    for col in ("p50", "p95", "p99", "mean"):
        t.add_column(col, justify="right")
    t.add_column("n", justify="right")
    for key in STAGES:
        s = summary.get(key)
        if not s:
            continue
        digits = 1 if key in ("lm_ms_per_step", "gate_ms") else 0
        cells = [_ms(s[c], digits) for c in ("p50", "p95", "p99", "mean")] + [str(s["n"])]
        if key == "v2v_ms":
            t.add_section()
            t.add_row(f"[bold]{LABELS[key]}[/bold]", *(f"[bold]{c}[/bold]" for c in cells))
        else:
            t.add_row(LABELS.get(key, key), *cells)
    return t


def _clip(text: str | None, n: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def turns_table(rows: list[dict[str, Any]], title: str = "turns", width: int = 140) -> Table:
    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    text_w = max(6, min(24, (width - 80) // 3))  # the numbers get their room first
    for col, justify in (
        ("#", "right"),
        ("file", "left"),
        ("you said", "left"),
        ("reply", "left"),
        ("endp", "right"),
        ("ASR", "right"),
        ("LM", "right"),
        ("tok", "right"),
        ("TTS1", "right"),
        ("out", "right"),
        ("V2V", "right"),
        ("disc", "right"),
    ):
        if justify == "left":
            t.add_column(col, no_wrap=True, overflow="ellipsis", max_width=text_w)
        else:
            t.add_column(col, justify=justify, no_wrap=True, min_width=max(3, len(col)))
    for r in rows:
        flags = " (interrupted)" if r.get("interrupted") else ""
        flags += " (merged)" if r.get("merges") else ""
        t.add_row(
            str(r["turn"]),
            _clip(r.get("file"), 22),
            _clip(r.get("transcript"), 28),
            _clip(r.get("reply"), 28) + flags,
            _ms(r.get("endpoint_ms")),
            _ms(r.get("asr_final_ms")),
            _ms(r.get("lm_ms")),
            str(r.get("lm_tokens", "")),
            _ms(r.get("tts_first_chunk_ms")),
            _ms(r.get("output_ms")),
            f"[bold]{_ms(r.get('v2v_ms'))}[/bold]",
            str(r.get("discarded_speculations", 0)),
        )
    return t


def variants_table(blocks: list[dict[str, Any]]) -> Table:
    t = Table(
        title="variants: V2V ms, and its ratio to the reference variant ★ (LM = LM reply ms p50)",
        title_justify="left",
        show_edge=False,
        pad_edge=False,
    )
    t.add_column("", no_wrap=True, width=1)
    for col, justify in (
        ("variant", "left"),
        ("reply model", "left"),
        ("turns", "right"),
        ("p50", "right"),
        ("p95", "right"),
        ("mean", "right"),
        ("×p50", "right"),
        ("×mean", "right"),
        ("LM", "right"),
        ("disc", "right"),
    ):
        if justify == "left":
            t.add_column(col, overflow="fold", max_width=24)
        else:
            t.add_column(col, justify=justify, no_wrap=True, min_width=max(3, len(col)))
    for b in blocks:
        s, ratio = b["summary"], b["v2v_ratio_to_reference"]
        t.add_row(
            "★" if b["reference"] else "",
            b["name"],
            b.get("reply_model") or b["reply_kind"],
            str(s["turns"]),
            _ms(s["v2v_ms"]["p50"]),
            _ms(s["v2v_ms"]["p95"]),
            _ms(s["v2v_ms"]["mean"]),
            "—" if ratio["p50"] is None else f"{ratio['p50']:.2f}×",
            "—" if ratio["mean"] is None else f"{ratio['mean']:.2f}×",
            _ms(s["lm_ms"]["p50"]),
            str(s["discarded_speculations"]),
        )
    return t


def print_report(console, report: dict[str, Any], show_turns: bool = True) -> None:
    blocks = report.get("variants") or []
    for b in blocks if len(blocks) > 1 else []:
        console.print()
        console.print(stage_table(b["summary"], f"[bold]{b['name']}[/bold] · {b.get('reply_model') or ''}"))
    if len(blocks) <= 1:
        s = report["summary"]
        if show_turns:
            console.print()
            console.print(turns_table(report["turns"], width=console.width))
        console.print()
        console.print(stage_table(s, f"[bold]stage latency[/bold] · {s['turns']} turns"))
    else:
        console.print()
        console.print(variants_table(blocks))
    s = report["summary"]
    notes = [f"{s['turns']} turns", f"{s['discarded_speculations']} speculative replies discarded"]
    if s.get("interrupted"):
        notes.append(f"{s['interrupted']} interrupted")
    if s.get("merges"):
        notes.append(f"{s['merges']} continuations merged")
    if "wer" in s:
        notes.append(f"ASR word error rate {s['wer']:.1%} (pooled per file)")
    console.print("\n" + "; ".join(notes))
    for label, summary in [(b["name"], b["summary"]) for b in blocks] or [("", s)]:
        if summary.get("reply_candidates"):  # the reply gate's fallback chain: what was spoken
            used = ", ".join(f"{k} {v}" for k, v in summary["reply_candidates"].items())
            console.print(f"reply gate{f' ({label})' if label else ''}: spoken candidates {used}")
    tt = s.get("turn_taking") or {}
    if tt.get("split") or tt.get("merged"):
        kinds = [
            f"{k}: {v['answered_once']}/{v['files']} answered once"
            for k, v in tt.items()
            if isinstance(v, dict)
        ]
        console.print(
            f"input files: {tt['one']} one turn, {tt['merged']} merged into one, {tt['split']} split"
            + (f" ({'; '.join(kinds)})" if kinds else "")
        )
    o = report["meta"].get("profiling_overhead")
    if o and o.get("per_turn_us", {}).get("n"):
        pct = o["percent_of_v2v"]
        console.print(
            f"profiling overhead: {o['per_turn_us']['mean']:.0f} µs per turn ({o['per_event_us']:.1f} µs × "
            f"{o['events'] / max(1, o['turns']):.0f} events); "
            + (f"max {pct['max']:.4f}% of V2V" if pct["max"] is not None else "no V2V to compare")
        )
    for note in report["meta"].get("notes", []):
        console.print(f"[yellow]note:[/yellow] {note}")
