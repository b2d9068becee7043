"""``quickturn serve``: the Realtime-style WebSocket API in front of the voice pipeline.

One process loads the models once (``Services``, warmed before the port opens) and serves any number of
connections; each connection gets its own ``VoicePipeline`` (VAD, turn state, conversation, worker
threads) on the shared models. Per connection::

    client ─ input_audio_buffer.append (24 kHz PCM16) ─▶ 16 kHz, 32 ms frames ─▶ FrameFeed (bounded,
      paced to real time) ─▶ VoicePipeline ─▶ events ─▶ RealtimeSession ─▶ outgoing queue (bounded) ─▶ client
    reply audio: VoicePipeline ─▶ ClientSink ─▶ 24 kHz response.output_audio.delta ─▶ outgoing queue

The event loop only moves bytes and events: ASR, LM and TTS run in the pipeline's worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import hmac
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from agent.config import MQTTSection, QuickturnConfig
from agent.events import Event, EventBus, LatencyReport
from agent.pipeline import (
    Services,
    VoicePipeline,
    heard_prefix,
)
from agent.prompt import Message
from agent.tts import SynthChunk
from audio.formats import float_to_pcm16_bytes, pcm16_bytes_to_float, to_float32
from audio.framing import Framer
from audio.resample import StreamResampler
from audio.sinks import SimulatedSpeaker
from audio.sources import AudioFrame
from audio.vad import SileroVAD

from .protocol import (
    RATE,
    AudioAppend,
    AudioClear,
    AudioCommit,
    ClientEvent,
    InputClock,
    ItemCreate,
    ItemTruncate,
    RealtimeProtocolError,
    RealtimeSession,
    ResponseCancel,
    ResponseCreate,
    ServerDefaults,
    SessionConfig,
    SessionUpdate,
    Truncation,
    encode,
    parse_client_event,
)

log = logging.getLogger("quickturn.realtime")

PATH = "/v1/realtime"
MAX_MESSAGE_BYTES = 16 * 2**20  # one append may carry minutes of audio (the reference API allows 15 MiB)
OUT_QUEUE_EVENTS = 4096  # server events waiting for a slow client before the connection is dropped
FEED_MAX_S = 30.0  # input audio queued ahead of the pipeline before reading from the socket pauses
FEED_SLACK_S = 0.02  # a frame may be processed this much before its time (no sleeps for crumbs)
FEED_CHUNK_S = 0.25  # the most audio a live client buffers per append (longer appends are uploads)
FEED_SLEW = 0.1  # input-clock catch-up after jitter: at most +10 % per frame
FEED_REANCHOR_S = 1.0  # a client this far behind stopped sending for a while: jump to its arrival
BROWSER_KEY_PREFIX = "openai-insecure-api-key."  # browsers cannot set headers: the key rides as a subprotocol

MqttBridge = Callable[[MQTTSection, EventBus, asyncio.Event], Awaitable[None]]


class ServerError(RuntimeError):
    """The server cannot start (bad address, MQTT bridge missing, ...)."""


# -- the pipeline, with the entry points a Realtime client needs beyond audio frames ----------------------
# -- audio in and out ---------------------------------------------------------------------------------
class ClientSink(SimulatedSpeaker):
    """Reply audio goes to the client as soon as it is written; a virtual playhead follows at real time.

    The client buffers and plays the deltas, so sending never waits for playback. The playhead (the
    ``SimulatedSpeaker`` thread) models the client's playback: it drives first-sample timing (voice-to-
    voice latency), the end of the turn, and how much a barge-in user actually heard.
    """

    def __init__(
        self,
        sample_rate: int,
        block_ms: float,
        on_audio: Callable[[bytes, bool], None],
        on_end: Callable[[], None],
    ) -> None:
        super().__init__(sample_rate, block_ms)
        self._on_audio = on_audio  # (24 kHz PCM16, starts a clause); called on the event loop
        self._on_end = on_end
        self._out: StreamResampler | None = None
        self._cut = False  # stop_now() until the next reply

    def begin_utterance(self) -> int:
        self._out, self._cut = None, False
        return super().begin_utterance()

    def write(self, samples: np.ndarray, sample_rate: int) -> None:
        super().write(samples, sample_rate)  # opens a reply if none is open
        if self._cut:
            return  # late clause of an interrupted reply
        if self._out is None or self._out.in_rate != sample_rate:
            self._out = StreamResampler(sample_rate, RATE)
        self._on_audio(float_to_pcm16_bytes(self._out.process(to_float32(samples))), True)

    def end_utterance(self) -> None:
        if not self._cut and self._out is not None:
            tail = self._out.flush()
            if len(tail):
                self._on_audio(float_to_pcm16_bytes(tail), False)
        self._out = None
        super().end_utterance()
        if not self._cut:
            self._on_end()

    def stop_now(self) -> int:
        self._cut, self._out = True, None
        return super().stop_now()


class FrameFeed:
    """Client audio on its way to the pipeline: 24 kHz → pipeline rate, fixed frames, a bounded queue.

    Frame timestamps follow the audio itself, not the moment a frame happens to be processed: the
    pipeline measures silence between frame timestamps, so a network hiccup or a busy event loop must
    not look like the user pausing. Each frame gets the previous one's time plus one frame; lag behind
    the frame's estimated arrival (jitter) is caught up slowly (``FEED_SLEW``), and a client that
    stopped sending for a while (``FEED_REANCHOR_S``) is re-anchored at once. Frames are released no
    earlier than their time (less ``FEED_SLACK_S``), so a client uploading a file gets the same turns
    as one streaming from a microphone. A full queue makes ``push`` wait, which stops reading the
    socket: backpressure instead of unbounded memory.
    """

    def __init__(self, sample_rate: int, frame_samples: int, clock: InputClock) -> None:
        self.sample_rate = sample_rate
        self.frame_s = frame_samples / sample_rate
        self.clock = clock
        size = round(FEED_MAX_S / self.frame_s)
        self._queue: asyncio.Queue[tuple[np.ndarray, float, float]] = asyncio.Queue(size)
        self._resampler = StreamResampler(RATE, sample_rate)
        self._framer = Framer(frame_samples)
        self._frames = 0  # frames made so far
        self._received_s = 0.0  # input audio received so far
        self._index = 0

    async def push(self, pcm: bytes) -> None:
        arrived = time.monotonic()
        x = pcm16_bytes_to_float(pcm)
        start_s, duration = self._received_s, len(x) / RATE
        self._received_s += duration
        # A live client's chunk holds the audio of the moments before it arrived; a longer one (an
        # upload) is taken to start FEED_CHUNK_S before arrival and to go on from there in real time.
        chunk_t0 = arrived - min(duration, FEED_CHUNK_S) - start_s
        for frame in self._framer.push(self._resampler.process(x)):
            self._frames += 1
            end_s = self._frames * self.frame_s  # where this frame ends in the input audio
            await self._queue.put((frame, chunk_t0 + end_s, end_s * 1000))

    def clear(self) -> None:
        """Drop audio not yet processed (``input_audio_buffer.clear``, mode switches)."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self._resampler.reset()
        self._framer.reset()
        self._frames = int(self._received_s / self.frame_s)  # keep counting input-audio time

    async def __aiter__(self) -> AsyncIterator[AudioFrame]:
        t: float | None = None
        while True:
            samples, available, end_ms = await self._queue.get()
            if t is None or available - t > self.frame_s + FEED_REANCHOR_S:
                t = available  # first frame, or the client paused: anchor at its arrival
            else:  # one frame later, plus a bounded share of any lag
                t += self.frame_s + min(max(0.0, available - t - self.frame_s), FEED_SLEW * self.frame_s)
            wait = t - FEED_SLACK_S - time.monotonic()
            if wait > 0:  # ahead of real time (an upload): play it in at real-time pace
                await asyncio.sleep(wait)
            self.clock.mark(t, end_ms)
            yield AudioFrame(samples, self.sample_rate, t, self._index)
            self._index += 1


# -- one client connection ----------------------------------------------------------------------------
class _Connection:
    def __init__(self, server: RealtimeServer, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.session = RealtimeSession(server.defaults)
        self.out: asyncio.Queue[str] = asyncio.Queue(OUT_QUEUE_EVENTS)
        cfg = server.cfg
        self.sink = ClientSink(server.services.tts.sample_rate, cfg.audio.output_block_ms,
                               self._on_reply_audio, self._on_reply_end)  # fmt: skip
        frame_samples = round(cfg.audio.sample_rate * cfg.audio.frame_ms / 1000)
        self.feed = FrameFeed(cfg.audio.sample_rate, frame_samples, self.session.clock)
        self.pipeline: VoicePipeline | None = None
        self._pipe_task: asyncio.Task[None] | None = None
        self._pending: list[tuple[str, asyncio.Future[str]]] = []  # user items awaiting response.create
        self._reply_messages: tuple[str, Message | None, Message | None] | None = None  # for truncation
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    async def run(self) -> None:
        sender = asyncio.create_task(self._sender())
        try:
            self.pipeline = await self._new_pipeline(self._pipeline_cfg(self.session.config))
            self._start_pipeline()
            self.send([self.session.session_created()])
            async for message in self.ws:
                await self._handle(message)
        except ConnectionClosed:
            pass
        finally:
            self._closing = True
            for _, fut in self._pending:
                fut.cancel()
            await self._stop_pipeline()
            self.sink.close()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _new_pipeline(self, cfg: QuickturnConfig) -> VoicePipeline:
        return self._build_pipeline(cfg, await self._load_vad())

    async def _load_vad(self) -> SileroVAD:
        return await asyncio.to_thread(self.server.services.vad_factory)  # an ONNX session: off the loop

    def _build_pipeline(self, cfg: QuickturnConfig, vad: SileroVAD) -> VoicePipeline:
        """A pipeline on the shared models with its own VAD; it takes over the sink's callbacks."""
        services = self.server.services
        bus = EventBus()
        pipeline = VoicePipeline(cfg, dataclasses.replace(services, vad_factory=lambda: vad), self.sink, bus)
        bus.subscribe(lambda ev: self._on_pipeline_event(pipeline, ev))
        bus.subscribe(self.server.bus.publish)
        return pipeline

    def _start_pipeline(self) -> None:
        assert self.pipeline is not None
        self._pipe_task = asyncio.create_task(self.pipeline.run(self.feed))

    async def _stop_pipeline(self) -> None:
        if self._pipe_task is not None:
            self._pipe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pipe_task
            self._pipe_task = None
        if self.pipeline is not None:
            self.pipeline.close()

    def _pipeline_cfg(self, session: SessionConfig) -> QuickturnConfig:
        """The server config with this session's turn detection applied."""
        cfg = copy.deepcopy(self.server.cfg)
        td = session.turn_detection
        if td is not None:
            gap = cfg.vad.threshold_on - cfg.vad.threshold_off  # keep the configured hysteresis
            cfg.vad.threshold_on = td.threshold
            cfg.vad.threshold_off = max(0.0, td.threshold - gap)
            cfg.vad.preroll_ms = td.prefix_padding_ms
            cfg.endpoint.hangover_ms = td.silence_duration_ms
            cfg.endpoint.incomplete_hangover_ms = max(
                cfg.endpoint.incomplete_hangover_ms, td.silence_duration_ms
            )
        return cfg

    # -- outgoing --------------------------------------------------------------------------------------
    def send(self, events: list[dict]) -> None:
        for event in events:
            if self._closing:
                return
            try:
                self.out.put_nowait(encode(event))
            except asyncio.QueueFull:
                self._closing = True
                log.warning("client %s is not reading events; closing", self.ws.remote_address)
                self._close_task = asyncio.ensure_future(
                    self.ws.close(1008, "client is not reading events fast enough")
                )

    async def _sender(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.ws.send(await self.out.get())

    def _on_pipeline_event(self, pipeline: VoicePipeline, ev: Event) -> None:
        if pipeline is not self.pipeline:
            return  # a late event from a pipeline replaced by session.update
        try:
            self._translate(pipeline, ev)
        except Exception:  # runs inside the pipeline's emit(): a bug here must not stop the pipeline
            log.exception("error translating %s", type(ev).__name__)

    def _translate(self, pipeline: VoicePipeline, ev: Event) -> None:
        reply_item = self.session.response.item_id if self.session.response is not None else None
        had_output = self.session.response is not None and self.session.response.output_started
        self.send(self.session.on_pipeline_event(ev))
        if isinstance(ev, LatencyReport) and reply_item is not None and had_output:
            # _finish_turn has just added this turn to the history: remember its messages for truncation.
            turns = pipeline.conversation.turns
            assistant = turns[-1] if turns and turns[-1].role == "assistant" else None
            user = turns[-2] if assistant is not None and len(turns) > 1 else (turns[-1] if turns else None)
            self._reply_messages = (reply_item, user, assistant)

    def _on_reply_audio(self, pcm: bytes, clause: bool) -> None:
        try:  # runs inside the pipeline's playback task
            self.send(self.session.reply_audio(pcm, clause))
        except Exception:
            log.exception("error sending reply audio")

    def _on_reply_end(self) -> None:
        try:
            self.send(self.session.reply_audio_done())
        except Exception:
            log.exception("error ending reply audio")

    # -- incoming --------------------------------------------------------------------------------------
    async def _handle(self, message: str | bytes) -> None:
        event: ClientEvent | None = None
        try:
            event = parse_client_event(message)
            await self._dispatch(event)
        except RealtimeProtocolError as exc:
            if exc.event_id is None and event is not None:
                exc.event_id = event.event_id
            self.send([self.session.error(exc)])
        except Exception as exc:  # a bug must cost one event, not the connection
            log.exception("error handling a client event")
            self.send([self.session.server_error("internal_error", f"{type(exc).__name__}: {exc}")])

    async def _dispatch(self, ev: ClientEvent) -> None:
        assert self.pipeline is not None
        if isinstance(ev, AudioAppend):
            if self.session.manual:
                self.session.append_audio(ev.pcm)
            else:
                await self.feed.push(ev.pcm)
        elif isinstance(ev, SessionUpdate):
            await self._update_session(ev)
        elif isinstance(ev, AudioCommit):
            self._commit()
        elif isinstance(ev, AudioClear):
            self.feed.clear()
            self.send(self.session.clear_audio())
        elif isinstance(ev, ItemCreate):
            item_id, events = self.session.add_user_text(ev)
            self.send(events)
            done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            done.set_result(ev.text)
            self._pending.append((item_id, done))
        elif isinstance(ev, ResponseCreate):
            await self._create_response()
        elif isinstance(ev, ResponseCancel):
            self.session.check_cancel(ev)
            if not self.pipeline.cancel_reply():
                log.warning("response.cancel: the pipeline had no reply to cancel")
        elif isinstance(ev, ItemTruncate):
            truncation, events = self.session.truncate(ev)
            self.send(events)
            self._truncate_history(truncation)

    async def _update_session(self, ev: SessionUpdate) -> None:
        assert self.pipeline is not None
        new = self.session.resolve_update(ev.patch)
        if new.turn_detection != self.session.config.turn_detection:
            if self.pipeline.busy or self.session.response is not None:
                raise RealtimeProtocolError(
                    "turn_in_progress",
                    "turn_detection cannot change during a turn; send the session.update between turns",
                    param="session.audio.input.turn_detection",
                )
            self.feed.clear()
            self.pipeline.detector.reset()
            cfg, current = self._pipeline_cfg(new), self.pipeline.cfg
            if new.turn_detection is not None and (cfg.vad, cfg.endpoint) != (current.vad, current.endpoint):
                await self._replace_pipeline(cfg)
        self.send(self.session.commit_update(new))

    async def _replace_pipeline(self, cfg: QuickturnConfig) -> None:
        """New VAD settings: a fresh pipeline with them, carrying the conversation over."""
        old = self.pipeline
        assert old is not None
        vad = await self._load_vad()
        if old.busy:  # the user started talking while the VAD model loaded: keep the old pipeline
            raise RealtimeProtocolError("turn_in_progress", "turn_detection cannot change during a turn",
                                        param="session.audio.input.turn_detection")  # fmt: skip
        await self._stop_pipeline()
        new = self._build_pipeline(cfg, vad)
        new.conversation = old.conversation
        self.session.reset_turns()
        self.pipeline = new
        self._start_pipeline()

    def _commit(self) -> None:
        assert self.pipeline is not None
        if not self.session.manual:
            raise RealtimeProtocolError(
                "invalid_request",
                "input_audio_buffer.commit is for turn_detection: null; with server_vad the server commits "
                "each turn itself when the speaker stops",
            )
        item_id, pcm, events = self.session.commit_audio()
        self.send(events)
        self._pending.append((item_id, asyncio.ensure_future(self._transcribe(self.pipeline, item_id, pcm))))

    async def _transcribe(self, pipeline: VoicePipeline, item_id: str, pcm: bytes) -> str:
        try:
            text = await pipeline.transcribe(pcm16_bytes_to_float(pcm), RATE)
        except Exception as exc:
            self.send([self.session.server_error("transcription_failed", f"{type(exc).__name__}: {exc}")])
            return ""
        self.send(self.session.transcription_completed(item_id, text))
        return text

    async def _create_response(self) -> None:
        assert self.pipeline is not None
        if self.session.response is not None:
            raise RealtimeProtocolError(
                "conversation_already_has_active_response",
                f"response {self.session.response.id} is still in progress (send response.cancel first)",
            )
        if self.pipeline.busy:
            raise RealtimeProtocolError(
                "turn_in_progress", "the user is speaking; the server will answer that turn"
            )
        if not self._pending:
            raise RealtimeProtocolError(
                "no_user_input",
                "nothing to respond to: add a user message (conversation.item.create with input_text) "
                "or commit audio (input_audio_buffer.commit) first",
            )
        pending, self._pending = self._pending, []
        texts = [await fut for _, fut in pending]  # committed audio may still be in ASR
        text = " ".join(t.strip() for t in texts if t.strip())
        if not text:
            raise RealtimeProtocolError(
                "empty_user_input", "the committed audio contained no recognisable speech"
            )
        if self.pipeline.busy or self.session.response is not None:
            self._pending = pending + self._pending
            raise RealtimeProtocolError("turn_in_progress", "a turn started while the input was transcribed")
        turn = self.pipeline.respond_to_text(text)
        self.send(self.session.begin_response(turn, pending[-1][0]))

    def _truncate_history(self, truncation: Truncation) -> None:
        """The client says how much of the reply was heard: the history keeps only that."""
        assert self.pipeline is not None
        if self._reply_messages is None or self._reply_messages[0] != truncation.item_id:
            return
        _, user, assistant = self._reply_messages
        chunks = [
            SynthChunk(text, np.zeros(round(d * RATE), np.float32), RATE, 0.0)
            for text, d in truncation.clauses
        ]
        heard = heard_prefix(chunks, truncation.heard_s)
        turns = self.pipeline.conversation.turns
        new = Message("assistant", heard) if heard else None
        if assistant is not None and any(m is assistant for m in turns):
            i = next(i for i, m in enumerate(turns) if m is assistant)
            turns[i : i + 1] = [new] if new else []
        elif new is not None and user is not None and any(m is user for m in turns):
            i = next(i for i, m in enumerate(turns) if m is user)
            turns.insert(i + 1, new)
        self._reply_messages = (truncation.item_id, user, new)


# -- the server ---------------------------------------------------------------------------------------
def server_defaults(cfg: QuickturnConfig, services: Services) -> ServerDefaults:
    """What session.created reports: the voice, recognizer and turn detection this server really uses."""
    tts_model = getattr(services.tts, "model_path", None)
    return ServerDefaults(
        model="quickturn",
        voice=Path(str(tts_model)).stem if tts_model else "quickturn",
        transcription_model=Path(cfg.asr.model_path).name if cfg.asr.model_path else "whisper-tiny.en",
        threshold=cfg.vad.threshold_on,
        prefix_padding_ms=cfg.vad.preroll_ms,
        silence_duration_ms=cfg.endpoint.hangover_ms,
        max_output_tokens=cfg.lm.max_tokens,
    )


class RealtimeServer:
    """The WebSocket server: ``await start()``, then ``url``; ``await close()`` (or ``async with``)."""

    def __init__(
        self, cfg: QuickturnConfig, services: Services, *, host: str | None = None, port: int | None = None
    ) -> None:
        self.cfg = cfg
        self.services = services
        self.host = cfg.server.host if host is None else host
        self.port = cfg.server.port if port is None else port
        self.bus = EventBus()  # every connection's pipeline events (the MQTT bridge listens here)
        self.defaults = server_defaults(cfg, services)
        self.connections: set[_Connection] = set()  # open client connections
        self._server: Server | None = None
        self._stop = asyncio.Event()
        self._mqtt_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{PATH}"

    async def start(self) -> None:
        self._mqtt_task = self._start_mqtt()
        try:
            self._server = await serve(
                self._handler,
                self.host,
                self.port,
                process_request=self._check_request,
                select_subprotocol=_select_subprotocol,
                max_size=MAX_MESSAGE_BYTES,
                compression=None,  # base64 audio hardly compresses; deflate would only cost CPU
            )
        except OSError as exc:
            await self._stop_mqtt()
            raise ServerError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = self._server.sockets[0].getsockname()[1]  # the real one when port 0 was asked for
        log.info("listening on %s", self.url)

    async def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self._stop_mqtt()

    async def __aenter__(self) -> RealtimeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Path and API key, before the WebSocket handshake completes."""
        url = urlsplit(request.path)
        if url.path.rstrip("/") != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, f"not found: the Realtime API is at {PATH}\n")
        key = self.cfg.server.api_key
        if key:
            offered = [
                p.strip()[len(BROWSER_KEY_PREFIX) :]
                for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
                if p.strip().startswith(BROWSER_KEY_PREFIX)
            ]
            bearer = request.headers.get("Authorization", "")
            ok = hmac.compare_digest(bearer.encode(), f"Bearer {key}".encode()) or any(
                hmac.compare_digest(k.encode(), key.encode()) for k in offered
            )
            if not ok:
                response = connection.respond(
                    HTTPStatus.UNAUTHORIZED, "missing or wrong API key: send 'Authorization: Bearer <key>'\n"
                )
                response.headers["WWW-Authenticate"] = 'Bearer realm="quickturn"'
                return response
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        connection = _Connection(self, ws)
        self.connections.add(connection)
        log.info("client %s connected (%d open)", ws.remote_address, len(self.connections))
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            log.info("client %s disconnected", ws.remote_address)

    def _start_mqtt(self) -> asyncio.Task[None] | None:
        if not self.cfg.mqtt.enabled:
            return None
        try:
            from agent.mqtt import run_mqtt_bridge  # imported only when asked for
        except ImportError as exc:
            raise ServerError(
                f"mqtt.enabled is true but the MQTT bridge (agent.mqtt) is not available: {exc}"
            ) from exc
        bridge: MqttBridge = run_mqtt_bridge
        task = asyncio.create_task(bridge(self.cfg.mqtt, self.bus, self._stop), name="mqtt-bridge")
        task.add_done_callback(_report_failure)
        return task

    async def _stop_mqtt(self) -> None:
        task, self._mqtt_task = self._mqtt_task, None
        if task is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(task, 5.0)
        except TimeoutError:
            task.cancel()
        except Exception:
            pass  # already logged by _report_failure


def _select_subprotocol(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    # Browser clients offer "realtime" (and the key as a second subprotocol); others offer none.
    return Subprotocol("realtime") if "realtime" in offered else None


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %s", task.get_name(), task.exception())


# -- CLI ----------------------------------------------------------------------------------------------
async def _serve(cfg: QuickturnConfig, services: Services, console) -> int:
    server = RealtimeServer(cfg, services)
    await server.start()  # ServerError (cannot listen): the CLI reports it, exit 2
    auth = "Authorization: Bearer <server.api_key>" if cfg.server.api_key else "no API key (server.api_key)"
    console.print(f"[bold]serving the Realtime API at {server.url}[/bold] ({auth}); Ctrl-C to stop")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()
        console.print("bye.")
    return 0


def run_serve(cfg: QuickturnConfig, console, load_services: Callable[[], Services]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    services = load_services()  # loaded and warmed once, before the port opens
    return asyncio.run(_serve(cfg, services, console))
