"""The one vocabulary of a turn: small typed events with monotonic timestamps.

Every stage emits these; ``talk``, ``serve``, ``profile``, the demo and MQTT all consume the same
stream, so latency is measured once, from the same clock (``time.monotonic()``), everywhere.
Voice-to-voice latency runs from ``SpeechPaused.last_voiced_t`` (the end of the last voiced frame) to
``FirstReplySample.t`` (the first reply sample handed to the output device or sink).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


def now() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"
    turn: int
    t: float

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, **asdict(self)}


@dataclass(frozen=True)
class SpeechStarted(Event):
    kind: ClassVar[str] = "speech.started"
    audio_start_t: float  # when the first voiced frame (incl. pre-roll) was captured


@dataclass(frozen=True)
class SpeechPaused(Event):
    """Silence began after speech; speculative processing starts now."""

    kind: ClassVar[str] = "speech.paused"
    last_voiced_t: float  # capture time of the end of the last voiced frame


@dataclass(frozen=True)
class SpeechResumed(Event):
    kind: ClassVar[str] = "speech.resumed"
    pause_ms: float


@dataclass(frozen=True)
class PartialTranscript(Event):
    kind: ClassVar[str] = "transcript.partial"
    committed: str
    tentative: str


@dataclass(frozen=True)
class FinalTranscript(Event):
    kind: ClassVar[str] = "transcript.final"
    text: str
    audio_s: float
    asr_ms: float
    speculative: bool


@dataclass(frozen=True)
class EndOfTurnEstimate(Event):
    """How sure the end-of-turn policy is that the user finished, and the silence it now requires."""

    kind: ClassVar[str] = "endpoint.estimate"
    text: str
    finished_p: float | None  # None: no semantic model (the trailing-word rule decided)
    required_ms: float


@dataclass(frozen=True)
class EndpointCommitted(Event):
    kind: ClassVar[str] = "endpoint.committed"
    last_voiced_t: float
    hangover_ms: float  # the silence that ended the turn
    required_ms: float = 0.0  # the silence the end-of-turn policy asked for (0: forced, e.g. too long)


@dataclass(frozen=True)
class SpeculationDiscarded(Event):
    kind: ClassVar[str] = "speculation.discarded"
    reason: str
    wasted_ms: float


@dataclass(frozen=True)
class TurnMerged(Event):
    """The user went on after the turn was committed: its reply is dropped and the turn continues."""

    kind: ClassVar[str] = "turn.merged"
    gap_ms: float  # silence between the committed end of speech and the continuation
    playing: bool  # the reply had started playing (else it was still being prepared)
    dropped_reply: str
    heard_s: float  # how much of the dropped reply was played


@dataclass(frozen=True)
class LMStarted(Event):
    kind: ClassVar[str] = "lm.started"
    model: str


@dataclass(frozen=True)
class PromptTrimmed(Event):
    """The reply's prompt did not fit the LM's context: the oldest history and, if still too long, the
    start of the user's message were left out of it (the history itself keeps them)."""

    kind: ClassVar[str] = "lm.prompt_trimmed"
    dropped_messages: int  # history messages left out, oldest first
    cut_tokens: int  # tokens cut from the start of the user's message
    prompt_tokens: int  # the prompt as the LM got it


@dataclass(frozen=True)
class LMBlock(Event):
    kind: ClassVar[str] = "lm.block"
    index: int
    text: str


@dataclass(frozen=True)
class LMFinished(Event):
    kind: ClassVar[str] = "lm.finished"
    text: str
    steps: int
    tokens: int
    forwards: int
    lm_ms: float
    prefill_ms: float


@dataclass(frozen=True)
class Grounded(Event):
    """An offline source answered the request (agent/sources): what it said and what was spoken."""

    kind: ClassVar[str] = "reply.grounded"
    question_kind: str  # "capital", "conversion", "joke", ...
    coverage: str  # "answer" | "unknown" (a covered kind of question whose answer no source has)
    source: str  # "countryinfo", "pint", "quickturn", "pyjokes"
    sentence: str  # the source's sentence
    spoken_by: str  # "model" (its phrasing said the fact) | "source" (the source's sentence)
    model_text: str  # the model's reply, "" when it was not asked (lm.phrase_grounded = false)


@dataclass(frozen=True)
class ReplyGated(Event):
    """The reply gate judged the reply before any of it was spoken (agent/gated_reply.py): which
    candidate of the fallback chain is spoken, and why."""

    kind: ClassVar[str] = "reply.gated"
    candidate: str  # model | draft | redecode | recall | honest
    reason: str  # "passed", or what failed each candidate before it ("model: nonwords+repeats")
    score: float  # P(garbled or wrong) of the model's reply
    verdict: str  # the model's reply: "passed" or "blocked"
    signals: dict[str, float] = field(default_factory=dict)  # the model reply's signals (non-zero ones)
    tried: list[dict[str, Any]] = field(default_factory=list)  # every candidate judged: text, score, passed
    gate_ms: float = 0.0  # judging alone
    text: str = ""  # what is spoken


@dataclass(frozen=True)
class TTSChunk(Event):
    kind: ClassVar[str] = "tts.chunk"
    index: int
    text: str
    synth_ms: float
    audio_s: float


@dataclass(frozen=True)
class FirstReplySample(Event):
    kind: ClassVar[str] = "playback.first_sample"


@dataclass(frozen=True)
class PlaybackFinished(Event):
    kind: ClassVar[str] = "playback.finished"
    heard_text: str
    heard_s: float


@dataclass(frozen=True)
class BargeIn(Event):
    kind: ClassVar[str] = "barge_in"
    speech_t: float  # when the interrupting speech started
    heard_text: str
    heard_s: float
    stop_ms: float  # barge-in decision → output silent


@dataclass(frozen=True)
class BargeInIgnored(Event):
    kind: ClassVar[str] = "barge_in.ignored"
    reason: str  # e.g. "backchannel: mm-hm"
    text: str


@dataclass(frozen=True)
class ToolCallDecided(Event):
    """The reply model chose to call a tool instead of speaking (the turn says nothing itself)."""

    kind: ClassVar[str] = "tool.call"
    name: str
    arguments: str  # JSON object text, valid for the tool's schema
    request: str  # the user's words the call answers (a follow-up reply answers them with the result)


@dataclass(frozen=True)
class StageError(Event):
    kind: ClassVar[str] = "error"
    stage: str
    message: str


@dataclass(frozen=True)
class LatencyReport(Event):
    """quickturn.latency — one per finished turn; the WebSocket API and MQTT publish it too."""

    kind: ClassVar[str] = "quickturn.latency"
    transcript: str
    reply: str
    stages_ms: dict[str, float] = field(default_factory=dict)
    v2v_ms: float | None = None
    discarded_speculations: int = 0
    merges: int = 0  # times the user went on after the turn was committed (one reply to the whole)
    interrupted: bool = False
    reply_candidate: str = ""  # the reply gate's choice (agent/gated_reply.CANDIDATES); "" = no gate
    gate_reason: str = ""  # why that candidate ("passed", or what failed the ones before it)


# -- skills (agent/skills/, agent/actions.py) -------------------------------------------------------


@dataclass(frozen=True)
class ToolCalled(Event):
    """The tool caller chose a call for this turn (it runs when the turn is committed)."""

    kind: ClassVar[str] = "tool.called"
    name: str
    arguments: dict[str, Any]
    confidence: float
    decide_ms: float
    ok: bool  # False: the skill could not do it (it says why)
    say: str


@dataclass(frozen=True)
class TimerSet(Event):
    kind: ClassVar[str] = "timer.set"
    timer_id: int
    name: str
    message: str  # a reminder's text ("" for a plain timer)
    duration_s: float
    due_t: float  # monotonic


@dataclass(frozen=True)
class TimerCancelled(Event):
    kind: ClassVar[str] = "timer.cancelled"
    timer_id: int
    name: str


@dataclass(frozen=True)
class TimerFired(Event):
    kind: ClassVar[str] = "timer.fired"
    timer_id: int
    name: str
    message: str
    late_ms: float  # fired this long after its due time (the target: < 100 ms)


@dataclass(frozen=True)
class TimerAcknowledged(Event):
    """A ringing timer stopped: the user spoke ("stop", "okay") or it rang unanswered for a minute."""

    kind: ClassVar[str] = "timer.acknowledged"
    timer_id: int
    name: str
    how: str  # "user" | "unanswered"


@dataclass(frozen=True)
class DeviceCommand(Event):
    """A home-control command queued for (``sent`` False) or delivered to (True) the MQTT broker."""

    kind: ClassVar[str] = "device.command"
    device: str
    action: str
    topic: str
    payload: str
    sent: bool


@dataclass(frozen=True)
class DeviceCommandFailed(Event):
    kind: ClassVar[str] = "device.command_failed"
    device: str
    action: str
    reason: str  # "queue full" | "expired"


@dataclass(frozen=True)
class Announcement(Event):
    """The agent speaks without being asked: a timer ringing, a Home Assistant ``say``, an error."""

    kind: ClassVar[str] = "announcement"
    text: str
    source: str  # "timer" | "home_assistant" | "home"


@dataclass(frozen=True)
class MuteChanged(Event):
    """The microphone was muted or unmuted (Home Assistant's mute switch)."""

    kind: ClassVar[str] = "mute.changed"
    muted: bool


Listener = Callable[[Event], None]


class EventBus:
    """Fan-out of events to sync listeners and bounded async queues.

    Publishing is cheap (append + call): profiling overhead stays far below a millisecond per turn.
    Async consumers that fall behind lose their oldest events rather than blocking the pipeline.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._queues: list[asyncio.Queue[Event]] = []
        self.dropped = 0

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def queue(self, maxsize: int = 1000) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self._queues.append(q)
        return q

    def unqueue(self, q: asyncio.Queue[Event]) -> None:
        if q in self._queues:
            self._queues.remove(q)

    def publish(self, event: Event) -> None:
        for listener in list(self._listeners):
            listener(event)
        for q in self._queues:
            if q.full():
                q.get_nowait()
                self.dropped += 1
            q.put_nowait(event)
