"""``--plot OUT.png``: a per-turn waterfall of the stages from the last voiced frame, and V2V CDFs.

Drawn from the report alone (each turn's ``timeline``), with matplotlib's Agg backend (no display).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# What each bar segment shows, in drawing order; the endpoint runs in parallel (thin bar below).
SEGMENTS = {
    ("ASR", "final ASR"): ("ASR final", "#4C72B0"),
    ("LM", "LM block"): ("LM", "#DD8452"),
    ("TTS", "TTS clause"): ("TTS", "#55A868"),
    ("playback", "output latency"): ("output", "#8172B3"),
}
ENDPOINT_COLOR = "#999999"


def _segment(span: dict[str, Any]) -> tuple[str, str] | None:
    for (track, prefix), style in SEGMENTS.items():
        if span["track"] == track and span["name"].startswith(prefix):
            return style
    return None


def write_plot(report: dict[str, Any], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["turns"] if r.get("timeline")]
    variants = [b["name"] for b in report.get("variants", [])] or sorted({r["variant"] for r in rows})
    multi = len(variants) > 1
    n = max(1, len(rows))
    fig, (ax, cdf) = plt.subplots(
        1, 2, figsize=(15, max(4.0, 0.32 * n + 1.6)), gridspec_kw={"width_ratios": [2.2, 1]}
    )
    v2vs = [r["v2v_ms"] for r in rows if r.get("v2v_ms") is not None]
    xmax = max(v2vs, default=1000.0) * 1.15
    seen: set[str] = set()
    labels = []
    for y, r in enumerate(rows):
        spans = r["timeline"]["spans"]
        for s in spans:
            if s.get("discarded") or s.get("instant"):
                continue
            if s["track"] == "VAD+endpoint" and s["name"] != "pause (speech resumed)":
                ax.barh(
                    y + 0.3,
                    s["end_ms"] - s["start_ms"],
                    left=s["start_ms"],
                    height=0.18,
                    color=ENDPOINT_COLOR,
                    label=None if "endpoint" in seen else "VAD + endpoint",
                )
                seen.add("endpoint")
                continue
            style = _segment(s)
            if style is None or s["start_ms"] >= (r.get("v2v_ms") or xmax):
                continue  # the waterfall is the path to the first sample; later clauses are in the trace
            name, color = style
            ax.barh(
                y,
                s["end_ms"] - s["start_ms"],
                left=s["start_ms"],
                height=0.5,
                color=color,
                edgecolor="white",
                linewidth=0.5,
                label=None if name in seen else name,
            )
            seen.add(name)
        if r.get("v2v_ms") is not None:
            ax.plot(
                [r["v2v_ms"]] * 2,
                [y - 0.35, y + 0.35],
                color="black",
                linewidth=2,
                label=None if "v2v" in seen else "first reply sample (V2V)",
            )
            seen.add("v2v")
            ax.text(r["v2v_ms"] + xmax * 0.01, y, f"{r['v2v_ms']:.0f}", va="center", fontsize=7)
        prefix = f"{r['variant']} · " if multi else ""
        labels.append(f"{prefix}{r['turn']}: {(r.get('file') or '')[:18]}")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlim(min(-50.0, -0.05 * xmax), xmax)
    ax.set_xlabel("ms from the end of the user's last voiced frame")
    ax.set_title("per-turn waterfall (committed attempt)", pad=24)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=6, fontsize=7, frameon=False)
    ax.grid(axis="x", alpha=0.3)

    for name in variants:
        xs = sorted(r["v2v_ms"] for r in rows if r["variant"] == name and r.get("v2v_ms") is not None)
        if xs:
            ys = [0.0] + [(i + 1) / len(xs) for i in range(len(xs))]
            cdf.step([xs[0], *xs], ys, where="post", label=f"{name} (n={len(xs)})")
    cdf.set_xlabel("voice-to-voice latency (ms)")
    cdf.set_ylabel("fraction of turns ≤ x")
    cdf.set_ylim(0, 1.02)
    cdf.set_title("V2V CDF")
    cdf.grid(alpha=0.3)
    if v2vs:
        cdf.legend(loc="lower right", fontsize=7)
    m = report.get("meta", {})
    fig.suptitle(
        f"quickturn profile · {m.get('machine', {}).get('cpu', '')} · {m.get('date', '')}", fontsize=9
    )
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, format="png", dpi=110)
    plt.close(fig)
    return p
