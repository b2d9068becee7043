"""The Realtime protocol layer on its own (sans-I/O): parsing and validating client events, the session
config, and translating pipeline events into the server event sequence a Realtime client expects.
No sockets, no models: pipeline events are the real typed events the pipeline emits, built directly.
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
    SpeculationDiscarded,
    SpeechPaused,
    SpeechStarted,
    StageError,
    TTSChunk,
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
    RealtimeSession,
    ResponseCancel,
    ResponseCreate,
    ServerDefaults,
    SessionUpdate,
    encode,
    parse_client_event,
)

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
        session_update({"type": "realtime", "tools": [{"type": "function", "name": "f"}]}),
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
    ev = parse_client_event(session_update(GA_SESSION))
    assert isinstance(ev, SessionUpdate)
    (updated,) = s.commit_update(s.resolve_update(ev.patch))
    td = updated["session"]["audio"]["input"]["turn_detection"]
    assert updated["type"] == "session.updated"
    assert (td["threshold"], td["silence_duration_ms"], td["prefix_padding_ms"]) == (0.6, 500, 256)
    assert updated["session"]["instructions"] == "Be brief."
    assert (
        updated["session"]["audio"]["output"]["voice"] == "en_US-joe-medium"
    )  # the voice it really speaks with
    assert not s.manual
    manual = {"type": "realtime", "audio": {"input": {"turn_detection": None, "transcription": None}}}
    ev = parse_client_event(session_update(manual))
    s.commit_update(s.resolve_update(ev.patch))
    assert s.manual and s.config.transcription is None
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


# -- manual turns, text items, cancel, truncate -----------------------------------------------------------
def test_manual_buffer_commit_and_clear():
    s = RealtimeSession(DEFAULTS)
    with pytest.raises(RealtimeProtocolError) as info:
        s.commit_audio()
    assert info.value.code == "input_audio_buffer_commit_empty"
    s.append_audio(pcm_of(0.3))
    s.append_audio(pcm_of(0.2))
    assert s.buffered_ms == 500
    item_id, pcm, events = s.commit_audio()
    assert pcm == pcm_of(0.3) + pcm_of(0.2) and s.buffered_ms == 0
    assert types(events) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert events[0]["item_id"] == item_id
    text_events = s.transcription_completed(item_id, "What's your name?")
    assert text_events[-1]["transcript"] == "What's your name?"
    s.append_audio(pcm_of(0.1))
    assert types(s.clear_audio()) == ["input_audio_buffer.cleared"] and s.buffered_ms == 0
    with pytest.raises(RealtimeProtocolError) as info:
        s.append_audio(bytes(int(MAX_BUFFER_S * RATE * 2) + 2))
    assert info.value.code == "input_audio_buffer_full"


def test_text_items_cancel_and_truncate():
    s = RealtimeSession(DEFAULTS)
    raw = msg(type="conversation.item.create", item={"type": "message", "role": "user",
              "content": [{"type": "input_text", "text": "Tell me a joke"}]})  # fmt: skip
    item_id, events = s.add_user_text(parse_client_event(raw))
    assert types(events) == ["conversation.item.added", "conversation.item.done"]
    assert events[0]["item"]["content"] == [{"type": "input_text", "text": "Tell me a joke"}]
    fails(raw.replace('"user"', '"system"'), "unsupported_value")
    with pytest.raises(RealtimeProtocolError) as info:
        s.check_cancel(ResponseCancel(None))
    assert info.value.code == "response_cancel_not_active"

    (created,) = s.begin_response(5, item_id)
    s.on_pipeline_event(TTSChunk(5, 1.0, 0, "Why did the chicken cross the road?", 50.0, 2.0))
    s.reply_audio(pcm_of(2.0), clause=True)
    with pytest.raises(RealtimeProtocolError) as info:
        s.check_cancel(ResponseCancel(None, "resp_other"))
    assert info.value.param == "response_id"
    reply_item = s.response.item_id
    with pytest.raises(RealtimeProtocolError) as info:
        s.truncate(ItemTruncate(None, reply_item, 0, 500))
    assert info.value.code == "item_truncate_in_progress"
    assert s.check_cancel(ResponseCancel(None, created["response"]["id"])).cancel_reason == "client_cancelled"
    done = s.on_pipeline_event(LatencyReport(5, 1.5, "Tell me a joke", "Why did", {}, None, interrupted=True))
    assert next(e for e in done if e["type"] == "response.done")["response"]["status_details"]["reason"] == (
        "client_cancelled"
    )
    truncation, events = s.truncate(ItemTruncate(None, reply_item, 0, 1000))
    assert events[0]["type"] == "conversation.item.truncated" and truncation.heard_s == 1.0
    assert truncation.clauses == [("Why did the chicken cross the road?", 2.0)]
    with pytest.raises(RealtimeProtocolError):
        s.truncate(ItemTruncate(None, reply_item, 0, 5000))  # beyond what was sent
    with pytest.raises(RealtimeProtocolError) as info:
        s.truncate(ItemTruncate(None, "item_unknown", 0, 10))
    assert info.value.code == "item_truncate_invalid_item_id"
