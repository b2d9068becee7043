"""How late timers fire on the asyncio clock (agent/skills/timers.py): the target is < 100 ms.

    python -m benchmarks.timer_firing [--timers 40] [--span-s 6] [--busy-ms 30]

Sets ``--timers`` timers due at random times over ``--span-s`` seconds on one event loop and reads
each ``TimerFired.late_ms``. ``--busy-ms``: a task that blocks the loop for that long every 100 ms, as
a stand-in for event-loop work of the pipeline (frames, events); lateness then includes waiting for it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

import numpy as np

from agent.events import Event, TimerFired
from agent.skills.timers import TimerBook, TimerClock


async def measure(n: int, span_s: float, busy_ms: float, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    book = TimerBook(repeat_s=60.0, ring_s=0.001, max_timers=n)  # no repeats: each fires once
    fired: list[float] = []
    done = asyncio.Event()

    def emit(e: Event) -> None:
        if isinstance(e, TimerFired):
            fired.append(e.late_ms)
            if len(fired) == n:
                done.set()

    clock = TimerClock(book, lambda text: None, emit)
    clock.start()
    t0 = time.monotonic()
    for _ in range(n):
        book.add(book.new(0.2 + rng.random() * span_s, t0))
    clock.reschedule()

    async def busy() -> None:
        while not done.is_set():
            end = time.monotonic() + busy_ms / 1000
            while time.monotonic() < end:  # blocks the loop on purpose
                pass
            await asyncio.sleep(0.1)

    task = asyncio.ensure_future(busy()) if busy_ms > 0 else None
    await asyncio.wait_for(done.wait(), span_s + 30)
    if task is not None:
        await task
    clock.stop()
    return fired


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--timers", type=int, default=40)
    p.add_argument("--span-s", type=float, default=6.0)
    p.add_argument("--busy-ms", type=float, default=30.0)
    a = p.parse_args()
    for busy in (0.0, a.busy_ms):
        late = np.array(asyncio.run(measure(a.timers, a.span_s, busy)))
        print(f"loop busy {busy:4.0f} ms / 100 ms: {len(late)} timers, late_ms p50 {np.percentile(late, 50):.2f} "
              f"p95 {np.percentile(late, 95):.2f} max {late.max():.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
