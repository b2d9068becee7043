"""Turn reports in one schema for ``quickturn demo --json`` and ``quickturn profile --json``.

{"meta": {...machine, config, versions, git commit, date, command},
 "turns": [{"file", "transcript", "reply", "<stage>_ms"..., "v2v_ms", ...}],
 "summary": {"<stage>_ms": {"p50", "p95", "p99", "mean", "n"}, ..., "v2v_ms": {...}}}
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .config import QuickturnConfig
from .events import Event, LatencyReport
from .latency import STAGES, summarize_turn
from .wer import word_error_rate

PACKAGES = (
    "torch",
    "faster-whisper",
    "ctranslate2",
    "piper-tts",
    "onnxruntime",
    "numpy",
    "websockets",
    "aiomqtt",
)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def stats(values: Sequence[float]) -> dict[str, float]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "n": 0}
    return {
        "p50": round(percentile(vals, 50), 2),
        "p95": round(percentile(vals, 95), 2),
        "p99": round(percentile(vals, 99), 2),
        "mean": round(sum(vals) / len(vals), 2),
        "n": len(vals),
    }


def cpu_model() -> str:
    """The CPU's marketing name (for reports and benchmark records)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _gpu() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:
        pass
    return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def meta(cfg: QuickturnConfig, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "gpu": _gpu(),
            "platform": platform.platform(),
        },
        "git_commit": _git_commit(),
        "versions": _versions(),
        "config": cfg.to_dict(),
        **(extra or {}),
    }


def turn_row(report: LatencyReport, events: Iterable[Event], file: str | None, reference: str | None) -> dict:
    """One row of ``turns``: stage times from the events, plus identification and WER."""
    timing = summarize_turn(e for e in events if e.turn == report.turn)
    row: dict[str, Any] = {
        "file": file,
        "turn": report.turn,
        "transcript": report.transcript,
        "reply": report.reply,
        **{k: round(timing.stages_ms[k], 2) if k in timing.stages_ms else None for k in STAGES},
        "lm_steps": timing.lm_steps,
        "lm_tokens": timing.lm_tokens,
        "lm_forwards": timing.lm_forwards,
        "discarded_speculations": timing.discarded_speculations,
        "merges": report.merges,
        "interrupted": report.interrupted,
        "reply_candidate": timing.reply_candidate,
        "gate_reason": timing.gate_reason,
    }
    if reference is not None:
        row["reference"] = reference
        row["wer"] = round(word_error_rate(reference, report.transcript), 4)
    return row


def summarize(rows: list[dict]) -> dict[str, Any]:
    summary: dict[str, Any] = {k: stats([r[k] for r in rows if r.get(k) is not None]) for k in STAGES}
    summary["turns"] = len(rows)
    summary["discarded_speculations"] = sum(r["discarded_speculations"] for r in rows)
    summary["interrupted"] = sum(1 for r in rows if r["interrupted"])
    summary["merges"] = sum(r.get("merges", 0) for r in rows)
    candidates = [r["reply_candidate"] for r in rows if r.get("reply_candidate")]
    if candidates:  # the reply gate: how often each candidate of its fallback chain was spoken
        summary["reply_candidates"] = {c: candidates.count(c) for c in sorted(set(candidates))}
    files = per_file(rows)
    summary["turn_taking"] = turn_taking(files)
    scored = [f for f in files if f["reference"] is not None]
    if scored:
        # Pooled per input file: a file answered as two turns is scored once, its transcripts joined.
        ref_words = sum(len(f["reference"].split()) for f in scored)
        errors = sum(f["wer"] * len(f["reference"].split()) for f in scored)
        summary["wer"] = round(errors / max(1, ref_words), 4)
    return summary


def per_file(rows: list[dict]) -> list[dict[str, Any]]:
    """Each input file's turns: answered as ``one`` turn, ``merged`` into one, or ``split``."""
    by_file: dict[tuple, list[dict]] = {}
    for r in rows:
        by_file.setdefault((r.get("variant"), r.get("round"), r.get("file")), []).append(r)
    out = []
    for (_, _, file), turns in by_file.items():
        turns = sorted(turns, key=lambda r: r["turn"])
        if len(turns) > 1:
            outcome = "split"
        else:
            outcome = "merged" if turns[0].get("merges") else "one"
        reference = turns[0].get("reference")
        transcript = " ".join(r["transcript"] for r in turns if r["transcript"])
        entry = {"file": file, "kind": turns[0].get("kind"), "turns": len(turns), "outcome": outcome}
        entry |= {"reference": reference, "transcript": transcript}
        if reference is not None:
            entry["wer"] = round(word_error_rate(reference, transcript), 4)
        out.append(entry)
    return out


def turn_taking(files: list[dict[str, Any]]) -> dict[str, Any]:
    """How many input files were answered once (as one turn or merged into one) or split."""
    counts: dict[str, Any] = {"files": len(files)}
    for outcome in ("one", "merged", "split"):
        counts[outcome] = sum(f["outcome"] == outcome for f in files)
    kinds = sorted({f["kind"] for f in files if f["kind"]})
    for kind in kinds:
        of_kind = [f for f in files if f["kind"] == kind]
        once = sum(f["outcome"] != "split" for f in of_kind)
        counts[kind] = {"files": len(of_kind), "answered_once": once, "split": len(of_kind) - once}
    return counts


def build_report(cfg: QuickturnConfig, rows: list[dict], extra_meta: dict | None = None) -> dict[str, Any]:
    return {"meta": meta(cfg, extra_meta), "turns": rows, "summary": summarize(rows)}


def write_json(report: dict, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(report, indent=2) + "\n")
    return p


def write_csv(rows: list[dict], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fields: list[str] = []
    for r in rows:
        fields.extend(k for k in r if k not in fields)
    with p.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return p
