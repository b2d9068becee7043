"""The profiler's only hook into a run: an EventBus that also times its own publishing.

Events are already timestamped by the stages; recording one is a list append. To show that this
costs nothing next to a turn, ``publish`` measures the wall time it spends (all listeners included,
the recorder's append and this timing too) and books it to the event's turn. Everything else —
stage times, spans, statistics, plots — is computed after the run.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from ..events import Event, EventBus
from ..report import percentile, stats


class TimedEventBus(EventBus):
    def __init__(self, record: bool = True) -> None:
        super().__init__()
        self.events: list[Event] = []
        self.cost_s: dict[int, float] = defaultdict(float)  # turn → seconds spent publishing
        self.calls: dict[int, int] = defaultdict(int)
        if record:  # the recorder (a ScriptRunner records on its own: no second copy then)
            self.subscribe(self.events.append)

    def publish(self, event: Event) -> None:
        t0 = time.perf_counter()
        super().publish(event)
        self.cost_s[event.turn] += time.perf_counter() - t0
        self.calls[event.turn] += 1


def overhead_summary(per_turn: list[tuple[float, int, float | None]]) -> dict[str, Any]:
    """``per_turn``: (publish seconds, publish calls, v2v ms or None) for every reported turn."""
    us = [c * 1e6 for c, _, _ in per_turn]
    calls = sum(n for _, n, _ in per_turn)
    fractions = [c * 1e3 / v for c, _, v in per_turn if v]
    return {
        "method": "wall time inside EventBus.publish (every listener, incl. the profiler's recorder), "
        "summed per turn over the whole turn and divided by that turn's V2V: an upper bound, since "
        "only the part between the last voiced frame and the first reply sample can delay V2V",
        "turns": len(per_turn),
        "events": calls,
        "per_event_us": round(sum(us) / calls, 2) if calls else None,
        "per_turn_us": stats(us),
        "percent_of_v2v": {
            "p50": round(percentile(fractions, 50) * 100, 5) if fractions else None,
            "mean": round(sum(fractions) / len(fractions) * 100, 5) if fractions else None,
            "max": round(max(fractions) * 100, 5) if fractions else None,
            "n": len(fractions),
        },
        "within_1_percent": bool(fractions) and max(fractions) <= 0.01,
    }
