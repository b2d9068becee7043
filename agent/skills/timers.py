"""Timers and reminders: set, cancel, list, time left; several at once; they ring until acknowledged.

* ``TimerBook`` (sans-I/O): monotonic times in, decisions out. ``advance(now)`` returns the alerts
  due by ``now`` (a timer that ends, a ringing one repeated every ``repeat_s``, one given up after
  ``ring_s``); ``next_wakeup()`` is when to call it next.
* ``TimerSkill``: the tools the model calls (``set_timer``, ``set_reminder``, ``cancel_timer``,
  ``list_timers``, ``timer_remaining``) on a book.
* ``TimerClock``: the asyncio adapter. It arms one ``loop.call_later`` for the book's next wake-up
  (no polling), and hands each announcement to a callback that speaks it like a reply.

A reminder is a timer with a message: "remind me to call mom in ten minutes" rings "Reminder: call
mom." instead of "Your timer is done."
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dlm_core.tools import Tool, ToolCall

from ..events import Event, TimerAcknowledged, TimerCancelled, TimerFired, TimerSet
from ..events import now as mono_now
from . import SkillError, SkillResult, failed
from .durations import DurationError, parse_duration, spoken_duration


@dataclass
class Timer:
    id: int
    name: str  # "" = unnamed ("your timer")
    message: str  # "" = a timer; else a reminder's text ("call mom")
    duration_s: float
    set_t: float
    due_t: float
    fired_t: float | None = None
    last_alert_t: float | None = None

    @property
    def label(self) -> str:
        """How the agent names it: 'pasta timer', 'timer', 'reminder to call mom'."""
        if self.message:
            return f"reminder to {self.message}" if not self.name else f"{self.name} reminder"
        return f"{self.name} timer" if self.name else "timer"

    @property
    def done_sentence(self) -> str:
        if self.message:
            return f"Reminder: {self.message}."
        return f"Your {self.label} is done."


class AlertKind(enum.StrEnum):
    FIRED = "fired"  # the timer just ended
    REPEAT = "repeat"  # still ringing, not acknowledged
    GAVE_UP = "gave_up"  # rang for ring_s unanswered: stops


@dataclass(frozen=True)
class Alert:
    timer: Timer
    kind: AlertKind
    t: float  # when it was due (a repeat: when the repeat was due)


class TimerBook:
    """Every timer of one agent (no I/O, no clock of its own: every method takes ``now``)."""

    def __init__(self, repeat_s: float = 8.0, ring_s: float = 60.0, max_timers: int = 20) -> None:
        if repeat_s <= 0 or ring_s <= 0:
            raise ValueError("repeat_s and ring_s must be positive")
        self.repeat_s = repeat_s
        self.ring_s = ring_s
        self.max_timers = max_timers
        self._timers: dict[int, Timer] = {}
        self._next_id = 1

    # -- queries ---------------------------------------------------------------------------------
    def pending(self) -> list[Timer]:
        """Timers still counting down, soonest first."""
        return sorted((t for t in self._timers.values() if t.fired_t is None), key=lambda t: (t.due_t, t.id))

    def ringing(self) -> list[Timer]:
        return sorted((t for t in self._timers.values() if t.fired_t is not None), key=lambda t: t.id)

    def find(self, name: str = "") -> Timer:
        """The pending timer called ``name`` ('' = the only one); ``SkillError`` says why not."""
        pending = self.pending()
        if not pending:
            raise SkillError("You have no timers running.")
        if not name:
            if len(pending) > 1:
                raise SkillError(f"You have {len(pending)} timers: {_names(pending)}. Which one?")
            return pending[0]
        key = _key(name)
        for t in pending:
            if key in (_key(t.name), _key(t.message)) and key:
                return t
        raise SkillError(f"You have no {name} timer. Running: {_names(pending)}.")

    def remaining(self, timer: Timer, now: float) -> float:
        return max(0.0, timer.due_t - now)

    def next_wakeup(self) -> float | None:
        """The next time ``advance`` has something to do (None: nothing scheduled)."""
        times = [t.due_t for t in self.pending()]
        for t in self.ringing():
            assert t.fired_t is not None and t.last_alert_t is not None
            times.append(min(t.last_alert_t + self.repeat_s, t.fired_t + self.ring_s))
        return min(times, default=None)

    # -- changes ---------------------------------------------------------------------------------
    def new(self, duration_s: float, now: float, name: str = "", message: str = "") -> Timer:
        """A timer that ``add`` would start (not yet in the book: a speculative turn may be dropped)."""
        name, message = name.strip(), message.strip().rstrip(".")
        if len(self.pending()) >= self.max_timers:
            raise SkillError(f"You already have {self.max_timers} timers running; cancel one first.")
        if name and any(_key(t.name) == _key(name) for t in self.pending()):
            raise SkillError(f"You already have a {name} timer.")
        return Timer(self._next_id, name, message, duration_s, now, now + duration_s)

    def add(self, timer: Timer) -> Timer:
        timer.id = self._next_id  # another may have been added since ``new``
        self._next_id += 1
        self._timers[timer.id] = timer
        return timer

    def cancel(self, timer: Timer) -> None:
        self._timers.pop(timer.id, None)

    def acknowledge(self) -> list[Timer]:
        """The user answered: every ringing timer stops."""
        done = self.ringing()
        for t in done:
            del self._timers[t.id]
        return done

    def advance(self, now: float) -> list[Alert]:
        """Everything due by ``now``, in time order: timers ending, repeats, and gave-ups."""
        alerts: list[Alert] = []
        for t in self.ringing():
            assert t.fired_t is not None and t.last_alert_t is not None
            if now >= t.fired_t + self.ring_s:
                alerts.append(Alert(t, AlertKind.GAVE_UP, t.fired_t + self.ring_s))
                del self._timers[t.id]
            elif now >= t.last_alert_t + self.repeat_s:
                due = t.last_alert_t + self.repeat_s
                t.last_alert_t = now  # the next repeat counts from when this one is said
                alerts.append(Alert(t, AlertKind.REPEAT, due))
        for t in self.pending():
            if t.due_t <= now:
                t.fired_t = t.last_alert_t = now
                alerts.append(Alert(t, AlertKind.FIRED, t.due_t))
        return sorted(alerts, key=lambda a: (a.t, a.timer.id))


def _key(text: str) -> str:
    return " ".join(text.lower().replace("timer", "").replace("reminder", "").split())


def _names(timers: Sequence[Timer]) -> str:
    labels = [t.label for t in timers]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def announcement(alerts: Sequence[Alert]) -> str:
    """What the agent says for alerts due together: one sentence per ringing timer."""
    return " ".join(a.timer.done_sentence for a in alerts if a.kind is not AlertKind.GAVE_UP)


# -- the skill ------------------------------------------------------------------------------------------

_NAME = {"type": "string", "description": "the timer's name if the user gave one, e.g. 'pasta'"}
_DURATION = {
    "type": "string",
    "description": "how long, in the user's words, e.g. 'ten minutes', '1 hour 30', '90 seconds'",
}
TIMER_TOOLS = (
    Tool(
        "set_timer",
        "Start a countdown timer for a length of time, optionally with a name.",
        {"type": "object", "properties": {"duration": _DURATION, "name": _NAME}, "required": ["duration"]},
    ),
    Tool(
        "set_reminder",
        "Remind the user of something after a length of time ('remind me to call mom in ten minutes').",
        {
            "type": "object",
            "properties": {
                "message": {"type": "string", "description": "what to remind of, e.g. 'call mom'"},
                "duration": _DURATION,
            },
            "required": ["message", "duration"],
        },
    ),
    Tool(
        "cancel_timer",
        "Cancel a running timer or reminder, by name or the only one.",
        {"type": "object", "properties": {"name": _NAME}, "required": []},
    ),
    Tool("list_timers", "Say which timers are running.", {"type": "object", "properties": {}}),
    Tool(
        "timer_remaining",
        "Say how much time is left on a timer.",
        {"type": "object", "properties": {"name": _NAME}, "required": []},
    ),
)


class TimerSkill:
    def __init__(self, book: TimerBook | None = None) -> None:
        self.book = book or TimerBook()
        self.on_change: Callable[[], None] = lambda: None  # the clock re-arms its wake-up here

    def tools(self) -> Sequence[Tool]:
        return TIMER_TOOLS

    def run(self, call: ToolCall, now: float, turn: int = 0) -> SkillResult:
        args = call.arguments
        try:
            if call.name in ("set_timer", "set_reminder"):
                return self._set(str(args.get("duration", "")), str(args.get("name", "")),
                                 str(args.get("message", "")), now, turn)  # fmt: skip
            if call.name == "cancel_timer":
                return self._cancel(str(args.get("name", "")), turn)
            if call.name == "list_timers":
                return SkillResult(self._list(now))
            if call.name == "timer_remaining":
                timer = self.book.find(str(args.get("name", "")))
                left = spoken_duration(self.book.remaining(timer, now))
                return SkillResult(f"{left[0].upper()}{left[1:]} left on your {timer.label}.")
        except SkillError as exc:
            return failed(exc)
        raise SkillError(f"The timer skill has no tool called {call.name}.")

    def _set(self, duration: str, name: str, message: str, now: float, turn: int) -> SkillResult:
        try:
            seconds = parse_duration(duration)
        except DurationError as exc:
            raise SkillError(str(exc)) from None
        timer = self.book.new(seconds, now, name, message)
        length = spoken_duration(seconds)
        if timer.message:
            say = f"Okay, in {length} I'll remind you to {timer.message}."
        else:
            say = f"{timer.label[0].upper()}{timer.label[1:]} set for {length}."

        def apply() -> list[Event]:
            self.book.add(timer)
            self.on_change()
            return [TimerSet(turn, mono_now(), timer.id, timer.name, timer.message, seconds, timer.due_t)]

        return SkillResult(say, apply)

    def _cancel(self, name: str, turn: int) -> SkillResult:
        timer = self.book.find(name)

        def apply() -> list[Event]:
            self.book.cancel(timer)
            self.on_change()
            return [TimerCancelled(turn, mono_now(), timer.id, timer.name)]

        return SkillResult(f"Your {timer.label} is cancelled.", apply)

    def _list(self, now: float) -> str:
        pending = self.book.pending()
        if not pending:
            return "You have no timers running."
        parts = [f"your {t.label} has {spoken_duration(self.book.remaining(t, now))} left" for t in pending]
        text = parts[0] if len(parts) == 1 else "; ".join(parts[:-1]) + "; and " + parts[-1]
        return f"{text[0].upper()}{text[1:]}."


# -- asyncio adapter ------------------------------------------------------------------------------------


class TimerClock:
    """Runs a ``TimerBook`` on the event loop: one ``call_later`` for the next wake-up, re-armed after
    every change; alerts become events and one spoken announcement each time."""

    def __init__(
        self,
        book: TimerBook,
        announce: Callable[[str], None],
        emit: Callable[[Event], None],
        clock: Callable[[], float] = mono_now,
    ) -> None:
        self.book = book
        self.announce = announce
        self.emit = emit
        self.clock = clock
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self.reschedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def reschedule(self) -> None:
        """Call after anything changed the book (a timer set, cancelled, acknowledged)."""
        if self._loop is None:
            return
        self.stop()
        wake = self.book.next_wakeup()
        if wake is not None:
            self._handle = self._loop.call_later(max(0.0, wake - self.clock()), self._wake)

    def acknowledge(self, turn: int = 0) -> list[Timer]:
        stopped = self.book.acknowledge()
        t = self.clock()
        for timer in stopped:
            self.emit(TimerAcknowledged(turn, t, timer.id, timer.name, "user"))
        self.reschedule()
        return stopped

    def _wake(self) -> None:
        self._handle = None
        t = self.clock()
        alerts = self.book.advance(t)
        for a in alerts:
            if a.kind is AlertKind.FIRED:
                self.emit(TimerFired(0, t, a.timer.id, a.timer.name, a.timer.message, (t - a.t) * 1e3))
            elif a.kind is AlertKind.GAVE_UP:
                self.emit(TimerAcknowledged(0, t, a.timer.id, a.timer.name, "unanswered"))
        text = announcement(alerts)
        if text:
            self.announce(text)
        self.reschedule()
