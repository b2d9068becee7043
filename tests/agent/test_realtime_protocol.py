"""The Realtime protocol layer on its own (sans-I/O): parsing and validating client events, the session's
rules (what is pending, what is an error, what the adapter must do), and translating pipeline events
into the server event sequence a Realtime client expects. No sockets, no models, no sleeps: pipeline
events are the real typed events the pipeline emits, built directly.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from agent.events import (
    BargeIn,
    EndpointCommitted,
    FinalTranscript,
    FirstReplySample,
    LatencyReport,
    PartialTranscript,
    PromptTrimmed,
    SpeculationDiscarded,
    SpeechPaused,
    SpeechStarted,
    StageError,
    TTSChunk,
    TurnMerged,
)
from agent.realtime.protocol import (
    DELTA_BYTES,
    MAX_BUFFER_S,
    RATE,
    AudioAppend,
    AudioClear,
    AudioCommit,
    ItemCreate,
    ItemTruncate,
    RealtimeProtocolError,
    ResponseCancel,
    ResponseCreate,
    SessionUpdate,
    encode,
    parse_client_event,
)
from agent.realtime.session import (
    ApplyTurnDetection,
    CancelReply,
    ClearFeed,
    FeedAudio,
    RealtimeSession,
    ReviseReply,
    ServerDefaults,
    StartReply,
    Transcribe,
)
from agent.text_split import heard_text

DEFAULTS = ServerDefaults(
    voice="en_US-joe-medium", threshold=0.5, prefix_padding_ms=256, silence_duration_ms=300
)
GA_SESSION = {
    "type": "realtime",
    "instructions": "Be brief.",
    "output_modalities": ["audio"],
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "whisper-1"},
            "turn_detection": {"type": "server_vad", "threshold": 0.6, "silence_duration_ms": 500},
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"},
    },
}


def msg(**event) -> str:
    return json.dumps(event)


def b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()


def fails(raw: str | bytes, code: str) -> RealtimeProtocolError:
    with pytest.raises(RealtimeProtocolError) as info:
        parse_client_event(raw)
    assert info.value.code == code, info.value.message
    return info.value


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def pcm_of(seconds: float, freq: float = 220.0) -> bytes:
    t = np.arange(round(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * freq * t) * 8000).astype("<i2").tobytes()


# -- parsing ------------------------------------------------------------------------------------------
def test_every_supported_client_event_parses_into_its_type():
    pcm = pcm_of(0.1)
    cases = [
        (msg(type="session.update", session=GA_SESSION, event_id="e1"), SessionUpdate),
        (msg(type="input_audio_buffer.append", audio=b64(pcm)), AudioAppend),
        (msg(type="input_audio_buffer.commit"), AudioCommit),
        (msg(type="input_audio_buffer.clear"), AudioClear),
        (
            msg(
                type="conversation.item.create",
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
            ),
            ItemCreate,
        ),
        (
            msg(type="conversation.item.truncate", item_id="item_1", content_index=0, audio_end_ms=1500),
            ItemTruncate,
        ),
        (msg(type="response.create", response={"instructions": "Be nice."}), ResponseCreate),
        (msg(type="response.create"), ResponseCreate),
        (msg(type="response.cancel"), ResponseCancel),
    ]
    for raw, cls in cases:
        assert type(parse_client_event(raw)) is cls
    append = parse_client_event(msg(type="input_audio_buffer.append", audio=b64(pcm), event_id="a1"))
    assert isinstance(append, AudioAppend) and append.pcm == pcm and append.event_id == "a1"
    item = parse_client_event(cases[4][0])
    assert isinstance(item, ItemCreate) and item.text == "Hi"


def test_malformed_messages_get_named_errors():
    assert "not valid JSON" in fails("{type: session.update", "invalid_json").message
    fails("[1, 2]", "invalid_event")
    fails(msg(event_id="x"), "missing_required_parameter")
    err = fails(msg(type="session.create", event_id="evt_7"), "unknown_event_type")
    assert err.event_id == "evt_7" and "input_audio_buffer.append" in err.message  # lists what is supported
    fails(msg(type="conversation.item.delete", item_id="i"), "unsupported_event")
    fails(b"\x00\x01", "invalid_frame")  # binary frames: audio must be base64 in JSON
    fails(msg(type="input_audio_buffer.commit", extra=1), "unknown_parameter")


def test_bad_audio_gets_named_errors():
    err = fails(msg(type="input_audio_buffer.append", audio="not base64!!", event_id="a9"), "invalid_base64")
    assert err.param == "audio" and err.event_id == "a9"
    fails(
        msg(type="input_audio_buffer.append", audio=b64(b"\x01\x02\x03")), "invalid_audio_format"
    )  # odd bytes
    wav = b"RIFF" + b"\x00" * 40
    assert (
        "WAV" in fails(msg(type="input_audio_buffer.append", audio=b64(wav)), "invalid_audio_format").message
    )
    fails(msg(type="input_audio_buffer.append", audio=""), "invalid_audio")
    fails(msg(type="input_audio_buffer.append", audio=123), "invalid_type")
    fails(msg(type="input_audio_buffer.append"), "missing_required_parameter")


def session_update(session: dict) -> str:
    return msg(type="session.update", session=session, event_id="su")


def test_session_update_rejects_beta_names_and_unsupported_formats():
    err = fails(session_update({"type": "realtime", "input_audio_format": "pcm16"}), "beta_parameter")
    assert "session.audio.input.format" in err.message and err.param == "session.input_audio_format"
    fails(session_update({"type": "realtime", "modalities": ["audio", "text"]}), "beta_parameter")
    fails(session_update({"modalities": ["text"]}), "beta_parameter")  # a beta client without session.type
    fails(session_update({"instructions": "x"}), "missing_required_parameter")  # GA needs session.type
    fails(session_update({"type": "transcription"}), "unsupported_value")
    rate = {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}
    err = fails(session_update(rate), "unsupported_audio_format")
    assert err.param == "session.audio.input.format.rate" and "24000" in err.message
    ulaw = {"type": "realtime", "audio": {"output": {"format": {"type": "audio/pcmu"}}}}
    fails(session_update(ulaw), "unsupported_audio_format")
    fails(session_update({"type": "realtime", "output_modalities": ["text"]}), "unsupported_value")
    fails(
        session_update({"type": "realtime", "tools": [{"type": "mcp", "server_label": "x"}]}),
        "unsupported_value",
    )
    semantic = {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}
    fails(session_update(semantic), "unsupported_value")
    no_reply = {
        "type": "realtime",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "create_response": False}}},
    }
    fails(session_update(no_reply), "unsupported_value")
    bad_threshold = {
        "type": "realtime",
        "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}},
    }
    fails(session_update(bad_threshold), "invalid_value")
    err = fails(
        session_update({"type": "realtime", "audio": {"input": {"colour": "blue"}}}), "unknown_parameter"
    )
    assert err.param == "session.audio.input.colour"


def test_session_config_applies_a_ga_update():
    s = RealtimeSession(DEFAULTS)
    created = s.session_created()
    session = created["session"]
    assert created["type"] == "session.created" and created["event_id"].startswith("event_")
    assert session["type"] == "realtime" and session["id"].startswith("sess_")
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["input"]["turn_detection"] == {
        "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 256, "silence_duration_ms": 300,
        "create_response": True, "interrupt_response": True, "idle_timeout_ms": None,
    }  # fmt: skip
    assert isinstance(parse_client_event(session_update(GA_SESSION)), SessionUpdate)
    clear, apply = s.receive(session_update(GA_SESSION), busy=False)  # new turn detection: the adapter acts
    assert isinstance(clear, ClearFeed) and isinstance(apply, ApplyTurnDetection)
    accepted, (updated,) = s.apply_turn_detection(apply.config, busy=False)
    assert accepted
    td = updated["session"]["audio"]["input"]["turn_detection"]
    assert updated["type"] == "session.updated"
    assert (td["threshold"], td["silence_duration_ms"], td["prefix_padding_ms"]) == (0.6, 500, 256)
    assert updated["session"]["instructions"] == "Be brief."
    assert (
        updated["session"]["audio"]["output"]["voice"] == "en_US-joe-medium"
    )  # the voice it really speaks with
    assert not s.manual
    manual = {"type": "realtime", "audio": {"input": {"turn_detection": None, "transcription": None}}}
    assert switch_to(s, manual) and s.manual and s.config.transcription is None
    json.loads(encode(updated))  # serialisable


# -- a server-VAD turn, from pipeline events to server events ------------------------------------------
def run_vad_turn(
    s: RealtimeSession, turn: int = 1, clauses=("Hello there.", "How are you?")
) -> dict[str, list]:
    """Feed the events of one turn as the pipeline emits them; return the server events by phase."""
    s.clock.mark(10.0, 5000.0)  # the frame processed at t=10 s ends 5 s into the input audio
    out: dict[str, list] = {}
    out["start"] = s.on_pipeline_event(SpeechStarted(turn, 10.0, audio_start_t=9.0))
    out["partial"] = s.on_pipeline_event(PartialTranscript(turn, 10.5, "hi", "there"))
    s.clock.mark(11.6, 6600.0)
    s.on_pipeline_event(SpeechPaused(turn, 11.3, last_voiced_t=11.3))
    out["final"] = s.on_pipeline_event(FinalTranscript(turn, 11.5, "Hi there.", 1.5, 80.0, True))
    for i, text in enumerate(clauses):
        s.on_pipeline_event(TTSChunk(turn, 11.55, i, text, 40.0, 0.8))
    out["commit"] = s.on_pipeline_event(EndpointCommitted(turn, 11.6, last_voiced_t=11.3, hangover_ms=300))
    out["audio"] = []
    for _ in clauses:
        out["audio"] += s.reply_audio(pcm_of(0.5), clause=True)
    out["audio"] += s.reply_audio(pcm_of(0.01), clause=False)  # the resampler's tail
    s.on_pipeline_event(FirstReplySample(turn, 11.8))
    out["audio_done"] = s.reply_audio_done()
    return out


def test_a_vad_turn_gives_the_realtime_event_sequence():
    s = RealtimeSession(DEFAULTS)
    out = run_vad_turn(s)
    (started,) = out["start"]
    item_id = started["item_id"]
    assert started["type"] == "input_audio_buffer.speech_started" and started["audio_start_ms"] == 4000
    assert (
        out["partial"][0]["type"] == "quickturn.transcript.partial"
        and out["partial"][0]["item_id"] == item_id
    )
    assert out["final"] == []  # a speculative transcript waits for the commit
    assert types(out["commit"]) == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
    ]
    stopped, committed, added, _, _, completed, created = out["commit"]
    assert stopped["audio_end_ms"] == 6300 and stopped["item_id"] == item_id
    assert committed["item_id"] == item_id and added["item"]["role"] == "user"
    assert completed["transcript"] == "Hi there." and completed["item_id"] == item_id
    response_id = created["response"]["id"]
    assert created["response"]["status"] == "in_progress"

    audio = out["audio"]
    assert types(audio[:3]) == [
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    reply_item = audio[0]["item"]["id"]
    deltas = [e for e in audio if e["type"] == "response.output_audio.delta"]
    texts = [e["delta"] for e in audio if e["type"] == "response.output_audio_transcript.delta"]
    assert texts == ["Hello there.", " How are you?"]
    assert all(e["response_id"] == response_id and e["item_id"] == reply_item for e in deltas)
    sent = b"".join(base64.b64decode(e["delta"]) for e in deltas)
    assert sent == pcm_of(0.5) * 2 + pcm_of(0.01)  # every byte, in order
    assert max(len(base64.b64decode(e["delta"])) for e in deltas) <= DELTA_BYTES
    assert types(out["audio_done"]) == ["response.output_audio.done", "response.output_audio_transcript.done"]
    assert out["audio_done"][1]["transcript"] == "Hello there. How are you?"

    report = LatencyReport(1, 13.0, "Hi there.", "Hello there. How are you?", {"asr_final_ms": 200.0}, 480.0)
    done = s.on_pipeline_event(report)
    assert types(done) == [
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
        "quickturn.latency",
    ]
    response = done[3]["response"]
    assert response["status"] == "completed" and response["id"] == response_id
    assert response["output"][0]["content"][0]["transcript"] == "Hello there. How are you?"
    latency = done[4]
    assert (
        latency["v2v_ms"] == 480.0 and latency["response_id"] == response_id and latency["item_id"] == item_id
    )
    assert s.response is None
    for event in [started, *out["commit"], *audio, *done]:
        json.loads(encode(event))


def test_a_merged_continuation_cancels_the_response_and_replaces_the_items():
    """The user went on after the turn was committed ("Set a timer … for five minutes"): the client
    sees the first response cancelled, the turn's items deleted, and one new user item answered."""
    s = RealtimeSession(DEFAULTS)
    s.clock.mark(10.0, 5000.0)
    start = s.on_pipeline_event(SpeechStarted(1, 10.0, audio_start_t=9.0))
    first_item = start[0]["item_id"]
    s.on_pipeline_event(FinalTranscript(1, 11.5, "Set a timer.", 1.5, 80.0, True))
    s.on_pipeline_event(TTSChunk(1, 11.55, 0, "Sure.", 40.0, 0.5))
    commit = s.on_pipeline_event(EndpointCommitted(1, 11.6, last_voiced_t=11.3, hangover_ms=300))
    first_response = commit[-1]["response"]["id"]
    s.reply_audio(pcm_of(0.2), clause=True)  # the half-reply had started
    merged = s.on_pipeline_event(TurnMerged(1, 12.0, 450.0, True, "Sure.", 0.2))
    assert types(merged)[-4:] == [
        "response.done",
        "conversation.item.deleted",
        "conversation.item.deleted",
        "input_audio_buffer.speech_started",
    ]
    done = next(e for e in merged if e["type"] == "response.done")["response"]
    assert done["id"] == first_response and done["status"] == "cancelled"
    deleted = {e["item_id"] for e in merged if e["type"] == "conversation.item.deleted"}
    assert first_item in deleted and len(deleted) == 2
    second_item = merged[-1]["item_id"]
    assert second_item != first_item and merged[-1]["audio_start_ms"] == start[0]["audio_start_ms"]
    assert s.response is None
    # The whole utterance is committed again as one new item, after what preceded the first one.
    s.on_pipeline_event(FinalTranscript(1, 12.9, "Set a timer for five minutes.", 2.9, 90.0, True))
    again = s.on_pipeline_event(EndpointCommitted(1, 13.0, last_voiced_t=12.7, hangover_ms=300))
    committed = next(e for e in again if e["type"] == "input_audio_buffer.committed")
    assert committed["item_id"] == second_item and committed["previous_item_id"] is None
    completed = next(e for e in again if e["type"].endswith("transcription.completed"))
    assert completed["transcript"] == "Set a timer for five minutes."
    assert again[-1]["type"] == "response.created" and again[-1]["response"]["id"] != first_response


def test_discarded_speculation_and_late_transcripts():
    s = RealtimeSession(DEFAULTS)
    s.on_pipeline_event(SpeechStarted(1, 1.0, 0.9))
    s.on_pipeline_event(FinalTranscript(1, 1.5, "I was thinking", 1.0, 50.0, True))
    s.on_pipeline_event(TTSChunk(1, 1.6, 0, "Thinking is good.", 30.0, 0.5))
    assert s.on_pipeline_event(SpeculationDiscarded(1, 1.7, "speech resumed", 200.0)) == []
    commit = s.on_pipeline_event(EndpointCommitted(1, 3.0, 2.7, 1100.0))
    assert "conversation.item.input_audio_transcription.completed" not in types(commit)  # not final yet
    late = s.on_pipeline_event(FinalTranscript(1, 3.2, "I was thinking about a walk.", 2.2, 90.0, False))
    assert late[-1]["transcript"] == "I was thinking about a walk."
    s.on_pipeline_event(TTSChunk(1, 3.3, 0, "A walk sounds nice.", 30.0, 0.9))
    audio = s.reply_audio(pcm_of(0.2), clause=True)
    assert [e["delta"] for e in audio if e["type"] == "response.output_audio_transcript.delta"] == [
        "A walk sounds nice."
    ]


def test_barge_in_cancels_the_response_and_transcription_can_be_off():
    s = RealtimeSession(DEFAULTS)
    s.config = s.resolve_update(parse_client_event(session_update(
        {"type": "realtime", "audio": {"input": {"transcription": None}}})).patch)  # fmt: skip
    out = run_vad_turn(s)
    assert out["partial"] == [] and not any("transcription" in t for t in types(out["commit"]))
    assert s.on_pipeline_event(BargeIn(1, 12.5, 12.2, "Hello there.", 0.7, 12.0)) == []
    done = s.on_pipeline_event(
        LatencyReport(1, 12.6, "Hi there.", "Hello there.", {}, 480.0, interrupted=True)
    )
    response = next(e for e in done if e["type"] == "response.done")["response"]
    assert response["status"] == "cancelled" and response["status_details"]["reason"] == "turn_detected"
    assert response["output"][0]["status"] == "incomplete"
    assert done[-1]["type"] == "quickturn.latency" and done[-1]["interrupted"] is True
    started = s.on_pipeline_event(SpeechStarted(2, 12.6, 12.2))  # the interruption is the next turn
    assert types(started) == ["input_audio_buffer.speech_started"]


def test_a_failed_reply_and_non_finite_latencies():
    s = RealtimeSession(DEFAULTS)
    s.begin_response(1, None)
    (err,) = s.on_pipeline_event(StageError(1, 2.0, "reply", "RuntimeError: boom"))
    assert (
        err["type"] == "error"
        and err["error"]["type"] == "server_error"
        and "boom" in err["error"]["message"]
    )
    done = s.on_pipeline_event(LatencyReport(1, 2.1, "hi", "", {"lm_ms": float("nan")}, None))
    assert types(done) == ["response.done", "quickturn.latency"]  # no audio: no output item
    assert done[0]["response"]["status"] == "failed" and done[0]["response"]["output"] == []
    assert done[1]["stages_ms"] == {} and done[1]["v2v_ms"] is None
    encode(done[1])
    with pytest.raises(ValueError):
        encode({"x": float("nan")})  # never put invalid JSON on the wire


# -- the session's rules: client messages in, events and actions out --------------------------------------
def switch_to(s: RealtimeSession, session: dict, busy: bool = False) -> bool:
    """A session.update that changes turn detection, carried out as the adapter would."""
    out = s.receive(session_update(session), busy=busy)
    apply = next(o for o in out if isinstance(o, ApplyTurnDetection))
    accepted, _ = s.apply_turn_detection(apply.config, busy=busy)
    return accepted


MANUAL = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}


def errors(out: list) -> list[dict]:
    return [o["error"] for o in out if isinstance(o, dict) and o["type"] == "error"]


def code(out: list) -> str:
    (err,) = errors(out)
    return err["code"]


def append(seconds: float) -> str:
    return msg(type="input_audio_buffer.append", audio=b64(pcm_of(seconds)))


def text_item(text: str) -> str:
    return msg(type="conversation.item.create", item={"type": "message", "role": "user",
               "content": [{"type": "input_text", "text": text}]})  # fmt: skip


def test_manual_buffer_commit_transcribe_and_respond():
    s = RealtimeSession(DEFAULTS)
    assert switch_to(s, MANUAL)
    assert (
        code(s.receive(msg(type="input_audio_buffer.commit"), busy=False))
        == "input_audio_buffer_commit_empty"
    )
    assert s.receive(append(0.3), busy=False) == [] and s.receive(append(0.2), busy=False) == []
    assert s.buffered_ms == 500
    out = s.receive(msg(type="input_audio_buffer.commit"), busy=False)
    assert types(out[:3]) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    (transcribe,) = out[3:]
    assert isinstance(transcribe, Transcribe) and transcribe.pcm == pcm_of(0.3) + pcm_of(0.2)
    assert transcribe.item_id == out[0]["item_id"] and s.buffered_ms == 0
    # response.create waits for the transcript; a second one meanwhile is refused.
    assert s.receive(msg(type="response.create"), busy=False) == []
    assert (
        code(s.receive(msg(type="response.create"), busy=False)) == "conversation_already_has_active_response"
    )
    out = s.transcribed(transcribe.item_id, "What's your name?", busy=False)
    delta, completed, start = out
    assert delta["delta"] == completed["transcript"] == "What's your name?"
    assert completed["usage"] == {"type": "duration", "seconds": 0.5}  # required by the SDK's type
    assert start == StartReply("What's your name?", transcribe.item_id)
    (created,) = s.begin_response(1, start.user_item_id)
    assert created["type"] == "response.created"

    s2 = RealtimeSession(DEFAULTS)
    switch_to(s2, MANUAL)
    s2.receive(append(0.1), busy=False)
    assert types(s2.receive(msg(type="input_audio_buffer.clear"), busy=False)[1:]) == [
        "input_audio_buffer.cleared"
    ]
    assert s2.buffered_ms == 0
    full = s2.receive(msg(type="input_audio_buffer.append", audio=b64(bytes(int(MAX_BUFFER_S * RATE * 2) + 2))),
                      busy=False)  # fmt: skip
    assert code(full) == "input_audio_buffer_full"


def test_committed_audio_without_speech_and_a_turn_that_starts_meanwhile():
    s = RealtimeSession(DEFAULTS)
    switch_to(s, MANUAL)
    s.receive(append(0.5), busy=False)
    (transcribe,) = [
        o for o in s.receive(msg(type="input_audio_buffer.commit"), busy=False) if isinstance(o, Transcribe)
    ]
    s.receive(msg(type="response.create"), busy=False)
    assert code(s.transcribed(transcribe.item_id, "", busy=False)) == "empty_user_input"
    assert code(s.receive(msg(type="response.create"), busy=False)) == "no_user_input"  # used up
    s.receive(text_item("Hello"), busy=False)
    s.receive(append(0.5), busy=False)
    (transcribe,) = [
        o for o in s.receive(msg(type="input_audio_buffer.commit"), busy=False) if isinstance(o, Transcribe)
    ]
    s.receive(msg(type="response.create"), busy=False)
    assert code(s.transcribed(transcribe.item_id, "there", busy=True)) == "turn_in_progress"
    out = s.receive(msg(type="response.create"), busy=False)  # the items were kept
    assert out == [StartReply("Hello there", transcribe.item_id)]
    # A failed transcription costs its own text only; a cancel while waiting withdraws the request.
    s.receive(append(0.5), busy=False)
    (transcribe,) = [
        o for o in s.receive(msg(type="input_audio_buffer.commit"), busy=False) if isinstance(o, Transcribe)
    ]
    s.receive(msg(type="response.create"), busy=False)
    assert s.receive(msg(type="response.cancel"), busy=False) == []
    out = s.transcription_failed(transcribe.item_id, busy=False)
    assert code(out) == "transcription_failed" and not any(isinstance(o, StartReply) for o in out)


def test_text_items_and_response_rules():
    s = RealtimeSession(DEFAULTS)
    assert code(s.receive(msg(type="response.create"), busy=False)) == "no_user_input"
    out = s.receive(text_item("Tell me a joke"), busy=False)
    assert types(out) == ["conversation.item.added", "conversation.item.done"]
    assert out[0]["item"]["content"] == [{"type": "input_text", "text": "Tell me a joke"}]
    assert code(s.receive(msg(type="response.create"), busy=True)) == "turn_in_progress"  # the user speaks
    assert code(s.receive(msg(type="response.cancel"), busy=False)) == "response_cancel_not_active"
    (start,) = s.receive(msg(type="response.create", event_id="rc"), busy=False)
    assert start == StartReply("Tell me a joke", out[0]["item"]["id"])
    (created,) = s.begin_response(5, start.user_item_id)
    err = s.receive(msg(type="response.create", event_id="rc2"), busy=True)[0]["error"]
    assert err["code"] == "conversation_already_has_active_response" and err["event_id"] == "rc2"
    assert (
        code(s.receive(msg(type="response.cancel", response_id="resp_other"), busy=True)) == "invalid_value"
    )
    rid = created["response"]["id"]
    assert s.receive(msg(type="response.cancel", response_id=rid), busy=True) == [CancelReply()]
    # Commit is for manual mode; with server VAD appended audio goes to the pipeline.
    assert code(s.receive(msg(type="input_audio_buffer.commit"), busy=False)) == "invalid_request"
    assert s.receive(append(0.1), busy=False) == [FeedAudio(pcm_of(0.1))]


def test_server_vad_audio_is_bounded_per_append_and_per_buffer():
    s = RealtimeSession(DEFAULTS)
    too_long = msg(type="input_audio_buffer.append", audio=b64(bytes(2 * RATE * int(MAX_BUFFER_S + 1))))
    err = s.receive(too_long, busy=False)
    assert code(err) == "input_audio_buffer_full" and s.buffered_ms == 0  # one append over the bound
    big = msg(type="input_audio_buffer.append", audio=b64(bytes(2 * RATE * 60)))
    assert isinstance(s.receive(big, busy=False)[0], FeedAudio)
    assert isinstance(s.receive(big, busy=False)[0], FeedAudio)  # 120 s waiting for the pipeline
    assert code(s.receive(append(0.1), busy=False)) == "input_audio_buffer_full"
    s.clock.mark(100.0, 30_000.0)  # the pipeline has taken 30 s of it
    assert s.buffered_ms == 90_000
    assert isinstance(s.receive(append(0.1), busy=False)[0], FeedAudio)
    clear = s.receive(msg(type="input_audio_buffer.clear"), busy=False)
    assert isinstance(clear[0], ClearFeed) and s.buffered_ms == 0
    assert isinstance(s.receive(big, busy=False)[0], FeedAudio)


def test_turn_detection_changes_only_between_turns():
    s = RealtimeSession(DEFAULTS)
    assert code(s.receive(session_update(MANUAL), busy=True)) == "turn_in_progress"
    clear, apply = s.receive(session_update(MANUAL), busy=False)
    accepted, (err,) = s.apply_turn_detection(apply.config, busy=True)  # speech began meanwhile
    assert not accepted and err["error"]["code"] == "turn_in_progress" and not s.manual
    # Instructions alone change nothing in the pipeline: answered at once.
    (updated,) = s.receive(session_update({"type": "realtime", "instructions": "Hi"}), busy=True)
    assert updated["type"] == "session.updated" and updated["session"]["instructions"] == "Hi"


def finished_reply(
    s: RealtimeSession, turn: int, text: str, seconds: float, transcript: str = "Tell me"
) -> str:
    s.begin_response(turn, None)
    s.on_pipeline_event(TTSChunk(turn, 1.0, 0, text, 50.0, seconds))
    s.reply_audio(pcm_of(seconds), clause=True)
    item = s.response.item_id
    s.on_pipeline_event(LatencyReport(turn, 2.0, transcript, text, {}, None, interrupted=True))
    return item


def test_truncate_revises_the_latest_exchange_only():
    s = RealtimeSession(DEFAULTS)
    s.begin_response(5, None)
    s.on_pipeline_event(TTSChunk(5, 1.0, 0, "Why did the chicken cross the road?", 50.0, 2.0))
    s.reply_audio(pcm_of(2.0), clause=True)
    reply_item = s.response.item_id
    truncate = msg(type="conversation.item.truncate", item_id=reply_item, content_index=0, audio_end_ms=1000)
    assert code(s.receive(truncate, busy=True)) == "item_truncate_in_progress"
    s.on_pipeline_event(LatencyReport(5, 1.5, "Tell me a joke", "Why did", {}, None, interrupted=True))
    truncated, revise = s.receive(truncate, busy=False)
    assert truncated["type"] == "conversation.item.truncated" and truncated["audio_end_ms"] == 1000
    assert revise == ReviseReply("Why did the")  # half the clause's audio: half its words
    whole = truncate.replace('"audio_end_ms": 1000', '"audio_end_ms": 2000')
    assert s.receive(whole, busy=False)[1] == ReviseReply("Why did the chicken cross the road?")
    assert (
        code(s.receive(truncate.replace("1000", "5000"), busy=False)) == "invalid_value"
    )  # beyond what was sent
    other = msg(type="conversation.item.truncate", item_id="item_unknown", content_index=0, audio_end_ms=10)
    assert code(s.receive(other, busy=False)) == "item_truncate_invalid_item_id"
    # A later exchange (a turn whose reply was never heard) is the history's latest: nothing to revise there.
    s.begin_response(6, None)
    s.on_pipeline_event(LatencyReport(6, 3.0, "And another", "", {}, None))
    assert types(s.receive(truncate, busy=False)) == ["conversation.item.truncated"]
    assert heard_text([("One two.", 1.0), ("Three four five six.", 2.0)], 2.0) == "One two. Three four"


def test_a_trimmed_prompt_is_told_with_its_response():
    s = RealtimeSession(DEFAULTS)
    s.on_pipeline_event(SpeechStarted(1, 1.0, 0.9))
    assert s.on_pipeline_event(PromptTrimmed(1, 1.2, 4, 120, 460)) == []  # speculative: not yet
    commit = s.on_pipeline_event(EndpointCommitted(1, 1.5, 1.2, 300.0))
    told = commit[-1]
    assert told["type"] == "quickturn.input_truncated" and told["response_id"] == commit[-2]["response"]["id"]
    assert (told["dropped_messages"], told["cut_tokens"], told["prompt_tokens"]) == (4, 120, 460)
    (now,) = s.on_pipeline_event(PromptTrimmed(1, 1.6, 0, 10, 460))  # the committed reply's own
    assert now["type"] == "quickturn.input_truncated"


# -- hostile input: short errors, no echo, no exception --------------------------------------------------
HUGE = "x" * 2_000_000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"type": "session.update", "event_id": "a\\ud800"}', "invalid_value"),  # lone surrogate
        (
            '{"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": '
            '[{"type": "input_text", "text": "hi \\udc00"}]}}',
            "invalid_value",
        ),  # fmt: skip
        ("[" * 100_000 + "]" * 100_000, "invalid_json"),  # nested far too deep
        ('{"type": "response.create", "response": {"max_output_tokens": NaN}}', "invalid_json"),
        ('{"type": "response.create", "response": {"max_output_tokens": Infinity}}', "invalid_json"),
        (json.dumps({"type": HUGE}), "unknown_event_type"),
        (json.dumps({"type": "session.update", HUGE: 1, "session": {}}), "unknown_parameter"),
        (json.dumps({"type": "input_audio_buffer.commit", "event_id": HUGE}), "string_above_max_length"),
        (json.dumps({"type": "response.create", "response": {"max_output_tokens": "lots"}}), "invalid_type"),
        (json.dumps({"type": "response.create", "response": {"max_output_tokens": [1]}}), "invalid_type"),
        (
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "audio": {"output": {"speed": "1"}}},
                }
            ),
            "invalid_type",
        ),  # fmt: skip
        (
            json.dumps(
                {"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"speed": 9}}}}
            ),
            "invalid_value",
        ),  # fmt: skip
        (
            json.dumps({"type": "session.update", "session": {"type": "realtime", "instructions": HUGE}}),
            "string_above_max_length",
        ),  # fmt: skip
        (
            json.dumps({"type": "conversation.item.truncate", "item_id": "i", "audio_end_ms": HUGE}),
            "invalid_type",
        ),
    ],
)
def test_hostile_messages_get_short_errors_that_echo_nothing(raw: str, expected: str):
    s = RealtimeSession(DEFAULTS)
    (err,) = s.receive(raw, busy=False)
    assert err["type"] == "error" and err["error"]["code"] == expected, err
    wire = encode(err)
    assert len(wire) < 1000 and "xxxxxxxx" not in wire and "\\ud800" not in wire and "\\udc00" not in wire
    wire.encode("utf-8")  # always sendable


def test_sdk_shapes_are_accepted():
    s = RealtimeSession(DEFAULTS)
    session = {"type": "realtime", "parallel_tool_calls": True, "max_output_tokens": "inf",
               "audio": {"output": {"voice": {"id": "voice_1234"}, "speed": 1.0}}}  # fmt: skip
    (updated,) = s.receive(session_update(session), busy=False)
    assert updated["type"] == "session.updated"
    assert updated["session"]["audio"]["output"]["voice"] == DEFAULTS.voice  # what really speaks
    s.receive(text_item("Hi"), busy=False)
    create = msg(type="response.create", response={"parallel_tool_calls": False, "max_output_tokens": 200})
    assert s.receive(create, busy=False) == [StartReply("Hi", s._last_item_id)]


# Fuzzing (any message, any sequence) lives in test_realtime_fuzz.py (hypothesis).
