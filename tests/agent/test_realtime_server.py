"""``quickturn serve`` end to end: a real server on a free port, the ``websockets`` client library as a user
would use it, real models (loaded once for the module) and bundled demo WAVs streamed in real time.

The embedded reply model may be mid-retraining: ``lm.min_tokens`` makes every reply speak, and reply
content is never asserted beyond "not empty".
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiomqtt
import numpy as np
import openai
import pydantic
import pytest
from openai.types.realtime import RealtimeServerEvent
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from agent.config import load_config
from agent.gated_reply import with_gate
from agent.pipeline import Services
from agent.realtime.server import FEED_SLACK_S, FrameFeed, RealtimeServer, ServerError
from agent.realtime.session import InputClock
from agent.wer import word_error_rate
from audio.formats import float_to_pcm16_bytes, read_wav
from audio.sources import AudioFrame

DEMO = Path(__file__).resolve().parents[2] / "demo"
MANIFEST = {e["file"]: e for e in json.loads((DEMO / "manifest.json").read_text())}
OVERRIDES = ["lm.min_tokens=4", "lm.max_tokens=16"]  # short replies that always say something
RATE = 24000
CHUNK_S = 0.1
GA_FORMAT = {"type": "audio/pcm", "rate": RATE}


@pytest.fixture(scope="module")
def cfg():
    return load_config(None, OVERRIDES)


@pytest.fixture(scope="module")
def services(cfg) -> Services:
    return Services.load(cfg)


def clip_pcm(name: str) -> bytes:
    return float_to_pcm16_bytes(read_wav(DEMO / name, target_rate=RATE).samples)


async def open_mic(c: Client, name: str) -> None:
    """A microphone left open: 0.3 s of silence, the clip in 100 ms chunks in real time, then silence."""
    audio = silence(0.3) + clip_pcm(name)
    step = 2 * round(CHUNK_S * RATE)
    for i in range(0, len(audio), step):
        await c.send(type="input_audio_buffer.append", audio=b64(audio[i : i + step]))
        await asyncio.sleep(CHUNK_S)
    while True:
        await c.send(type="input_audio_buffer.append", audio=b64(silence(CHUNK_S)))
        await asyncio.sleep(CHUNK_S)


def silence(seconds: float) -> bytes:
    return bytes(2 * round(seconds * RATE))


def b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()


class Client:
    """A thin test client on a websockets connection: send events, wait for event types, keep the log."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict] = []

    async def send(self, **event) -> None:
        await self.ws.send(json.dumps(event))

    async def wait_for(self, kind: str, timeout: float = 30.0) -> dict:
        """The next unseen event of this type; an unexpected ``error`` event fails at once."""
        for e in self.events:
            if e["type"] == kind and not e.get("_seen"):
                e["_seen"] = True
                return e
        async with asyncio.timeout(timeout):
            while True:
                e = json.loads(await self.ws.recv())
                self.events.append(e)
                if e["type"] == kind:
                    e["_seen"] = True
                    return e
                assert e["type"] != "error", f"waiting for {kind}, got {e['error']}"

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]

    def first(self, kind: str) -> int:
        return next(i for i, e in enumerate(self.events) if e["type"] == kind)


def run_with_server(cfg, services, scenario: Callable[[str], Awaitable[None]]) -> None:
    async def main() -> None:
        async with RealtimeServer(cfg, services, host="127.0.0.1", port=0) as server:
            await scenario(server.url)

    asyncio.run(main())


def reply_audio(client: Client, response_id: str) -> np.ndarray:
    deltas = [e for e in client.of("response.output_audio.delta") if e["response_id"] == response_id]
    pcm = b"".join(base64.b64decode(e["delta"]) for e in deltas)
    return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) if len(x) else 0.0


def test_spoken_turn_streams_events_in_order(cfg, services):
    name = "01_greeting.wav"

    async def scenario(url: str) -> None:
        async with connect(url + "?model=gpt-realtime", max_size=None) as ws:
            c = Client(ws)
            created = await c.wait_for("session.created")
            assert created["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
            await c.send(type="session.update", session={
                "type": "realtime", "output_modalities": ["audio"],
                "audio": {"input": {"format": GA_FORMAT,
                                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 400}},
                          "output": {"format": GA_FORMAT, "voice": "alloy"}},
            })  # fmt: skip
            updated = await c.wait_for("session.updated")
            assert updated["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 400

            mic = asyncio.create_task(open_mic(c, name))
            try:
                latency = await c.wait_for("quickturn.latency", timeout=60)
            finally:
                mic.cancel()
            done = c.of("response.done")[0]["response"]
            order = [
                "session.created",
                "input_audio_buffer.speech_started",
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed",
                "response.created",
                "response.output_audio.delta",
                "response.done",
                "quickturn.latency",
            ]
            positions = [c.first(kind) for kind in order]
            assert positions == sorted(positions), [c.events[p]["type"] for p in sorted(positions)]
            assert c.first("conversation.item.input_audio_transcription.completed") < c.first("response.done")
            assert not c.of("error"), c.of("error")
            # The served reply went through the reply gate, as every reply does (agent/gated_reply.py).
            assert latency["reply_candidate"] in ("model", "draft", "redecode", "recall", "honest"), latency

            started = c.of("input_audio_buffer.speech_started")[0]
            stopped = c.of("input_audio_buffer.speech_stopped")[0]
            assert started["item_id"] == stopped["item_id"]
            assert 0 <= started["audio_start_ms"] < stopped["audio_end_ms"]
            transcript = c.of("conversation.item.input_audio_transcription.completed")[0]["transcript"]
            assert word_error_rate(MANIFEST[name]["text"], transcript) <= 0.2, transcript

            assert (
                done["status"] == "completed" and done["id"] == c.of("response.created")[0]["response"]["id"]
            )
            audio = reply_audio(c, done["id"])
            assert len(audio) > 0.3 * RATE and rms(audio) > 0.01  # real speech, not silence
            said = "".join(e["delta"] for e in c.of("response.output_audio_transcript.delta"))
            assert said.strip() and done["output"][0]["content"][0]["transcript"] == said
            assert latency["response_id"] == done["id"] and latency["transcript"] == transcript
            assert latency["v2v_ms"] is not None and latency["v2v_ms"] > 0
            assert latency["stages_ms"]["endpoint_ms"] >= 400  # the session's silence_duration_ms is in force

    run_with_server(cfg, services, scenario)


def test_sessions_speaking_at_once_each_complete_their_turn_with_batched_replies(cfg, services):
    """Three connections speak at the same moment: each gets its own transcript and a spoken reply,
    the replies denoised by the one batch engine (``[server] batch_replies``, on by default)."""
    names = ["02_your_name.wav", "03_time.wav", "04_weekday.wav"]

    async def speak(url: str, name: str) -> tuple[str, dict, np.ndarray]:
        async with connect(url, max_size=None) as ws:
            c = Client(ws)
            await c.wait_for("session.created")

            mic = asyncio.create_task(open_mic(c, name))
            try:
                await c.wait_for("quickturn.latency", timeout=90)
            finally:
                mic.cancel()
            assert not c.of("error"), c.of("error")
            done = c.of("response.done")[0]["response"]
            transcript = c.of("conversation.item.input_audio_transcription.completed")[0]["transcript"]
            return transcript, done, reply_audio(c, done["id"])

    async def main() -> None:
        async with RealtimeServer(cfg, services, host="127.0.0.1", port=0) as server:
            assert server.batched is not None
            results = await asyncio.gather(*(speak(server.url, n) for n in names))
            assert server.batched.worker.batched.rows_forwarded > 0
        for name, (transcript, done, audio) in zip(names, results):
            assert word_error_rate(MANIFEST[name]["text"], transcript) <= 0.2, transcript
            assert done["status"] == "completed"
            assert len(audio) > 0.3 * RATE and rms(audio) > 0.01
        assert server.batched.worker._thread.is_alive() is False  # closed with the server

    asyncio.run(main())


def test_audio_uploaded_at_once_is_taken_in_at_real_time(cfg, services):
    name = "04_weekday.wav"

    async def scenario(url: str) -> None:
        async with connect(url, max_size=None) as ws:
            c = Client(ws)
            await c.wait_for("session.created")
            upload = silence(0.3) + clip_pcm(name) + silence(1.5)
            await c.send(type="input_audio_buffer.append", audio=b64(upload))
            stopped = await c.wait_for("input_audio_buffer.speech_stopped", timeout=60)
            latency = await c.wait_for("quickturn.latency", timeout=60)
            transcript = latency["transcript"]
            assert len(c.of("input_audio_buffer.speech_started")) == 1
            assert word_error_rate(MANIFEST[name]["text"], transcript) <= 0.2, transcript
            # Taken in as if spoken: one turn, in order, the end of speech at its place in the audio
            # (after the leading silence, before the trailing one is over) ...
            order = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                     "input_audio_buffer.committed", "response.created", "response.done"]  # fmt: skip
            positions = [c.first(kind) for kind in order]
            assert positions == sorted(positions), [c.events[p]["type"] for p in sorted(positions)]
            upload_ms = len(upload) / (2 * RATE) * 1000
            assert 300 < stopped["audio_end_ms"] < upload_ms - cfg.endpoint.hangover_ms
            # ... the silence after it counted on the input-audio clock, and the reply made after the
            # speech ended on that clock (a negative voice-to-voice would mean the upload was rushed
            # through ahead of its time; FrameFeed's pacing itself is checked in the test below).
            assert latency["stages_ms"]["endpoint_ms"] >= cfg.endpoint.hangover_ms - 40
            assert latency["v2v_ms"] is not None and latency["v2v_ms"] > 0
            assert c.of("response.done")[0]["response"]["status"] == "completed"

    run_with_server(cfg, services, scenario)


def test_upload_frames_are_released_at_real_time_pace() -> None:
    """An upload is framed on the input-audio clock: consecutive frames are stamped one frame apart,
    none is released before its stamp (less the documented slack), and the feed's clock tracks them."""
    sample_rate, frame_samples = 16000, 512
    clock = InputClock()
    feed = FrameFeed(sample_rate, frame_samples, clock)
    upload_s = 0.8  # FEED_CHUNK_S of it is due at once, the rest in real time
    n_frames = 20  # of the 25 it holds (the resampler keeps a few ms back until more audio comes)

    async def run() -> list[tuple[AudioFrame, float, float]]:
        feed.push(silence(upload_s))
        got = []
        async for f in feed:
            got.append((f, time.monotonic(), clock.end_ms))
            if len(got) == n_frames:
                break
        return got

    got = asyncio.run(asyncio.wait_for(run(), 30.0))  # the timeout only stops a hung test
    frames = [f for f, _, _ in got]
    frame_s = frame_samples / sample_rate
    assert [f.index for f in frames] == list(range(n_frames))
    for k, (f, released, end_ms) in enumerate(got):
        assert f.t == pytest.approx(frames[0].t + k * frame_s, abs=1e-9)  # one frame apart
        assert released >= f.t - FEED_SLACK_S, f"frame {k} released ahead of its time"
        assert end_ms == pytest.approx((k + 1) * frame_s * 1000)


def test_bad_messages_get_errors_and_the_connection_keeps_serving(cfg, services):
    async def scenario(url: str) -> None:
        async with connect(url, max_size=None) as ws:
            c = Client(ws)
            await c.wait_for("session.created")
            await ws.send("{this is not json")
            assert (await c.wait_for("error"))["error"]["code"] == "invalid_json"
            await c.send(type="session.create", event_id="evt_unknown")
            err = (await c.wait_for("error"))["error"]
            assert err["code"] == "unknown_event_type" and err["event_id"] == "evt_unknown"
            await c.send(type="input_audio_buffer.append", audio="%%% not base64 %%%")
            assert (await c.wait_for("error"))["error"]["code"] == "invalid_base64"
            await c.send(type="session.update", session={
                "type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}})  # fmt: skip
            assert (await c.wait_for("error"))["error"]["code"] == "unsupported_audio_format"
            await ws.send(b"\x00\x01\x02\x03")
            assert (await c.wait_for("error"))["error"]["code"] == "invalid_frame"
            await c.send(type="response.create")
            assert (await c.wait_for("error"))["error"]["code"] == "no_user_input"

            # Still serving: a typed question gets a spoken answer.
            await c.send(type="conversation.item.create", item={
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "What's your name?"}]})  # fmt: skip
            added = await c.wait_for("conversation.item.added")
            assert added["item"]["content"][0]["text"] == "What's your name?"
            await c.send(type="response.create", response={"instructions": "Be brief."})
            created = (await c.wait_for("response.created"))["response"]
            await c.send(type="response.create")
            assert (await c.wait_for("error"))["error"]["code"] == "conversation_already_has_active_response"
            done = (await c.wait_for("response.done", timeout=60))["response"]
            latency = await c.wait_for("quickturn.latency")
            assert done["id"] == created["id"] and done["status"] == "completed"
            assert rms(reply_audio(c, done["id"])) > 0.01
            assert latency["transcript"] == "What's your name?" and latency["reply"].strip()

    run_with_server(cfg, services, scenario)


def test_manual_turn_commit_then_cancel(cfg, services):
    name = "02_your_name.wav"

    async def scenario(url: str) -> None:
        async with connect(url, max_size=None) as ws:
            c = Client(ws)
            await c.wait_for("session.created")
            await c.send(
                type="session.update",
                session={"type": "realtime", "audio": {"input": {"turn_detection": None}}},
            )
            assert (await c.wait_for("session.updated"))["session"]["audio"]["input"][
                "turn_detection"
            ] is None
            await c.send(type="input_audio_buffer.commit")
            assert (await c.wait_for("error"))["error"]["code"] == "input_audio_buffer_commit_empty"
            pcm = clip_pcm(name)
            for i in range(0, len(pcm), 32000):  # no pacing needed: the buffer waits for the commit
                await c.send(type="input_audio_buffer.append", audio=b64(pcm[i : i + 32000]))
            await c.send(type="input_audio_buffer.commit")
            committed = await c.wait_for("input_audio_buffer.committed")
            await c.send(type="response.create")
            completed = await c.wait_for("conversation.item.input_audio_transcription.completed")
            assert completed["item_id"] == committed["item_id"]
            assert word_error_rate(MANIFEST[name]["text"], completed["transcript"]) <= 0.2, completed[
                "transcript"
            ]
            created = (await c.wait_for("response.created"))["response"]
            await c.wait_for("response.output_audio.delta", timeout=60)
            await c.send(type="response.cancel")
            done = (await c.wait_for("response.done"))["response"]
            assert done["id"] == created["id"] and done["status"] == "cancelled"
            assert done["status_details"]["reason"] == "client_cancelled"
            assert (await c.wait_for("quickturn.latency"))["interrupted"] is True
            assert not c.of("input_audio_buffer.speech_started")  # no server VAD in manual mode

    run_with_server(cfg, services, scenario)


@pytest.fixture
def long_replies(cfg, services):
    """Replies of at least 24 tokens (a few seconds of speech), long enough to talk over."""
    long_cfg = load_config(None, ["lm.min_tokens=24", "lm.max_tokens=32", "gate.enabled=false"])
    gated = services.reply
    # The model's long replies as they are: the reply gate would replace most with a short honest one.
    services.reply = with_gate(gated, long_cfg.gate)
    services.reply.reconfigure(long_cfg.lm)
    yield
    services.reply.reconfigure(cfg.lm)
    services.reply = gated


def test_barge_in_cancels_the_reply_and_truncate_sets_the_history(cfg, services, long_replies):
    async def scenario(server: RealtimeServer) -> None:
        async with connect(server.url, max_size=None) as ws:
            c = Client(ws)
            await c.wait_for("session.created")
            interruption: asyncio.Queue[bytes] = asyncio.Queue()

            async def microphone() -> None:  # an open mic: speech, silence, then talking over the reply
                pending = silence(0.3) + clip_pcm("01_greeting.wav")
                step = 2 * round(CHUNK_S * RATE)
                while True:
                    if not pending and not interruption.empty():
                        pending = interruption.get_nowait()
                    chunk, pending = (pending[:step], pending[step:]) if pending else (silence(CHUNK_S), b"")
                    await c.send(type="input_audio_buffer.append", audio=b64(chunk))
                    await asyncio.sleep(CHUNK_S)

            mic = asyncio.create_task(microphone())
            try:
                await c.wait_for("input_audio_buffer.speech_started", timeout=60)
                await c.wait_for("response.created", timeout=60)
                first = await c.wait_for("response.output_audio.delta", timeout=60)
                await asyncio.sleep(0.8)
                interruption.put_nowait(clip_pcm("12_barge_in.wav"))
                done = (await c.wait_for("response.done", timeout=60))["response"]
                latency = await c.wait_for("quickturn.latency")
                again = await c.wait_for("input_audio_buffer.speech_started")
                (connection,) = server.connections
                history = connection.pipeline.conversation.turns
                heard_by_server = [m.content for m in history if m.role == "assistant"]
                # The client played everything it was sent (say, a big jitter buffer): it says so.
                sent_ms = len(reply_audio(c, done["id"])) * 1000 // RATE
                await c.send(type="conversation.item.truncate", item_id=first["item_id"], content_index=0,
                             audio_end_ms=sent_ms)  # fmt: skip
                truncated = await c.wait_for("conversation.item.truncated")
                second = await c.wait_for("response.created", timeout=60)
            finally:
                mic.cancel()
            assert done["status"] == "cancelled" and done["status_details"]["reason"] == "turn_detected"
            assert done["output"][0]["status"] == "incomplete"
            assert latency["interrupted"] is True and latency["response_id"] == done["id"]
            assert c.first("response.done") < c.events.index(again)  # the reply stops, then the new turn
            assert truncated["item_id"] == first["item_id"] and truncated["audio_end_ms"] == sent_ms
            assert second["response"]["id"] != done["id"]
            said = done["output"][0]["content"][0]["transcript"]
            # The server's own estimate (its playhead) is a prefix of what was sent; the client's word wins.
            assert all(said.split()[: len(h.split())] == h.split() for h in heard_by_server), (
                heard_by_server,
                said,
            )
            assert [m.content for m in history if m.role == "assistant"] == [said]
            assert not c.of("error"), c.of("error")

    async def main() -> None:
        async with RealtimeServer(cfg, services, host="127.0.0.1", port=0) as server:
            await scenario(server)

    asyncio.run(main())


LONG_TEXT = (
    "so yesterday I walked down to the harbour with my sister and we talked about the boats the "
    "weather the old lighthouse and what we might cook for dinner later in the week "
)


def test_a_message_longer_than_the_context_is_cut_and_the_session_keeps_serving(cfg, services):
    words = LONG_TEXT.split()
    long_text = " ".join(words[i % len(words)] for i in range(450)) + " What do you think?"

    async def scenario(url: str) -> None:
        async with connect(url, max_size=None) as ws:
            c = Client(ws)
            await c.wait_for("session.created")
            for text in (long_text, "What's your name?"):  # the long one stays in the history
                await c.send(type="conversation.item.create", item={
                    "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})  # fmt: skip
                await c.send(type="response.create")
                done = (await c.wait_for("response.done", timeout=90))["response"]
                assert done["status"] == "completed", done["status_details"]
                await c.wait_for("quickturn.latency")
            first, second = c.of("quickturn.input_truncated")  # each prompt was cut to fit: told
            assert first["cut_tokens"] > 0  # the message alone was longer than the context
            assert second["dropped_messages"] >= 1 and second["cut_tokens"] == 0  # the old exchange went
            assert first["prompt_tokens"] + cfg.lm.max_tokens <= cfg.lm.max_context
            assert not c.of("error"), c.of("error")

    run_with_server(cfg, services, scenario)


def test_an_oversized_append_is_refused_and_a_client_that_leaves_is_dropped_at_once(cfg, services):
    async def scenario(server: RealtimeServer) -> None:
        async with connect(server.url, max_size=None) as ws:
            c = Client(ws)
            await c.wait_for("session.created")
            # 262 s in one append (just under the message size limit): refused, not queued behind the pipeline.
            await c.send(type="input_audio_buffer.append", audio=b64(silence(262)), event_id="big")
            err = (await c.wait_for("error"))["error"]
            assert err["code"] == "input_audio_buffer_full" and err["event_id"] == "big"
            assert len(json.dumps(err)) < 500
            # 100 s fits the bound: taken, and the connection keeps answering at once (it used to wait until
            # the pipeline had taken all but 30 s of it in, at real time).
            await c.send(type="input_audio_buffer.append", audio=b64(silence(100)))
            await c.send(type="session.update", session={"type": "realtime", "instructions": "Be brief."})
            assert (await c.wait_for("session.updated", timeout=10))["session"]["instructions"] == "Be brief."
            await c.send(type="input_audio_buffer.append", audio=b64(silence(30)))
            assert (await c.wait_for("error"))["error"]["code"] == "input_audio_buffer_full"
            (connection,) = server.connections
        # The client left with ~2 minutes of audio still queued: its connection ends now, not then.
        async with asyncio.timeout(10):
            await connection.finished.wait()
        assert not server.connections and connection.session.buffered_ms == 0

    async def main() -> None:
        async with RealtimeServer(cfg, services, host="127.0.0.1", port=0) as server:
            await scenario(server)

    asyncio.run(main())


def test_shutdown_closes_every_connection_with_a_close_code(cfg, services):
    async def main() -> None:
        server = RealtimeServer(cfg, services, host="127.0.0.1", port=0)
        await server.start()
        try:
            async with (
                connect(server.url, max_size=None) as uploading,
                connect(server.url, max_size=None) as talking,
            ):
                await Client(uploading).wait_for("session.created")
                await Client(uploading).send(type="input_audio_buffer.append", audio=b64(silence(100)))
                t = Client(talking)
                await t.wait_for("session.created")
                await t.send(type="conversation.item.create", item={
                    "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]})  # fmt: skip
                await t.send(type="response.create")
                await t.wait_for("response.created", timeout=60)
                async with asyncio.timeout(
                    2 * 5.0 + 5
                ):  # the server's own bound, plus slack for a busy machine
                    await server.close()
                    await uploading.wait_closed()
                    await talking.wait_closed()
                assert uploading.close_code == 1001 and talking.close_code == 1001
                assert not server.connections
        finally:
            await server.close()

    asyncio.run(main())


def test_surrogates_and_deep_json_get_error_events_not_a_dropped_connection(cfg, services, caplog):
    async def scenario(url: str) -> None:
        async with connect(url, max_size=None) as ws:
            c = Client(ws)
            await c.wait_for("session.created")
            await ws.send('{"type": "input_audio_buffer.clear", "event_id": "a\\ud800"}')
            err = (await c.wait_for("error"))["error"]
            assert err["code"] == "invalid_value" and err["event_id"] is None
            await ws.send("[" * 5000 + "]" * 5000)
            assert (await c.wait_for("error"))["error"]["code"] == "invalid_json"
            await ws.send(json.dumps({"type": "t" * 1_000_000}))
            err = (await c.wait_for("error"))["error"]
            assert err["code"] == "unknown_event_type" and "tttttttt" not in err["message"]
            await c.send(type="input_audio_buffer.clear", event_id="ok")
            assert (await c.wait_for("input_audio_buffer.cleared"))["type"]  # still serving

    with caplog.at_level("INFO", logger="quickturn.realtime"):
        run_with_server(cfg, services, scenario)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[int]:
    """A throwaway broker on a free local port (started and stopped by this test only)."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed (apt install mosquitto)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {pwd.getpwuid(os.getuid()).pw_name}\n"
    )
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.mqtt
def test_mqtt_bridge_publishes_the_servers_turns(cfg, services, mosquitto):
    with_mqtt = copy.deepcopy(cfg)
    with_mqtt.mqtt.enabled = True
    with_mqtt.mqtt.port = mosquitto
    with_mqtt.mqtt.topic_prefix = "qt-serve-test"

    async def scenario(url: str) -> None:
        async with aiomqtt.Client("127.0.0.1", mosquitto) as mqtt, connect(url, max_size=None) as ws:
            await mqtt.subscribe("qt-serve-test/latency", qos=1)
            c = Client(ws)
            await c.wait_for("session.created")
            await c.send(type="conversation.item.create", item={
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]})  # fmt: skip
            await c.send(type="response.create")
            latency = await c.wait_for("quickturn.latency", timeout=60)
            async with asyncio.timeout(20):
                message = await anext(mqtt.messages)
            published = json.loads(message.payload)
            assert published["type"] == "quickturn.latency" and published["transcript"] == "Hello!"
            assert published["reply"] == latency["reply"]

    run_with_server(with_mqtt, services, scenario)


def test_handshake_checks_path_and_api_key(cfg, services):
    keyed = copy.deepcopy(cfg)
    keyed.server.api_key = "s3cret"

    async def scenario(url: str) -> None:
        with pytest.raises(InvalidStatus) as info:
            async with connect(url):
                pass
        assert info.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as info:
            async with connect(
                url.replace("/v1/realtime", "/v2/other"),
                additional_headers={"Authorization": "Bearer s3cret"},
            ):
                pass
        assert info.value.response.status_code == 404
        async with connect(url + "?model=x", additional_headers={"Authorization": "Bearer s3cret"}) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"

    run_with_server(keyed, services, scenario)


def test_handshake_checks_the_browser_origin(cfg, services):
    listed = copy.deepcopy(cfg)
    listed.server.allowed_origins = ["https://app.example"]

    async def scenario(url: str) -> None:
        port = urlsplit(url).port
        with pytest.raises(InvalidStatus) as info:  # a page elsewhere driving a local server
            async with connect(url, origin=Origin("https://evil.example")):
                pass
        assert info.value.response.status_code == 403
        assert b"origin" in info.value.response.body and len(info.value.response.body) < 200
        with pytest.raises(InvalidStatus) as info:  # another local port is another origin
            async with connect(url, origin=Origin(f"http://127.0.0.1:{port + 1}")):
                pass
        assert info.value.response.status_code == 403
        for origin in (None, Origin(f"http://127.0.0.1:{port}"), Origin("https://app.example")):
            async with connect(url, origin=origin) as ws:  # no Origin: an SDK; then same origin, listed
                assert json.loads(await ws.recv())["type"] == "session.created"

    run_with_server(listed, services, scenario)


def test_repeated_wrong_keys_get_429_even_for_the_right_key(cfg, services):
    keyed = copy.deepcopy(cfg)
    keyed.server.api_key = "s3cret"

    async def scenario(server: RealtimeServer) -> None:
        async def status(key: str) -> InvalidStatus:
            with pytest.raises(InvalidStatus) as info:
                async with connect(server.url, additional_headers={"Authorization": f"Bearer {key}"}):
                    pass
            return info.value

        async with connect(server.url, additional_headers={"Authorization": "Bearer s3cret"}) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
        for guess in range(server.auth_limiter.max_failures):
            assert (await status(f"guess{guess}")).response.status_code == 401
        refused = (await status("s3cret")).response
        assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
        # The block ends (the limiter's clock, moved on instead of sleeping): the right key works again.
        now = server.auth_limiter.clock()
        server.auth_limiter.clock = lambda: now + server.auth_limiter.block_s
        async with connect(server.url, additional_headers={"Authorization": "Bearer s3cret"}) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"

    async def main() -> None:
        async with RealtimeServer(keyed, services, host="127.0.0.1", port=0) as server:
            await scenario(server)

    asyncio.run(main())


def test_a_public_address_without_a_key_is_refused_at_start(cfg, services):
    async def main() -> None:
        with pytest.raises(ServerError, match="without an API key"):
            await RealtimeServer(cfg, services, host="0.0.0.0", port=0).start()

    asyncio.run(main())


# -- function calling with the official SDK ---------------------------------------------------------------
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIMER_TOOL = {
    "type": "function",
    "name": "set_timer",
    "description": "Start a countdown timer.",
    "parameters": {"type": "object", "properties": {"minutes": {"type": "integer"}}, "required": ["minutes"]},
}


def test_sdk_function_call_round_trip(cfg, services):
    """The openai SDK declares tools, gets the model's call, answers it, and hears the result spoken."""
    assert services.tool_caller is not None  # the shipped diffusion model (behind the gate) has one
    strict = pydantic.TypeAdapter(RealtimeServerEvent)

    async def scenario(server: RealtimeServer) -> None:
        base = server.url.removesuffix("/realtime")
        client = openai.AsyncOpenAI(api_key="sk-local", base_url="http://unused/v1", websocket_base_url=base)
        async with client.realtime.connect(model="quickturn") as conn:

            async def events_until(kind: str) -> list:
                """Server events up to ``kind``, each validated strictly as the SDK's GA type."""
                got = []
                async with asyncio.timeout(120):
                    while True:
                        data = json.loads(await conn.recv_bytes())
                        if data["type"].startswith("quickturn."):
                            continue
                        event = strict.validate_python(data)
                        assert event.type != "error", event.error
                        got.append(event)
                        if event.type == kind:
                            return got

            await events_until("session.created")
            await conn.session.update(session={
                "type": "realtime", "tools": [WEATHER_TOOL, TIMER_TOOL],
                "tool_choice": {"type": "function", "name": "get_weather"},
                "audio": {"input": {"turn_detection": None}},
            })  # fmt: skip
            (updated,) = await events_until("session.updated")
            assert [t.name for t in updated.session.tools] == ["get_weather", "set_timer"]

            await conn.conversation.item.create(item={
                "type": "message", "role": "user",
                "content": [{"type": "input_text", "text": "What's the weather like in Paris?"}],
            })  # fmt: skip
            await conn.response.create()
            first = await events_until("response.done")
            kinds = [e.type for e in first]
            assert kinds[kinds.index("response.created") :] == [
                "response.created",
                "response.output_item.added",
                "conversation.item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
            call = first[-1].response.output[0]
            assert first[-1].response.status == "completed" and call.type == "function_call"
            assert call.name == "get_weather", call
            arguments = json.loads(call.arguments)
            # A free string is copied from the user's words (which words is the model's: see test_sdk_auto_*)
            assert arguments["city"] and arguments["city"] in "What's the weather like in Paris?", arguments

            await conn.conversation.item.create(item={
                "type": "function_call_output", "call_id": call.call_id,
                "output": json.dumps({"city": arguments["city"], "sky": "sunny", "temperature_c": 18}),
            })  # fmt: skip
            await conn.response.create()
            second = await events_until("response.done")
            done = second[-1].response
            assert done.status == "completed" and done.output[0].type == "message"
            transcript = done.output[0].content[0].transcript
            assert "sunny" in transcript.lower() and "18" in transcript, transcript
            audio = b"".join(
                base64.b64decode(e.delta) for e in second if e.type == "response.output_audio.delta"
            )
            assert rms(np.frombuffer(audio, "<i2").astype(np.float32) / 32768) > 0.01
            # The history holds the request once, answered by what was said.
            (connection,) = server.connections
            history = [(m.role, m.content) for m in connection.pipeline.conversation.turns]
            assert history == [("user", "What's the weather like in Paris?"), ("assistant", transcript)]

    async def main() -> None:
        async with RealtimeServer(cfg, services, host="127.0.0.1", port=0) as server:
            await scenario(server)

    asyncio.run(main())


def test_a_spoken_request_becomes_a_function_call(cfg, services):
    """Server VAD: the spoken turn itself is decided into a call (speculatively, then committed)."""
    assert services.tool_caller is not None  # the shipped diffusion model (behind the gate) has one
    name = "08_weather.wav"  # "What's the weather like tomorrow?"
    forecast = {
        "type": "function",
        "name": "get_forecast",
        "description": "The weather forecast for a day.",
        "parameters": {"type": "object", "properties": {"day": {"type": "string", "enum": ["today", "tomorrow"]}},
                       "required": ["day"]},
    }  # fmt: skip

    async def scenario(url: str) -> None:
        async with connect(url, max_size=None) as ws:
            c = Client(ws)
            await c.wait_for("session.created")
            await c.send(type="session.update", session={
                "type": "realtime", "tools": [forecast, TIMER_TOOL],
                "tool_choice": {"type": "function", "name": "get_forecast"},
            })  # fmt: skip
            await c.wait_for("session.updated")

            mic = asyncio.create_task(open_mic(c, name))
            try:
                latency = await c.wait_for("quickturn.latency", timeout=60)
            finally:
                mic.cancel()
            (done,) = c.of("response.done")
            (item,) = done["response"]["output"]
            assert done["response"]["status"] == "completed" and item["type"] == "function_call"
            assert item["name"] == "get_forecast" and json.loads(item["arguments"])["day"] in (
                "today",
                "tomorrow",
            )
            committed = c.of("input_audio_buffer.committed")[0]["item_id"]
            (added,) = [e for e in c.of("conversation.item.added") if e["item"]["type"] == "function_call"]
            assert added["previous_item_id"] == committed  # after the user's item, in the history's order
            assert not c.of("response.output_audio.delta") and not c.of("error")
            assert word_error_rate(MANIFEST[name]["text"], latency["transcript"]) <= 0.2, latency[
                "transcript"
            ]

    run_with_server(cfg, services, scenario)
