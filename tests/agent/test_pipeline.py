"""End-to-end turns through the real pipeline: bundled WAVs in simulated real time, real models.

Covers transcripts, replies and reply audio, event order and timestamps, the mid-sentence pause,
speculation discarded when speech resumes, barge-in truncating the history, backchannels that must
not interrupt, and bad input.
"""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from agent.config import load_config
from agent.events import (
    BargeIn,
    BargeInIgnored,
    EndpointCommitted,
    EventBus,
    FinalTranscript,
    FirstReplySample,
    LatencyReport,
    LMFinished,
    LMStarted,
    SpeculationDiscarded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    StageError,
    ToolCallDecided,
    TTSChunk,
)
from agent.gated_reply import with_gate
from agent.pipeline import Services, VoicePipeline
from agent.simulate import InputError, ScriptItem, ScriptRunner, load_items
from agent.tool_calls import ToolRequest
from agent.wer import word_error_rate
from audio.sinks import SimulatedSpeaker
from dlm_core.tools import Tool

DEMO = Path(__file__).resolve().parents[2] / "demo"
MANIFEST = {e["file"]: e for e in json.loads((DEMO / "manifest.json").read_text())}


def item(name: str, action: str = "respond") -> ScriptItem:
    e = MANIFEST[name]
    after = e.get("barge_in_after_ms", e.get("backchannel_after_ms", 0.0))
    return ScriptItem(DEMO / name, e["text"], action, float(after))


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def services(cfg):
    return Services.load(cfg)


def run_script(cfg, services, items, **kw):
    runner = ScriptRunner(cfg, services, **kw)
    runner.pipeline.keep_reply_audio = True
    results = asyncio.run(runner.run(items))
    return runner, results


@pytest.fixture
def long_replies(cfg, services):
    """Replies of ≥ 24 tokens (a few seconds of speech), long enough to talk over."""
    long_cfg = load_config(overrides=["lm.min_tokens=24", "gate.enabled=false"])
    gated = services.reply
    # The model's long replies as they are: the reply gate would replace most with a short honest one.
    services.reply = with_gate(gated, long_cfg.gate)
    services.reply.reconfigure(long_cfg.lm)
    yield long_cfg
    services.reply.reconfigure(cfg.lm)
    services.reply = gated


def of(events, kind, turn=None):
    return [e for e in events if isinstance(e, kind) and (turn is None or e.turn == turn)]


def test_turns_transcribe_reply_and_speak_in_order(cfg, services):
    runner, results = run_script(cfg, services, [item("01_greeting.wav"), item("03_time.wav")])
    events = runner.events
    assert not of(events, StageError), of(events, StageError)
    assert [len(r.turns) for r in results] == [1, 1]
    for result in results:
        turn = result.turns[0]
        final = of(events, FinalTranscript, turn)[-1]
        assert word_error_rate(result.item.text, final.text) <= 0.1, final.text
        lm = of(events, LMFinished, turn)[-1]
        assert lm.text, "the reply model returned an empty reply"
        # At most S steps a block (lm.early_exit ends a block once its reply is fully revealed).
        max_blocks = -(-cfg.lm.max_tokens // cfg.lm.block_len)
        assert lm.steps == cfg.lm.steps and 1 <= lm.forwards <= lm.steps * max_blocks
        audio = np.concatenate(
            [c.samples for c in runner.pipeline.reply_audio.get(turn, [])] or [np.zeros(1)]
        )
        assert np.sqrt(np.mean(audio**2)) > 0.01, "reply audio is silent"
        # Event order and timestamps of the committed attempt.
        started = of(events, SpeechStarted, turn)[0]
        paused = of(events, SpeechPaused, turn)[-1]
        commit = of(events, EndpointCommitted, turn)[-1]  # a merged turn is committed more than once
        first = of(events, FirstReplySample, turn)[0]
        tts = [e for e in of(events, TTSChunk, turn) if e.t >= paused.t]
        lm_start = [e for e in of(events, LMStarted, turn) if e.t >= paused.t][0]
        assert started.audio_start_t < paused.last_voiced_t <= paused.t <= commit.t <= first.t
        assert final.t <= lm_start.t <= lm.t <= first.t
        assert tts and tts[0].t <= first.t
        assert commit.last_voiced_t == paused.last_voiced_t
        report = of(events, LatencyReport, turn)[0]
        assert report.v2v_ms == pytest.approx((first.t - paused.last_voiced_t) * 1e3, abs=0.01)
        assert report.transcript == final.text and report.reply == lm.text
    # The conversation remembers both turns.
    history = runner.pipeline.conversation.turns
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]


def test_mid_sentence_pause_does_not_cut_the_user_off(cfg, services):
    runner, results = run_script(cfg, services, [item("05_mid_sentence_pause.wav")])
    events = runner.events
    assert len(results[0].turns) == 1, "the pause split the utterance into two turns"
    turn = results[0].turns[0]
    committed = of(events, FinalTranscript, turn)[-1].text.lower()
    assert "thinking about" in committed and "walk" in committed
    # Speculation started in the pause and was thrown away when the user went on.
    assert of(events, SpeechResumed, turn)
    # (Speculation may also start and be dropped on a falling frame mid-word: "speech went on".)
    assert "speech resumed" in {d.reason for d in of(events, SpeculationDiscarded, turn)}
    assert of(events, LatencyReport, turn)[0].discarded_speculations >= 1


def test_speculation_starts_on_the_falling_last_voiced_frame(services):
    """endpoint.speculate_below: the final pass runs on audio up to the last voiced frame (one frame
    sooner than waiting for the VAD's silence); any voiced frame after it makes that attempt stale,
    so even speculating on nearly every frame never cuts words off the transcript."""
    clip = [item("11_space.wav")]
    finals = {}
    for below in (0.0, 0.7, 0.999):
        cfg = load_config(overrides=[f"endpoint.speculate_below={below}"])
        runner, results = run_script(cfg, services, clip)
        assert not of(runner.events, StageError), of(runner.events, StageError)
        turn = results[0].turns[0]
        finals[below] = of(runner.events, FinalTranscript, turn)[-1]
        assert finals[below].speculative
        assert word_error_rate(clip[0].text, finals[below].text) <= 0.1, (below, finals[below].text)
        went_on = [d for d in of(runner.events, SpeculationDiscarded, turn) if d.reason == "speech went on"]
        if below == 0.0:
            assert not went_on
        if below == 0.999:  # most voiced frames are below 0.999: attempts were started and dropped
            assert went_on
    frame_s = load_config().audio.frame_ms / 1000
    # Off: the pass covers the first silent frame too; on: it ends with the last voiced frame.
    for below in (0.7, 0.999):
        assert finals[below].audio_s == pytest.approx(finals[0.0].audio_s - frame_s, abs=1e-6)


def test_barge_in_stops_playback_and_keeps_only_what_was_heard(long_replies, services):
    runner, results = run_script(
        long_replies, services, [item("11_space.wav"), item("12_barge_in.wav", "barge_in")]
    )
    barge = of(runner.events, BargeIn)
    assert len(barge) == 1
    b = barge[0]
    full = of(runner.events, LMFinished, b.turn)[-1].text
    assert 0 < b.heard_s < sum(e.audio_s for e in of(runner.events, TTSChunk, b.turn))
    # Playback stopped at the barge-in: every sample of the interrupted reply the speaker ever handed
    # to the device was counted as heard by stop_now (nothing of it played after the stop), and the
    # next reply's audio is a new utterance that started only after it.
    timeline = list(runner.speaker.timeline)
    interrupted = [blk for blk in timeline if blk.t <= b.t][-1].utterance
    played = sum(blk.samples for blk in timeline if blk.utterance == interrupted)
    assert played == round(b.heard_s * runner.speaker.sample_rate)
    later = [blk for blk in timeline if blk.utterance != interrupted and blk.t > b.t]
    assert later and all(blk.utterance > interrupted for blk in later)
    history = runner.pipeline.conversation.turns
    assistant = [m.content for m in history if m.role == "assistant"]
    assert assistant[0] == b.heard_text and len(b.heard_text) < len(full)
    assert full.startswith(b.heard_text.rstrip(".,!?"))
    # The interruption became the next user turn and got its own reply.
    user = [m.content.lower() for m in history if m.role == "user"]
    assert len(user) == 2 and "joke" in user[1]


def test_speech_over_the_end_of_a_reply_keeps_its_first_words(services):
    """The user starts talking while the reply plays, and the reply ends before the barge-in is
    confirmed: the speech is the next turn from its onset ("Wait, stop. …"), not from where the
    detector happens to fire again after playback."""
    slow_cfg = load_config(overrides=["barge_in.min_speech_ms=5000"])  # never confirmed in time
    over = item("12_barge_in.wav", "barge_in")
    over.after_ms = 100.0  # from the reply's first sample: most of the user's first words overlap it
    runner, results = run_script(slow_cfg, services, [item("02_your_name.wav"), over])
    assert not of(runner.events, BargeIn)
    reports = of(runner.events, LatencyReport)
    assert len(reports) == 2 and not any(r.interrupted for r in reports), reports
    second = reports[1]
    assert word_error_rate("Wait, stop. Tell me a funny joke instead.", second.transcript) <= 0.1, second
    # It started while the first reply was still playing.
    first_sample = of(runner.events, FirstReplySample, reports[0].turn)[0]
    started = of(runner.events, SpeechStarted, second.turn)[0]
    reply_s = sum(e.audio_s for e in of(runner.events, TTSChunk, reports[0].turn))
    assert started.audio_start_t < first_sample.t + reply_s


def test_backchannel_does_not_interrupt(long_replies, services):
    runner, results = run_script(
        long_replies, services, [item("09_joke.wav"), item("10_backchannel.wav", "backchannel")]
    )
    assert not of(runner.events, BargeIn)
    assert of(runner.events, BargeInIgnored)
    reports = of(runner.events, LatencyReport)
    assert len(reports) == 1 and not reports[0].interrupted


def test_bad_inputs_give_clear_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_items(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"no audio files \(\.wav, .*found only: notes\.txt"):
        load_items(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps([{"file": "gone.wav", "text": "hi"}]))
    with pytest.raises(InputError, match="missing file"):
        load_items(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    items = load_items(bad)
    with pytest.raises(InputError, match="broken.wav"):
        from agent.simulate import load_clip

        load_clip(items[0], 16000)
    empty = bad / "empty.wav"
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    with pytest.raises(InputError, match="empty"):
        load_clip(ScriptItem(empty), 16000)


def test_a_typed_turn_can_be_a_tool_call_or_say_given_words(cfg, services):
    """The pipeline's two entry points for function calling: a reply offered tools may be decided into a
    call (nothing is said, the request stays out of the history), and a reply may say given words."""

    async def main() -> tuple[VoicePipeline, list]:
        events: list = []
        bus = EventBus()
        bus.subscribe(events.append)
        sink = SimulatedSpeaker(services.tts.sample_rate, cfg.audio.output_block_ms)
        pipeline = VoicePipeline(cfg, services, sink, bus)
        pipeline.keep_reply_audio = True
        try:
            if services.tool_caller is not None:
                timer = Tool("set_timer", "Start a countdown timer.", {
                    "type": "object", "properties": {"minutes": {"type": "integer"}}, "required": ["minutes"]})  # fmt: skip
                choice = {"type": "function", "name": "set_timer"}
                pipeline.respond_to_text("Set a timer for ten minutes.", ToolRequest((timer,), choice))
                await pipeline.idle.wait()
            pipeline.respond_to_text("Set a timer for ten minutes.", say="Your timer is set for ten minutes.")
            await pipeline.idle.wait()
        finally:
            pipeline.close()
            sink.close()
        return pipeline, events

    pipeline, events = asyncio.run(main())
    assert not of(events, StageError), of(events, StageError)
    said_turn = of(events, LatencyReport)[-1].turn
    if services.tool_caller is not None:
        (call,) = of(events, ToolCallDecided)
        assert call.name == "set_timer" and isinstance(json.loads(call.arguments)["minutes"], int)
        assert call.request == "Set a timer for ten minutes." and call.turn not in pipeline.reply_audio
    assert not of(events, LMStarted, said_turn)  # no model: the words are said as they are
    assert " ".join(e.text for e in of(events, TTSChunk, said_turn)) == "Your timer is set for ten minutes."
    audio = np.concatenate([c.samples for c in pipeline.reply_audio[said_turn]])
    assert np.sqrt(np.mean(audio**2)) > 0.01
    history = [(m.role, m.content) for m in pipeline.conversation.turns]
    assert history == [
        ("user", "Set a timer for ten minutes."),
        ("assistant", "Your timer is set for ten minutes."),
    ]
