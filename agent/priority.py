"""Who uses a shared model next when several sessions wait: urgent work first, then first come.

A server's sessions share one recognizer and one synthesizer. Taken first come, first served, a
session's ASR partial (a preview nobody waits for) can hold up another's final pass (which its reply
waits for), and a reply's third clause (queued behind audio already playing) another's first clause
(which its user waits to hear). ``PriorityQueue`` decides (sans-I/O: plain tickets in, the ticket to
run next out); ``PriorityGate`` is its thread adapter, a drop-in for a lock or a semaphore.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
from collections.abc import Iterator

URGENT = 0  # an ASR final pass; the first clause of a reply
LATER = 1  # an ASR partial; a reply's later clauses


class PriorityQueue:
    """``slots`` users at a time; waiters go by priority (lower first), then by arrival."""

    def __init__(self, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.slots = slots
        self.in_use = 0
        self._waiting: list[tuple[int, int, object]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._waiting)

    def ask(self, ticket: object, priority: int) -> bool:
        """True: ``ticket`` may run now (it holds a slot); False: it waits its turn."""
        if self.in_use < self.slots and not self._waiting:
            self.in_use += 1
            return True
        heapq.heappush(self._waiting, (priority, next(self._order), ticket))
        return False

    def try_ask(self) -> bool:
        """Take a slot only if one is free and nobody waits (work worth doing only when idle)."""
        if self.in_use < self.slots and not self._waiting:
            self.in_use += 1
            return True
        return False

    def done(self) -> object | None:
        """A slot is given back: the waiting ticket that holds it now, if any."""
        if self._waiting:
            return heapq.heappop(self._waiting)[2]  # the slot passes straight on
        self.in_use -= 1
        return None


class PriorityGate:
    """A lock (``slots=1``) or semaphore whose waiters are served by priority: ``with gate.slot(p):``;
    ``with gate:`` takes an ``URGENT`` slot."""

    def __init__(self, slots: int = 1) -> None:
        self._queue = PriorityQueue(slots)
        self._lock = threading.Lock()
        # Off by default: first come, first served as a lock or semaphore; ``serve`` turns it on with
        # ``[server] first_clauses_first`` (faster final passes change when turns commit, see there).
        self.by_priority = False

    @contextlib.contextmanager
    def slot(self, priority: int) -> Iterator[None]:
        self.acquire(priority)
        try:
            yield
        finally:
            self.release()

    def acquire(self, priority: int = URGENT, blocking: bool = True) -> bool:
        """Wait for a slot (True), or with ``blocking=False`` take one only if it is free and nobody
        waits (True) and otherwise return False at once, as ``threading.Semaphore.acquire`` does."""
        if not blocking:
            with self._lock:
                return self._queue.try_ask()
        self.ask(priority).wait()  # set by the release that hands this caller the slot
        return True

    def ask(self, priority: int) -> threading.Event:
        """Join the queue: the event is set once the caller holds a slot (``release`` it after)."""
        turn = threading.Event()
        with self._lock:
            if self._queue.ask(turn, priority if self.by_priority else URGENT):
                turn.set()
        return turn

    def try_acquire(self) -> bool:
        """A slot now if one is free and nobody waits, else False at once. With priorities off,
        simply ``acquire`` (first come, first served: True once the slot is held)."""
        return self.acquire(LATER, blocking=not self.by_priority)

    def release(self) -> None:
        with self._lock:
            nxt = self._queue.done()
        if isinstance(nxt, threading.Event):
            nxt.set()

    def __enter__(self) -> PriorityGate:
        self.acquire(URGENT)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
