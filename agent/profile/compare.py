"""``quickturn profile compare A.json B.json``: stage by stage, what changed between two reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from ..errors import UsageError
from ..latency import STAGES
from .variants import ProfileError


def load_report(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ProfileError(f"report not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{p}: not a JSON file: {exc}") from exc
    missing = [k for k in ("meta", "turns", "summary") if not isinstance(data, dict) or k not in data]
    if missing:
        raise ProfileError(f"{p}: not a quickturn profile/demo report (missing {', '.join(missing)})")
    return data


def _wer(summary: dict[str, Any]) -> str:
    return f"{summary['wer']:.1%}" if "wer" in summary else "— (no reference transcripts)"


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    fa, fb = _flatten(a.get("meta", {}).get("config", {})), _flatten(b.get("meta", {}).get("config", {}))
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def _cell(x: float | None) -> str:
    return "—" if x is None else f"{x:.0f}" if abs(x) >= 10 else f"{x:.1f}"


def _delta(a: float | None, b: float | None) -> tuple[str, str]:
    if a is None or b is None:
        return "—", "—"
    d = b - a
    color = "green" if d < 0 else "red" if d > 0 else "white"
    ratio = f"{b / a:.2f}×" if a else "—"
    return f"[{color}]{d:+.0f}[/{color}]" if abs(d) >= 10 else f"[{color}]{d:+.1f}[/{color}]", ratio


def summary_table(sa: dict[str, Any], sb: dict[str, Any], title: str) -> Table:
    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    t.add_column("stage (ms)")
    for col in ("A p50", "B p50", "Δ p50", "B/A p50", "A p95", "B p95", "B/A p95", "n A/B"):
        t.add_column(col, justify="right")
    for key in STAGES:
        a, b = sa.get(key) or {}, sb.get(key) or {}
        if not a.get("n") and not b.get("n"):
            continue
        d50, r50 = _delta(a.get("p50"), b.get("p50"))
        _, r95 = _delta(a.get("p95"), b.get("p95"))
        name = f"[bold]{key}[/bold]" if key == "v2v_ms" else key
        t.add_row(
            name,
            _cell(a.get("p50")),
            _cell(b.get("p50")),
            d50,
            r50,
            _cell(a.get("p95")),
            _cell(b.get("p95")),
            r95,
            f"{a.get('n', 0)}/{b.get('n', 0)}",
        )
    return t


def compare(a: dict[str, Any], b: dict[str, Any], console, names: tuple[str, str] = ("A", "B")) -> dict:
    """Print the comparison; return the V2V p50 ratio and per-variant ratios (for scripts and tests)."""
    ma, mb = a["meta"], b["meta"]
    console.print(
        f"A = {names[0]}  ({ma.get('date')}, {ma.get('machine', {}).get('cpu')}, "
        f"gpu {ma.get('machine', {}).get('gpu')}, commit {ma.get('git_commit')})"
    )
    console.print(
        f"B = {names[1]}  ({mb.get('date')}, {mb.get('machine', {}).get('cpu')}, "
        f"gpu {mb.get('machine', {}).get('gpu')}, commit {mb.get('git_commit')})"
    )
    console.print()
    sa, sb = a["summary"], b["summary"]
    console.print(
        summary_table(sa, sb, f"summary ({sa.get('variant', 'default')} vs {sb.get('variant', 'default')})")
    )
    result: dict[str, Any] = {"v2v_p50_ratio": None, "variants": {}}
    va, vb = sa.get("v2v_ms") or {}, sb.get("v2v_ms") or {}
    if va.get("p50") and vb.get("p50") is not None:
        result["v2v_p50_ratio"] = round(vb["p50"] / va["p50"], 3)
    blocks_a = {v["name"]: v for v in a.get("variants", [])}
    blocks_b = {v["name"]: v for v in b.get("variants", [])}
    shared = [n for n in blocks_a if n in blocks_b and len(blocks_a) + len(blocks_b) > 2]
    if shared:
        t = Table(title="variants in both (V2V ms)", title_justify="left", show_edge=False, pad_edge=False)
        for col in ("variant", "A p50", "B p50", "Δ p50", "B/A p50"):
            t.add_column(col, justify="left" if col == "variant" else "right")
        for n in shared:
            pa, pb = blocks_a[n]["summary"]["v2v_ms"]["p50"], blocks_b[n]["summary"]["v2v_ms"]["p50"]
            d, r = _delta(pa, pb)
            t.add_row(n, _cell(pa), _cell(pb), d, r)
            result["variants"][n] = round(pb / pa, 3) if pa and pb is not None else None
        console.print()
        console.print(t)
    only = sorted(set(blocks_a) ^ set(blocks_b))
    if only and (len(blocks_a) > 1 or len(blocks_b) > 1):
        console.print(f"variants in one report only: {', '.join(only)}")
    for label, key in (("turns", "turns"), ("discarded speculations", "discarded_speculations")):
        if sa.get(key) != sb.get(key):
            console.print(f"{label}: {sa.get(key)} → {sb.get(key)}")
    if "wer" in sa or "wer" in sb:
        console.print(f"ASR word error rate: {_wer(sa)} → {_wer(sb)}")
    diff = config_diff(a, b)
    if diff:
        console.print("\nconfig differences:")
        for k, x, y in diff:
            console.print(f"  {k}: {x!r} → {y!r}")
    else:
        console.print("\nsame config")
    return result


def main(paths: list[str], console) -> int:
    if len(paths) != 2:
        raise UsageError("usage: quickturn profile compare A.json B.json")
    try:
        a, b = load_report(paths[0]), load_report(paths[1])
    except ProfileError as exc:
        raise UsageError(str(exc)) from None
    compare(a, b, console, (paths[0], paths[1]))
    return 0
