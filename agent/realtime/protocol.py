"""The OpenAI Realtime API (GA event names) as quickturn speaks it: client events — sans-I/O.

Client events (JSON text) are parsed and validated into small typed objects; anything malformed raises
``RealtimeProtocolError`` naming the problem, which the session sends back as a short ``error`` event
without closing the connection. Error messages never echo what the client sent: a value is described
("a string of 16777216 characters"), and only a short identifier-like name (an unknown event type or
parameter) is shown as such. ``session.py`` holds the per-connection rules. Nothing here touches a
socket or a model.

Only the GA names are accepted (``session.audio.input.format``, ``response.output_audio.delta``, ...);
beta names (``input_audio_format``, ``modalities``) get an error saying what to use instead. Our own
additions use the ``quickturn.`` prefix (``quickturn.latency``, ``quickturn.transcript.partial``).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any

from dlm_core.tools import Tool

from ..tool_calls import ToolChoice

RATE = 24000  # the only rate the GA API defines for audio/pcm (PCM16 LE mono), in and out
DELTA_BYTES = RATE * 2 // 5  # 200 ms of PCM16 per response.output_audio.delta
MAX_BUFFER_S = 120.0  # input audio held for one connection, in either turn mode (bounded memory and ASR)
MAX_ID_CHARS = 256  # event and item ids (echoed back, so bounded)
MAX_TEXT_CHARS = 32768  # instructions, user text: the prompt is cut to the model's context anyway
MAX_TOOLS = 128  # tools one session or response may declare (the reference API's limit)
MAX_TOOL_DESCRIPTION_CHARS = 1024
MAX_TOOL_SCHEMA_CHARS = 16384  # one tool's parameters, as JSON
TOOL_CHOICES = ("auto", "none", "required")

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
    """A server event as one JSON text frame (NaN/inf are not JSON: they must never reach here).

    ASCII only: its length is its size in bytes (the server bounds a connection's queue in bytes), and
    no string can fail to encode on the wire."""
    return json.dumps(event, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


_NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,48}")


def describe(value: object) -> str:
    """A client value for an error message, never the value itself unless it is a short plain name."""
    if isinstance(value, str):
        return repr(value) if _NAME.fullmatch(value) else f"a string of {len(value)} characters"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int) and abs(value) < 10**12:
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and abs(value) < 1e12:
        return f"{value:g}"
    if isinstance(value, int | float):
        return "a number out of range"
    return {"dict": "an object", "list": "a list"}.get(type(value).__name__, type(value).__name__)


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
    voice: str | _Unset = UNSET  # a voice name, or the id of {"id": ...}
    transcription: JSON | None | _Unset = UNSET
    turn_detection: JSON | None | _Unset = UNSET
    tools: tuple[Tool, ...] | _Unset = UNSET
    tool_choice: ToolChoice | _Unset = UNSET


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
class FunctionOutputCreate(ClientEvent):
    """A ``function_call_output`` item: the client's result for the server's ``function_call``."""

    call_id: str
    output: str
    item_id: str | None = None


@dataclass(frozen=True)
class ItemTruncate(ClientEvent):
    item_id: str
    content_index: int
    audio_end_ms: int


@dataclass(frozen=True)
class ResponseCreate(ClientEvent):
    instructions: str | None = None
    tools: tuple[Tool, ...] | None = None  # None: the session's
    tool_choice: ToolChoice | None = None  # None: the session's


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
# Accepted and ignored in session.update and response.create: they do not change what a local pipeline
# does (validated where a bad value would be worth telling).
_IGNORED_SESSION = frozenset({"object", "id", "expires_at", "tracing", "truncation", "prompt", "include"})
_IGNORED_RESPONSE = frozenset({"metadata", "prompt"})
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
        known = ", ".join(sorted(allowed))
        if not _NAME.fullmatch(key):  # not a name worth showing (or echoing)
            param = where or None
            raise _fail("unknown_parameter", f"unknown parameter in '{where or 'the event'}' (known: {known})",
                        param)  # fmt: skip
        param = f"{where}.{key}" if where else key
        if key in _BETA_FIELDS:
            raise _fail(
                "beta_parameter",
                f"'{param}' is a beta-API name; this server speaks the GA Realtime API: use {_BETA_FIELDS[key]}",
                param,
            )
        raise _fail("unknown_parameter", f"unknown parameter '{param}' (known here: {known})", param)


def _valid_unicode(value: str) -> bool:
    """False for a string with lone surrogates (JSON escapes like "\\ud800" decode to them)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _str(value: object, param: str, *, empty_ok: bool = True, max_chars: int = MAX_TEXT_CHARS) -> str:
    if not isinstance(value, str):
        raise _fail("invalid_type", f"'{param}' must be a string, got {describe(value)}", param)
    if len(value) > max_chars:
        raise _fail("string_above_max_length", f"'{param}' is {len(value)} characters long; at most "
                    f"{max_chars} are accepted", param)  # fmt: skip
    if not _valid_unicode(value):
        raise _fail("invalid_value", f"'{param}' is not valid Unicode (it has a lone surrogate)", param)
    if not empty_ok and not value.strip():
        raise _fail("invalid_value", f"'{param}' must not be empty", param)
    return value


def _id(value: object, param: str) -> str:
    return _str(value, param, empty_ok=False, max_chars=MAX_ID_CHARS)


def _number(value: object, param: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail("invalid_type", f"'{param}' must be a finite number, got {describe(value)}", param)
    if not lo <= value <= hi:
        raise _fail("invalid_value", f"'{param}' must be between {lo:g} and {hi:g}, got {describe(value)}",
                    param)  # fmt: skip
    return float(value)


def _int(value: object, param: str, lo: int, hi: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer()))
    ):
        raise _fail("invalid_type", f"'{param}' must be an integer, got {describe(value)}", param)
    if not lo <= value <= hi:
        raise _fail("invalid_value", f"'{param}' must be between {lo} and {hi}, got {describe(value)}", param)
    return int(value)


def _max_output_tokens(value: object, param: str) -> None:
    """Validated, not applied: replies are as long as the server's ``lm.max_tokens`` allows."""
    if value != "inf":
        _int(value, param, 1, 4096)


def _bool(value: object, param: str) -> bool:
    if not isinstance(value, bool):
        raise _fail("invalid_type", f"'{param}' must be true or false, got {describe(value)}", param)
    return value


def _audio_modality_only(value: object, param: str) -> None:
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise _fail("invalid_type", f"'{param}' must be a list of strings", param)
    if value != ["audio"]:
        raise _fail(
            "unsupported_value",
            f"'{param}' must be [\"audio\"]: quickturn always answers with speech (and its transcript)",
            param,
        )


_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SCHEMA_TYPES = frozenset({"string", "integer", "number", "boolean", "array", "object", "null"})


def _tools(value: object, param: str) -> tuple[Tool, ...]:
    """Function tools (``{type: "function", name, description, parameters}``), names unique."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail("invalid_type", f"'{param}' must be a list of tools, got {describe(value)}", param)
    if len(value) > MAX_TOOLS:
        raise _fail("array_above_max_length", f"'{param}' has {len(value)} tools; at most {MAX_TOOLS} are "
                    "accepted", param)  # fmt: skip
    tools: list[Tool] = []
    for n, raw in enumerate(value):
        p = f"{param}[{n}]"
        obj = _dict(raw, p)
        kind = obj.get("type", "function")
        if kind == "mcp":
            raise _fail("unsupported_value", f"'{p}.type' mcp: MCP tools are not supported; declare function "
                        "tools and run them in the client", f"{p}.type")  # fmt: skip
        if kind != "function":
            raise _fail(
                "invalid_value", f"'{p}.type' must be \"function\", got {describe(kind)}", f"{p}.type"
            )
        _check_keys(obj, {"type", "name", "description", "parameters"}, p, ignored=frozenset({"strict"}))
        if "name" not in obj:
            raise _fail("missing_required_parameter", f"'{p}.name' is required", f"{p}.name")
        name = obj["name"]
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
            raise _fail("invalid_value", f"'{p}.name' must be 1-64 letters, digits, '_' or '-', got "
                        f"{describe(name)}", f"{p}.name")  # fmt: skip
        if any(t.name == name for t in tools):
            raise _fail("duplicate_tool_name", f"'{p}.name' {name!r} is declared twice", f"{p}.name")
        description = obj.get("description")
        description = "" if description is None else _str(
            description, f"{p}.description", max_chars=MAX_TOOL_DESCRIPTION_CHARS)  # fmt: skip
        parameters = obj.get("parameters")
        parameters = {"type": "object", "properties": {}} if parameters is None else _parameters(
            parameters, f"{p}.parameters")  # fmt: skip
        tools.append(Tool(name, description, parameters))
    return tuple(tools)


def _parameters(value: object, param: str) -> JSON:
    """A tool's parameters: a JSON-schema object. Its shape is checked here; whether the model can fill
    every construct is the tool caller's to say (``ToolSchemaError`` fails the response, naming it)."""
    schema = _dict(value, param)
    if len(json.dumps(schema)) > MAX_TOOL_SCHEMA_CHARS:
        raise _fail("string_above_max_length", f"'{param}' is longer than {MAX_TOOL_SCHEMA_CHARS} characters "
                    "as JSON", param)  # fmt: skip
    if schema.get("type", "object") != "object":
        raise _fail("invalid_value", f"'{param}.type' must be \"object\", got {describe(schema.get('type'))}",
                    f"{param}.type")  # fmt: skip
    props = _dict(schema.get("properties", {}), f"{param}.properties")
    for key, prop in props.items():
        if not _TOOL_NAME.fullmatch(key):
            raise _fail("invalid_value", f"'{param}.properties' has a parameter name that is not 1-64 letters, "
                        "digits, '_' or '-'", f"{param}.properties")  # fmt: skip
        p = f"{param}.properties.{key}"
        prop = _dict(prop, p)
        kinds = prop.get("type", [])
        for kind in kinds if isinstance(kinds, list) else [kinds]:
            if kind not in _SCHEMA_TYPES:
                raise _fail("invalid_value", f"'{p}.type' {describe(kind)} is not a JSON-schema type "
                            f"({', '.join(sorted(_SCHEMA_TYPES))})", f"{p}.type")  # fmt: skip
        if "enum" in prop and not (isinstance(prop["enum"], list) and prop["enum"]):
            raise _fail("invalid_value", f"'{p}.enum' must be a non-empty list", f"{p}.enum")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise _fail("invalid_type", f"'{param}.required' must be a list of property names",
                    f"{param}.required")  # fmt: skip
    for r in required:
        if r not in props:
            raise _fail("invalid_value", f"'{param}.required' names {describe(r)}, which is not in "
                        "'properties'", f"{param}.required")  # fmt: skip
    return schema


def _tool_choice(value: object, param: str) -> ToolChoice:
    """``auto`` | ``none`` | ``required`` | ``{type: "function", name}`` (checked against the tools by
    the session, which knows them)."""
    if isinstance(value, str) and value in TOOL_CHOICES:
        return value
    if isinstance(value, dict):
        _check_keys(value, {"type", "name"}, param, ignored=frozenset({"server_label"}))
        if value.get("type") == "mcp":
            raise _fail("unsupported_value", f"'{param}.type' mcp: MCP tools are not supported",
                        f"{param}.type")  # fmt: skip
        if value.get("type") != "function":
            raise _fail("invalid_value", f"'{param}.type' must be \"function\", got "
                        f"{describe(value.get('type'))}", f"{param}.type")  # fmt: skip
        if "name" not in value:
            raise _fail("missing_required_parameter", f"'{param}.name' is required", f"{param}.name")
        return {"type": "function", "name": _id(value["name"], f"{param}.name")}
    raise _fail("invalid_value", f"'{param}' must be \"auto\", \"none\", \"required\" or "
                f"{{\"type\": \"function\", \"name\": ...}}, got {describe(value)}", param)  # fmt: skip


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
        raise _fail("invalid_value", f"'{param}.type' must be \"audio/pcm\", got {describe(kind)}",
                    f"{param}.type")  # fmt: skip
    rate = fmt.get("rate", RATE)
    if isinstance(rate, bool) or rate != RATE:
        raise _fail(
            "unsupported_audio_format",
            f"'{param}.rate' must be {RATE} (PCM16 mono at 24 kHz), got {describe(rate)}",
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
            f"'{param}.language' {describe(language)}: the speech recognizer is English-only (use \"en\")",
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
        raise _fail("invalid_value", f"'{param}.type' must be \"server_vad\", got {describe(kind)}",
                    f"{param}.type")  # fmt: skip
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
        {"type", "model", "instructions", "output_modalities", "audio", "tools", "tool_choice",
         "max_output_tokens", "parallel_tool_calls"},
        where,
        ignored=_IGNORED_SESSION,
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
            f"got {describe(obj['type'])}",
            f"{where}.type",
        )
    fields: JSON = {}
    if "model" in obj:
        fields["model"] = _str(obj["model"], f"{where}.model")
    if "instructions" in obj:
        fields["instructions"] = _str(obj["instructions"], f"{where}.instructions")
    if "output_modalities" in obj:
        _audio_modality_only(obj["output_modalities"], f"{where}.output_modalities")
    if "tools" in obj:
        fields["tools"] = _tools(obj["tools"], f"{where}.tools")
    if "tool_choice" in obj:
        fields["tool_choice"] = _tool_choice(obj["tool_choice"], f"{where}.tool_choice")
    if "max_output_tokens" in obj:
        _max_output_tokens(obj["max_output_tokens"], f"{where}.max_output_tokens")
    if "parallel_tool_calls" in obj:  # accepted: a response makes at most one call either way
        _bool(obj["parallel_tool_calls"], f"{where}.parallel_tool_calls")
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
            _check_keys(out, {"format", "voice", "speed"}, p)
            if "format" in out:
                _audio_format(out["format"], f"{p}.format")
            if "voice" in out:
                fields["voice"] = _voice(out["voice"], f"{p}.voice")
            if "speed" in out:  # validated, not applied: piper speaks at its trained pace
                _number(out["speed"], f"{p}.speed", 0.25, 1.5)
    return SessionPatch(**fields)


def _voice(value: object, param: str) -> str:
    """A voice name, or a custom voice as ``{"id": ...}`` (the SDK's two shapes)."""
    if isinstance(value, dict):
        _check_keys(value, {"id"}, param)
        if "id" not in value:
            raise _fail("missing_required_parameter", f"'{param}.id' is required", f"{param}.id")
        return _id(value["id"], f"{param}.id")
    return _id(value, param)


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
    text = d["audio"]
    if not isinstance(text, str):
        raise _fail("invalid_type", f"'audio' must be a base64 string, got {describe(text)}", "audio")
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


def _parse_item_create(d: JSON, eid: str | None) -> ItemCreate | FunctionOutputCreate:
    _check_keys(d, {"type", "event_id", "item", "previous_item_id"}, "")
    if "item" not in d:
        raise _fail("missing_required_parameter", "conversation.item.create needs an 'item'", "item")
    item = _dict(d["item"], "item")
    kind = item.get("type", "message")
    if kind == "function_call_output":
        return _function_output(item, eid)
    if kind == "function_call":
        raise _fail("unsupported_value", "'item.type' function_call: calls are made by the server's model; "
                    "answer one with a function_call_output item", "item.type")  # fmt: skip
    _check_keys(item, {"id", "type", "role", "content"}, "item", ignored=frozenset({"object", "status"}))
    if kind != "message":
        raise _fail("unsupported_value", f"'item.type' {describe(kind)} is not supported (\"message\" or "
                    "\"function_call_output\")", "item.type")  # fmt: skip
    if item.get("role") != "user":
        raise _fail(
            "unsupported_value",
            f"'item.role' must be \"user\", got {describe(item.get('role'))} (the reply model's system prompt "
            "is fixed)",
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
                "invalid_value",
                f"'{p}.type' must be \"input_text\", got {describe(part.get('type'))}",
                f"{p}.type",
            )
        texts.append(_str(part.get("text"), f"{p}.text"))
    text = " ".join(t.strip() for t in texts if t.strip())
    if not text:
        raise _fail("invalid_value", "'item.content' has no text", "item.content")
    if len(text) > MAX_TEXT_CHARS:
        raise _fail("string_above_max_length", f"'item.content' has {len(text)} characters of text; at most "
                    f"{MAX_TEXT_CHARS} are accepted", "item.content")  # fmt: skip
    item_id = _id(item["id"], "item.id") if item.get("id") is not None else None
    return ItemCreate(eid, text, item_id)


def _function_output(item: JSON, eid: str | None) -> FunctionOutputCreate:
    _check_keys(item, {"id", "type", "call_id", "output"}, "item", ignored=frozenset({"object", "status"}))
    for key in ("call_id", "output"):
        if key not in item:
            raise _fail("missing_required_parameter", f"a function_call_output item needs '{key}'",
                        f"item.{key}")  # fmt: skip
    item_id = _id(item["id"], "item.id") if item.get("id") is not None else None
    return FunctionOutputCreate(eid, _id(item["call_id"], "item.call_id"), _str(item["output"], "item.output"),
                                item_id)  # fmt: skip


def _parse_truncate(d: JSON, eid: str | None) -> ItemTruncate:
    _check_keys(d, {"type", "event_id", "item_id", "content_index", "audio_end_ms"}, "")
    for key in ("item_id", "audio_end_ms"):
        if key not in d:
            raise _fail("missing_required_parameter", f"conversation.item.truncate needs '{key}'", key)
    return ItemTruncate(
        eid,
        _id(d["item_id"], "item_id"),
        _int(d.get("content_index", 0), "content_index", 0, 0),
        _int(d["audio_end_ms"], "audio_end_ms", 0, 24 * 3600 * 1000),
    )


def _parse_response_create(d: JSON, eid: str | None) -> ResponseCreate:
    _check_keys(d, {"type", "event_id", "response"}, "")
    resp = _dict(d.get("response") or {}, "response")
    _check_keys(
        resp,
        {"instructions", "output_modalities", "conversation", "input", "tools", "tool_choice", "audio",
         "max_output_tokens", "parallel_tool_calls"},
        "response",
        ignored=_IGNORED_RESPONSE,
    )  # fmt: skip
    if resp.get("conversation", "auto") != "auto":
        raise _fail("unsupported_value", "'response.conversation' must be \"auto\" (out-of-band responses "
                    "are not supported)", "response.conversation")  # fmt: skip
    if resp.get("input"):
        raise _fail("unsupported_value", "'response.input' is not supported: add items with "
                    "conversation.item.create", "response.input")  # fmt: skip
    if "output_modalities" in resp:
        _audio_modality_only(resp["output_modalities"], "response.output_modalities")
    tools = _tools(resp["tools"], "response.tools") if "tools" in resp else None
    choice = _tool_choice(resp["tool_choice"], "response.tool_choice") if "tool_choice" in resp else None
    if "max_output_tokens" in resp:
        _max_output_tokens(resp["max_output_tokens"], "response.max_output_tokens")
    if "parallel_tool_calls" in resp:
        _bool(resp["parallel_tool_calls"], "response.parallel_tool_calls")
    if "audio" in resp:
        audio = _dict(resp["audio"], "response.audio")
        _check_keys(audio, {"output"}, "response.audio")
        out = _dict(audio.get("output", {}), "response.audio.output")
        _check_keys(out, {"format", "voice"}, "response.audio.output")
        if "format" in out:
            _audio_format(out["format"], "response.audio.output.format")
        if "voice" in out:
            _voice(out["voice"], "response.audio.output.voice")
    instructions = resp.get("instructions")
    return ResponseCreate(
        eid, _str(instructions, "response.instructions") if instructions is not None else None, tools, choice
    )


def _parse_response_cancel(d: JSON, eid: str | None) -> ResponseCancel:
    _check_keys(d, {"type", "event_id", "response_id"}, "")
    rid = d.get("response_id")
    return ResponseCancel(eid, _id(rid, "response_id") if rid is not None else None)


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
        data = json.loads(raw, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:  # its message quotes no input, only a position
        raise _fail("invalid_json", f"the message is not valid JSON: {exc}") from None
    except RecursionError:
        raise _fail("invalid_json", "the message is nested too deeply") from None
    except ValueError as exc:  # NaN / Infinity
        raise _fail("invalid_json", str(exc)) from None
    if not isinstance(data, dict):
        raise _fail("invalid_event", f"an event must be a JSON object, got {describe(data)}")
    eid = data.get("event_id")
    if eid is not None:
        _id(eid, "event_id")
    try:
        kind = data.get("type")
        if kind is None:
            raise _fail("missing_required_parameter", "the event has no 'type'", "type")
        if not isinstance(kind, str):
            raise _fail("invalid_type", f"'type' must be a string, got {describe(kind)}", "type")
        parser = _PARSERS.get(kind)
        if parser is None:
            if kind in _NOT_SUPPORTED_EVENTS:
                raise _fail(
                    "unsupported_event", f"'{kind}' is not supported: {_NOT_SUPPORTED_EVENTS[kind]}", "type"
                )
            raise _fail(
                "unknown_event_type",
                f"unknown event type {describe(kind)}; supported client events: {', '.join(CLIENT_EVENTS)}",
                "type",
            )
        return parser(data, eid)
    except RealtimeProtocolError as exc:
        exc.event_id = eid
        raise


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number: send finite numbers only")
