"""Property-based fuzz of the Realtime parser and session (``hypothesis``, budgeted and derandomized so CI
runs the same examples every time): whatever a client sends, ``RealtimeSession.receive`` returns server
events and actions, never raises; every error is a short ``error`` event that echoes no long input.
"""

from __future__ import annotations

import base64
import json

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis (the dev extra) is not installed")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from agent.realtime.protocol import CLIENT_EVENTS, MAX_ID_CHARS, encode  # noqa: E402
from agent.realtime.session import (  # noqa: E402
    ApplyTurnDetection,
    CancelReply,
    ClearFeed,
    FeedAudio,
    RealtimeSession,
    ReviseReply,
    ServerDefaults,
    SetTools,
    StartReply,
    Transcribe,
)

DEFAULTS = ServerDefaults(
    voice="en_US-joe-medium", threshold=0.5, prefix_padding_ms=256, silence_duration_ms=300
)
ACTIONS = (
    ApplyTurnDetection,
    CancelReply,
    ClearFeed,
    FeedAudio,
    ReviseReply,
    SetTools,
    StartReply,
    Transcribe,
)
NAME_CHARS = 48  # protocol.describe() quotes a client string only up to this length (and only plain names)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays deterministic
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TOOL = {"type": "function", "name": "f", "description": "Does f.", "parameters": {
    "type": "object", "properties": {"n": {"type": "integer", "enum": [1, 2]}}, "required": ["n"]}}  # fmt: skip
AUDIO = base64.b64encode(bytes(4800)).decode()  # 0.1 s of 24 kHz silence
SESSION = {
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
VALID: list[dict] = [
    {"type": "session.update", "session": SESSION},
    {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}},
    {"type": "input_audio_buffer.append", "audio": AUDIO},
    {"type": "input_audio_buffer.commit"},
    {"type": "input_audio_buffer.clear"},
    {"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": "Hi there"}]}},
    {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 10},
    {"type": "response.create", "response": {"instructions": "x", "max_output_tokens": 10}},
    {"type": "response.cancel", "response_id": "resp_1"},
    {"type": "session.update", "session": {"type": "realtime", "tools": [TOOL], "tool_choice": "required"}},
    {"type": "session.update", "session": {"type": "realtime", "tool_choice": {"type": "function", "name": "f"}}},
    {"type": "response.create", "response": {"tools": [TOOL], "tool_choice": "auto"}},
    {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_1",
                                                  "output": "{\"ok\": true}"}},
]  # fmt: skip


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


KEYS = sorted(set().union(*(_keys(e) for e in VALID)) | {"event_id", "modalities", "input_audio_format"})

# Strings: protocol names, surrogates, base64-ish, and long runs that must never come back.
strings = st.one_of(
    st.text(max_size=20),
    st.sampled_from([*CLIENT_EVENTS, *KEYS, "\ud800", "\udfff", "a\ud800b", "realtime", "audio/pcm", "=="]),
    st.text(alphabet="ABCDEFGHabcdefgh0123456789+/=", max_size=64),
    st.text(min_size=NAME_CHARS + 1, max_size=400),
    st.builds(lambda c, n: c * n, st.sampled_from("xQ.-_"), st.integers(NAME_CHARS + 1, 20_000)),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),  # NaN and ±inf reach the parser as bare tokens
    strings,
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | strings, inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn) -> object:
    """A valid event with some of its values (or keys) replaced by hostile ones."""

    def walk(value: object, depth: int) -> object:
        if draw(st.integers(0, 9)) < 2:  # replace this node
            return draw(json_values)
        if isinstance(value, dict):
            out = {k: walk(v, depth + 1) for k, v in value.items()}
            if draw(st.booleans()) and out:
                out.pop(draw(st.sampled_from(sorted(out))))
            if draw(st.integers(0, 4)) == 0:
                out[draw(st.sampled_from(KEYS) | strings)] = draw(json_values)
            return out
        if isinstance(value, list):
            return [walk(v, depth + 1) for v in value]
        return value

    return walk(draw(st.sampled_from(VALID)), 0)


def _dump(value: object, ascii_only: bool) -> str:
    try:
        return json.dumps(value, ensure_ascii=ascii_only)
    except (ValueError, RecursionError):  # a surrogate with ensure_ascii=False is still written; this is rare
        return "{"


shaped = st.fixed_dictionaries({"type": st.sampled_from(CLIENT_EVENTS) | strings}).flatmap(
    lambda head: st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5).map(
        lambda rest: {**rest, **head}
    )
)
messages = st.one_of(
    st.builds(_dump, mutated(), st.booleans()),
    st.builds(_dump, shaped, st.booleans()),
    st.builds(_dump, json_values, st.booleans()),
    st.text(max_size=200),  # not JSON at all (mostly)
    st.binary(max_size=64),  # binary frames
    st.builds(lambda n: "[" * n + "]" * n, st.integers(1, 5000)),  # deep nesting
    st.sampled_from(["NaN", '{"type": NaN}', '{"type": "input_audio_buffer.append", "audio": Infinity}']),
)


def _strings_in(value: object) -> set[str]:
    """Every string (keys too) in a parsed message; iterative, as messages may nest thousands deep."""
    found: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            found.add(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return found


def _long_inputs(raw: str | bytes) -> set[str]:
    """The message's strings that no error may quote (event ids are echoed by design, bounded)."""
    if isinstance(raw, bytes):
        return set()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return {raw} if len(raw) > NAME_CHARS else set()
    found = {s for s in _strings_in(data) if len(s) > NAME_CHARS}
    if (
        isinstance(data, dict)
        and isinstance(data.get("event_id"), str)
        and len(data["event_id"]) <= MAX_ID_CHARS
    ):
        found.discard(data["event_id"])
    return found


def _check_event(event: dict, long_inputs: set[str]) -> None:
    wire = encode(event)  # raises on NaN or anything not JSON: a server event must always be sendable
    assert wire.isascii()
    if event["type"] == "error":
        assert len(wire) < 1000, wire[:300]
        error = dict(event["error"])
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
        error.pop("event_id", None)
        text = json.dumps(error, ensure_ascii=False)
        for s in long_inputs:
            assert s not in text, f"an error echoed {len(s)} characters of input"


def _play(session: RealtimeSession, raw: str | bytes, busy: bool, turn: list[int]) -> None:
    """One message, then carry out its actions the way the server would (without models)."""
    long_inputs = _long_inputs(raw)
    for out in session.receive(raw, busy=busy):
        assert isinstance(out, (dict, *ACTIONS)), out
        if isinstance(out, dict):
            _check_event(out, long_inputs)
        elif isinstance(out, ApplyTurnDetection):
            for event in session.apply_turn_detection(out.config, busy=False)[1]:
                if isinstance(event, dict):
                    _check_event(event, set())
        elif isinstance(out, Transcribe):
            for event in session.transcribed(out.item_id, "words", busy=False):
                if isinstance(event, dict):
                    _check_event(event, set())
        elif isinstance(out, StartReply):
            turn[0] += 1
            for event in session.begin_response(turn[0], out.user_item_id):
                _check_event(event, set())


@FUZZ
@given(st.lists(st.tuples(messages, st.booleans()), min_size=1, max_size=8))
def test_any_message_sequence_gets_events_never_an_exception(
    sequence: list[tuple[str | bytes, bool]],
) -> None:
    session = RealtimeSession(DEFAULTS)
    turn = [0]
    for raw, busy in sequence:
        _play(session, raw, busy, turn)
    # Still serving after all of it: a plain, valid event gets its normal answer.
    out = session.receive(json.dumps({"type": "input_audio_buffer.clear", "event_id": "end"}), busy=False)
    assert out[-1]["type"] == "input_audio_buffer.cleared", out


@FUZZ
@given(mutated(), st.booleans())
def test_mutated_valid_events_never_raise(event: object, ascii_only: bool) -> None:
    _play(RealtimeSession(DEFAULTS), _dump(event, ascii_only), False, [0])
