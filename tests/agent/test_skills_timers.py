"""Timers: durations as said, the sans-I/O TimerBook with plain times (no sleeps, no wall clock), the
skill's tool calls (ToolCall values built here: the skill code is the real one), and the asyncio
clock firing on a real event loop."""

from __future__ import annotations

import asyncio

import pytest

from agent.events import Event, TimerAcknowledged, TimerCancelled, TimerFired, TimerSet
from agent.skills import ToolCall
from agent.skills.durations import DurationError, parse_duration, spoken_duration
from agent.skills.timers import AlertKind, TimerBook, TimerClock, TimerSkill, announcement


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("ten minutes", 600),
        ("10 minutes", 600),
        ("1 hour 30", 5400),
        ("one hour and thirty minutes", 5400),
        ("90 seconds", 90),
        ("an hour and a half", 5400),
        ("half an hour", 1800),
        ("two and a half minutes", 150),
        ("a minute and a half", 90),
        ("1h30m", 5400),
        ("5 mins", 300),
        ("for twenty-five minutes", 1500),
        ("2 minutes 10", 130),
        ("2:30", 150),
        ("a quarter of an hour", 900),
        ("one hundred and twenty seconds", 120),
        ("1.5 hours", 5400),
    ],
)
def test_durations_in_words_or_digits(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "needle"),
    [("pasta", "couldn't hear how long"), ("ten", "Minutes or seconds"), ("minutes", "How many minutes"),
     ("five six minutes", "one number"), ("zero seconds", "more than zero"), ("30 hours", "twenty-four")],
)  # fmt: skip
def test_bad_durations_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(DurationError, match=needle):
        parse_duration(text)


def test_spoken_durations() -> None:
    assert spoken_duration(600) == "ten minutes"
    assert spoken_duration(90) == "one minute and thirty seconds"
    assert spoken_duration(5400) == "one hour and thirty minutes"
    assert spoken_duration(3725) == "one hour and two minutes"  # seconds dropped beyond ten minutes
    assert spoken_duration(1) == "one second"


def test_timers_fire_in_due_order_and_ring_until_acknowledged() -> None:
    book = TimerBook(repeat_s=8.0, ring_s=60.0)
    eggs = book.add(book.new(300, now=0.0, name="eggs"))
    pasta = book.add(book.new(60, now=10.0, name="pasta"))
    tea = book.add(book.new(60, now=10.0, name="tea"))
    assert [t.name for t in book.pending()] == ["pasta", "tea", "eggs"]
    assert book.next_wakeup() == 70.0
    assert book.advance(69.9) == []
    alerts = book.advance(70.05)  # both ended at 70.0: one announcement for the two
    assert [(a.timer.name, a.kind, a.t) for a in alerts] == [
        ("pasta", AlertKind.FIRED, 70.0), ("tea", AlertKind.FIRED, 70.0),
    ]  # fmt: skip
    assert announcement(alerts) == "Your pasta timer is done. Your tea timer is done."
    assert book.next_wakeup() == pytest.approx(78.05)  # the repeat, 8 s after it was said
    assert [a.kind for a in book.advance(78.1)] == [AlertKind.REPEAT, AlertKind.REPEAT]
    assert [t.name for t in book.acknowledge()] == ["pasta", "tea"]  # the user said "stop"
    assert book.ringing() == [] and book.next_wakeup() == 300.0
    assert [(a.timer, a.kind) for a in book.advance(300.0)] == [(eggs, AlertKind.FIRED)]
    assert pasta.fired_t == tea.fired_t == 70.05


def test_an_unanswered_timer_gives_up_after_a_minute() -> None:
    book = TimerBook(repeat_s=8.0, ring_s=60.0)
    book.add(book.new(5, now=0.0))
    kinds = []
    t = 0.0
    while (wake := book.next_wakeup()) is not None:
        t = wake
        kinds += [a.kind for a in book.advance(t)]
    assert kinds[0] is AlertKind.FIRED and kinds[-1] is AlertKind.GAVE_UP
    assert kinds.count(AlertKind.REPEAT) == 7  # 13, 21, ..., 61 s; it gives up at 65 s
    assert t == 65.0 and book.ringing() == []


def _call(tool: str, /, **arguments: str) -> ToolCall:
    return ToolCall(tool, arguments)


def test_skill_sets_lists_and_cancels_timers_only_when_applied() -> None:
    skill = TimerSkill(TimerBook())
    result = skill.run(_call("set_timer", duration="ten minutes", name="pasta"), now=100.0, turn=3)
    assert result.ok and result.say == "Pasta timer set for ten minutes."
    assert skill.book.pending() == []  # decided, not yet done: a speculative turn may be dropped
    (event,) = result.apply()
    assert isinstance(event, TimerSet) and (event.turn, event.name, event.duration_s) == (3, "pasta", 600)
    assert event.due_t == 700.0
    skill.run(_call("set_reminder", duration="1 hour", message="call mom"), now=100.0).apply()
    listed = skill.run(_call("list_timers"), now=400.0).say
    assert listed == "Your pasta timer has five minutes left; and your reminder to call mom has " \
        "fifty-five minutes left."  # fmt: skip
    left = skill.run(_call("timer_remaining", name="pasta"), now=640.0).say
    assert left == "One minute left on your pasta timer."
    ambiguous = skill.run(_call("cancel_timer"), now=640.0)
    assert not ambiguous.ok and "Which one?" in ambiguous.say
    cancel = skill.run(_call("cancel_timer", name="pasta"), now=640.0)
    assert cancel.say == "Your pasta timer is cancelled."
    (gone,) = cancel.apply()
    assert isinstance(gone, TimerCancelled) and [t.message for t in skill.book.pending()] == ["call mom"]


def test_skill_errors_are_spoken() -> None:
    skill = TimerSkill(TimerBook())
    assert skill.run(_call("cancel_timer"), now=0.0).say == "You have no timers running."
    bad = skill.run(_call("set_timer", duration="pasta"), now=0.0)
    assert not bad.ok and "how long" in bad.say
    skill.run(_call("set_timer", duration="1 minute", name="tea"), now=0.0).apply()
    assert skill.run(_call("set_timer", duration="2 minutes", name="Tea"), now=0.0).say == (
        "You already have a Tea timer."
    )


def test_reminder_rings_with_its_message() -> None:
    skill = TimerSkill(TimerBook())
    result = skill.run(_call("set_reminder", duration="in ten minutes", message="call mom"), now=0.0)
    assert result.say == "Okay, in ten minutes I'll remind you to call mom."
    result.apply()
    assert announcement(skill.book.advance(600.0)) == "Reminder: call mom."


def test_clock_fires_on_the_event_loop_and_stops_when_acknowledged() -> None:
    """A real loop and a short timer; the test waits on the announcement, not on a sleep."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        said: asyncio.Queue[str] = asyncio.Queue()
        events: list[Event] = []
        book = TimerBook(repeat_s=0.05, ring_s=10.0)
        clock = TimerClock(book, said.put_nowait, events.append, clock=loop.time)
        skill = TimerSkill(book)
        skill.on_change = clock.reschedule
        clock.start()
        skill.run(_call("set_timer", duration="0:01", name="toast"), now=loop.time()).apply()
        assert await asyncio.wait_for(said.get(), 5) == "Your toast timer is done."
        assert await asyncio.wait_for(said.get(), 5) == "Your toast timer is done."  # repeated
        clock.acknowledge(turn=2)
        assert book.next_wakeup() is None and clock._handle is None
        fired = [e for e in events if isinstance(e, TimerFired)]
        acked = [e for e in events if isinstance(e, TimerAcknowledged)]
        assert len(fired) == 1 and fired[0].name == "toast" and fired[0].late_ms >= 0
        assert [(e.turn, e.how) for e in acked] == [(2, "user")]

    asyncio.run(scenario())
