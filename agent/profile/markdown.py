"""``--markdown OUT.md``: the report's tables as Markdown, for docs/benchmarks.md and issue comments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..latency import STAGES
from .table import LABELS


def _ms(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def stage_markdown(summary: dict[str, Any]) -> list[str]:
    lines = ["| stage (ms) | p50 | p95 | p99 | mean | n |", "|---|---:|---:|---:|---:|---:|"]
    for key in STAGES:
        s = summary.get(key)
        if not s:
            continue
        digits = 1 if key in ("lm_ms_per_step", "gate_ms") else 0
        label = LABELS.get(key, key).strip()
        cells = [_ms(s[c], digits) for c in ("p50", "p95", "p99", "mean")] + [str(s["n"])]
        if key == "v2v_ms":
            label, cells = f"**{label}**", [f"**{c}**" for c in cells]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def report_markdown(report: dict[str, Any]) -> str:
    m, s = report["meta"], report["summary"]
    machine = m.get("machine", {})
    load = m.get("load_average") or {}
    o = m.get("profiling_overhead") or {}
    lines = [
        f"Command: `{m.get('command', '')}`  ",
        f"Machine: {machine.get('cpu')} ({machine.get('cores')} cores), GPU: {machine.get('gpu') or 'none'}; "
        f"load average (1/5/15 min) {load.get('start')} at start, {load.get('end')} at the end  ",
        f"Date: {m.get('date')}, commit {m.get('git_commit')}, reply model "
        f"{(report.get('variants') or [{}])[0].get('reply_model')}  ",
        f"{s['turns']} turns, {s.get('discarded_speculations', 0)} speculative replies discarded"
        + (f", ASR word error rate {s['wer']:.1%}" if "wer" in s else "")
        + (
            f"; profiling overhead {o['per_turn_us']['mean']:.0f} µs per turn "
            f"(max {o['percent_of_v2v']['max']:.3f}% of V2V)"
            if o.get("per_turn_us", {}).get("n") and o.get("percent_of_v2v", {}).get("max") is not None
            else ""
        ),
        "",
    ]
    blocks = report.get("variants") or []
    if len(blocks) > 1:
        lines += [
            "| variant | reply model | turns | V2V p50 | V2V p95 | V2V mean | × p50 vs ★ |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for b in blocks:
            v, r = b["summary"]["v2v_ms"], b["v2v_ratio_to_reference"]
            ratio = "—" if r["p50"] is None else f"{r['p50']:.2f}×"
            lines.append(
                f"| {'★ ' if b['reference'] else ''}{b['name']} | {b.get('reply_model')} | {b['summary']['turns']} "
                f"| {_ms(v['p50'])} | {_ms(v['p95'])} | {_ms(v['mean'])} | {ratio} |"
            )
        lines.append("")
    for b in blocks or [{"name": "", "summary": s}]:
        used = b["summary"].get("reply_candidates")
        if used:  # the reply gate's fallback chain: how often each candidate was spoken
            name = f" ({b['name']})" if b["name"] else ""
            lines += [f"Reply gate{name}: spoken " + ", ".join(f"{k} {v}" for k, v in used.items()), ""]
    lines += stage_markdown(s)
    return "\n".join(lines) + "\n"


def write_markdown(report: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(report_markdown(report))
    return p
