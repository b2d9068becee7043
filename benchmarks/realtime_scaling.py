"""Many speakers at once against a real ``quickturn serve``: client-side V2V as the count grows.

    python -m benchmarks.realtime_scaling --speakers 1 2 4 8 16 --rounds 3 --json out/bench/realtime_scaling.json

Starts one server per variant (``python -m agent.cli serve --port 0`` with the variant's ``--set``
overrides; by default ``batched``, batched replies with ASR/TTS priorities on
(``server.first_clauses_first=true``), and ``queued``, the one-reply-at-a-time behaviour before
batching: ``server.batch_replies=false server.first_clauses_first=false``; ``batched-fifo`` is the
shipped config), then for each speaker
count N and each variant in turn (side by side, the same minutes): N connections, each an open
microphone streaming 100 ms chunks in real time (silence between turns), speak a demo clip at the
same moment, ``--rounds`` times. A round ends when every speaker's turn has ended (``quickturn.latency``)
or ``--turn-timeout`` passed.

Client-side V2V of a turn: the first ``response.output_audio.delta`` received minus the moment the
clip's last voiced sample was spoken (a real microphone sends each chunk once it is recorded). Errors:
``error`` events, responses not ``completed``, turns without a reply in time, dropped connections. The
server's own stage times (from ``quickturn.latency``) say where the time went: final transcript after
the last voiced frame, the first clause's synthesis, and the rest up to the first clause being ready
(the LM's first block and every wait in front of it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from audio.formats import float_to_pcm16_bytes, read_wav

from .realtime_fuzz import Server

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo"
RATE = 24000
CHUNK_S = 0.1
CLIPS = ["02_your_name.wav", "03_time.wav", "04_weekday.wav", "08_weather.wav", "09_joke.wav", "14_sum.wav"]
VARIANTS = {
    "batched": ["server.first_clauses_first=true"],
    "queued": ["server.batch_replies=false", "server.first_clauses_first=false"],
    "batched-fifo": ["server.first_clauses_first=false"],  # the shipped config
}
DEFAULT_VARIANTS = ["batched", "queued"]


@dataclass
class Turn:
    variant: str
    speakers: int
    round: int
    speaker: int
    clip: str
    v2v_ms: float | None = None  # client side
    server_v2v_ms: float | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)
    status: str = ""
    error: str = ""


def voiced_end_s(samples: np.ndarray, rate: int) -> float:
    """Where the last voiced 20 ms frame of a clip ends (frames within 35 dB of the loudest)."""
    frame = rate // 50
    n = len(samples) // frame
    rms = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1))
    voiced = np.nonzero(rms > rms.max() * 10 ** (-35 / 20))[0]
    return float((voiced[-1] + 1) * frame / rate)


class Speaker:
    """One connection with an open microphone: silence, or the clip it was asked to say."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: asyncio.Queue[dict] = asyncio.Queue()
        self._pending = bytearray()
        self._mark: tuple[int, asyncio.Future[float]] | None = None  # byte offset of the voiced end
        self.tasks = [asyncio.create_task(self._microphone()), asyncio.create_task(self._reader())]

    def say(self, pcm: bytes, voiced_end: float) -> asyncio.Future[float]:
        """Queue a clip; the future gets the wall time its last voiced sample was spoken."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._mark = (len(self._pending) + 2 * round(voiced_end * RATE), done)
        self._pending += pcm
        return done

    async def _microphone(self) -> None:
        step = 2 * round(CHUNK_S * RATE)
        t_next = time.monotonic() + CHUNK_S
        while True:
            await asyncio.sleep(max(0.0, t_next - time.monotonic()))  # pacing: one chunk per 100 ms
            chunk = bytes(self._pending[:step]).ljust(step, b"\0")
            del self._pending[:step]
            if self._mark is not None:
                offset, done = self._mark
                if offset <= step:  # the voiced end is in this chunk, recorded over the last 100 ms
                    if not done.done():
                        done.set_result(t_next - CHUNK_S + offset / (2 * RATE))
                    self._mark = None
                else:
                    self._mark = (offset - step, done)
            await self.ws.send(json.dumps({"type": "input_audio_buffer.append",
                                           "audio": base64.b64encode(chunk).decode()}))  # fmt: skip
            t_next += CHUNK_S

    async def _reader(self) -> None:
        async for message in self.ws:
            event = json.loads(message)
            event["_t"] = time.monotonic()
            self.events.put_nowait(event)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.ws.close()


async def one_turn(speaker: Speaker, pcm: bytes, voiced: float, turn: Turn, timeout: float) -> None:
    spoken = speaker.say(pcm, voiced)
    first_audio: float | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                event = await speaker.events.get()
                kind = event["type"]
                if kind == "error":
                    turn.error = turn.error or f"error event: {event['error'].get('code')}"
                elif kind == "response.output_audio.delta" and first_audio is None:
                    first_audio = event["_t"]
                elif kind == "response.done":
                    turn.status = event["response"]["status"]
                elif kind == "quickturn.latency":
                    turn.server_v2v_ms = event.get("v2v_ms")
                    turn.stages_ms = event.get("stages_ms") or {}
                    break
    except TimeoutError:
        turn.error = turn.error or f"no reply within {timeout:g} s"
    if first_audio is not None and spoken.done():
        turn.v2v_ms = (first_audio - spoken.result()) * 1e3
    if not turn.error and turn.status != "completed":
        turn.error = f"response {turn.status or 'missing'}"


async def scenario(url: str, variant: str, n: int, rounds: int, clips: dict, timeout: float) -> list[Turn]:
    speakers = [Speaker(await connect(url, max_size=None)) for _ in range(n)]
    turns: list[Turn] = []
    try:
        for s in speakers:  # session.created
            while (await s.events.get())["type"] != "session.created":
                pass
        for r in range(rounds):
            batch = []
            for i, s in enumerate(speakers):
                name = CLIPS[(i + r) % len(CLIPS)]
                pcm, voiced = clips[name]
                turn = Turn(variant, n, r, i, name)
                turns.append(turn)
                batch.append(one_turn(s, pcm, voiced, turn, timeout))
            await asyncio.gather(*batch)  # every speaker starts the next round together
            # let the last events of the round (transcript, cancelled speculation) drain
            for s in speakers:
                while not s.events.empty():
                    e = s.events.get_nowait()
                    if e["type"] == "error":
                        turns[-n + speakers.index(s)].error = f"error event: {e['error'].get('code')}"
    except (ConnectionClosed, OSError) as exc:
        for t in turns:
            t.error = t.error or f"connection: {type(exc).__name__}"
    finally:
        await asyncio.gather(*(s.close() for s in speakers), return_exceptions=True)
    return turns


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(values, q))


def summarize(turns: list[Turn]) -> dict:
    v2v = [t.v2v_ms for t in turns if t.v2v_ms is not None and not t.error]
    stage = {}
    for key in ("asr_final_ms", "tts_first_chunk_ms", "reply_ready_ms", "endpoint_ms"):
        vals = [t.stages_ms[key] for t in turns if key in t.stages_ms and not t.error]
        stage[key] = statistics.median(vals) if vals else None
    if stage["reply_ready_ms"] is not None and stage["asr_final_ms"] is not None:
        stage["lm_and_waits_ms"] = (
            stage["reply_ready_ms"] - stage["asr_final_ms"] - (stage["tts_first_chunk_ms"] or 0)
        )
    return {
        "turns": len(turns),
        "errors": sum(1 for t in turns if t.error),
        "v2v_p50_ms": pct(v2v, 50),
        "v2v_p95_ms": pct(v2v, 95),
        "stages_p50_ms": stage,
        "error_kinds": sorted({t.error for t in turns if t.error}),
    }


async def run(args: argparse.Namespace) -> dict:
    clips = {}
    for name in CLIPS:
        x = read_wav(DEMO / name, target_rate=RATE).samples
        clips[name] = (float_to_pcm16_bytes(np.concatenate([np.zeros(int(0.3 * RATE), np.float32), x])),
                       0.3 + voiced_end_s(x, RATE))  # fmt: skip
    variants = {v: VARIANTS[v] for v in args.variants}
    for extra in args.variant:  # NAME=section.key=value,section.key=value
        name, _, overrides = extra.partition("=")
        variants[name] = [o for o in overrides.split(",") if o]
    out_dir = Path(args.log_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    servers = {
        v: Server(out_dir / f"server_{v}.log", [a for o in ov for a in ("--set", o)])
        for v, ov in variants.items()
    }
    results: dict = {}
    turns: list[Turn] = []
    try:
        urls = {v: await s.start(args.start_timeout) for v, s in servers.items()}
        for v, url in urls.items():  # warm-up turn per server, not counted
            await scenario(url, v, 1, 1, clips, args.turn_timeout)
        for n in args.speakers:
            for v, url in urls.items():
                got = await scenario(url, v, n, args.rounds, clips, args.turn_timeout)
                turns += got
                results.setdefault(str(n), {})[v] = s = summarize(got)
                print(f"N={n:2d} {v:8s} V2V p50 {s['v2v_p50_ms'] or 0:6.0f} p95 {s['v2v_p95_ms'] or 0:6.0f} ms, "
                      f"errors {s['errors']}/{s['turns']}; p50 stages {json.dumps({k: round(x) for k, x in s['stages_p50_ms'].items() if x is not None})}",
                      flush=True)  # fmt: skip
    finally:
        for s in servers.values():
            await s.stop()
    tracebacks = {v: "".join(s.lines).count("Traceback") for v, s in servers.items()}
    return {"results": results, "tracebacks": tracebacks, "turns": [asdict(t) for t in turns]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.realtime_scaling", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--speakers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--rounds", type=int, default=3, help="turns per speaker, all speaking at once")
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=KEY=VALUE,...",
                    help="another server variant, e.g. asr2=asr.workers=2")  # fmt: skip
    ap.add_argument("--turn-timeout", type=float, default=60.0)
    ap.add_argument("--start-timeout", type=float, default=300.0)
    ap.add_argument("--log-dir", default="out/realtime_scaling")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    report = asyncio.run(run(args))
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.processor()
            or platform.machine(), "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
            "command": " ".join(["python -m benchmarks.realtime_scaling", *(argv if argv is not None else sys.argv[1:])])}  # fmt: skip
    print(json.dumps({"meta": meta, "tracebacks": report["tracebacks"]}))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, **report}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
