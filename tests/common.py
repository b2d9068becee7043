"""Small helpers shared by test packages."""

from __future__ import annotations

import threading


class SetAfterChecks(threading.Event):
    """An event that reads as set from its (n+1)-th check on: a stop or abandon request arriving
    while work runs, deterministically. ``checks`` counts the checks made."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.checks = n, 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks > self.n or super().is_set()
