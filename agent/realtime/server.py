"""``quickturn serve``: the Realtime-style WebSocket API in front of the voice pipeline.

One process loads the models once (``Services``, warmed before the port opens) and serves any number of
connections; each connection gets its own ``VoicePipeline`` (VAD, turn state, conversation, worker
threads) on the shared models. Per connection::

    client ─ message ─▶ RealtimeSession.receive ─▶ server events + actions (FeedAudio, StartReply, ...)
    FeedAudio (24 kHz PCM16) ─▶ 16 kHz, 32 ms frames ─▶ FrameFeed (paced to real time) ─▶ VoicePipeline
    VoicePipeline ─▶ events ─▶ RealtimeSession ─▶ outgoing queue (bounded in bytes) ─▶ client
    reply audio: VoicePipeline ─▶ ClientSink ─▶ 24 kHz response.output_audio.delta ─▶ outgoing queue

This module only moves bytes and carries out the session's actions: the protocol's rules (bounds, what
is pending, what is an error) live in ``session.py``. Reading the socket never waits for the pipeline,
so a client that leaves is noticed at once; ASR, LM and TTS run in the pipeline's worker threads.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import dataclasses
import logging
import math
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
from agent.events import Event, EventBus
from agent.gated_reply import GatedReply
from agent.pipeline import Services, VoicePipeline
from agent.priority import PriorityGate
from agent.reply import DiffusionReply
from agent.reply_batch import BatchedReply
from audio.formats import float_to_pcm16_bytes, pcm16_bytes_to_float, to_float32
from audio.framing import Framer
from audio.resample import StreamResampler
from audio.sinks import SimulatedSpeaker
from audio.sources import AudioFrame
from audio.vad import SileroVAD

from ..tool_calls import schema_checker
from .page import page_response
from .protocol import JSON, RATE, encode
from .security import AuthLimiter, bind_problem, is_loopback, keys_match, origin_allowed
from .session import (
    ApplyTurnDetection,
    CancelReply,
    ClearFeed,
    FeedAudio,
    InputClock,
    Output,
    RealtimeSession,
    ReviseReply,
    ServerDefaults,
    SessionConfig,
    SetTools,
    StartReply,
    Transcribe,
)

log = logging.getLogger("quickturn.realtime")

PATH = "/v1/realtime"
MAX_MESSAGE_BYTES = 16 * 2**20  # one append may carry minutes of audio (the reference API allows 15 MiB)
OUT_QUEUE_BYTES = 8 * 2**20  # server events waiting for a slow client before it is dropped (~2 min of audio)
CLOSE_TIMEOUT_S = 1.0  # shutdown: a client this slow to answer the close frame is cut off (shutdown <= 3 s)
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
    as one streaming from a microphone. ``push`` never waits: the session bounds the audio waiting
    here (``MAX_BUFFER_S``), so reading the socket never stalls behind the pipeline.
    """

    def __init__(self, sample_rate: int, frame_samples: int, clock: InputClock) -> None:
        self.sample_rate = sample_rate
        self.frame_s = frame_samples / sample_rate
        self.clock = clock
        self._queue: asyncio.Queue[tuple[np.ndarray, float, float]] = asyncio.Queue()
        self._resampler = StreamResampler(RATE, sample_rate)
        self._framer = Framer(frame_samples)
        self._frames = 0  # frames made so far
        self._received_s = 0.0  # input audio received so far
        self._index = 0

    def push(self, pcm: bytes) -> None:
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
            self._queue.put_nowait((frame, chunk_t0 + end_s, end_s * 1000))

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
    """Moves bytes and calls the pipeline: every decision comes from the connection's ``RealtimeSession``."""

    def __init__(self, server: RealtimeServer, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.session = RealtimeSession(server.defaults)
        self.out: collections.deque[str] = collections.deque()  # encoded events not sent yet
        self.out_bytes = 0  # ... their size (ASCII JSON: characters are bytes)
        self._out_ready = asyncio.Event()
        cfg = server.cfg
        self.sink = ClientSink(server.services.tts.sample_rate, cfg.audio.output_block_ms,
                               self._on_reply_audio, self._on_reply_end)  # fmt: skip
        frame_samples = round(cfg.audio.sample_rate * cfg.audio.frame_ms / 1000)
        self.feed = FrameFeed(cfg.audio.sample_rate, frame_samples, self.session.clock)
        self.pipeline: VoicePipeline | None = None
        self._pipe_task: asyncio.Task[None] | None = None
        self._transcriptions: set[asyncio.Task[None]] = set()
        self.closing = False  # the client left (or is being dropped): nothing more is built for it
        self.finished = asyncio.Event()  # run() has returned: pipeline stopped, work cancelled

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
            await self.stop()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self.finished.set()

    async def stop(self) -> None:
        """Cancel everything this connection has going: queued audio, ASR, the reply, outgoing events."""
        self.closing = True
        self.session.close()
        self.feed.clear()
        for task in list(self._transcriptions):
            task.cancel()
        await self._stop_pipeline()
        self.sink.close()
        self.out.clear()
        self.out_bytes = 0

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

    @property
    def busy(self) -> bool:
        return self.pipeline is not None and self.pipeline.busy

    # -- outgoing --------------------------------------------------------------------------------------
    def send(self, events: list[JSON]) -> None:
        for event in events:
            if self.closing:
                return
            frame = encode(event)
            if self.out_bytes + len(frame) > OUT_QUEUE_BYTES:
                log.warning("client %s is not reading events; closing", self.ws.remote_address)
                self._drop(1008, "client is not reading events fast enough")
                return
            self.out.append(frame)
            self.out_bytes += len(frame)
            self._out_ready.set()

    def _drop(self, code: int, reason: str) -> None:
        self.closing = True
        self.out.clear()
        self.out_bytes = 0
        task = asyncio.ensure_future(self.ws.close(code, reason))
        self.server.keep(task)

    async def _sender(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self._out_ready.wait()
                while self.out:
                    frame = self.out.popleft()
                    self.out_bytes -= len(frame)
                    await self.ws.send(frame)
                self._out_ready.clear()

    def _on_pipeline_event(self, pipeline: VoicePipeline, ev: Event) -> None:
        if pipeline is not self.pipeline or self.closing:
            return  # a late event from a replaced pipeline, or a client that left
        try:
            self.send(self.session.on_pipeline_event(ev))
        except Exception:  # runs inside the pipeline's emit(): a bug here must not stop the pipeline
            log.exception("error translating %s", type(ev).__name__)

    def _on_reply_audio(self, pcm: bytes, clause: bool) -> None:
        if self.closing:
            return
        try:  # runs inside the pipeline's playback task
            self.send(self.session.reply_audio(pcm, clause))
        except Exception:
            log.exception("error sending reply audio")

    def _on_reply_end(self) -> None:
        if self.closing:
            return
        try:
            self.send(self.session.reply_audio_done())
        except Exception:
            log.exception("error ending reply audio")

    # -- incoming --------------------------------------------------------------------------------------
    async def _handle(self, message: str | bytes) -> None:
        try:
            await self._carry_out(self.session.receive(message, busy=self.busy))
        except Exception as exc:  # a bug must cost one event, not the connection
            log.exception("error handling a client event")
            self.send([self.session.server_error("internal_error", f"internal error ({type(exc).__name__})")])

    async def _carry_out(self, outputs: list[Output]) -> None:
        """Send the session's events and do its actions, in order."""
        assert self.pipeline is not None
        for out in outputs:
            if self.closing:
                return
            if isinstance(out, dict):
                self.send([out])
            elif isinstance(out, FeedAudio):
                self.feed.push(out.pcm)
            elif isinstance(out, ClearFeed):
                self.feed.clear()
            elif isinstance(out, Transcribe):
                task = asyncio.create_task(self._transcribe(self.pipeline, out))
                self._transcriptions.add(task)
                task.add_done_callback(self._transcriptions.discard)
            elif isinstance(out, StartReply):
                turn = self.pipeline.respond_to_text(out.text, out.tools, out.say)
                self.send(self.session.begin_response(turn, out.user_item_id))
            elif isinstance(out, SetTools):
                self.pipeline.tools = out.request if out.request.offered else None
            elif isinstance(out, CancelReply):
                if not self.pipeline.cancel_reply():
                    log.warning("response.cancel: the pipeline had no reply to cancel")
            elif isinstance(out, ReviseReply):
                self.pipeline.conversation.revise_last_reply(out.heard_text)
            elif isinstance(out, ApplyTurnDetection):
                await self._apply_turn_detection(out)

    async def _apply_turn_detection(self, action: ApplyTurnDetection) -> None:
        """New VAD settings: a fresh pipeline with them (if they differ), carrying the conversation over."""
        old = self.pipeline
        assert old is not None
        old.detector.reset()
        cfg = self._pipeline_cfg(action.config)
        replace = action.config.turn_detection is not None and (cfg.vad, cfg.endpoint) != (
            old.cfg.vad,
            old.cfg.endpoint,
        )
        vad = await self._load_vad() if replace else None
        if self.closing:
            return
        accepted, events = self.session.apply_turn_detection(action.config, busy=old.busy)
        if accepted and vad is not None:
            await self._stop_pipeline()
            new = self._build_pipeline(cfg, vad)
            new.conversation = old.conversation
            new.tools = old.tools
            self.pipeline = new
            self._start_pipeline()
        await self._carry_out(events)

    async def _transcribe(self, pipeline: VoicePipeline, action: Transcribe) -> None:
        try:
            text = await pipeline.transcribe(pcm16_bytes_to_float(action.pcm), RATE)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("transcription failed")
            outputs = self.session.transcription_failed(action.item_id, busy=self.busy)
        else:
            outputs = self.session.transcribed(action.item_id, text, busy=self.busy)
        try:
            await self._carry_out(outputs)
        except Exception as exc:
            log.exception("error starting a response")
            self.send([self.session.server_error("internal_error", f"internal error ({type(exc).__name__})")])


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
        tool_calls=services.tool_caller is not None,
        check_tool=schema_checker(),
    )


class RealtimeServer:
    """The WebSocket server: ``await start()``, then ``url``; ``await close()`` (or ``async with``)."""

    def __init__(
        self, cfg: QuickturnConfig, services: Services, *, host: str | None = None, port: int | None = None
    ) -> None:
        self.cfg = cfg
        self.batched: BatchedReply | None = None
        reply = services.reply
        model = reply.inner if isinstance(reply, GatedReply) else reply
        if cfg.server.batch_replies and isinstance(model, DiffusionReply):
            # Every connection's replies denoised together, each session with its own cached prefix,
            # behind the same reply gate as unbatched.
            self.batched = BatchedReply(
                model, max_batch=cfg.server.reply_batch, sessions=cfg.server.reply_sessions
            )
            gated = reply.behind_batch(self.batched) if isinstance(reply, GatedReply) else self.batched
            services = dataclasses.replace(services, reply=gated)
        for model in (services.asr, services.tts):  # the process's shared ASR and TTS queues
            gate = getattr(model, "gate", None)
            if isinstance(gate, PriorityGate):
                gate.by_priority = cfg.server.first_clauses_first
        self.services = services
        self.host = cfg.server.host if host is None else host
        self.port = cfg.server.port if port is None else port
        self.bus = EventBus()  # every connection's pipeline events (the MQTT bridge listens here)
        self.defaults = server_defaults(cfg, services)
        self.connections: set[_Connection] = set()  # open client connections
        self._handlers: set[asyncio.Task] = set()
        self._tasks: set[asyncio.Future] = set()  # fire-and-forget closes, kept referenced
        self._server: Server | None = None
        self._stop = asyncio.Event()
        self._mqtt_task: asyncio.Task[None] | None = None
        self.auth_limiter = AuthLimiter()  # failed API keys per client address: 429 after too many

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{PATH}"

    async def start(self) -> None:
        problem = bind_problem(self.host, self.cfg.server.api_key, self.cfg.server.insecure)
        if problem is not None:  # the CLI checks this before loading models; a library caller gets it here
            raise ServerError(problem)
        if self.batched is not None:
            await asyncio.to_thread(self.batched.warm_batch)
        self._mqtt_task = self._start_mqtt()
        try:
            self._server = await serve(
                self._handler,
                self.host,
                self.port,
                process_request=self._check_request,
                select_subprotocol=_select_subprotocol,
                max_size=MAX_MESSAGE_BYTES,
                close_timeout=CLOSE_TIMEOUT_S,
                compression=None,  # base64 audio hardly compresses; deflate would only cost CPU
            )
        except OSError as exc:
            await self._stop_mqtt()
            if self.batched is not None:
                await asyncio.to_thread(self.batched.close)
            raise ServerError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = self._server.sockets[0].getsockname()[1]  # the real one when port 0 was asked for
        log.info("listening on %s", self.url)

    async def close(self) -> None:
        """Stop listening and close every connection (code 1001) within a bounded time."""
        self._stop.set()
        if self._server is not None:
            for connection in list(self.connections):
                await connection.stop()  # its reply, ASR and queued audio go at once
            self._server.close()  # sends each client a close frame (1001, going away)
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2 * CLOSE_TIMEOUT_S)
            except TimeoutError:
                log.warning("%d connection(s) did not close in time; cancelling them", len(self._handlers))
                for task in list(self._handlers):
                    task.cancel()
                for ws in list(self._server.connections):
                    ws.transport.abort()
        await self._stop_mqtt()
        if self.batched is not None:
            await asyncio.to_thread(self.batched.close)  # its thread ends after the step in progress

    def keep(self, task: asyncio.Future) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def __aenter__(self) -> RealtimeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """The page's files, then path, Origin and API key, before the WebSocket handshake completes."""
        url = urlsplit(request.path)
        page = page_response(url.path, realtime_path=PATH, api_key_required=bool(self.cfg.server.api_key))
        if page is not None:  # the browser page (GET /): static files, no key needed to load it
            return page
        if url.path.rstrip("/") != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, f"not found: the Realtime API is at {PATH}\n")
        refused = self._check_origin(connection, request)
        if refused is not None:
            return refused
        key = self.cfg.server.api_key
        if key:
            return self._check_key(connection, request, key)
        return None

    def _check_origin(self, connection: ServerConnection, request: Request) -> Response | None:
        """Browsers send Origin and apply no CORS to WebSockets: only allowed pages may connect."""
        origins = request.headers.get_all("Origin")
        hosts = request.headers.get_all("Host")
        host = hosts[0] if len(hosts) == 1 else None
        if len(origins) <= 1 and origin_allowed(
            origins[0] if origins else None, host, self.cfg.server.allowed_origins
        ):
            return None
        log.warning("client %s: origin not allowed, refused", _client(connection))
        return connection.respond(
            HTTPStatus.FORBIDDEN, "origin not allowed: add it to server.allowed_origins\n"
        )

    def _check_key(self, connection: ServerConnection, request: Request, key: str) -> Response | None:
        client = _client(connection)
        wait = self.auth_limiter.retry_after(client)
        if wait > 0:  # refused without looking at the key, the right one included
            response = connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS, "too many wrong API keys from this address; try again later\n"
            )
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        offered = [
            p.strip()[len(BROWSER_KEY_PREFIX) :]
            for header in request.headers.get_all("Sec-WebSocket-Protocol")
            for p in header.split(",")
            if p.strip().startswith(BROWSER_KEY_PREFIX)
        ]
        bearers = request.headers.get_all("Authorization")
        offered += [b[7:].strip() for b in bearers if b[:7].lower() == "bearer "]
        if any([keys_match(k, key) for k in offered]):  # a list: every offer is checked (no early exit)
            self.auth_limiter.succeeded(client)
            return None
        if self.auth_limiter.failed(client):
            log.warning("client %s: %d wrong API keys; refused for %.0f s", client,
                        self.auth_limiter.max_failures, self.auth_limiter.block_s)  # fmt: skip
        response = connection.respond(
            HTTPStatus.UNAUTHORIZED, "missing or wrong API key: send 'Authorization: Bearer <key>'\n"
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="quickturn"'
        return response

    async def _handler(self, ws: ServerConnection) -> None:
        connection = _Connection(self, ws)
        self.connections.add(connection)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        log.info("client %s connected (%d open)", ws.remote_address, len(self.connections))
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            if task is not None:
                self._handlers.discard(task)
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


def _client(connection: ServerConnection) -> str:
    """The client's address (behind a proxy: the proxy's) as the auth limiter counts it."""
    address = connection.remote_address
    return str(address[0]) if isinstance(address, tuple) and address else str(address)


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
    if not cfg.server.api_key and not is_loopback(server.host):
        console.print(f"[bold red]warning:[/bold red] {server.host} without an API key (--insecure): "
                      "anyone who can reach this port can use the server")  # fmt: skip
    console.print(f"[bold]serving the Realtime API at {server.url}[/bold] ({auth}); Ctrl-C to stop")
    console.print(f"browser page: http://{server.host}:{server.port}/")
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
