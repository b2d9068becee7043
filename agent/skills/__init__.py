"""Built-in skills: what a tool call decided by the model (``dlm_core.tools.ToolCall``) does.

A skill declares its tools (name, description, JSON-schema parameters, as ``dlm_core.tools.Tool``)
and runs a call in two halves, so a call decided speculatively (while the user may still go on) has no
effect until the turn is committed:

* ``run(call, now, turn)`` decides, without side effects: what to say and a ``SkillResult.apply``;
* ``apply()`` carries it out (sets the timer, queues the device command) once the turn is committed,
  and returns the typed events that record it.

Both halves are plain code with plain inputs (monotonic ``now``); the I/O (asyncio timers, the MQTT
link) lives in thin adapters beside them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dlm_core.tools import Tool, ToolCall

from ..events import Event


class SkillError(ValueError):
    """A call a skill cannot carry out; ``spoken`` is what the agent says about it."""

    def __init__(self, spoken: str) -> None:
        super().__init__(spoken)
        self.spoken = spoken


def _no_effect() -> list[Event]:
    return []


@dataclass(frozen=True)
class SkillResult:
    """What a call does: ``say`` (spoken like a reply), and ``apply`` (run once, on commit)."""

    say: str
    apply: Callable[[], list[Event]] = field(default=_no_effect)
    ok: bool = True  # False: the call could not be done and ``say`` explains why


class Skill(Protocol):
    """One capability; its tool names are unique across the skills an agent runs."""

    def tools(self) -> Sequence[Tool]: ...

    def run(self, call: ToolCall, now: float, turn: int = 0) -> SkillResult: ...


def failed(error: SkillError) -> SkillResult:
    return SkillResult(error.spoken, ok=False)


__all__ = ["Skill", "SkillError", "SkillResult", "Tool", "ToolCall", "failed"]
