"""Between the final transcript and the reply: does this turn call a skill, or acknowledge a ringing timer?

``Actions.plan(text, messages, turn, now)`` (on the reply thread, possibly speculative) returns a
``Plan`` or None (None: the LM replies as usual). A plan is what to say (spoken like a reply, first
clause first) and ``commit()``, which the pipeline runs once the turn is committed: only then is a timer
set, a device command queued, a ringing timer stopped. A speculative turn that is dropped does nothing.

``SkillRuntime`` builds the skills from the config and runs their adapters (the timer clock, the MQTT
device link) beside a pipeline; ``talk``, ``demo`` and ``profile`` start it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dlm_core.tools import Tool, ToolCall

from .config import QuickturnConfig
from .events import Event, ToolCalled
from .skills import Skill, SkillError, SkillResult
from .skills.home import CommandQueue, HomeSkill, load_devices, run_device_link
from .skills.timers import TimerBook, TimerClock, TimerSkill
from .tool_calls import ToolDecider, load_tool_caller

if TYPE_CHECKING:
    from .pipeline import VoicePipeline

log = logging.getLogger("quickturn.actions")


class ToolsUnavailable(RuntimeError):
    """``tools.enabled`` but no tool caller can be built for this reply model."""


def require_tool_caller(reply: object) -> ToolDecider:
    """A ``dlm_core.tools.ToolCaller`` on the reply model's diffusion engine, or ``ToolsUnavailable``."""
    caller = load_tool_caller(reply)
    if caller is None:
        raise ToolsUnavailable(f"tools.enabled needs the diffusion reply model, not {type(reply).__name__}")
    return caller


@dataclass
class Plan:
    """What a turn does instead of an LM reply (``say`` "" = nothing to say, e.g. "stop" to a timer)."""

    say: str
    commit: Callable[[], list[Event]]
    call: ToolCall | None = None
    lm_reply: bool = False  # True: the LM still replies (commit only stops a ringing timer)


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z']+", text.lower()))


@dataclass
class Actions:
    """Routes a turn to its skill (sans-I/O apart from the tool caller's model call)."""

    skills: Sequence[Skill]
    caller: ToolDecider | None = None
    acknowledge_words: Sequence[str] = ("stop", "okay", "ok", "thanks", "thank you")
    ringing: Callable[[], bool] = lambda: False  # a timer is ringing now
    acknowledge: Callable[[int], list[Event]] = lambda turn: []  # stops it
    tools: list[Tool] = field(init=False)
    _by_tool: dict[str, Skill] = field(init=False)

    def __post_init__(self) -> None:
        self._by_tool = {}
        self.tools = []
        for skill in self.skills:
            for tool in skill.tools():
                if tool.name in self._by_tool:
                    raise ValueError(f"two skills declare the tool {tool.name!r}")
                self._by_tool[tool.name] = skill
                self.tools.append(tool)

    def is_acknowledgement(self, text: str) -> bool:
        """'Stop.', 'Okay, thanks!': nothing but acknowledgement words."""
        said = _words(text)
        words = sorted({_words(w) for w in self.acknowledge_words}, key=len, reverse=True)
        for w in words:
            said = re.sub(rf"\b{re.escape(w)}\b", " ", said)
        return bool(_words(text)) and not said.strip(" ,.!")

    def run(self, call: ToolCall, now: float, turn: int) -> SkillResult:
        skill = self._by_tool.get(call.name)
        if skill is None:
            return SkillResult(f"I can't do {call.name.replace('_', ' ')}.", ok=False)
        try:
            return skill.run(call, now, turn)
        except SkillError as exc:
            return SkillResult(exc.spoken, ok=False)

    def plan(self, text: str, messages: Sequence[Mapping[str, str]], turn: int, now: float) -> Plan | None:
        """Worker thread: acknowledge a ringing timer, or ask the tool caller; None = reply as usual."""
        ringing = self.ringing()
        if ringing and self.is_acknowledgement(text):
            return Plan("", lambda: self.acknowledge(turn))
        call: ToolCall | None = None
        decide_ms = 0.0
        if self.caller is not None and self.tools:
            t0 = time.perf_counter()
            call = self.caller.decide(messages, self.tools, "auto")
            decide_ms = (time.perf_counter() - t0) * 1e3
        if call is None:
            # The user said something else while it rang: that answers it too (on commit).
            return Plan("", lambda: self.acknowledge(turn), lm_reply=True) if ringing else None
        result = self.run(call, now, turn)

        def commit() -> list[Event]:
            events: list[Event] = list(self.acknowledge(turn)) if ringing else []
            events.append(ToolCalled(turn, time.monotonic(), call.name, dict(call.arguments),
                                     round(call.confidence, 4), round(decide_ms, 2), result.ok, result.say))  # fmt: skip
            events += result.apply()
            return events

        return Plan(result.say, commit, call)


class SkillRuntime:
    """The skills of one pipeline and their I/O: the timer clock and (with devices) the MQTT link."""

    def __init__(self, cfg: QuickturnConfig, pipeline: VoicePipeline, caller: ToolDecider | None) -> None:
        self.cfg = cfg
        self.pipeline = pipeline
        tcfg = cfg.tools
        self.book = TimerBook(tcfg.timer_repeat_s, tcfg.timer_ring_s)
        self.clock = TimerClock(self.book, lambda text: pipeline.announce(text, "timer"), pipeline.emit)
        skills: list[Skill] = []
        if tcfg.timers:
            timers = TimerSkill(self.book)
            timers.on_change = self.clock.reschedule
            skills.append(timers)
        self.home: HomeSkill | None = None
        if tcfg.home and cfg.home.devices:
            queue = CommandQueue(cfg.home.max_queued, cfg.home.command_ttl_s)
            self.home = HomeSkill(load_devices(cfg.home.devices), queue)
            skills.append(self.home)

        def acknowledge(turn: int) -> list[Event]:
            self.clock.acknowledge(turn)  # emits its own events on the bus
            return []

        self.actions = Actions(
            skills,
            caller,
            tcfg.acknowledge_words,
            ringing=lambda: bool(self.book.ringing()),
            acknowledge=acknowledge,
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """On the running loop: hook into the pipeline, arm the clock, connect the devices' link."""
        self.pipeline.actions = self.actions
        self.clock.start()
        if self.home is not None:
            self._tasks.append(
                asyncio.ensure_future(
                    run_device_link(
                        self.cfg.mqtt, self.cfg.home, self.home.queue, self._stop, self.pipeline.emit,
                        lambda text: self.pipeline.announce(text, "home"),
                    )
                )
            )  # fmt: skip

    async def close(self) -> None:
        self.clock.stop()
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5.0)
        if self.pipeline.actions is self.actions:
            self.pipeline.actions = None
