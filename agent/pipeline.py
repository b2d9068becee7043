"""The voice turn pipeline: audio frames in → VAD → streaming ASR → reply model → TTS → audio out.

One ``VoicePipeline`` runs every mode (``talk``, ``serve``, ``demo``, ``profile``); only the source of
frames and the sink differ. The turn-taking decisions (when a turn starts, pauses, ends, continues after
a premature end, or interrupts the agent) are the sans-I/O ``TurnTracker``'s (agent/turns.py); the
pipeline feeds it every frame and carries out its actions.

Speculative turn processing: the moment silence starts (or one frame sooner, on a last voiced frame
whose speech probability is already falling), final ASR → LM → first TTS clause run in the
background; nothing plays until the tracker commits the end of the turn, and everything is thrown
away if the user speaks again. Model calls run in worker threads (one for ASR, one for LM + TTS), so
the event loop only moves frames and events.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from audio.aec import EchoCanceller, PlaybackReference
from audio.resample import resample
from audio.sinks import AudioSink
from audio.sources import AudioFrame
from audio.vad import SileroVAD, SpeechDetector
from dlm_core.tools import ToolCall

from .asr import SpeechRecognizer, StreamingTranscriber, Transcript
from .config import QuickturnConfig
from .end_of_turn import EndOfTurnModel
from .events import (
    Announcement,
    BargeIn,
    BargeInIgnored,
    EndOfTurnEstimate,
    EndpointCommitted,
    Event,
    EventBus,
    FinalTranscript,
    FirstReplySample,
    Grounded,
    LatencyReport,
    LMBlock,
    LMFinished,
    LMStarted,
    MuteChanged,
    PartialTranscript,
    PlaybackFinished,
    PromptTrimmed,
    SpeculationDiscarded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    StageError,
    ToolCallDecided,
    TTSChunk,
    TurnMerged,
    now,
)
from .gated_reply import gate_event, with_gate
from .latency import summarize_turn
from .prompt import Conversation
from .reply import ReplyModel, build_reply_model
from .text_split import heard_text
from .tool_calls import ToolDecider, ToolRequest, load_tool_caller
from .tts import SynthChunk, Synthesizer
from .turns import (
    Action,
    CheckInterruption,
    Commit,
    Discard,
    IgnoreInterruption,
    Listen,
    Merge,
    Paused,
    Resumed,
    Speculate,
    StartUtterance,
    TurnPolicy,
    TurnState,
    TurnTracker,
)
from .turns import BargeIn as BargeInAction

if TYPE_CHECKING:
    from .actions import Actions


@dataclass
class Services:
    """The loaded models, shared by every turn (and by every session of a server)."""

    asr: SpeechRecognizer
    tts: Synthesizer
    reply: ReplyModel
    vad_factory: Callable[[], SileroVAD]
    end_of_turn: EndOfTurnModel | None = None  # P(the user finished | words so far)
    tool_caller: ToolDecider | None = None  # "speak or call" for turns offered tools (None: cannot)

    @classmethod
    def load(cls, cfg: QuickturnConfig, reply_kind: str = "diffusion", warmup: bool = True) -> Services:
        """Load and warm every model (blocking: call it from a thread in async code)."""
        asr = load_asr(cfg, warmup)
        tts = load_tts(cfg, warmup)
        reply = with_gate(build_reply_model(cfg.lm, reply_kind), cfg.gate)  # nothing garbled is spoken
        if warmup:
            reply.warmup()
        return cls(asr, tts, reply, vad_factory(cfg), load_end_of_turn(cfg), load_tool_caller(reply))


def load_asr(cfg: QuickturnConfig, warmup: bool = True) -> SpeechRecognizer:
    return SpeechRecognizer(
        cfg.asr.model_path or None,
        device=cfg.asr.device,
        compute_type=None if cfg.asr.compute_type == "auto" else cfg.asr.compute_type,
        cpu_threads=cfg.asr.threads,
        workers=cfg.asr.workers,
        window_s=cfg.asr.window_s,
        beam_size=cfg.asr.beam_size,
        warmup=warmup,
    )


def load_tts(cfg: QuickturnConfig, warmup: bool = True) -> Synthesizer:
    return Synthesizer(
        cfg.tts.model_path or None,
        cfg.tts.config_path or None,
        threads=cfg.tts.threads,
        device=cfg.tts.device,
        target_rms=cfg.tts.target_rms,
        length_scale=cfg.tts.length_scale,
        first_min_words=cfg.tts.first_min_words,
        warmup=warmup,
    )


def load_end_of_turn(cfg: QuickturnConfig) -> EndOfTurnModel | None:
    return EndOfTurnModel.load() if cfg.endpoint.semantic else None


def vad_factory(cfg: QuickturnConfig) -> Callable[[], SileroVAD]:
    rate = cfg.audio.sample_rate
    return lambda: SileroVAD(rate, threads=1)


@dataclass
class _Utterance:
    """The user's speech being collected for one turn (the tracker decides when it ends)."""

    turn: int
    frames: list[np.ndarray] = field(default_factory=list)
    transcriber: StreamingTranscriber | None = None
    fed: int = 0  # frames already handed to the streaming transcriber
    partial_busy: bool = False
    last_partial_frames: int = 0

    def audio(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, np.float32)


@dataclass
class _Reply:
    """Producing (possibly speculatively) and playing one reply."""

    turn: int
    started_t: float
    attempt: int = 0  # the tracker's id of a speculative attempt (0: committed from the start)
    cancel: threading.Event = field(default_factory=threading.Event)
    chunks: asyncio.Queue = field(default_factory=asyncio.Queue)
    commit: asyncio.Event = field(default_factory=asyncio.Event)
    transcript: str | None = None
    text: str = ""
    played: list[SynthChunk] = field(default_factory=list)
    tasks: list[asyncio.Task] = field(default_factory=list)
    producing_done: bool = False
    first_sample_t: float | None = None
    say: str | None = None  # words to say as they are (an announcement, a tool's result), no model
    on_commit: Callable[[], list[Event]] | None = None  # a skill's action, run once on commit
    tools: ToolRequest | None = None  # the tools this reply may call instead of speaking
    tool_call: ToolCall | None = None  # the call decided instead of a spoken reply


class VoicePipeline:
    def __init__(
        self,
        cfg: QuickturnConfig,
        services: Services,
        sink: AudioSink,
        bus: EventBus | None = None,
        *,
        echo_canceller: EchoCanceller | None = None,
        reference: PlaybackReference | None = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.cfg = cfg
        self.services = services
        self.sink = sink
        self.bus = bus or EventBus()
        self.aec = echo_canceller
        self.reference = reference
        self.clock = clock
        self.conversation = Conversation(cfg.agent.name, cfg.agent.history_turns)
        self.vad = services.vad_factory()
        frame_ms = cfg.audio.frame_ms
        self.frame_s = frame_ms / 1000
        self.detector = SpeechDetector(
            cfg.vad.threshold_on, cfg.vad.threshold_off, cfg.vad.min_speech_ms, frame_ms
        )
        self.tracker = TurnTracker(TurnPolicy.from_config(cfg, self.detector.min_speech_frames))
        # The last frames heard: the pre-roll of an utterance or of speech over the reply.
        self._recent: collections.deque[np.ndarray] = collections.deque(
            maxlen=self.tracker.policy.preroll_frames
        )
        self._asr_pool = ThreadPoolExecutor(1, thread_name_prefix="asr")
        # Partials on their own thread: with asr.workers = 2 the final pass runs beside a partial
        # still in flight; with 1 the recognizer serialises them as before.
        self._partial_pool = ThreadPoolExecutor(1, thread_name_prefix="asr-partial")
        self._reply_pool = ThreadPoolExecutor(1, thread_name_prefix="reply")
        self.reply_model = services.reply.for_session(self)  # a server's batched model: this session's view
        self._utt: _Utterance | None = None
        self._reply: _Reply | None = None
        self._interruption: list[np.ndarray] | None = None  # speech over the reply
        self._turn_events: list[Event] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.idle = asyncio.Event()
        self.idle.set()
        self.turns_done = 0
        self.keep_reply_audio = False  # demo: keep each reply's audio in reply_audio[turn]
        self.reply_audio: dict[int, list[SynthChunk]] = {}
        self.actions: Actions | None = None  # skills (agent/actions.py), when tools are enabled
        self.muted = False  # the microphone is ignored (Home Assistant's mute switch)
        self._announcements: collections.deque[tuple[str, str]] = collections.deque(maxlen=8)
        self.tools: ToolRequest | None = None  # tools offered to spoken turns (a Realtime session's)
        sink.on_first_sample = self._from_thread(self._on_first_sample)
        sink.on_drained = self._from_thread(self._on_drained)

    @property
    def state(self) -> TurnState:
        return self.tracker.state

    @property
    def _turn(self) -> int:
        return self.tracker.turn

    # -- plumbing ------------------------------------------------------------------------------------
    def _from_thread(self, fn: Callable[[float], None]) -> Callable[[float], None]:
        def call(t: float) -> None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(fn, t)

        return call

    def emit(self, event: Event) -> None:
        if event.turn == self._turn:
            self._turn_events.append(event)
        self.bus.publish(event)

    def _emit_threadsafe(self, event: Event) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.emit, event)

    def _emit_for_reply(self, reply: _Reply, event: Event) -> None:
        """From the worker thread: emit unless the reply was discarded by the time the loop runs it.

        A cancelled attempt's worker finishes its current block before it sees the cancel; without
        this check its LM/TTS events would land after ``SpeculationDiscarded`` and be taken for the
        committed attempt's (``latency.summarize_turn`` keeps only events after the last discard).
        """
        assert self._loop is not None

        def emit() -> None:
            if not reply.cancel.is_set():
                self.emit(event)

        self._loop.call_soon_threadsafe(emit)

    async def _in_thread(self, pool: ThreadPoolExecutor, fn, *args):
        assert self._loop is not None
        return await self._loop.run_in_executor(pool, fn, *args)

    def close(self) -> None:
        if self._reply is not None:
            self._reply.cancel.set()
        self._asr_pool.shutdown(wait=False, cancel_futures=True)
        self._partial_pool.shutdown(wait=False, cancel_futures=True)
        self._reply_pool.shutdown(wait=False, cancel_futures=True)
        self.reply_model.release()

    # -- main loop -----------------------------------------------------------------------------------
    async def run(self, frames: AsyncIterator[AudioFrame]) -> None:
        """Process frames until the source ends (or the task is cancelled)."""
        self._loop = asyncio.get_running_loop()
        try:
            async for frame in frames:
                self.process_frame(frame)
        finally:
            for task in self._reply.tasks if self._reply else ():
                task.cancel()

    def process_frame(self, frame: AudioFrame) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        x = heard = frame.samples
        echo = False
        if self.aec is not None and self.reference is not None:
            x = self.aec.process(x, self.reference.read_next(frame.t - frame.duration, len(x)))
            echo = self.aec.may_be_echo(x)  # what is left may be the agent's own voice: not speech
            heard = self.aec.near_end_audio  # for ASR: the user whole (x is for the VAD, echo-free)
        if self.muted:
            x = heard = np.zeros_like(x)  # heard as silence: a turn in progress ends as if the user stopped
        prob = self.vad.probability(x)
        decision = self.detector.update(0.0 if echo else prob)
        self._recent.append(heard)
        if self._utt is not None:
            self._utt.frames.append(heard)
        if self._interruption is not None:
            self._interruption.append(heard)
        tracker = self.tracker
        actions = tracker.frame(frame.t, decision.is_speech, decision.prob, decision.event == "start")
        if tracker.interrupting and self._interruption is None:  # speech over the reply began
            self._interruption = list(self._recent)[-tracker.interruption_preroll :]
        self._apply(actions)
        if self._utt is not None and tracker.state is TurnState.USER_SPEAKING and decision.is_speech:
            self._maybe_partial(self._utt)

    def _apply(self, actions: list[Action]) -> None:
        """Carry out the tracker's decisions (I/O: models, the sink, events)."""
        for a in actions:
            if isinstance(a, StartUtterance):
                self._start_utterance(a)
            elif isinstance(a, Speculate):
                assert self._utt is not None
                self._abandon_partial(self._utt)
                self._start_reply(self._utt, attempt=a.attempt)
            elif isinstance(a, Discard):
                self._discard_reply(a.reason)
            elif isinstance(a, Paused):
                self.emit(SpeechPaused(a.turn, now(), a.last_voiced_t))
            elif isinstance(a, Resumed):
                self.emit(SpeechResumed(a.turn, now(), a.pause_ms))
            elif isinstance(a, Commit):
                self._commit(a)
            elif isinstance(a, CheckInterruption):
                self._check_interruption(a)
            elif isinstance(a, IgnoreInterruption):
                self._interruption = None
                self.emit(BargeInIgnored(a.turn, now(), a.reason, a.text))
            elif isinstance(a, Merge):
                self._merge(a)
            elif isinstance(a, BargeInAction):
                self._barge_in(a)
            elif isinstance(a, Listen):
                self._utt = None
                self._interruption = None
                self.detector.reset()
                self.idle.set()
                if self._announcements:
                    asyncio.get_running_loop().call_soon(self._next_announcement)

    # -- user speech ---------------------------------------------------------------------------------
    def _start_utterance(self, a: StartUtterance) -> None:
        # Counted, not timed: frames can arrive in bursts with close timestamps.
        if a.preroll_frames is None and self._interruption is not None:
            frames = list(self._interruption)
        else:
            frames = list(self._recent)[-(a.preroll_frames or 1) :]
        self._interruption = None
        self._recent.clear()
        self._turn_events = []
        self.idle.clear()
        self._utt = _Utterance(a.turn, frames=frames)
        if self.cfg.asr.partials:
            self._utt.transcriber = self.services.asr.stream()
        self.emit(SpeechStarted(a.turn, now(), a.start_t))
        if self.cfg.lm.prefill_while_listening:  # cache history while the user talks
            messages = [m.as_dict() for m in self.conversation.messages_for("", self.clock())[:-1]]
            self._reply_pool.submit(self._safe_prefill, messages)

    def _safe_prefill(self, messages) -> None:
        try:
            self.reply_model.prefill(messages)
        except Exception as exc:  # a failed prefill only costs speed; the reply prefills again
            self._emit_threadsafe(StageError(self._turn, now(), "lm.prefill", str(exc)))

    def _abandon_partial(self, utt: _Utterance) -> None:
        if utt.transcriber is not None and utt.partial_busy:
            # A partial still decoding would hold the ASR thread the final pass now needs: its
            # decoder is skipped (the encoder, already running, cannot be interrupted).
            utt.transcriber.abandon_partial()

    def _maybe_partial(self, utt: _Utterance) -> None:
        if utt.transcriber is None or utt.partial_busy:
            return
        interval = self.cfg.asr.partial_interval_ms / 1000
        if (len(utt.frames) - utt.last_partial_frames) * self.frame_s < interval:
            return
        new = np.concatenate(utt.frames[utt.fed :])
        utt.fed = len(utt.frames)
        utt.last_partial_frames = len(utt.frames)
        utt.partial_busy = True
        transcriber = utt.transcriber
        transcriber.resume_partials()

        def work():
            transcriber.feed(new)  # the transcriber is touched only from the partials' thread
            partial = transcriber.partial()
            # Draft retrieval by meaning encodes the words so far now, not after the user stops.
            self.services.reply.prepare_text(partial.text)
            return partial

        async def run():
            try:
                partial = await self._in_thread(self._partial_pool, work)
                if self._utt is utt and self.state in (TurnState.USER_SPEAKING, TurnState.ENDPOINTING):
                    self.emit(PartialTranscript(utt.turn, now(), partial.committed, partial.tentative))
            except Exception as exc:
                self.emit(StageError(utt.turn, now(), "asr.partial", str(exc)))
            finally:
                utt.partial_busy = False

        asyncio.ensure_future(run())

    # -- entry points for servers (typed turns, manually committed audio, cancel) ------------------------
    @property
    def busy(self) -> bool:
        return self.tracker.busy

    async def transcribe(self, samples: np.ndarray, rate: int) -> str:
        """ASR of a manually committed buffer, on the pipeline's ASR thread."""
        self._loop = asyncio.get_running_loop()
        target = self.cfg.audio.sample_rate

        def work() -> str:
            return self.services.asr.transcribe(resample(samples, rate, target)).text

        return await self._in_thread(self._asr_pool, work)

    def respond_to_text(self, text: str, tools: ToolRequest | None = None, say: str | None = None) -> int:
        """Start a reply to ``text`` now, as a committed turn; returns its turn number. ``tools``: it may
        call one of these instead of speaking; ``say``: the reply is these words (no model)."""
        turn = self.tracker.text_turn()  # raises while a turn is in progress
        self._loop = asyncio.get_running_loop()
        self._turn_events = []
        self.idle.clear()
        reply = _Reply(turn, now(), tools=tools, say=say)
        self._reply = reply
        reply.tasks.append(asyncio.ensure_future(self._produce(reply, None, False, text)))
        reply.tasks.append(asyncio.ensure_future(self._play(reply)))
        reply.commit.set()
        return reply.turn

    def cancel_reply(self) -> bool:
        """Stop the committed reply like a barge-in (e.g. a client's ``response.cancel``), then listen."""
        reply = self._reply
        if reply is None or not self.tracker.cancel():
            return False
        heard_s = self._stop_reply(reply)
        self._finish_turn(reply, _heard(reply, heard_s), interrupted=True)
        self._apply([Listen(reply.turn)])
        return True

    # -- replies -------------------------------------------------------------------------------------
    def _start_reply(self, utt: _Utterance, attempt: int = 0) -> _Reply:
        reply = _Reply(utt.turn, now(), attempt, tools=self.tools)
        self._reply = reply
        audio = utt.audio()
        reply.tasks.append(asyncio.ensure_future(self._produce(reply, audio, speculative=attempt > 0)))
        reply.tasks.append(asyncio.ensure_future(self._play(reply)))
        return reply

    def _discard_reply(self, reason: str) -> None:
        reply = self._reply
        if reply is None:
            return
        reply.cancel.set()
        for task in reply.tasks:
            task.cancel()
        self._reply = None
        self.emit(SpeculationDiscarded(reply.turn, now(), reason, (now() - reply.started_t) * 1e3))

    def _stop_reply(self, reply: _Reply) -> float:
        """Silence the output and cancel the reply's work; returns the seconds of it the user heard."""
        heard_samples = self.sink.stop_now()
        reply.cancel.set()
        for task in reply.tasks:
            task.cancel()
        return heard_samples / self.sink.sample_rate if reply.first_sample_t is not None else 0.0

    def _commit(self, a: Commit) -> None:
        self.emit(EndpointCommitted(a.turn, now(), a.last_voiced_t, a.silence_ms, a.required_ms))
        assert self._utt is not None
        reply = (
            self._reply if (self._reply is not None and not a.start_reply) else self._start_reply(self._utt)
        )
        reply.commit.set()

    def _merge(self, a: Merge) -> None:
        """The user went on after the turn was committed: drop the reply, keep collecting the turn."""
        reply = self._reply
        self._interruption = None
        heard_s = 0.0
        dropped = ""
        if reply is not None:
            heard_s = self._stop_reply(reply)
            dropped = reply.text
            self._reply = None
        self.emit(TurnMerged(a.turn, now(), a.gap_ms, a.playing, dropped, heard_s))

    async def _produce(
        self, reply: _Reply, audio: np.ndarray | None, speculative: bool, text: str = ""
    ) -> None:
        """ASR of the turn's audio (unless ``text`` is given: a typed turn), then LM + TTS."""
        try:
            if audio is not None:
                t0 = now()
                transcript: Transcript = await self._in_thread(
                    self._asr_pool, self.services.asr.transcribe, audio, reply.cancel
                )
                if reply.cancel.is_set():
                    return
                text = transcript.text
                self.emit(
                    FinalTranscript(
                        reply.turn, now(), text, transcript.audio_s, (now() - t0) * 1e3, speculative
                    )
                )
                if reply.attempt:
                    self._estimate_end_of_turn(reply, text)
            reply.transcript = text
            if reply.say is not None:
                await self._in_thread(self._reply_pool, self._speak_text, reply, reply.say)
                return
            if text and self.actions is not None and await self._plan_action(reply, text):
                return
            if text:
                messages = self.conversation.prompt_for(text, self.clock())  # with its typed context
                await self._in_thread(self._reply_pool, self._generate_and_speak, reply, messages)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.emit(StageError(reply.turn, now(), "reply", f"{type(exc).__name__}: {exc}"))
        finally:
            reply.producing_done = True
            reply.chunks.put_nowait(None)

    def _estimate_end_of_turn(self, reply: _Reply, text: str) -> None:
        model = self.services.end_of_turn
        finished_p = model.probability(text) if model is not None and text else None  # ~10 µs
        required = self.tracker.transcript(reply.attempt, text, finished_p)
        if required is not None:
            p = round(finished_p, 3) if finished_p is not None else None
            self.emit(EndOfTurnEstimate(reply.turn, now(), text, p, round(required, 1)))

    def _generate_and_speak(self, reply: _Reply, messages: list[dict[str, str]]) -> None:
        """Worker thread: LM blocks → clauses → audio chunks, handed to the loop as they are ready.

        Block k+1 is denoised after block k's clauses are synthesized: by then block k is playing,
        and TTS of the first clause is what the user waits for.
        """
        model, tts = self.reply_model, self.services.tts
        fit = model.fit(messages)  # the prompt always fits the context: oldest history, then the message
        if fit.trimmed:
            self._emit_for_reply(
                reply, PromptTrimmed(reply.turn, now(), fit.dropped_messages, fit.cut_tokens, fit.tokens)
            )
        messages = fit.messages
        if reply.tools is not None and self._call_tool(reply, messages):
            return  # the turn calls a tool: nothing is said
        self._emit_for_reply(reply, LMStarted(reply.turn, now(), model.name))
        pieces: list[str] = []
        index = 0
        finished = False
        blocks = model.stream(messages, reply.cancel)
        try:
            for b, piece in enumerate(blocks):
                if reply.cancel.is_set():  # discarded while the LM ran: synthesize nothing of it
                    return
                pieces.append(piece.text.strip())
                self._emit_for_reply(reply, LMBlock(reply.turn, now(), b, piece.text))
                if piece.last:
                    finished = True
                    self._lm_finished(reply, model, pieces)
                for chunk in tts.stream(piece.text, pause_after_last=not piece.last, opens_reply=index == 0):
                    if reply.cancel.is_set():
                        return
                    self._emit_for_reply(
                        reply,
                        TTSChunk(reply.turn, now(), index, chunk.text, chunk.synth_ms, chunk.duration_s),
                    )
                    self._loop.call_soon_threadsafe(reply.chunks.put_nowait, chunk)
                    index += 1
        finally:
            with contextlib.suppress(Exception):
                blocks.close()
            if not finished:
                self._lm_finished(reply, model, pieces)

    def _call_tool(self, reply: _Reply, messages: list[dict[str, str]]) -> bool:
        """Worker thread: the tool caller decides "speak or call"; True when the reply is a call."""
        caller, request = self.services.tool_caller, reply.tools
        if caller is None or request is None or not request.offered:
            return False
        call = caller.decide(messages, request.tools, request.choice)
        if call is None:
            return False
        reply.tool_call = call
        event = ToolCallDecided(reply.turn, now(), call.name, call.arguments_json(), reply.transcript or "")
        self._emit_for_reply(reply, event)
        return True

    def _lm_finished(self, reply: _Reply, model: ReplyModel, pieces: list[str]) -> None:
        stats = model.last_stats
        decision = getattr(model, "last_gate", None)  # a GatedReply judged this reply before TTS
        if decision is not None:
            self._emit_for_reply(reply, gate_event(decision, reply.turn, now()))
        reply.text = " ".join(p for p in pieces if p).strip()
        self._emit_for_reply(
            reply,
            LMFinished(
                reply.turn,
                now(),
                reply.text,
                stats.steps,
                stats.tokens,
                stats.forwards,
                stats.lm_ms,
                stats.prefill_ms,
            ),
        )
        if (g := model.last_grounding) is not None:
            a = g.answer
            event = Grounded(
                reply.turn, now(), a.kind, a.coverage.value, a.source, a.sentence, g.by, g.model_text
            )
            self._emit_for_reply(reply, event)

    async def _play(self, reply: _Reply) -> None:
        await reply.commit.wait()
        self._run_on_commit(reply)
        started = False
        while True:
            chunk = await reply.chunks.get()
            if chunk is None:
                break
            if reply.cancel.is_set():
                return
            if not started:
                self.sink.begin_utterance()
                started = True
            reply.played.append(chunk)
            if self.keep_reply_audio:
                self.reply_audio.setdefault(reply.turn, []).append(chunk)
            self.sink.write(chunk.samples, chunk.sample_rate)
        if started:
            self.sink.end_utterance()
        elif self._reply is reply:
            self._finish_turn(reply, heard_text="")  # nothing to say (noise, empty reply)

    # -- skills and announcements (agent/actions.py) --------------------------------------------------
    async def _plan_action(self, reply: _Reply, text: str) -> bool:
        """A skill's turn: its words are spoken instead of the LM's (True), acted on once committed."""
        assert self.actions is not None
        messages = self.conversation.prompt_for(text, self.clock())
        plan = await self._in_thread(self._reply_pool, self.actions.plan, text, messages, reply.turn, now())
        if plan is None or reply.cancel.is_set():
            return False
        reply.on_commit = plan.commit
        self._run_on_commit(reply)
        if plan.lm_reply:
            return False
        if plan.say:
            await self._in_thread(self._reply_pool, self._speak_text, reply, plan.say)
        return True

    def _run_on_commit(self, reply: _Reply) -> None:
        """Once the turn is committed and the plan is known (either may come first): act, once."""
        action, reply.on_commit = reply.on_commit, None
        if action is None:
            return
        if not reply.commit.is_set():
            reply.on_commit = action
            return
        try:
            for event in action():
                self.emit(event)
        except Exception as exc:  # a failing skill must not end the turn
            self.emit(StageError(reply.turn, now(), "skill", f"{type(exc).__name__}: {exc}"))

    def _speak_text(self, reply: _Reply, text: str) -> None:
        """Worker thread: fixed words (a skill's confirmation, an announcement) → audio chunks."""
        reply.text = text
        for index, chunk in enumerate(self.services.tts.stream(text, pause_after_last=False)):
            if reply.cancel.is_set():
                return
            self._emit_for_reply(
                reply, TTSChunk(reply.turn, now(), index, chunk.text, chunk.synth_ms, chunk.duration_s)
            )
            self._loop.call_soon_threadsafe(reply.chunks.put_nowait, chunk)

    def announce(self, text: str, source: str = "announcement") -> None:
        """Say ``text`` unprompted (a timer ringing, a Home Assistant announcement): now if the agent is
        idle, else as soon as it is. Interruptible like any reply."""
        if (text, source) not in self._announcements:  # a repeat still waiting is not queued twice
            self._announcements.append((text, source))
        if not self.busy:
            self._next_announcement()

    def _next_announcement(self) -> None:
        if self.busy or not self._announcements:
            return
        text, source = self._announcements.popleft()
        self._loop = asyncio.get_running_loop()
        turn = self.tracker.text_turn()
        self._turn_events = []
        self.idle.clear()
        self.emit(Announcement(turn, now(), text, source))
        reply = _Reply(turn, now(), say=text)
        self._reply = reply
        reply.tasks.append(asyncio.ensure_future(self._produce(reply, None, False)))
        reply.tasks.append(asyncio.ensure_future(self._play(reply)))
        reply.commit.set()

    def set_muted(self, muted: bool) -> None:
        if muted != self.muted:
            self.muted = muted
            self.emit(MuteChanged(self._turn, now(), muted))

    def _on_first_sample(self, t: float) -> None:
        reply = self._reply
        if reply is None or reply.first_sample_t is not None or not self.tracker.playback_started(t):
            return
        reply.first_sample_t = t
        self.emit(FirstReplySample(reply.turn, t))

    def _on_drained(self, t: float) -> None:
        reply = self._reply
        if reply is None or not reply.producing_done or self.state is not TurnState.SPEAKING:
            return
        heard_s = sum(c.duration_s for c in reply.played)
        self.emit(PlaybackFinished(reply.turn, t, reply.text, heard_s))
        self._finish_turn(reply, heard_text=reply.text)

    def _finish_turn(self, reply: _Reply, heard_text: str, interrupted: bool = False) -> None:
        if reply.transcript and reply.tool_call is None:  # a call's request joins with its answer
            self.conversation.add_user(reply.transcript)
            self.conversation.add_assistant(heard_text)
        timing = summarize_turn(self._turn_events)
        self.emit(
            LatencyReport(
                reply.turn,
                now(),
                transcript=reply.transcript or "",
                reply=reply.text,
                stages_ms={k: round(v, 2) for k, v in timing.stages_ms.items()},
                v2v_ms=round(timing.v2v_ms, 2) if timing.v2v_ms is not None else None,
                discarded_speculations=timing.discarded_speculations,
                merges=timing.merges,
                interrupted=interrupted,
                reply_candidate=timing.reply_candidate,
                gate_reason=timing.gate_reason,
            )
        )
        if self._reply is reply:
            self._reply = None
        self.turns_done += 1
        if not interrupted:
            self._apply(self.tracker.reply_finished())

    # -- barge-in ------------------------------------------------------------------------------------
    def _check_interruption(self, a: CheckInterruption) -> None:
        assert self._interruption is not None
        audio = np.concatenate(self._interruption)

        async def check():
            try:
                transcript = await self._in_thread(self._asr_pool, self.services.asr.transcribe, audio)
            except Exception as exc:
                self.emit(StageError(a.turn, now(), "asr.barge_in", str(exc)))
                self.tracker.interruption_failed(a.check)
                self._interruption = None
                return
            reply = self._reply
            said = " ".join(c.text for c in reply.played) + " " + reply.text if reply is not None else ""
            self._apply(self.tracker.interruption_heard(a.check, transcript.text, said))

        asyncio.ensure_future(check())

    def _barge_in(self, a: BargeInAction) -> None:
        reply = self._reply
        if reply is None:
            return
        t_decide = now()
        heard_s = self._stop_reply(reply)
        t_stopped = now()
        heard = _heard(reply, heard_s)
        block_ms = getattr(self.sink, "block_s", 0.0) * 1e3
        stop_ms = (t_stopped - t_decide) * 1e3 + block_ms
        self.emit(BargeIn(reply.turn, t_stopped, a.speech_t, heard, heard_s, stop_ms))
        self._finish_turn(reply, heard_text=heard, interrupted=True)


def _heard(reply: _Reply, heard_s: float) -> str:
    """The words of ``reply`` the user heard in its first ``heard_s`` seconds."""
    return heard_text([(c.text, c.duration_s) for c in reply.played], heard_s)
