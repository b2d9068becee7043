"""The voice turn pipeline: audio frames in → VAD → streaming ASR → reply model → TTS → audio out.

One ``VoicePipeline`` runs every mode (``talk``, ``serve``, ``demo``, ``profile``); only the source of
frames and the sink differ. It is an explicit state machine::

    LISTENING ──speech──▶ USER_SPEAKING ──silence──▶ ENDPOINTING ──hangover──▶ REPLYING ──1st sample──▶ SPEAKING
        ▲                      ▲   (speculation starts)  │ speech resumes           │ barge-in            │
        │                      └─────────────────────────┘ (speculation discarded)  ▼                     │
        └──────────────────────────────────── reply played / interrupted ◀──────────────────────────────┘

Speculative turn processing: the moment silence starts (or one frame sooner, on a last voiced frame
whose speech probability is already falling), final ASR → LM → first TTS clause run in the
background; nothing plays until the hangover confirms the end of the turn, and everything is thrown
away if the user speaks again. Model calls run in worker threads (one for ASR, one for LM + TTS), so
the event loop only moves frames and events.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from audio.aec import EchoCanceller, PlaybackReference
from audio.resample import resample
from audio.sinks import AudioSink
from audio.sources import AudioFrame
from audio.vad import SileroVAD, SpeechDetector

from .asr import SpeechRecognizer, StreamingTranscriber, Transcript
from .config import QuickturnConfig
from .endpointing import is_backchannel, required_silence_ms
from .events import (
    BargeIn,
    BargeInIgnored,
    EndpointCommitted,
    Event,
    EventBus,
    FinalTranscript,
    FirstReplySample,
    LatencyReport,
    LMBlock,
    LMFinished,
    LMStarted,
    PartialTranscript,
    PlaybackFinished,
    SpeculationDiscarded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    StageError,
    TTSChunk,
    now,
)
from .latency import summarize_turn
from .prompt import Conversation
from .reply import ReplyModel, build_reply_model
from .tts import SynthChunk, Synthesizer


class TurnState(enum.Enum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    ENDPOINTING = "endpointing"
    REPLYING = "replying"
    SPEAKING = "speaking"


@dataclass
class Services:
    """The loaded models, shared by every turn (and by every session of a server)."""

    asr: SpeechRecognizer
    tts: Synthesizer
    reply: ReplyModel
    vad_factory: Callable[[], SileroVAD]

    @classmethod
    def load(cls, cfg: QuickturnConfig, reply_kind: str = "diffusion", warmup: bool = True) -> Services:
        """Load and warm every model (blocking: call it from a thread in async code)."""
        asr = load_asr(cfg, warmup)
        tts = load_tts(cfg, warmup)
        reply = build_reply_model(cfg.lm, reply_kind)
        if warmup:
            reply.warmup()
        return cls(asr, tts, reply, vad_factory(cfg))


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


def vad_factory(cfg: QuickturnConfig) -> Callable[[], SileroVAD]:
    rate = cfg.audio.sample_rate
    return lambda: SileroVAD(rate, threads=1)


@dataclass
class _Utterance:
    """The user's speech being collected for one turn."""

    turn: int
    start_t: float
    last_voiced_t: float
    frames: list[np.ndarray] = field(default_factory=list)
    transcriber: StreamingTranscriber | None = None
    fed: int = 0  # frames already handed to the streaming transcriber
    partial_busy: bool = False
    last_partial_frames: int = 0
    pause_t: float = 0.0

    def audio(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, np.float32)


@dataclass
class _Reply:
    """Producing (possibly speculatively) and playing one reply."""

    turn: int
    started_t: float
    cancel: threading.Event = field(default_factory=threading.Event)
    chunks: asyncio.Queue = field(default_factory=asyncio.Queue)
    commit: asyncio.Event = field(default_factory=asyncio.Event)
    transcript: str | None = None
    text: str = ""
    played: list[SynthChunk] = field(default_factory=list)
    tasks: list[asyncio.Task] = field(default_factory=list)
    producing_done: bool = False
    playback_done: bool = False
    first_sample_t: float | None = None


@dataclass
class _Interruption:
    start_t: float
    frames: list[np.ndarray]
    last_voiced_t: float
    voiced_frames: int = 0
    checking: bool = False


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
        self.state = TurnState.LISTENING
        self.vad = services.vad_factory()
        frame_ms = cfg.audio.frame_ms
        self.frame_s = frame_ms / 1000
        self.detector = SpeechDetector(
            cfg.vad.threshold_on, cfg.vad.threshold_off, cfg.vad.min_speech_ms, frame_ms
        )
        self._preroll: collections.deque[np.ndarray] = collections.deque(
            maxlen=max(1, round(cfg.vad.preroll_ms / frame_ms))
        )
        self._asr_pool = ThreadPoolExecutor(1, thread_name_prefix="asr")
        # Partials on their own thread: with asr.workers = 2 the final pass runs beside a partial
        # still in flight; with 1 the recognizer serialises them as before.
        self._partial_pool = ThreadPoolExecutor(1, thread_name_prefix="asr-partial")
        self._reply_pool = ThreadPoolExecutor(1, thread_name_prefix="reply")
        self._turn = 0
        self._utt: _Utterance | None = None
        self._reply: _Reply | None = None
        self._interrupt: _Interruption | None = None
        self._turn_events: list[Event] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.idle = asyncio.Event()
        self.idle.set()
        self.turns_done = 0
        self.keep_reply_audio = False  # demo: keep each reply's audio in reply_audio[turn]
        self.reply_audio: dict[int, list[SynthChunk]] = {}
        sink.on_first_sample = self._from_thread(self._on_first_sample)
        sink.on_drained = self._from_thread(self._on_drained)

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
        x = frame.samples
        if self.aec is not None and self.reference is not None:
            x = self.aec.process(x, self.reference.read_next(frame.t - frame.duration, len(x)))
        decision = self.detector.update(self.vad.probability(x))
        state = self.state
        if state is TurnState.LISTENING:
            self._preroll.append(x)
            if decision.event == "start":
                frames = list(self._preroll)
                self._start_utterance(frame.t - len(frames) * self.frame_s, frames)
        elif state is TurnState.USER_SPEAKING:
            self._continue_speaking(frame, x, decision.is_speech, decision.prob)
        elif state is TurnState.ENDPOINTING:
            self._endpointing(frame, x, decision.is_speech, decision.event == "start")
        else:
            self._preroll.append(x)
            self._maybe_barge_in(frame, x, decision)

    # -- user speech ---------------------------------------------------------------------------------
    def _start_utterance(self, start_t: float, frames: list[np.ndarray]) -> None:
        self._turn += 1
        self._turn_events = []
        self.idle.clear()
        self._utt = _Utterance(self._turn, start_t, start_t, frames=list(frames))
        if self.cfg.asr.partials:
            self._utt.transcriber = self.services.asr.stream()
        self.state = TurnState.USER_SPEAKING
        self.emit(SpeechStarted(self._turn, now(), start_t))
        self._preroll.clear()
        if self.cfg.lm.prefill_while_listening:  # cache history while the user talks
            messages = [m.as_dict() for m in self.conversation.messages_for("", self.clock())[:-1]]
            self._reply_pool.submit(self._safe_prefill, messages)

    def _safe_prefill(self, messages) -> None:
        try:
            self.services.reply.prefill(messages)
        except Exception as exc:  # a failed prefill only costs speed; the reply prefills again
            self._emit_threadsafe(StageError(self._turn, now(), "lm.prefill", str(exc)))

    def _continue_speaking(self, frame: AudioFrame, x: np.ndarray, voiced: bool, prob: float) -> None:
        utt = self._utt
        assert utt is not None
        utt.frames.append(x)
        if voiced:
            utt.last_voiced_t = frame.t
            self._speculate_if_falling(utt, prob)
            self._maybe_partial(utt)
            if len(utt.frames) * self.frame_s > self.cfg.endpoint.max_utterance_s:
                self._pause(utt, frame)  # force an endpoint on a runaway utterance
                self._commit(utt, frame.t)
            return
        self._pause(utt, frame)

    def _speculate_if_falling(self, utt: _Utterance, prob: float) -> None:
        """Start the speculative turn on a voiced frame whose speech probability is falling.

        The VAD calls silence one frame (32 ms) after the last voiced frame; that frame's own
        probability has usually dropped already (0.4-0.6 where 1.0 is speech). Speculating there
        wins the frame whenever the next one is silence. Any further voiced frame makes the attempt
        stale (its audio would miss that frame): it is discarded, its ASR decoder skipped, and a
        new one started if that frame is falling too.
        """
        below = self.cfg.endpoint.speculate_below
        if not self.cfg.endpoint.speculative or below <= 0:
            return
        if self._reply is not None and self._reply.turn == utt.turn:
            self._discard_reply("speech went on")
        if prob < below:
            self._abandon_partial(utt)
            self._start_reply(utt)

    def _abandon_partial(self, utt: _Utterance) -> None:
        if utt.transcriber is not None and utt.partial_busy:
            # A partial still decoding would hold the ASR thread the final pass now needs: its
            # decoder is skipped (the encoder, already running, cannot be interrupted).
            utt.transcriber.abandon_partial()

    def _pause(self, utt: _Utterance, frame: AudioFrame) -> None:
        self.state = TurnState.ENDPOINTING
        utt.pause_t = frame.t
        self.emit(SpeechPaused(utt.turn, now(), utt.last_voiced_t))
        if self._reply is not None:
            # Started on the falling last voiced frame (every voiced frame drops an older attempt):
            # all the speech is in it.
            return
        self._abandon_partial(utt)
        if self.cfg.endpoint.speculative:
            self._start_reply(utt)

    def _endpointing(self, frame: AudioFrame, x: np.ndarray, voiced: bool, restarted: bool) -> None:
        utt = self._utt
        assert utt is not None
        utt.frames.append(x)
        if voiced and restarted:
            pause_ms = (frame.t - utt.last_voiced_t) * 1e3
            utt.last_voiced_t = frame.t
            self._discard_reply("speech resumed")
            self.state = TurnState.USER_SPEAKING
            self.emit(SpeechResumed(utt.turn, now(), pause_ms))
            return
        silence_ms = (frame.t - utt.last_voiced_t) * 1e3
        transcript = self._reply.transcript if self._reply is not None else None
        needed = required_silence_ms(
            transcript, self.cfg.endpoint.hangover_ms, self.cfg.endpoint.incomplete_hangover_ms
        )
        if not self.cfg.endpoint.speculative:
            needed = self.cfg.endpoint.hangover_ms
        if silence_ms >= needed:
            self._commit(utt, frame.t)

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
            return transcriber.partial()

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
        return self.state is not TurnState.LISTENING

    async def transcribe(self, samples: np.ndarray, rate: int) -> str:
        """ASR of a manually committed buffer, on the pipeline's ASR thread."""
        self._loop = asyncio.get_running_loop()
        target = self.cfg.audio.sample_rate

        def work() -> str:
            return self.services.asr.transcribe(resample(samples, rate, target)).text

        return await self._in_thread(self._asr_pool, work)

    def respond_to_text(self, text: str) -> int:
        """Start a reply to ``text`` now, as a committed turn; returns its turn number."""
        if self.busy:
            raise RuntimeError("a turn is already in progress")
        self._loop = asyncio.get_running_loop()
        self._turn += 1
        self._turn_events = []
        self.idle.clear()
        reply = _Reply(self._turn, now())
        self._reply = reply
        self.state = TurnState.REPLYING
        reply.tasks.append(asyncio.ensure_future(self._produce(reply, None, False, text)))
        reply.tasks.append(asyncio.ensure_future(self._play(reply)))
        reply.commit.set()
        return reply.turn

    def cancel_reply(self) -> bool:
        """Stop the committed reply like a barge-in (e.g. a client's ``response.cancel``), then listen."""
        reply = self._reply
        if reply is None or self.state not in (TurnState.REPLYING, TurnState.SPEAKING):
            return False
        heard_samples = self.sink.stop_now()
        reply.cancel.set()
        for task in reply.tasks:
            task.cancel()
        heard_s = heard_samples / self.sink.sample_rate if reply.first_sample_t is not None else 0.0
        self._finish_turn(reply, heard_prefix(reply.played, heard_s), heard_s, interrupted=True)
        # _finish_turn leaves an interrupted turn mid-speech (a barge-in starts the next utterance).
        self.state = TurnState.LISTENING
        self._utt = None
        self._interrupt = None
        self.detector.reset()
        self.idle.set()
        return True

    # -- replies -------------------------------------------------------------------------------------
    def _start_reply(self, utt: _Utterance, speculative: bool = True) -> _Reply:
        reply = _Reply(utt.turn, now())
        self._reply = reply
        audio = utt.audio()
        reply.tasks.append(asyncio.ensure_future(self._produce(reply, audio, speculative)))
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

    def _commit(self, utt: _Utterance, t_frame: float) -> None:
        self.state = TurnState.REPLYING
        self.emit(EndpointCommitted(utt.turn, now(), utt.last_voiced_t, (t_frame - utt.last_voiced_t) * 1e3))
        reply = self._reply or self._start_reply(utt, speculative=False)
        reply.commit.set()

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
            reply.transcript = text
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

    def _generate_and_speak(self, reply: _Reply, messages: list[dict[str, str]]) -> None:
        """Worker thread: LM blocks → clauses → audio chunks, handed to the loop as they are ready.

        Block k+1 is denoised after block k's clauses are synthesized: by then block k is playing,
        and TTS of the first clause is what the user waits for.
        """
        model, tts = self.services.reply, self.services.tts
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
                for chunk in tts.stream(piece.text, pause_after_last=not piece.last):
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

    def _lm_finished(self, reply: _Reply, model: ReplyModel, pieces: list[str]) -> None:
        stats = model.last_stats
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

    async def _play(self, reply: _Reply) -> None:
        await reply.commit.wait()
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
        else:
            self._finish_turn(reply, heard_text="", heard_s=0.0)  # nothing to say (noise, empty reply)

    def _on_first_sample(self, t: float) -> None:
        reply = self._reply
        if reply is None or reply.first_sample_t is not None or self.state is not TurnState.REPLYING:
            return
        reply.first_sample_t = t
        self.state = TurnState.SPEAKING
        self.emit(FirstReplySample(reply.turn, t))

    def _on_drained(self, t: float) -> None:
        reply = self._reply
        if reply is None or not reply.producing_done or self.state is not TurnState.SPEAKING:
            return
        heard_s = sum(c.duration_s for c in reply.played)
        self.emit(PlaybackFinished(reply.turn, t, reply.text, heard_s))
        self._finish_turn(reply, heard_text=reply.text, heard_s=heard_s)

    def _finish_turn(self, reply: _Reply, heard_text: str, heard_s: float, interrupted: bool = False) -> None:
        if reply.transcript:
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
                interrupted=interrupted,
            )
        )
        if self._reply is reply:
            self._reply = None
        self.turns_done += 1
        if not interrupted:
            self.state = TurnState.LISTENING
            self._utt = None
            itr, self._interrupt = self._interrupt, None
            if itr is not None:
                # The user started talking over the end of the reply and the reply ran out before the
                # barge-in was confirmed: that speech is the next turn, from its first frame (the
                # detector is mid-speech; resetting it would drop the first words).
                self._turn_from_interruption(itr)
                return
            self.detector.reset()
            self.idle.set()

    # -- barge-in ------------------------------------------------------------------------------------
    def _maybe_barge_in(self, frame: AudioFrame, x: np.ndarray, decision) -> None:
        cfg = self.cfg.barge_in
        if not cfg.enabled or self._reply is None:
            return
        if self._interrupt is None:
            if decision.event == "start":
                frames = list(self._preroll)
                self._interrupt = _Interruption(
                    frame.t - len(frames) * self.frame_s,
                    frames,
                    frame.t,
                    voiced_frames=self.detector.min_speech_frames,
                )
            return
        itr = self._interrupt
        itr.frames.append(x)
        if decision.is_speech:
            itr.voiced_frames += 1
            itr.last_voiced_t = frame.t
        elif not itr.checking and (frame.t - itr.last_voiced_t) * 1e3 > cfg.max_gap_ms:
            self._interrupt = None  # too short: a click, a cough, a short "mm"
            return
        if itr.checking or itr.voiced_frames * self.frame_s * 1e3 < cfg.min_speech_ms:
            return
        itr.checking = True
        audio = np.concatenate(itr.frames)

        async def check():
            try:
                transcript = await self._in_thread(self._asr_pool, self.services.asr.transcribe, audio)
            except Exception as exc:
                self.emit(StageError(self._turn, now(), "asr.barge_in", str(exc)))
                self._interrupt = None
                return
            if self._interrupt is not itr:
                return
            if is_backchannel(transcript.text, cfg.backchannels, cfg.min_words):
                self.emit(BargeInIgnored(self._turn, now(), "backchannel", transcript.text))
                self._interrupt = None
                return
            self._barge_in(itr)

        asyncio.ensure_future(check())

    def _barge_in(self, itr: _Interruption) -> None:
        reply = self._reply
        self._interrupt = None
        if reply is None:
            return
        t_decide = now()
        heard_samples = self.sink.stop_now()
        t_stopped = now()
        reply.cancel.set()
        for task in reply.tasks:
            task.cancel()
        heard_s = heard_samples / self.sink.sample_rate if reply.first_sample_t is not None else 0.0
        heard_text = heard_prefix(reply.played, heard_s)
        block_ms = getattr(self.sink, "block_s", 0.0) * 1e3
        stop_ms = (t_stopped - t_decide) * 1e3 + block_ms
        self.emit(BargeIn(reply.turn, t_stopped, itr.start_t, heard_text, heard_s, stop_ms))
        self._finish_turn(reply, heard_text=heard_text, heard_s=heard_s, interrupted=True)
        # The interruption is the start of the next user turn (the detector is still mid-speech).
        self._turn_from_interruption(itr)

    def _turn_from_interruption(self, itr: _Interruption) -> None:
        self._start_utterance(itr.start_t, itr.frames)
        assert self._utt is not None
        self._utt.last_voiced_t = itr.last_voiced_t


def heard_prefix(chunks: list[SynthChunk], heard_s: float) -> str:
    """The words of the reply the user actually heard: whole clauses, then a share of the next one."""
    words: list[str] = []
    elapsed = 0.0
    for chunk in chunks:
        if elapsed + chunk.duration_s <= heard_s + 1e-6:
            words.extend(chunk.text.split())
            elapsed += chunk.duration_s
            continue
        part = max(0.0, heard_s - elapsed) / chunk.duration_s if chunk.duration_s else 0.0
        clause = chunk.text.split()
        words.extend(clause[: int(len(clause) * part)])
        break
    return " ".join(words)


async def wait_until_idle(pipeline: VoicePipeline, timeout: float) -> bool:
    try:
        await asyncio.wait_for(pipeline.idle.wait(), timeout)
        return True
    except TimeoutError:
        return False


def monotonic_ms(t0: float) -> float:
    return (time.monotonic() - t0) * 1e3
