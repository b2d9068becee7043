"""The OpenAI Realtime API (GA event names) as quickturn speaks it — sans-I/O.

Client events (JSON text) are parsed and validated into small typed objects; anything malformed raises
``RealtimeProtocolError`` naming the problem, which the server sends back as an ``error`` event without
closing the connection. ``RealtimeSession`` holds one connection's state (session config, the
manual-mode input buffer, item and response ids) and translates the pipeline's typed events
(``agent.events``) into the server events a Realtime client expects. Nothing here touches a socket or
a model, so all of it is testable with plain function calls.

Only the GA names are accepted (``session.audio.input.format``, ``response.output_audio.delta``, ...);
beta names (``input_audio_format``, ``modalities``) get an error saying what to use instead. Our own
additions use the ``quickturn.`` prefix (``quickturn.latency``, ``quickturn.transcript.partial``).
"""

from __future__ import annotations

import base64
import binascii
import collections
import enum
import json
import math
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from agent.events import (
    BargeIn,
    EndpointCommitted,
    Event,
    FinalTranscript,
    LatencyReport,
    PartialTranscript,
    SpeculationDiscarded,
    SpeechStarted,
    StageError,
    TTSChunk,
)

RATE = 24000  # the only rate the GA API defines for audio/pcm (PCM16 LE mono), in and out
DELTA_BYTES = RATE * 2 // 5  # 200 ms of PCM16 per response.output_audio.delta
MAX_BUFFER_S = 120.0  # manual-mode input buffer bound (a client that never commits cannot grow memory)
MAX_TURNS_KEPT = 8  # per-turn bookkeeping kept for turns that never finished (bounded)

JSON = dict[str, Any]


class RealtimeProtocolError(ValueError):
    """A client event that cannot be served; becomes an ``error`` event (the connection stays open)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        event_id: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.event_id = event_id
        self.error_type = error_type

    def to_wire(self) -> JSON:
        return {
            "type": self.error_type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "event_id": self.event_id,
        }


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def encode(event: JSON) -> str:
    """A server event as one JSON text frame (NaN/inf are not JSON: they must never reach here)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# -- client events --------------------------------------------------------------------------------------
class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET  # "not in the update" (distinct from an explicit null)


@dataclass(frozen=True)
class ClientEvent:
    event_id: str | None


@dataclass(frozen=True)
class SessionPatch:
    """The validated fields of a ``session.update``; ``UNSET`` = leave as is, ``None`` = switch off."""

    model: str | _Unset = UNSET
    instructions: str | _Unset = UNSET
    voice: str | _Unset = UNSET
    transcription: JSON | None | _Unset = UNSET
    turn_detection: JSON | None | _Unset = UNSET


@dataclass(frozen=True)
class SessionUpdate(ClientEvent):
    patch: SessionPatch


@dataclass(frozen=True)
class AudioAppend(ClientEvent):
    pcm: bytes  # PCM16 LE mono at 24 kHz, an even number of bytes


@dataclass(frozen=True)
class AudioCommit(ClientEvent):
    pass


@dataclass(frozen=True)
class AudioClear(ClientEvent):
    pass


@dataclass(frozen=True)
class ItemCreate(ClientEvent):
    text: str
    item_id: str | None = None


@dataclass(frozen=True)
class ItemTruncate(ClientEvent):
    item_id: str
    content_index: int
    audio_end_ms: int


@dataclass(frozen=True)
class ResponseCreate(ClientEvent):
    instructions: str | None = None


@dataclass(frozen=True)
class ResponseCancel(ClientEvent):
    response_id: str | None = None


# Beta-API field names and the GA names that replaced them (a migrating client is told exactly what to use).
_BETA_FIELDS = {
    "modalities": "output_modalities",
    "input_audio_format": "session.audio.input.format",
    "output_audio_format": "session.audio.output.format",
    "input_audio_transcription": "session.audio.input.transcription",
    "input_audio_noise_reduction": "session.audio.input.noise_reduction",
    "turn_detection": "session.audio.input.turn_detection",
    "voice": "session.audio.output.voice",
    "max_response_output_tokens": "max_output_tokens",
    "temperature": "nothing (removed in the GA API)",
}
_NOT_SUPPORTED_EVENTS = {
    "conversation.item.retrieve": "items are not stored for retrieval",
    "conversation.item.delete": "items cannot be deleted",
    "output_audio_buffer.clear": "it exists only for WebRTC/SIP connections; send response.cancel",
    "transcription_session.update": "transcription-only sessions (a beta API) are not supported",
}


def _fail(code: str, message: str, param: str | None = None) -> RealtimeProtocolError:
    return RealtimeProtocolError(code, message, param=param)


def _dict(value: object, param: str) -> JSON:
    if not isinstance(value, dict):
        raise _fail("invalid_type", f"'{param}' must be a JSON object, got {type(value).__name__}", param)
    return value


def _check_keys(obj: JSON, allowed: set[str], where: str, ignored: frozenset[str] = frozenset()) -> None:
    for key in obj:
        if key in allowed or key in ignored:
            continue
        param = f"{where}.{key}" if where else key
        if key in _BETA_FIELDS:
            raise _fail(
                "beta_parameter",
                f"'{param}' is a beta-API name; this server speaks the GA Realtime API: use {_BETA_FIELDS[key]}",
                param,
            )
        known = ", ".join(sorted(allowed))
        raise _fail("unknown_parameter", f"unknown parameter '{param}' (known here: {known})", param)


def _str(value: object, param: str, *, empty_ok: bool = True) -> str:
    if not isinstance(value, str):
        raise _fail("invalid_type", f"'{param}' must be a string, got {type(value).__name__}", param)
    if not empty_ok and not value.strip():
        raise _fail("invalid_value", f"'{param}' must not be empty", param)
    return value


def _number(value: object, param: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail("invalid_type", f"'{param}' must be a number, got {value!r}", param)
    if not lo <= value <= hi:
        raise _fail("invalid_value", f"'{param}' must be between {lo:g} and {hi:g}, got {value!r}", param)
    return float(value)


def _int(value: object, param: str, lo: int, hi: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer()))
    ):
        raise _fail("invalid_type", f"'{param}' must be an integer, got {value!r}", param)
    if not lo <= value <= hi:
        raise _fail("invalid_value", f"'{param}' must be between {lo} and {hi}, got {value!r}", param)
    return int(value)


def _audio_modality_only(value: object, param: str) -> None:
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise _fail("invalid_type", f"'{param}' must be a list of strings", param)
    if value != ["audio"]:
        raise _fail(
            "unsupported_value",
            f"'{param}' must be [\"audio\"]: quickturn always answers with speech (and its transcript)",
            param,
        )


def _no_tools(value: object, param: str) -> None:
    if value not in (None, []):
        raise _fail("unsupported_value", f"'{param}': function calling is not supported", param)


def _audio_format(value: object, param: str) -> None:
    fmt = _dict(value, param)
    _check_keys(fmt, {"type", "rate"}, param)
    kind = fmt.get("type")
    if kind in ("audio/pcmu", "audio/pcma"):
        raise _fail(
            "unsupported_audio_format",
            f"'{param}.type' {kind} (G.711) is not supported; use audio/pcm at {RATE} Hz",
            f"{param}.type",
        )
    if kind != "audio/pcm":
        raise _fail("invalid_value", f"'{param}.type' must be \"audio/pcm\", got {kind!r}", f"{param}.type")
    rate = fmt.get("rate", RATE)
    if rate != RATE:
        raise _fail(
            "unsupported_audio_format",
            f"'{param}.rate' must be {RATE} (PCM16 mono at 24 kHz), got {rate!r}",
            f"{param}.rate",
        )


def _transcription(value: object, param: str) -> JSON | None:
    if value is None:
        return None
    obj = _dict(value, param)
    _check_keys(obj, {"model", "language", "prompt"}, param)
    for key in ("model", "prompt"):
        if obj.get(key) is not None:
            _str(obj[key], f"{param}.{key}")
    language = obj.get("language")
    if language is not None and not (isinstance(language, str) and language.lower().startswith("en")):
        raise _fail(
            "unsupported_value",
            f"'{param}.language' {language!r}: the speech recognizer is English-only (use \"en\")",
            f"{param}.language",
        )
    return obj


def _turn_detection(value: object, param: str) -> JSON | None:
    if value is None:
        return None
    obj = _dict(value, param)
    _check_keys(
        obj,
        {"type", "threshold", "prefix_padding_ms", "silence_duration_ms", "create_response",
         "interrupt_response", "idle_timeout_ms"},
        param,
    )  # fmt: skip
    kind = obj.get("type")
    if kind == "semantic_vad":
        raise _fail(
            "unsupported_value",
            f"'{param}.type' semantic_vad is not supported; use server_vad (its endpointing already "
            "waits longer after an unfinished sentence)",
            f"{param}.type",
        )
    if kind != "server_vad":
        raise _fail("invalid_value", f"'{param}.type' must be \"server_vad\", got {kind!r}", f"{param}.type")
    out: JSON = {}
    if "threshold" in obj:
        out["threshold"] = _number(obj["threshold"], f"{param}.threshold", 0.0, 1.0)
    if "prefix_padding_ms" in obj:
        out["prefix_padding_ms"] = _int(obj["prefix_padding_ms"], f"{param}.prefix_padding_ms", 0, 5000)
    if "silence_duration_ms" in obj:
        out["silence_duration_ms"] = _int(
            obj["silence_duration_ms"], f"{param}.silence_duration_ms", 32, 10000
        )
    for key, why in (
        ("create_response", "quickturn answers every detected turn; for manual control set turn_detection "
                            "to null and send input_audio_buffer.commit + response.create"),
        ("interrupt_response", "barge-in is always on (backchannels such as 'uh-huh' do not interrupt)"),
    ):  # fmt: skip
        if obj.get(key, True) is not True:
            raise _fail("unsupported_value", f"'{param}.{key}' must be true: {why}", f"{param}.{key}")
    if obj.get("idle_timeout_ms") is not None:
        raise _fail("unsupported_value", f"'{param}.idle_timeout_ms' is not supported (use null)",
                    f"{param}.idle_timeout_ms")  # fmt: skip
    return out


def parse_session(obj: JSON, where: str = "session") -> SessionPatch:
    """Validate the ``session`` object of a ``session.update`` (GA shape) into a ``SessionPatch``."""
    _check_keys(
        obj,
        {"type", "model", "instructions", "output_modalities", "audio", "tools", "tool_choice"},
        where,
        # Accepted and ignored: they do not change what a local pipeline does.
        ignored=frozenset({"object", "id", "expires_at", "tracing", "truncation", "prompt", "include",
                           "max_output_tokens"}),
    )  # fmt: skip
    if "type" not in obj:
        raise _fail(
            "missing_required_parameter",
            f"'{where}.type' is required (\"realtime\"); this server speaks the GA Realtime API",
            f"{where}.type",
        )
    if obj["type"] != "realtime":
        raise _fail(
            "unsupported_value",
            f"'{where}.type' must be \"realtime\" (transcription-only sessions are not supported), "
            f"got {obj['type']!r}",
            f"{where}.type",
        )
    fields: JSON = {}
    if "model" in obj:
        fields["model"] = _str(obj["model"], f"{where}.model")
    if "instructions" in obj:
        fields["instructions"] = _str(obj["instructions"], f"{where}.instructions")
    if "output_modalities" in obj:
        _audio_modality_only(obj["output_modalities"], f"{where}.output_modalities")
    _no_tools(obj.get("tools"), f"{where}.tools")
    if "audio" in obj:
        audio = _dict(obj["audio"], f"{where}.audio")
        _check_keys(audio, {"input", "output"}, f"{where}.audio")
        if "input" in audio:
            p = f"{where}.audio.input"
            inp = _dict(audio["input"], p)
            _check_keys(
                inp, {"format", "transcription", "turn_detection"}, p, ignored=frozenset({"noise_reduction"})
            )
            if "format" in inp:
                _audio_format(inp["format"], f"{p}.format")
            if "transcription" in inp:
                fields["transcription"] = _transcription(inp["transcription"], f"{p}.transcription")
            if "turn_detection" in inp:
                fields["turn_detection"] = _turn_detection(inp["turn_detection"], f"{p}.turn_detection")
        if "output" in audio:
            p = f"{where}.audio.output"
            out = _dict(audio["output"], p)
            _check_keys(out, {"format", "voice"}, p, ignored=frozenset({"speed"}))
            if "format" in out:
                _audio_format(out["format"], f"{p}.format")
            if "voice" in out:
                fields["voice"] = _str(out["voice"], f"{p}.voice", empty_ok=False)
    return SessionPatch(**fields)


def _parse_session_update(d: JSON, eid: str | None) -> SessionUpdate:
    _check_keys(d, {"type", "event_id", "session"}, "")
    if "session" not in d:
        raise _fail("missing_required_parameter", "session.update needs a 'session' object", "session")
    return SessionUpdate(eid, parse_session(_dict(d["session"], "session")))


def _parse_append(d: JSON, eid: str | None) -> AudioAppend:
    _check_keys(d, {"type", "event_id", "audio"}, "")
    if "audio" not in d:
        raise _fail(
            "missing_required_parameter", "input_audio_buffer.append needs 'audio' (base64 PCM16)", "audio"
        )
    text = _str(d["audio"], "audio")
    try:
        pcm = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _fail("invalid_base64", f"'audio' is not valid base64: {exc}", "audio") from None
    if not pcm:
        raise _fail("invalid_audio", "'audio' is empty", "audio")
    if pcm[:4] == b"RIFF":
        raise _fail(
            "invalid_audio_format",
            f"'audio' looks like a WAV file; send raw PCM16 LE mono samples at {RATE} Hz without a header",
            "audio",
        )
    if len(pcm) % 2:
        raise _fail(
            "invalid_audio_format",
            f"'audio' has {len(pcm)} bytes, an odd number: PCM16 needs 2 bytes per sample",
            "audio",
        )
    return AudioAppend(eid, pcm)


def _parse_bare(cls: type[AudioCommit] | type[AudioClear]):
    def parse(d: JSON, eid: str | None) -> ClientEvent:
        _check_keys(d, {"type", "event_id"}, "")
        return cls(eid)

    return parse


def _parse_item_create(d: JSON, eid: str | None) -> ItemCreate:
    _check_keys(d, {"type", "event_id", "item", "previous_item_id"}, "")
    if "item" not in d:
        raise _fail("missing_required_parameter", "conversation.item.create needs an 'item'", "item")
    item = _dict(d["item"], "item")
    _check_keys(item, {"id", "type", "role", "content"}, "item", ignored=frozenset({"object", "status"}))
    if item.get("type", "message") != "message":
        raise _fail("unsupported_value", f"'item.type' {item.get('type')!r} is not supported (only \"message\")",
                    "item.type")  # fmt: skip
    if item.get("role") != "user":
        raise _fail(
            "unsupported_value",
            f"'item.role' must be \"user\", got {item.get('role')!r} (the reply model's system prompt is fixed)",
            "item.role",
        )
    content = item.get("content")
    if not isinstance(content, list) or not content:
        raise _fail(
            "invalid_value", "'item.content' must be a non-empty list of content parts", "item.content"
        )
    texts = []
    for n, part in enumerate(content):
        p = f"item.content[{n}]"
        part = _dict(part, p)
        _check_keys(part, {"type", "text"}, p, ignored=frozenset({"audio", "transcript"}))
        if part.get("type") == "input_audio":
            raise _fail(
                "unsupported_value",
                f"'{p}.type' input_audio is not supported; stream audio with input_audio_buffer.append instead",
                f"{p}.type",
            )
        if part.get("type") != "input_text":
            raise _fail(
                "invalid_value", f"'{p}.type' must be \"input_text\", got {part.get('type')!r}", f"{p}.type"
            )
        texts.append(_str(part.get("text"), f"{p}.text"))
    text = " ".join(t.strip() for t in texts if t.strip())
    if not text:
        raise _fail("invalid_value", "'item.content' has no text", "item.content")
    item_id = _str(item["id"], "item.id", empty_ok=False) if item.get("id") is not None else None
    return ItemCreate(eid, text, item_id)


def _parse_truncate(d: JSON, eid: str | None) -> ItemTruncate:
    _check_keys(d, {"type", "event_id", "item_id", "content_index", "audio_end_ms"}, "")
    for key in ("item_id", "audio_end_ms"):
        if key not in d:
            raise _fail("missing_required_parameter", f"conversation.item.truncate needs '{key}'", key)
    return ItemTruncate(
        eid,
        _str(d["item_id"], "item_id", empty_ok=False),
        _int(d.get("content_index", 0), "content_index", 0, 0),
        _int(d["audio_end_ms"], "audio_end_ms", 0, 24 * 3600 * 1000),
    )


def _parse_response_create(d: JSON, eid: str | None) -> ResponseCreate:
    _check_keys(d, {"type", "event_id", "response"}, "")
    resp = _dict(d.get("response") or {}, "response")
    _check_keys(
        resp,
        {"instructions", "output_modalities", "conversation", "input", "tools", "tool_choice", "audio"},
        "response",
        ignored=frozenset({"metadata", "max_output_tokens", "prompt"}),
    )
    if resp.get("conversation", "auto") != "auto":
        raise _fail("unsupported_value", "'response.conversation' must be \"auto\" (out-of-band responses "
                    "are not supported)", "response.conversation")  # fmt: skip
    if resp.get("input"):
        raise _fail("unsupported_value", "'response.input' is not supported: add items with "
                    "conversation.item.create", "response.input")  # fmt: skip
    if "output_modalities" in resp:
        _audio_modality_only(resp["output_modalities"], "response.output_modalities")
    _no_tools(resp.get("tools"), "response.tools")
    if "audio" in resp:
        audio = _dict(resp["audio"], "response.audio")
        _check_keys(audio, {"output"}, "response.audio")
        out = _dict(audio.get("output", {}), "response.audio.output")
        _check_keys(out, {"format", "voice"}, "response.audio.output")
        if "format" in out:
            _audio_format(out["format"], "response.audio.output.format")
    instructions = resp.get("instructions")
    return ResponseCreate(
        eid, _str(instructions, "response.instructions") if instructions is not None else None
    )


def _parse_response_cancel(d: JSON, eid: str | None) -> ResponseCancel:
    _check_keys(d, {"type", "event_id", "response_id"}, "")
    rid = d.get("response_id")
    return ResponseCancel(eid, _str(rid, "response_id") if rid is not None else None)


_PARSERS = {
    "session.update": _parse_session_update,
    "input_audio_buffer.append": _parse_append,
    "input_audio_buffer.commit": _parse_bare(AudioCommit),
    "input_audio_buffer.clear": _parse_bare(AudioClear),
    "conversation.item.create": _parse_item_create,
    "conversation.item.truncate": _parse_truncate,
    "response.create": _parse_response_create,
    "response.cancel": _parse_response_cancel,
}
CLIENT_EVENTS = tuple(_PARSERS)


def parse_client_event(raw: str | bytes) -> ClientEvent:
    """One WebSocket message → a typed client event; raises ``RealtimeProtocolError`` if it is not one."""
    if isinstance(raw, bytes | bytearray | memoryview):
        raise _fail("invalid_frame", "binary WebSocket frames are not accepted: send each event as JSON text "
                    "(audio goes base64-encoded in input_audio_buffer.append)")  # fmt: skip
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _fail("invalid_json", f"the message is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _fail("invalid_event", f"an event must be a JSON object, got {type(data).__name__}")
    eid = data.get("event_id")
    if eid is not None and not isinstance(eid, str):
        raise _fail("invalid_type", "'event_id' must be a string", "event_id")
    try:
        kind = data.get("type")
        if kind is None:
            raise _fail("missing_required_parameter", "the event has no 'type'", "type")
        if not isinstance(kind, str):
            raise _fail("invalid_type", "'type' must be a string", "type")
        parser = _PARSERS.get(kind)
        if parser is None:
            if kind in _NOT_SUPPORTED_EVENTS:
                raise _fail(
                    "unsupported_event", f"'{kind}' is not supported: {_NOT_SUPPORTED_EVENTS[kind]}", "type"
                )
            raise _fail(
                "unknown_event_type",
                f"unknown event type {kind!r}; supported client events: {', '.join(CLIENT_EVENTS)}",
                "type",
            )
        return parser(data, eid)
    except RealtimeProtocolError as exc:
        exc.event_id = eid
        raise


# -- session state ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TurnDetection:
    threshold: float
    prefix_padding_ms: int
    silence_duration_ms: int

    def to_wire(self) -> JSON:
        return {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            "create_response": True,
            "interrupt_response": True,
            "idle_timeout_ms": None,
        }


@dataclass(frozen=True)
class ServerDefaults:
    """What this server actually runs (from its config and loaded models), reported in ``session.created``."""

    model: str = "quickturn"
    voice: str = "quickturn"
    transcription_model: str = "whisper-tiny.en"
    threshold: float = 0.5
    prefix_padding_ms: int = 256
    silence_duration_ms: int = 300
    max_output_tokens: int = 48

    def turn_detection(self, **changes: Any) -> TurnDetection:
        base = TurnDetection(self.threshold, self.prefix_padding_ms, self.silence_duration_ms)
        return replace(base, **changes)


@dataclass(frozen=True)
class SessionConfig:
    id: str
    model: str
    voice: str
    max_output_tokens: int
    instructions: str = ""
    transcription: JSON | None = None  # None: no input transcription events
    turn_detection: TurnDetection | None = None  # None: manual commit + response.create

    def to_wire(self) -> JSON:
        fmt = {"type": "audio/pcm", "rate": RATE}
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "model": self.model,
            "output_modalities": ["audio"],
            "instructions": self.instructions,
            "audio": {
                "input": {
                    "format": fmt,
                    "transcription": self.transcription,
                    "noise_reduction": None,
                    "turn_detection": self.turn_detection.to_wire() if self.turn_detection else None,
                },
                "output": {"format": dict(fmt), "voice": self.voice, "speed": 1.0},
            },
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": self.max_output_tokens,
        }


class InputClock:
    """Maps the pipeline's frame timestamps (monotonic seconds) to milliseconds of input audio.

    The server marks every frame it hands to the pipeline; a timestamp from the pipeline
    (``SpeechStarted.audio_start_t``, ``EndpointCommitted.last_voiced_t``) is then counted back from the
    latest frame. The server stamps frames on an input-audio clock, so this is exact except while it
    catches up after network jitter (a few ms per frame).
    """

    def __init__(self) -> None:
        self._t: float | None = None
        self._end_ms = 0.0

    def mark(self, t: float, end_ms: float) -> None:
        self._t, self._end_ms = t, end_ms

    def ms_at(self, t: float) -> int:
        if self._t is None:
            return 0
        return max(0, round(self._end_ms - (self._t - t) * 1000))


@dataclass
class _Turn:
    """Bookkeeping of one pipeline turn until its response is finished."""

    user_item_id: str | None
    transcript: str | None = None  # final transcript of the attempt that still stands
    transcript_sent: bool = False
    committed: bool = False
    clauses: collections.deque[str] = field(default_factory=collections.deque)  # TTS clause texts, in order


@dataclass
class _Response:
    id: str
    turn: int
    item_id: str  # the assistant message item
    user_item_id: str | None
    output_started: bool = False
    audio_done: bool = False
    transcript: str = ""
    clauses: list[tuple[str, float]] = field(default_factory=list)  # (text, seconds) as sent
    cancel_reason: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Truncation:
    """A validated ``conversation.item.truncate``: what was sent of the item, and how much was heard."""

    item_id: str
    clauses: list[tuple[str, float]]
    heard_s: float


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class RealtimeSession:
    """One connection's protocol state. Methods return the server events to send (plain dicts)."""

    def __init__(self, defaults: ServerDefaults) -> None:
        self.defaults = defaults
        self.config = SessionConfig(
            id=new_id("sess"),
            model=defaults.model,
            voice=defaults.voice,
            max_output_tokens=defaults.max_output_tokens,
            transcription={"model": defaults.transcription_model, "language": "en", "prompt": None},
            turn_detection=defaults.turn_detection(),
        )
        self.clock = InputClock()
        self.response: _Response | None = None
        self.last_reply: _Response | None = None  # latest finished assistant item (truncation target)
        self._turns: dict[int, _Turn] = {}
        self._buffer = bytearray()
        self._last_item_id: str | None = None

    # -- plumbing -----------------------------------------------------------------------------------
    def event(self, kind: str, **fields: Any) -> JSON:
        return {"type": kind, "event_id": new_id("event"), **fields}

    def error(self, exc: RealtimeProtocolError) -> JSON:
        return self.event("error", error=exc.to_wire())

    def server_error(self, code: str, message: str) -> JSON:
        return self.event(
            "error", error=RealtimeProtocolError(code, message, error_type="server_error").to_wire()
        )

    @property
    def manual(self) -> bool:
        """Manual turns (``turn_detection: null``): the client commits audio and asks for responses."""
        return self.config.turn_detection is None

    # -- session ------------------------------------------------------------------------------------
    def session_created(self) -> JSON:
        return self.event("session.created", session=self.config.to_wire())

    def resolve_update(self, patch: SessionPatch) -> SessionConfig:
        """The config a ``session.update`` would give (validated already; nothing changes yet)."""
        cfg = self.config
        # A model or voice request is accepted, but the session keeps reporting what really runs.
        if not isinstance(patch.instructions, _Unset):
            cfg = replace(cfg, instructions=patch.instructions)
        if not isinstance(patch.transcription, _Unset):
            t = patch.transcription
            cfg = replace(cfg, transcription=None if t is None else {
                "model": self.defaults.transcription_model, "language": "en", "prompt": t.get("prompt")})  # fmt: skip
        if not isinstance(patch.turn_detection, _Unset):
            td = patch.turn_detection
            # As in the reference API, a new turn_detection object replaces the old one (omitted = default).
            cfg = replace(cfg, turn_detection=None if td is None else self.defaults.turn_detection(**td))
        return cfg

    def commit_update(self, cfg: SessionConfig) -> list[JSON]:
        if cfg.turn_detection is not None:
            self._buffer.clear()  # switching to server VAD: the pipeline owns the input from now on
        self.config = cfg
        return [self.event("session.updated", session=cfg.to_wire())]

    # -- manual-mode input buffer --------------------------------------------------------------------
    def append_audio(self, pcm: bytes) -> None:
        if len(self._buffer) + len(pcm) > MAX_BUFFER_S * RATE * 2:
            raise _fail(
                "input_audio_buffer_full",
                f"the input audio buffer holds at most {MAX_BUFFER_S:.0f} s: commit or clear it first",
            )
        self._buffer += pcm

    @property
    def buffered_ms(self) -> int:
        return len(self._buffer) * 1000 // (2 * RATE)

    def commit_audio(self) -> tuple[str, bytes, list[JSON]]:
        """Manual commit: the buffer becomes a user item (its transcript follows when ASR is done)."""
        if not self._buffer:
            raise _fail(
                "input_audio_buffer_commit_empty", "the input audio buffer is empty: append audio first"
            )
        pcm, self._buffer = bytes(self._buffer), bytearray()
        item_id = new_id("item")
        events = [
            self.event("input_audio_buffer.committed", previous_item_id=self._last_item_id, item_id=item_id)
        ]
        events += self._item_added(_user_item(item_id, {"type": "input_audio", "transcript": None}))
        return item_id, pcm, events

    def clear_audio(self) -> list[JSON]:
        self._buffer.clear()
        return [self.event("input_audio_buffer.cleared")]

    def transcription_completed(self, item_id: str, text: str) -> list[JSON]:
        if self.config.transcription is None:
            return []
        events = []
        if text:
            events.append(self.event("conversation.item.input_audio_transcription.delta",
                                     item_id=item_id, content_index=0, delta=text))  # fmt: skip
        events.append(self.event("conversation.item.input_audio_transcription.completed",
                                 item_id=item_id, content_index=0, transcript=text))  # fmt: skip
        return events

    def add_user_text(self, ev: ItemCreate) -> tuple[str, list[JSON]]:
        item_id = ev.item_id or new_id("item")
        return item_id, self._item_added(_user_item(item_id, {"type": "input_text", "text": ev.text}))

    def _item_added(self, item: JSON) -> list[JSON]:
        prev, self._last_item_id = self._last_item_id, item["id"]
        return [
            self.event("conversation.item.added", previous_item_id=prev, item=item),
            self.event("conversation.item.done", previous_item_id=prev, item=item),
        ]

    # -- responses ----------------------------------------------------------------------------------
    def begin_response(self, turn: int, user_item_id: str | None) -> list[JSON]:
        """A response for pipeline turn ``turn`` starts (server VAD commit, or ``response.create``)."""
        self._turns.setdefault(turn, _Turn(user_item_id))
        self.response = _Response(new_id("resp"), turn, new_id("item"), user_item_id)
        return [self.event("response.created", response=self._response_wire(self.response, "in_progress"))]

    def check_cancel(self, ev: ResponseCancel) -> _Response:
        resp = self.response
        if resp is None:
            raise _fail("response_cancel_not_active", "there is no response in progress to cancel")
        if ev.response_id is not None and ev.response_id != resp.id:
            raise _fail("invalid_value", f"response {ev.response_id!r} is not the one in progress ({resp.id})",
                        "response_id")  # fmt: skip
        resp.cancel_reason = "client_cancelled"
        return resp

    def reply_audio(self, pcm: bytes, clause: bool) -> list[JSON]:
        """Reply audio (PCM16 at 24 kHz) as the pipeline plays it; ``clause``: the start of a TTS clause."""
        resp = self.response
        if resp is None or not pcm:
            return []
        events = self._start_output(resp)
        ids = {"response_id": resp.id, "item_id": resp.item_id, "output_index": 0, "content_index": 0}
        turn = self._turns.get(resp.turn)
        if clause or not resp.clauses:
            # The pipeline writes one TTS clause per write, in order: pair it with that clause's text.
            text = turn.clauses.popleft() if turn is not None and turn.clauses else ""
            resp.clauses.append((text, len(pcm) / (2 * RATE)))
            if text:
                delta = text if not resp.transcript else " " + text
                resp.transcript += delta
                events.append(self.event("response.output_audio_transcript.delta", **ids, delta=delta))
        else:  # the resampler's tail of the last clause
            text, dur = resp.clauses[-1]
            resp.clauses[-1] = (text, dur + len(pcm) / (2 * RATE))
        for i in range(0, len(pcm), DELTA_BYTES):
            chunk = base64.b64encode(pcm[i : i + DELTA_BYTES]).decode("ascii")
            events.append(self.event("response.output_audio.delta", **ids, delta=chunk))
        return events

    def reply_audio_done(self) -> list[JSON]:
        resp = self.response
        if resp is None or not resp.output_started or resp.audio_done:
            return []
        resp.audio_done = True
        ids = {"response_id": resp.id, "item_id": resp.item_id, "output_index": 0, "content_index": 0}
        return [
            self.event("response.output_audio.done", **ids),
            self.event("response.output_audio_transcript.done", **ids, transcript=resp.transcript),
        ]

    def _start_output(self, resp: _Response) -> list[JSON]:
        if resp.output_started:
            return []
        resp.output_started = True
        item = self._assistant_item(resp, "in_progress")
        prev, self._last_item_id = self._last_item_id, resp.item_id
        part = {"type": "audio", "transcript": ""}
        return [
            self.event("response.output_item.added", response_id=resp.id, output_index=0, item=item),
            self.event("conversation.item.added", previous_item_id=prev, item=item),
            self.event("response.content_part.added", response_id=resp.id, item_id=resp.item_id,
                       output_index=0, content_index=0, part=part),
        ]  # fmt: skip

    def _finish_response(self, resp: _Response, interrupted: bool) -> list[JSON]:
        if resp.error is not None:
            status, details = (
                "failed",
                {"type": "failed", "error": {"type": "server_error", "message": resp.error}},
            )
        elif resp.cancel_reason is not None or interrupted:
            status, details = (
                "cancelled",
                {"type": "cancelled", "reason": resp.cancel_reason or "turn_detected"},
            )
        else:
            status, details = "completed", None
        events: list[JSON] = []
        output: list[JSON] = []
        if resp.output_started:
            events += self.reply_audio_done()
            item = self._assistant_item(resp, "completed" if status == "completed" else "incomplete")
            ids = {"response_id": resp.id, "item_id": resp.item_id, "output_index": 0, "content_index": 0}
            events += [
                self.event(
                    "response.content_part.done", **ids, part={"type": "audio", "transcript": resp.transcript}
                ),
                self.event("response.output_item.done", response_id=resp.id, output_index=0, item=item),
                self.event("conversation.item.done", item=item),
            ]
            output.append(item)
            self.last_reply = resp
        events.append(
            self.event("response.done", response=self._response_wire(resp, status, details, output))
        )
        self.response = None
        return events

    def _assistant_item(self, resp: _Response, status: str) -> JSON:
        return {
            "id": resp.item_id,
            "object": "realtime.item",
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": [{"type": "output_audio", "transcript": resp.transcript}],
        }

    def _response_wire(self, resp: _Response, status: str, details: JSON | None = None,
                       output: list[JSON] | None = None) -> JSON:  # fmt: skip
        return {
            "object": "realtime.response",
            "id": resp.id,
            "status": status,
            "status_details": details,
            "output": output or [],
            "conversation_id": self.config.id.replace("sess_", "conv_", 1),
            "output_modalities": ["audio"],
            "max_output_tokens": self.config.max_output_tokens,
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": RATE}, "voice": self.config.voice}},
            "usage": None,
            "metadata": None,
        }

    def truncate(self, ev: ItemTruncate) -> tuple[Truncation, list[JSON]]:
        """Validate a truncation of the latest assistant item (what the user heard before interrupting)."""
        resp = self.last_reply
        if resp is None or resp.item_id != ev.item_id:
            active = self.response
            if active is not None and active.item_id == ev.item_id:
                raise _fail("item_truncate_in_progress", "the response is still in progress: send response.cancel "
                            "first, then truncate", "item_id")  # fmt: skip
            raise _fail("item_truncate_invalid_item_id", f"{ev.item_id!r} is not the latest assistant audio item",
                        "item_id")  # fmt: skip
        sent_ms = round(sum(d for _, d in resp.clauses) * 1000)
        if ev.audio_end_ms > sent_ms:
            raise _fail("invalid_value", f"'audio_end_ms' {ev.audio_end_ms} is beyond the item's {sent_ms} ms of audio",
                        "audio_end_ms")  # fmt: skip
        event = self.event("conversation.item.truncated", item_id=ev.item_id, content_index=ev.content_index,
                           audio_end_ms=ev.audio_end_ms)  # fmt: skip
        total_s = sum(d for _, d in resp.clauses)
        heard_s = total_s if ev.audio_end_ms >= sent_ms - 1 else ev.audio_end_ms / 1000  # whole ms: all of it
        return Truncation(ev.item_id, list(resp.clauses), heard_s), [event]

    # -- the pipeline's events ----------------------------------------------------------------------
    def reset_turns(self) -> None:
        """The pipeline was rebuilt (its turn numbers start again)."""
        self._turns.clear()

    def on_pipeline_event(self, ev: Event) -> list[JSON]:
        """Translate one pipeline event into server events (most produce none)."""
        if isinstance(ev, SpeechStarted):
            return self._speech_started(ev)
        turn = self._turns.get(ev.turn)
        if isinstance(ev, PartialTranscript):
            if turn is None or turn.committed or self.config.transcription is None:
                return []
            return [self.event("quickturn.transcript.partial", item_id=turn.user_item_id,
                               committed=ev.committed, tentative=ev.tentative)]  # fmt: skip
        if isinstance(ev, SpeculationDiscarded):
            if turn is not None:  # the user went on speaking: that attempt's transcript and clauses are void
                turn.transcript = None
                turn.clauses.clear()
            return []
        if isinstance(ev, FinalTranscript):
            if turn is None or turn.user_item_id is None:
                return []
            turn.transcript = ev.text
            return self._maybe_transcript(turn)
        if isinstance(ev, EndpointCommitted):
            return self._committed(ev, turn)
        if isinstance(ev, TTSChunk):
            if turn is not None:
                turn.clauses.append(ev.text)
            return []
        if isinstance(ev, BargeIn):
            if (
                self.response is not None
                and self.response.turn == ev.turn
                and self.response.cancel_reason is None
            ):
                self.response.cancel_reason = "turn_detected"
            return []
        if isinstance(ev, StageError):
            if ev.stage == "reply" and self.response is not None and self.response.turn == ev.turn:
                self.response.error = ev.message
            return [self.server_error("pipeline_error", f"{ev.stage}: {ev.message}")]
        if isinstance(ev, LatencyReport):
            return self._turn_finished(ev)
        return []

    def _speech_started(self, ev: SpeechStarted) -> list[JSON]:
        item_id = new_id("item")
        self._turns[ev.turn] = _Turn(item_id)
        while len(self._turns) > MAX_TURNS_KEPT:
            self._turns.pop(next(iter(self._turns)))
        return [self.event("input_audio_buffer.speech_started", audio_start_ms=self.clock.ms_at(ev.audio_start_t),
                           item_id=item_id)]  # fmt: skip

    def _committed(self, ev: EndpointCommitted, turn: _Turn | None) -> list[JSON]:
        if turn is None or turn.user_item_id is None:
            return []
        turn.committed = True
        item_id = turn.user_item_id
        events = [
            self.event("input_audio_buffer.speech_stopped", audio_end_ms=self.clock.ms_at(ev.last_voiced_t),
                       item_id=item_id),
            self.event("input_audio_buffer.committed", previous_item_id=self._last_item_id, item_id=item_id),
        ]  # fmt: skip
        events += self._item_added(_user_item(item_id, {"type": "input_audio", "transcript": None}))
        events += self._maybe_transcript(turn)
        events += self.begin_response(ev.turn, item_id)
        return events

    def _maybe_transcript(self, turn: _Turn) -> list[JSON]:
        if not turn.committed or turn.transcript is None or turn.transcript_sent or turn.user_item_id is None:
            return []
        turn.transcript_sent = True
        return self.transcription_completed(turn.user_item_id, turn.transcript)

    def _turn_finished(self, ev: LatencyReport) -> list[JSON]:
        turn = self._turns.pop(ev.turn, None)
        resp = self.response if self.response is not None and self.response.turn == ev.turn else None
        events = self._finish_response(resp, ev.interrupted) if resp is not None else []
        events.append(self.event(
            "quickturn.latency",
            response_id=resp.id if resp else None,
            item_id=turn.user_item_id if turn else None,
            turn=ev.turn,
            transcript=ev.transcript,
            reply=ev.reply,
            v2v_ms=_finite(ev.v2v_ms),
            stages_ms={k: v for k, v in ev.stages_ms.items() if _finite(v) is not None},
            discarded_speculations=ev.discarded_speculations,
            interrupted=ev.interrupted,
        ))  # fmt: skip
        return events


def _user_item(item_id: str, content: JSON) -> JSON:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [content],
    }
