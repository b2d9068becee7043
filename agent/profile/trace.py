"""``--trace OUT.json``: the run as a Chrome trace (Trace Event Format), for ui.perfetto.dev or
chrome://tracing.

One process per variant (and round), one thread per track (user audio, VAD+endpoint, ASR, LM, TTS,
playback, …); every stage span is a complete ("X") event, partial transcripts are instant ("i")
events. Times are µs from the first turn's start. Spans that overlap without nesting (a barge-in
turn starts while the interrupted one still plays) go to a second lane of their track, since a
trace viewer expects the spans of one thread to nest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .timeline import TRACKS


def _lanes(spans: list[dict[str, Any]]) -> list[int]:
    """Lane index per span such that spans in one lane are disjoint or properly nested."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i]["ts"], -spans[i]["dur"]))
    lanes: list[list[float]] = []  # per lane: stack of the open spans' end times
    out = [0] * len(spans)
    for i in order:
        start, end = spans[i]["ts"], spans[i]["ts"] + spans[i]["dur"]
        for n, stack in enumerate(lanes):
            while stack and stack[-1] <= start:
                stack.pop()
            if not stack or end <= stack[-1]:
                stack.append(end)
                out[i] = n
                break
        else:
            lanes.append([end])
            out[i] = len(lanes) - 1
    return out


def build_trace(report: dict[str, Any]) -> dict[str, Any]:
    rows = [r for r in report["turns"] if r.get("timeline")]
    if rows:
        base = min(r["timeline"]["t0"] + r["timeline"]["start_ms"] / 1e3 for r in rows)
    else:
        base = 0.0
    procs: dict[tuple[str, int], int] = {}
    spans_by_track: dict[tuple[int, str], list[dict[str, Any]]] = {}
    instants: list[dict[str, Any]] = []
    for r in rows:
        key = (r["variant"], r.get("round", 0))
        pid = procs.setdefault(key, len(procs) + 1)
        t0 = r["timeline"]["t0"]
        for s in r["timeline"]["spans"]:
            ts = round((t0 + s["start_ms"] / 1e3 - base) * 1e6, 1)
            dur = round(max(0.0, (s["end_ms"] - s["start_ms"]) * 1e3), 1)
            args = {"turn": r["turn"], "file": r.get("file"), **s.get("args", {})}
            if s.get("discarded"):
                args["discarded"] = True
            ev = {
                "name": s["name"],
                "cat": s["track"] + (",discarded" if s.get("discarded") else ""),
                "ts": ts,
                "pid": pid,
                "args": args,
            }
            if s.get("instant"):
                instants.append({**ev, "ph": "i", "s": "t", "track": s["track"]})
            else:
                spans_by_track.setdefault((pid, s["track"]), []).append({**ev, "ph": "X", "dur": dur})
    events: list[dict[str, Any]] = []
    threads: dict[tuple[int, str, int], int] = {}

    def tid_for(pid: int, track: str, lane: int) -> int:
        idx = TRACKS.index(track) if track in TRACKS else len(TRACKS)
        tid = (idx + 1) * 10 + lane
        if (pid, track, lane) not in threads:
            threads[(pid, track, lane)] = tid
            name = track if lane == 0 else f"{track} ({lane + 1})"
            events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})
            events.append(
                {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}}
            )
        return tid

    for (variant, rnd), pid in procs.items():
        label = variant + (f" · round {rnd + 1}" if any(k[1] for k in procs) else "")
        events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": label}})
        events.append(
            {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": pid}}
        )
    for (pid, track), spans in spans_by_track.items():
        for span, lane in zip(spans, _lanes(spans)):
            events.append({**span, "tid": tid_for(pid, track, lane)})
    for ev in instants:
        track = ev.pop("track")
        events.append({**ev, "tid": tid_for(ev["pid"], track, 0)})
    m = report.get("meta", {})
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "tool": "quickturn profile",
            "date": m.get("date"),
            "git_commit": m.get("git_commit"),
            "cpu": m.get("machine", {}).get("cpu"),
            "gpu": m.get("machine", {}).get("gpu"),
        },
    }


def write_trace(report: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(build_trace(report)) + "\n")
    return p
