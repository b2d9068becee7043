"""Routing a turn to a skill (agent/actions.py) and the pipeline's side of it: announcements spoken by
the real TTS through the real pipeline, a ringing timer acknowledged by the user's "okay, thanks",
and the mute switch. Tool calls are ToolCall values built here (the skill code is the real one); the
model's own decisions are tested where dlm_core.tools.ToolCaller lives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from agent.actions import Actions, SkillRuntime
from agent.config import load_config
from agent.events import (
    Announcement,
    Event,
    EventBus,
    LatencyReport,
    LMStarted,
    MuteChanged,
    TimerAcknowledged,
    TimerFired,
    TimerSet,
    ToolCalled,
    now,
)
from agent.pipeline import Services, VoicePipeline
from agent.skills import ToolCall
from agent.skills.timers import TimerBook, TimerSkill
from audio.sinks import SimulatedSpeaker


def _actions(book: TimerBook, **kw: object) -> Actions:
    return Actions([TimerSkill(book)], ringing=lambda: bool(book.ringing()), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "ack"),
    [("Stop.", True), ("Okay, thanks!", True), ("thank you", True), ("OK", True),
     ("Stop the kitchen lights.", False), ("", False), ("What's the weather?", False)],
)  # fmt: skip
def test_acknowledgements_are_only_acknowledgement_words(text: str, ack: bool) -> None:
    assert _actions(TimerBook()).is_acknowledgement(text) is ack


def test_a_ringing_timer_is_stopped_on_commit_by_a_short_acknowledgement() -> None:
    book = TimerBook()
    book.add(book.new(5, now=0.0, name="pasta"))
    book.advance(5.0)
    stopped: list[int] = []

    def acknowledge(turn: int) -> list[Event]:
        stopped.append(turn)
        book.acknowledge()
        return []

    actions = _actions(book, acknowledge=acknowledge)
    plan = actions.plan("Okay, thanks.", [], turn=7, now=6.0)
    assert plan is not None and plan.say == "" and not plan.lm_reply
    assert book.ringing() and stopped == []  # decided, not done: the turn may not be committed
    plan.commit()
    assert stopped == [7] and not book.ringing()


def test_other_words_while_ringing_still_get_a_reply_and_stop_it() -> None:
    book = TimerBook()
    book.add(book.new(5, now=0.0))
    book.advance(5.0)
    actions = _actions(book, acknowledge=lambda turn: book.acknowledge() and [])
    plan = actions.plan("What's the weather like?", [], turn=2, now=6.0)
    assert plan is not None and plan.lm_reply
    plan.commit()
    assert not book.ringing()
    assert actions.plan("What's the weather like?", [], turn=3, now=7.0) is None  # nothing rings: the LM


def test_a_call_routes_to_its_skill_and_is_recorded_on_commit() -> None:
    book = TimerBook()
    actions = _actions(book)
    assert [t.name for t in actions.tools] == ["set_timer", "set_reminder", "cancel_timer", "list_timers",
                                               "timer_remaining"]  # fmt: skip
    result = actions.run(ToolCall("set_timer", {"duration": "ten minutes"}), now=0.0, turn=1)
    assert result.say == "Timer set for ten minutes."
    unknown = actions.run(ToolCall("order_pizza", {}), now=0.0, turn=1)
    assert not unknown.ok and unknown.say == "I can't do order pizza."
    with pytest.raises(ValueError, match="two skills declare the tool 'set_timer'"):
        Actions([TimerSkill(book), TimerSkill(book)])


# -- the real pipeline, real TTS ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cfg():
    return load_config(overrides=["tools.timer_repeat_s=3", "tools.timer_ring_s=30"])


@pytest.fixture(scope="module")
def services(cfg):
    return Services.load(cfg)


async def _wait_for(events: list[Event], got: asyncio.Event, predicate: Callable[[Event], bool]) -> Event:
    while True:
        for e in events:
            if predicate(e):
                return e
        got.clear()
        await asyncio.wait_for(got.wait(), 30)


def test_timer_rings_through_the_pipeline_and_okay_stops_it(cfg, services) -> None:
    async def scenario() -> None:
        bus = EventBus()
        events: list[Event] = []
        got = asyncio.Event()
        bus.subscribe(lambda e: (events.append(e), got.set()))
        speaker = SimulatedSpeaker(services.tts.sample_rate, cfg.audio.output_block_ms, record=True)
        pipeline = VoicePipeline(cfg, services, speaker, bus)
        runtime = SkillRuntime(cfg, pipeline, caller=None)
        runtime.start()
        try:
            call = ToolCall("set_timer", {"duration": "1 second", "name": "pasta"})
            for e in runtime.actions.run(call, now(), turn=0).apply():
                pipeline.emit(e)
            (timer_set,) = [e for e in events if isinstance(e, TimerSet)]
            said = await _wait_for(events, got, lambda e: isinstance(e, Announcement))
            assert isinstance(said, Announcement) and said.text == "Your pasta timer is done."
            assert said.source == "timer"
            fired = next(e for e in events if isinstance(e, TimerFired))
            assert fired.t >= timer_set.due_t  # never early (how late: benchmarks, not a timed assert)
            report = await _wait_for(
                events, got, lambda e: isinstance(e, LatencyReport) and e.turn == said.turn
            )
            assert isinstance(report, LatencyReport) and report.reply == "Your pasta timer is done."
            assert speaker.recorded().size > 0  # it was spoken
            # Still ringing: said again until answered.
            await _wait_for(events, got, lambda e: isinstance(e, Announcement) and e.turn > said.turn)
            await asyncio.wait_for(pipeline.idle.wait(), 30)
            turn = pipeline.respond_to_text("Okay, thanks.")
            ack = await _wait_for(events, got, lambda e: isinstance(e, TimerAcknowledged))
            assert isinstance(ack, TimerAcknowledged) and (ack.turn, ack.how, ack.name) == (
                turn,
                "user",
                "pasta",
            )
            done = await _wait_for(events, got, lambda e: isinstance(e, LatencyReport) and e.turn == turn)
            assert isinstance(done, LatencyReport) and done.reply == ""  # nothing said, and no LM reply
            assert not [e for e in events if isinstance(e, LMStarted) and e.turn == turn]
            assert runtime.book.ringing() == [] and runtime.book.next_wakeup() is None
            assert not [e for e in events if isinstance(e, ToolCalled)]
        finally:
            await runtime.close()
            pipeline.close()
            speaker.close()

    asyncio.run(asyncio.wait_for(scenario(), 120))


def test_mute_turns_the_microphone_into_silence(cfg, services) -> None:
    async def scenario() -> None:
        bus = EventBus()
        events: list[Event] = []
        bus.subscribe(events.append)
        speaker = SimulatedSpeaker(services.tts.sample_rate, cfg.audio.output_block_ms, record=True)
        pipeline = VoicePipeline(cfg, services, speaker, bus)
        try:
            pipeline.set_muted(True)
            pipeline.set_muted(True)  # no change, no event
            pipeline.set_muted(False)
            assert [e.muted for e in events if isinstance(e, MuteChanged)] == [True, False]
        finally:
            pipeline.close()
            speaker.close()

    asyncio.run(scenario())
