"""One Realtime connection's rules, sans-I/O: what is pending, what is an error, what happens next.

``RealtimeSession`` takes plain inputs — a client message (with whether the pipeline is mid-turn), a
transcript, a pipeline event, reply audio — and returns what to do: server events (plain dicts) to send
and small *actions* (``FeedAudio``, ``Transcribe``, ``StartReply``, ...) for the socket adapter
(``server.py``) to carry out on the pipeline. Every rule of the protocol lives here (buffer bounds,
which response is active, when a response may start, what a truncation means for the history), so all
of it is testable without sockets, models or sleeps.
"""

from __future__ import annotations

import base64
import collections
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from agent.events import (
    BargeIn,
    EndpointCommitted,
    Event,
    FinalTranscript,
    LatencyReport,
    PartialTranscript,
    PromptTrimmed,
    SpeculationDiscarded,
    SpeechStarted,
    StageError,
    ToolCallDecided,
    TTSChunk,
    TurnMerged,
)
from dlm_core.tools import Tool, ToolSchemaError

from ..text_split import heard_text
from ..tool_calls import ToolChoice, ToolRequest, spoken_result
from .protocol import (
    DELTA_BYTES,
    JSON,
    MAX_BUFFER_S,
    RATE,
    AudioAppend,
    AudioClear,
    AudioCommit,
    ClientEvent,
    FunctionOutputCreate,
    ItemCreate,
    ItemTruncate,
    RealtimeProtocolError,
    ResponseCancel,
    ResponseCreate,
    SessionPatch,
    SessionUpdate,
    _Unset,
    new_id,
    parse_client_event,
)

MAX_TURNS_KEPT = 8  # per-turn bookkeeping kept for turns that never finished (bounded)
MAX_PENDING_ITEMS = 64  # user items waiting for response.create (each holds text or audio: bounded)
MAX_CALLS_KEPT = 32  # function calls a client may still answer (the oldest are forgotten)


def _fail(code: str, message: str, param: str | None = None) -> RealtimeProtocolError:
    return RealtimeProtocolError(code, message, param=param)


# -- what the adapter is asked to do ---------------------------------------------------------------------
@dataclass(frozen=True)
class FeedAudio:
    """Server VAD: hand this input audio (24 kHz PCM16) to the pipeline."""

    pcm: bytes


@dataclass(frozen=True)
class ClearFeed:
    """Drop input audio not yet processed by the pipeline."""


@dataclass(frozen=True)
class Transcribe:
    """Transcribe a committed buffer; report with ``transcribed`` or ``transcription_failed``."""

    item_id: str
    pcm: bytes


@dataclass(frozen=True)
class StartReply:
    """Answer ``text`` now (``VoicePipeline.respond_to_text``), then call ``begin_response``.

    ``tools``: the reply may call one instead of speaking; ``say``: the reply is these words, not the
    model's (the results of the function calls it answers)."""

    text: str
    user_item_id: str
    tools: ToolRequest | None = None
    say: str | None = None


@dataclass(frozen=True)
class SetTools:
    """The tools the session's spoken (server VAD) turns may call from now on (``VoicePipeline.tools``)."""

    request: ToolRequest


@dataclass(frozen=True)
class CancelReply:
    """Stop the reply in progress like a barge-in (``VoicePipeline.cancel_reply``)."""


@dataclass(frozen=True)
class ReviseReply:
    """The latest exchange's reply in the history becomes what the client heard."""

    heard_text: str


@dataclass(frozen=True)
class ApplyTurnDetection:
    """Reconfigure the pipeline for ``config.turn_detection``, then call ``apply_turn_detection``."""

    config: SessionConfig


Action = (
    FeedAudio
    | ClearFeed
    | Transcribe
    | StartReply
    | CancelReply
    | ReviseReply
    | ApplyTurnDetection
    | SetTools
)
Output = JSON | Action  # a server event to send, or an action to carry out


# -- session config ------------------------------------------------------------------------------------
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
    tool_calls: bool = True  # the reply model can call tools (a ``ToolCaller`` is loaded)
    check_tool: Callable[[Tool], object] | None = None  # raises ToolSchemaError for a tool it cannot fill

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
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = "auto"

    @property
    def tool_request(self) -> ToolRequest:
        return ToolRequest(self.tools, self.tool_choice)

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
            "tools": [_tool_wire(t) for t in self.tools],
            "tool_choice": dict(self.tool_choice) if isinstance(self.tool_choice, dict) else self.tool_choice,
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

    @property
    def end_ms(self) -> float:
        """Input audio handed to the pipeline so far."""
        return self._end_ms

    def ms_at(self, t: float) -> int:
        if self._t is None:
            return 0
        return max(0, round(self._end_ms - (self._t - t) * 1000))


@dataclass
class _Turn:
    """Bookkeeping of one pipeline turn until its response is finished."""

    user_item_id: str | None
    transcript: str | None = None  # final transcript of the attempt that still stands
    audio_s: float = 0.0  # the audio it was transcribed from
    transcript_sent: bool = False
    committed: bool = False
    clauses: collections.deque[str] = field(default_factory=collections.deque)  # TTS clause texts, in order
    trimmed: PromptTrimmed | None = None  # the reply's prompt was cut to fit (told with the response)
    audio_start_ms: int = 0
    previous_item_id: str | None = None  # the conversation's last item before this turn's user item
    call: ToolCallDecided | None = None  # the reply model chose this call instead of speaking


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


@dataclass
class _Call:
    """A ``function_call`` item the server sent: the client answers it with a ``function_call_output``."""

    item_id: str
    name: str
    request: str  # the user's words the call answers
    answered: bool = False


@dataclass
class _Pending:
    """An item waiting for ``response.create``: typed text, committed audio in (or out of) ASR, or a
    function call's output."""

    item_id: str
    text: str | None  # None: still being transcribed
    result: tuple[_Call, str] | None = None  # a function_call_output: its call, and the output


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class RealtimeSession:
    """One connection's protocol state. Methods return what to do: server events and actions."""

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
        self._history_item: str | None = None  # the assistant item of the history's latest exchange
        self._turns: dict[int, _Turn] = {}
        self._buffer = bytearray()  # manual mode: audio not committed yet
        self._fed_bytes = 0  # server VAD: input audio handed to the pipeline so far
        self._fed_floor_ms = 0.0  # ... of which everything up to here was consumed or cleared
        self._pending: list[_Pending] = []  # user items for the next response.create
        self._audio_s: dict[str, float] = {}  # committed audio items in ASR: their length
        self._requested = False  # response.create waits for committed audio to be transcribed
        self._requested_tools = ToolRequest()  # ... and the tools that response may call
        self._calls: collections.OrderedDict[str, _Call] = collections.OrderedDict()  # by call_id
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

    # -- client events ------------------------------------------------------------------------------
    def receive(self, raw: str | bytes, *, busy: bool) -> list[Output]:
        """One WebSocket message. ``busy``: the pipeline is in a turn (the user speaking, or a reply)."""
        event: ClientEvent | None = None
        try:
            event = parse_client_event(raw)
            return self.handle(event, busy=busy)
        except RealtimeProtocolError as exc:
            if exc.event_id is None and event is not None:
                exc.event_id = event.event_id
            return [self.error(exc)]

    def handle(self, ev: ClientEvent, *, busy: bool) -> list[Output]:
        """One parsed client event; raises ``RealtimeProtocolError`` for one that cannot be served."""
        if isinstance(ev, AudioAppend):
            return self._append(ev.pcm)
        if isinstance(ev, AudioCommit):
            return self._commit()
        if isinstance(ev, AudioClear):
            return self._clear()
        if isinstance(ev, ItemCreate):
            return self._add_user_text(ev)
        if isinstance(ev, FunctionOutputCreate):
            return self._add_function_output(ev)
        if isinstance(ev, ResponseCreate):
            return self._response_create(ev, busy)
        if isinstance(ev, ResponseCancel):
            return self._response_cancel(ev)
        if isinstance(ev, ItemTruncate):
            return self._truncate(ev)
        if isinstance(ev, SessionUpdate):
            return self._session_update(ev.patch, busy)
        raise TypeError(f"unhandled client event {type(ev).__name__}")

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
        if not isinstance(patch.tools, _Unset):
            self._check_schemas(patch.tools, "session")
            cfg = replace(cfg, tools=patch.tools)
        if not isinstance(patch.tool_choice, _Unset):
            cfg = replace(cfg, tool_choice=patch.tool_choice)
        self._check_tools(cfg.tools, cfg.tool_choice, "session")
        return cfg

    def _check_schemas(self, tools: tuple[Tool, ...], where: str) -> None:
        """Newly declared tools: can the decoder fill each one's parameters? (Told now, not mid-turn.)"""
        check = self.defaults.check_tool
        for n, tool in enumerate(tools if check is not None and self.defaults.tool_calls else ()):
            try:
                check(tool)
            except ToolSchemaError as exc:
                why = str(exc)
                why = why if len(why) <= 200 else why[:200] + "..."
                raise _fail("unsupported_tool_schema", f"'{where}.tools[{n}].parameters' cannot be filled by "
                            f"the model: {why}", f"{where}.tools[{n}].parameters") from None  # fmt: skip

    def _check_tools(self, tools: tuple[Tool, ...], choice: ToolChoice, where: str) -> None:
        """The choice must be one the tools allow, and this server must be able to call tools at all."""
        if tools and not self.defaults.tool_calls:
            raise _fail("tools_not_supported", "function calling needs a reply model that can call tools; "
                        "this server's has no tool caller", f"{where}.tools")  # fmt: skip
        if choice == "required" and not tools:
            raise _fail("invalid_value", f"'{where}.tool_choice' is \"required\" but no tools are declared",
                        f"{where}.tool_choice")  # fmt: skip
        if isinstance(choice, dict) and not any(t.name == choice["name"] for t in tools):
            raise _fail("invalid_value", f"'{where}.tool_choice' names {choice['name']!r}, which is not among "
                        f"the declared tools", f"{where}.tool_choice.name")  # fmt: skip

    def _session_update(self, patch: SessionPatch, busy: bool) -> list[Output]:
        new = self.resolve_update(patch)
        if new.turn_detection == self.config.turn_detection:
            return self._commit_update(new)
        self._check_between_turns(busy)
        # The pipeline's input starts afresh in the new mode; the adapter reconfigures it, then reports.
        return [ClearFeed(), ApplyTurnDetection(new)]

    def _check_between_turns(self, busy: bool) -> None:
        if busy or self.response is not None:
            raise _fail("turn_in_progress", "turn_detection cannot change during a turn; send the "
                        "session.update between turns", "session.audio.input.turn_detection")  # fmt: skip

    def apply_turn_detection(self, cfg: SessionConfig, *, busy: bool) -> tuple[bool, list[Output]]:
        """After ``ApplyTurnDetection``: may the reconfigured pipeline take over? ``busy``: the user
        started talking while the adapter prepared it (the old pipeline then stays, unchanged)."""
        try:
            self._check_between_turns(busy)
        except RealtimeProtocolError as exc:
            return False, [self.error(exc)]
        self._turns.clear()  # a replaced pipeline numbers its turns afresh
        self._fed_floor_ms = self._fed_ms
        return True, self._commit_update(cfg)

    def _commit_update(self, cfg: SessionConfig) -> list[Output]:
        if cfg.turn_detection is not None:
            self._buffer.clear()  # switching to server VAD: the pipeline owns the input from now on
        out: list[Output] = []
        if cfg.tool_request != self.config.tool_request:
            out.append(SetTools(cfg.tool_request))
        self.config = cfg
        return [*out, self.event("session.updated", session=cfg.to_wire())]

    # -- input audio --------------------------------------------------------------------------------
    @property
    def _fed_ms(self) -> float:
        return self._fed_bytes * 1000 / (2 * RATE)

    @property
    def buffered_ms(self) -> int:
        """Input audio held for this connection: the manual buffer, or audio the pipeline has yet to take."""
        if self.manual:
            return len(self._buffer) * 1000 // (2 * RATE)
        return max(0, round(self._fed_ms - max(self.clock.end_ms, self._fed_floor_ms)))

    def _append(self, pcm: bytes) -> list[Output]:
        # One bound for both modes, per append and per buffer: under server VAD audio is taken in at real
        # time, so a client sending faster than that is refused here instead of growing memory (or
        # blocking the connection while the pipeline catches up).
        if self.buffered_ms + len(pcm) * 1000 / (2 * RATE) > MAX_BUFFER_S * 1000:
            what = "commit or clear it first" if self.manual else "send audio no faster than real time"
            raise _fail("input_audio_buffer_full", f"the input audio buffer holds at most {MAX_BUFFER_S:.0f} s "
                        f"({self.buffered_ms / 1000:.1f} s held): {what}", "audio")  # fmt: skip
        if self.manual:
            self._buffer += pcm
            return []
        self._fed_bytes += len(pcm)
        return [FeedAudio(pcm)]

    def _commit(self) -> list[Output]:
        """Manual commit: the buffer becomes a user item (its transcript follows when ASR is done)."""
        if not self.manual:
            raise _fail("invalid_request", "input_audio_buffer.commit is for turn_detection: null; with "
                        "server_vad the server commits each turn itself when the speaker stops")  # fmt: skip
        if not self._buffer:
            raise _fail(
                "input_audio_buffer_commit_empty", "the input audio buffer is empty: append audio first"
            )
        self._check_room()
        pcm, self._buffer = bytes(self._buffer), bytearray()
        item_id = new_id("item")
        events: list[Output] = [
            self.event("input_audio_buffer.committed", previous_item_id=self._last_item_id, item_id=item_id)
        ]
        events += self._item_added(_user_item(item_id, {"type": "input_audio", "transcript": None}))
        self._pending.append(_Pending(item_id, None))
        self._audio_s[item_id] = len(pcm) / (2 * RATE)
        events.append(Transcribe(item_id, pcm))
        return events

    def _clear(self) -> list[Output]:
        self._buffer.clear()
        self._fed_floor_ms = self._fed_ms
        return [ClearFeed(), self.event("input_audio_buffer.cleared")]

    def transcribed(self, item_id: str, text: str, *, busy: bool) -> list[Output]:
        """A committed buffer's transcript is ready (after ``Transcribe``)."""
        events: list[Output] = list(
            self._transcription_events(item_id, text, self._audio_s.pop(item_id, 0.0))
        )
        for p in self._pending:
            if p.item_id == item_id:
                p.text = text
        return events + self._maybe_start(busy)

    def transcription_failed(self, item_id: str, *, busy: bool) -> list[Output]:
        self._audio_s.pop(item_id, None)
        for p in self._pending:
            if p.item_id == item_id:
                p.text = ""
        return [self.server_error("transcription_failed", "the committed audio could not be transcribed")] + (
            self._maybe_start(busy)
        )

    def _transcription_events(self, item_id: str, text: str, audio_s: float) -> list[JSON]:
        if self.config.transcription is None:
            return []
        events = []
        if text:
            events.append(self.event("conversation.item.input_audio_transcription.delta",
                                     item_id=item_id, content_index=0, delta=text))  # fmt: skip
        events.append(self.event("conversation.item.input_audio_transcription.completed",
                                 item_id=item_id, content_index=0, transcript=text,
                                 usage={"type": "duration", "seconds": round(audio_s, 3)}))  # fmt: skip
        return events

    # -- user text ----------------------------------------------------------------------------------
    def _add_user_text(self, ev: ItemCreate) -> list[Output]:
        self._check_room()
        item_id = ev.item_id or new_id("item")
        self._pending.append(_Pending(item_id, ev.text))
        return list(self._item_added(_user_item(item_id, {"type": "input_text", "text": ev.text})))

    def _add_function_output(self, ev: FunctionOutputCreate) -> list[Output]:
        """The client's result for one of the server's function calls; ``response.create`` speaks it."""
        call = self._calls.get(ev.call_id)
        if call is None:
            raise _fail("invalid_call_id", "'item.call_id' matches no function_call of this session (or one "
                        f"too old: the last {MAX_CALLS_KEPT} are kept)", "item.call_id")  # fmt: skip
        if call.answered:
            raise _fail("duplicate_function_call_output", "that function call has an output already",
                        "item.call_id")  # fmt: skip
        self._check_room()
        call.answered = True
        item_id = ev.item_id or new_id("item")
        self._pending.append(_Pending(item_id, "", (call, ev.output)))
        item = {"id": item_id, "object": "realtime.item", "type": "function_call_output", "status": "completed",
                "call_id": ev.call_id, "output": ev.output}  # fmt: skip
        return list(self._item_added(item))

    def _check_room(self) -> None:
        if len(self._pending) >= MAX_PENDING_ITEMS:
            raise _fail("too_many_items", f"{MAX_PENDING_ITEMS} user items are waiting already: send "
                        "response.create")  # fmt: skip

    def _item_added(self, item: JSON) -> list[JSON]:
        prev, self._last_item_id = self._last_item_id, item["id"]
        return [
            self.event("conversation.item.added", previous_item_id=prev, item=item),
            self.event("conversation.item.done", previous_item_id=prev, item=item),
        ]

    # -- responses ----------------------------------------------------------------------------------
    def _response_create(self, ev: ResponseCreate, busy: bool) -> list[Output]:
        if self.response is not None or self._requested:
            active = f"response {self.response.id} is" if self.response else "a response is"
            raise _fail("conversation_already_has_active_response",
                        f"{active} still in progress (send response.cancel first)")  # fmt: skip
        if busy:
            raise _fail("turn_in_progress", "the user is speaking; the server will answer that turn")
        if not self._pending:
            raise _fail(
                "no_user_input",
                "nothing to respond to: add a user message (conversation.item.create with input_text) "
                "or commit audio (input_audio_buffer.commit) first",
            )
        if ev.tools is not None:
            self._check_schemas(ev.tools, "response")
        tools = self.config.tools if ev.tools is None else ev.tools
        choice = ev.tool_choice if ev.tool_choice is not None else self.config.tool_choice
        if ev.tool_choice is None and isinstance(choice, dict) and ev.tools is not None:
            choice = "auto"  # the session's named function need not be among this response's tools
        self._check_tools(tools, choice, "response")
        self._requested_tools = ToolRequest(tools, choice)
        self._requested = True
        return self._maybe_start(busy)

    def _maybe_start(self, busy: bool) -> list[Output]:
        """A requested response starts once every pending item has its text."""
        if not self._requested or any(p.text is None for p in self._pending):
            return []
        self._requested = False
        if busy or self.response is not None:  # a turn began while the audio was transcribed
            return [self.error(_fail("turn_in_progress", "a turn started while the input was transcribed; "
                                     "send response.create again when it is over"))]  # fmt: skip
        pending, self._pending = self._pending, []
        text = " ".join(t for p in pending if (t := (p.text or "").strip()))
        results = [p.result for p in pending if p.result is not None]
        if results:
            # Function outputs are answered by saying them: the embedded model is not trained to phrase a
            # tool's result (given in its context or as its draft, it still answered the request it
            # cannot serve). The history gets the request that led to the call, and what was said.
            say = " ".join(spoken_result(output) for _, output in results)
            return [StartReply(text or results[-1][0].request, pending[-1].item_id, None, say)]
        if not text:
            return [
                self.error(_fail("empty_user_input", "the committed audio contained no recognisable speech"))
            ]
        tools = self._requested_tools
        return [StartReply(text, pending[-1].item_id, tools if tools.offered else None)]

    def begin_response(self, turn: int, user_item_id: str | None) -> list[JSON]:
        """A response for pipeline turn ``turn`` starts (server VAD commit, or after ``StartReply``)."""
        t = self._turns.setdefault(turn, _Turn(user_item_id))
        self.response = _Response(new_id("resp"), turn, new_id("item"), user_item_id)
        events = [self.event("response.created", response=self._response_wire(self.response, "in_progress"))]
        if t.trimmed is not None:
            events.append(self._trimmed_event(t.trimmed))
            t.trimmed = None
        return events

    def _response_cancel(self, ev: ResponseCancel) -> list[Output]:
        resp = self.response
        if resp is None:
            if self._requested:  # still waiting for its transcripts: nothing was created yet
                self._requested = False
                return []
            raise _fail("response_cancel_not_active", "there is no response in progress to cancel")
        if ev.response_id is not None and ev.response_id != resp.id:
            raise _fail("invalid_value", "'response_id' is not the response in progress "
                        f"({resp.id})", "response_id")  # fmt: skip
        resp.cancel_reason = "client_cancelled"
        return [CancelReply()]

    # -- reply audio --------------------------------------------------------------------------------
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

    def _finish_response(
        self, resp: _Response, interrupted: bool, call: ToolCallDecided | None = None
    ) -> list[JSON]:
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
        elif call is not None and status == "completed":
            item = self._call_item(resp, call)
            events += self._call_events(resp, item)
            output.append(item)
        events.append(
            self.event("response.done", response=self._response_wire(resp, status, details, output))
        )
        self.response = None
        return events

    def _call_item(self, resp: _Response, call: ToolCallDecided) -> JSON:
        """The ``function_call`` item of a response whose reply is a call (its call is kept to be answered)."""
        call_id = new_id("call")
        self._calls[call_id] = _Call(resp.item_id, call.name, call.request)
        while len(self._calls) > MAX_CALLS_KEPT:
            self._calls.popitem(last=False)
        return {"id": resp.item_id, "object": "realtime.item", "type": "function_call", "status": "completed",
                "name": call.name, "call_id": call_id, "arguments": call.arguments}  # fmt: skip

    def _call_events(self, resp: _Response, item: JSON) -> list[JSON]:
        """A call's output item, streamed as the reference API does. The arguments are decoded at once
        (every slot in parallel), so they arrive as one delta."""
        prev, self._last_item_id = self._last_item_id, item["id"]
        added = {**item, "status": "in_progress", "arguments": ""}
        ids = {"response_id": resp.id, "item_id": item["id"], "output_index": 0, "call_id": item["call_id"]}
        return [
            self.event("response.output_item.added", response_id=resp.id, output_index=0, item=added),
            self.event("conversation.item.added", previous_item_id=prev, item=added),
            self.event("response.function_call_arguments.delta", **ids, delta=item["arguments"]),
            self.event("response.function_call_arguments.done", **ids, name=item["name"],
                       arguments=item["arguments"]),
            self.event("response.output_item.done", response_id=resp.id, output_index=0, item=item),
            self.event("conversation.item.done", previous_item_id=prev, item=item),
        ]  # fmt: skip

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

    # -- truncation ---------------------------------------------------------------------------------
    def _truncate(self, ev: ItemTruncate) -> list[Output]:
        """The client says how much of the latest assistant item was heard (after a barge-in)."""
        resp = self.last_reply
        if resp is None or resp.item_id != ev.item_id:
            active = self.response
            if active is not None and active.item_id == ev.item_id:
                raise _fail("item_truncate_in_progress", "the response is still in progress: send response.cancel "
                            "first, then truncate", "item_id")  # fmt: skip
            raise _fail("item_truncate_invalid_item_id", "'item_id' is not the latest assistant audio item",
                        "item_id")  # fmt: skip
        total_s = sum(d for _, d in resp.clauses)
        sent_ms = round(total_s * 1000)
        if ev.audio_end_ms > sent_ms:
            raise _fail("invalid_value", f"'audio_end_ms' {ev.audio_end_ms} is beyond the item's {sent_ms} ms of audio",
                        "audio_end_ms")  # fmt: skip
        out: list[Output] = [self.event("conversation.item.truncated", item_id=ev.item_id,
                                        content_index=ev.content_index, audio_end_ms=ev.audio_end_ms)]  # fmt: skip
        if self._history_item == resp.item_id:  # the history's latest exchange is this reply's: revise it
            heard_s = total_s if ev.audio_end_ms >= sent_ms - 1 else ev.audio_end_ms / 1000  # whole ms: all
            out.append(ReviseReply(heard_text(resp.clauses, heard_s)))
        return out

    # -- the pipeline's events ----------------------------------------------------------------------
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
                turn.trimmed = None
                turn.call = None
            return []
        if isinstance(ev, ToolCallDecided):
            if turn is not None:  # sent with the response when the turn ends (it may still be speculative)
                turn.call = ev
            return []
        if isinstance(ev, FinalTranscript):
            if turn is None or turn.user_item_id is None:
                return []
            turn.transcript, turn.audio_s = ev.text, ev.audio_s
            return self._maybe_transcript(turn)
        if isinstance(ev, EndpointCommitted):
            return self._committed(ev, turn)
        if isinstance(ev, TTSChunk):
            if turn is not None:
                turn.clauses.append(ev.text)
            return []
        if isinstance(ev, PromptTrimmed):
            if self.response is not None and self.response.turn == ev.turn:
                return [self._trimmed_event(ev)]
            if turn is not None:  # a speculative reply: told with its response, if it is committed
                turn.trimmed = ev
            return []
        if isinstance(ev, TurnMerged):
            return self._merged(turn, ev)
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

    def _trimmed_event(self, ev: PromptTrimmed) -> JSON:
        resp = self.response
        return self.event("quickturn.input_truncated", response_id=resp.id if resp else None,
                          item_id=resp.user_item_id if resp else None, dropped_messages=ev.dropped_messages,
                          cut_tokens=ev.cut_tokens, prompt_tokens=ev.prompt_tokens)  # fmt: skip

    def _speech_started(self, ev: SpeechStarted) -> list[JSON]:
        item_id = new_id("item")
        start_ms = self.clock.ms_at(ev.audio_start_t)
        self._turns[ev.turn] = _Turn(item_id, audio_start_ms=start_ms)
        while len(self._turns) > MAX_TURNS_KEPT:
            self._turns.pop(next(iter(self._turns)))
        return [self.event("input_audio_buffer.speech_started", audio_start_ms=start_ms, item_id=item_id)]

    def _merged(self, turn: _Turn | None, ev: TurnMerged) -> list[JSON]:
        """The user went on after the turn was committed: the response is cancelled, the turn's items
        are deleted, and the same speech continues as a new input item (answered once, as a whole)."""
        if turn is None:
            return []
        events: list[JSON] = []
        resp = self.response if self.response is not None and self.response.turn == ev.turn else None
        if resp is not None:
            resp.cancel_reason = resp.cancel_reason or "turn_detected"
            events += self._finish_response(resp, interrupted=True)
            if resp.output_started:
                events.append(self.event("conversation.item.deleted", item_id=resp.item_id))
                if self.last_reply is resp:
                    self.last_reply = None
        if turn.committed and turn.user_item_id is not None:
            events.append(self.event("conversation.item.deleted", item_id=turn.user_item_id))
            self._last_item_id = turn.previous_item_id
        item_id = new_id("item")
        self._turns[ev.turn] = _Turn(item_id, audio_start_ms=turn.audio_start_ms)
        events.append(self.event("input_audio_buffer.speech_started", audio_start_ms=turn.audio_start_ms,
                                 item_id=item_id))  # fmt: skip
        return events

    def _committed(self, ev: EndpointCommitted, turn: _Turn | None) -> list[JSON]:
        if turn is None or turn.user_item_id is None:
            return []
        turn.committed = True
        turn.previous_item_id = self._last_item_id
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
        return self._transcription_events(turn.user_item_id, turn.transcript, turn.audio_s)

    def _turn_finished(self, ev: LatencyReport) -> list[JSON]:
        turn = self._turns.pop(ev.turn, None)
        resp = self.response if self.response is not None and self.response.turn == ev.turn else None
        call = turn.call if turn is not None else None
        events = self._finish_response(resp, ev.interrupted, call) if resp is not None else []
        if ev.transcript and call is None:  # the pipeline added this exchange to its history (a call's
            # request joins the history with the reply that answers it)
            self._history_item = resp.item_id if resp is not None and resp.output_started else None
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
            merges=ev.merges,
            interrupted=ev.interrupted,
            reply_candidate=ev.reply_candidate,  # the reply gate's choice and why (agent/gated_reply.py)
            gate_reason=ev.gate_reason,
        ))  # fmt: skip
        return events

    # -- end ----------------------------------------------------------------------------------------
    def close(self) -> None:
        """The client left: forget its input (nothing more is built for it)."""
        self._buffer = bytearray()
        self._pending.clear()
        self._audio_s.clear()
        self._requested = False
        self._fed_floor_ms = self._fed_ms


def _tool_wire(tool: Tool) -> JSON:
    return {"type": "function", "name": tool.name, "description": tool.description,
            "parameters": dict(tool.parameters)}  # fmt: skip


def _user_item(item_id: str, content: JSON) -> JSON:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [content],
    }
