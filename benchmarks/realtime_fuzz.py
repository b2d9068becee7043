"""Fuzz and load a real ``quickturn serve`` on loopback: malformed messages, then connect/drop churn.

    python -m benchmarks.realtime_fuzz --messages 10000 --connects 1000 --json out/realtime_fuzz.json

Starts its own server (``python -m agent.cli serve --host 127.0.0.1 --port 0``, default config, its log
kept), waits for it to listen, then:

1. ``--messages`` malformed messages of many kinds (bad JSON, binary frames, deep nesting, wrong types,
   unknown and beta events, bad base64, NaN, surrogates, huge strings, out-of-turn commands), spread
   over ``--connections`` connections sent as fast as the server takes them, each ending with a probe
   (``input_audio_buffer.clear``) that must be answered: a connection that does not answer is wedged.
2. ``--connects`` connect/drop cycles of several kinds (clean close, abort after ``session.created``,
   abort mid-stream, a half-sent HTTP upgrade, abort before the handshake answer), ``--parallel`` at a
   time.
3. One fresh connection must still be served, every ``connected`` in the log must have its
   ``disconnected``, and Ctrl-C (SIGINT) must stop the server cleanly within 30 s.

Reported: crashes (the server exiting early or not stopping), tracebacks in the server log, wedged
connections, server events received, and the server's RSS before and after (and its peak). Everything is
bounded: counts, per-step timeouts and ``--time-limit`` overall; the server is always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import re
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

HOST = "127.0.0.1"  # loopback only: this script never serves beyond this machine
STEP_TIMEOUT_S = 30.0  # a probe, a handshake, a shutdown: longer than this counts as wedged
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Report:
    messages_sent: int = 0
    errors_received: int = 0
    other_events: int = 0
    wedged_connections: int = 0
    malformed_s: float = 0.0
    connects: int = 0
    connect_kinds: dict[str, int] = field(default_factory=dict)
    connect_failures: int = 0
    connects_s: float = 0.0
    final_connection_ok: bool = False
    log_connected: int = 0
    log_disconnected: int = 0
    tracebacks_in_log: int = 0
    server_crashed: bool = False
    server_exit_code: int | None = None
    rss_mib_start: float = 0.0
    rss_mib_after_malformed: float = 0.0
    rss_mib_after_connects: float = 0.0
    rss_mib_peak: float = 0.0
    rss_mib_during_connects: list[float] = field(default_factory=list)  # every tenth of the cycles


# -- malformed messages ---------------------------------------------------------------------------------
def malformed(rng: random.Random) -> str | bytes:
    """One message the server must answer with an ``error`` event (never a reply, never a crash)."""
    junk = [None, True, -1, 2**70, 1.5, "", "x" * 300, [], {}, [[[]]], {"a": {"b": {}}}]
    kind = rng.randrange(16)
    if kind == 0:
        return '{"type": "input_audio_buffer.append", "audio": "AAAA'  # cut off
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))  # a binary frame
    if kind == 2:
        n = rng.randrange(100, 20000)
        return "[" * n + "]" * n  # nesting past the parser's recursion limit
    if kind == 3:
        return json.dumps(rng.choice([[1, 2], 3, "text", None, True]))  # not an object
    if kind == 4:
        return json.dumps({"event_id": "e", "audio": "AAAA"})  # no type
    if kind == 5:
        return json.dumps({"type": rng.choice(junk[:5] + junk[7:])})  # type not a string
    if kind == 6:
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz._") for _ in range(rng.randrange(1, 2000)))
        return json.dumps({"type": name})  # unknown event
    if kind == 7:  # beta names
        return json.dumps(
            {"type": "session.update", "session": {"modalities": ["text"], "input_audio_format": "pcm16"}}
        )
    if kind == 8:
        return json.dumps(
            {"type": "input_audio_buffer.append", "audio": "%%% not base64 %%%" * rng.randrange(1, 50)}
        )
    if kind == 9:
        return json.dumps({"type": "session.update", "session": rng.choice(junk)})
    if kind == 10:
        return '{"type": "input_audio_buffer.clear", "event_id": "a\\ud800"}'  # a lone surrogate
    if kind == 11:
        return rng.choice(
            ['{"type": NaN}', '{"type": "response.create", "response": {"max_output_tokens": Infinity}}']
        )
    if kind == 12:  # a huge string where a short one belongs
        return json.dumps(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "y" * rng.randrange(10**5, 10**6)}],
                },
            }
        )
    if kind == 13:  # commands that make no sense now
        return json.dumps(
            rng.choice(
                [
                    {"type": "input_audio_buffer.commit"},
                    {"type": "response.create"},
                    {
                        "type": "conversation.item.truncate",
                        "item_id": "nope",
                        "content_index": 0,
                        "audio_end_ms": 10,
                    },
                ]
            )
        )
    if kind == 14:  # an unsupported audio format or an odd number of PCM bytes
        return rng.choice(
            [
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {
                            "type": "realtime",
                            "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
                        },
                    }
                ),
                json.dumps(
                    {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x00" * 3).decode()}
                ),
            ]
        )
    return json.dumps({"type": "response.cancel", "response_id": rng.choice(junk)})  # fmt: skip


async def malformed_connection(url: str, count: int, seed: int, report: Report) -> None:
    rng = random.Random(seed)
    async with connect(url, max_size=None, open_timeout=STEP_TIMEOUT_S) as ws:
        probe_answered = asyncio.Event()

        async def reader() -> None:
            async for message in ws:
                event = json.loads(message)
                if event["type"] == "error":
                    report.errors_received += 1
                else:
                    report.other_events += 1
                if event["type"] == "input_audio_buffer.cleared":  # no malformed message gets this: the probe
                    probe_answered.set()

        read = asyncio.create_task(reader())
        try:
            for _ in range(count):
                await ws.send(malformed(rng))
                report.messages_sent += 1
            await ws.send(json.dumps({"type": "input_audio_buffer.clear", "event_id": "probe"}))
            try:
                await asyncio.wait_for(probe_answered.wait(), STEP_TIMEOUT_S)
            except TimeoutError:
                report.wedged_connections += 1
        finally:
            read.cancel()


# -- connect / drop -------------------------------------------------------------------------------------
CONNECT_KINDS = ("clean_close", "abort_after_created", "abort_mid_stream", "half_http", "abort_in_handshake")


async def connect_drop(url: str, port: int, kind: str) -> None:
    if kind == "half_http":  # an upgrade request cut off half-way
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        await writer.drain()
        writer.close()
        return
    if kind == "abort_in_handshake":  # a complete upgrade request, gone before the answer is read
        reader, writer = await asyncio.open_connection(HOST, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /v1/realtime HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await writer.drain()
        writer.transport.abort()
        return
    async with connect(url, max_size=None, open_timeout=STEP_TIMEOUT_S, close_timeout=2) as ws:
        if kind == "clean_close":
            return
        await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S)  # session.created
        if kind == "abort_mid_stream":  # audio and junk in flight, then the TCP connection just goes
            audio = base64.b64encode(bytes(48000)).decode()  # 1 s of silence
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
            await ws.send("{broken")
        ws.transport.abort()


async def churn(url: str, port: int, count: int, parallel: int, seed: int, report: Report, pid: int) -> None:
    rng = random.Random(seed)
    kinds = [rng.choice(CONNECT_KINDS) for _ in range(count)]
    gate = asyncio.Semaphore(parallel)

    async def one(kind: str) -> None:
        async with gate:
            try:
                await connect_drop(url, port, kind)
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
                report.connect_failures += 1
            report.connects += 1
            if report.connects % max(1, count // 10) == 0:
                report.rss_mib_during_connects.append(round(rss_mib(pid), 1))
            report.connect_kinds[kind] = report.connect_kinds.get(kind, 0) + 1

    await asyncio.gather(*(one(k) for k in kinds))


async def still_serving(url: str) -> bool:
    try:
        async with connect(url, max_size=None, open_timeout=STEP_TIMEOUT_S) as ws:
            created = json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S))
            await ws.send(json.dumps({"type": "input_audio_buffer.clear", "event_id": "last"}))
            cleared = json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S))
            return created["type"] == "session.created" and cleared["type"] == "input_audio_buffer.cleared"
    except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError, ValueError):
        return False


# -- the server -----------------------------------------------------------------------------------------
def rss_mib(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    """``quickturn serve`` as a child process; its output is kept (and written to ``log_path``)."""

    def __init__(self, log_path: Path, extra: list[str]) -> None:
        self.log_path = log_path
        self.extra = extra
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._url: asyncio.Future[str] | None = None
        self._pump: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float) -> str:
        cmd = [sys.executable, "-m", "agent.cli", "serve", "--host", HOST, "--port", "0", *self.extra]
        self.proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "400"},
        )  # fmt: skip
        self._url = asyncio.get_running_loop().create_future()
        self._pump = asyncio.create_task(self._read())
        return await asyncio.wait_for(asyncio.shield(self._url), timeout_s)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None and self._url is not None
        with self.log_path.open("w") as log:
            async for raw in self.proc.stdout:
                line = raw.decode(errors="replace")
                self.lines.append(line)
                log.write(line)
                found = re.search(r"serving the Realtime API at (ws://\S+)", line)
                if found and not self._url.done():
                    self._url.set_result(found.group(1))
        if not self._url.done():
            self._url.set_exception(
                RuntimeError("the server exited before listening; see " + str(self.log_path))
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self) -> int | None:
        """SIGINT (Ctrl-C), as a user stops it; killed if it is not gone in time. Its exit code, or None."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), STEP_TIMEOUT_S)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                return None
        if self._pump is not None:
            await self._pump
        return self.proc.returncode


async def run(args: argparse.Namespace) -> Report:
    report = Report()
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    server = Server(Path(args.log), [a for c in args.config for a in ("--config", c)])
    url = await server.start(args.start_timeout)
    assert server.proc is not None
    pid, port = server.proc.pid, int(url.split(":")[2].split("/")[0])
    try:
        async with asyncio.timeout(args.time_limit):
            await still_serving(url)  # one ordinary connection first: the baseline includes its warm-up
            report.rss_mib_start = rss_mib(pid)
            t0 = time.perf_counter()
            share = [args.messages // args.connections + (i < args.messages % args.connections)
                     for i in range(args.connections)]  # fmt: skip
            await asyncio.gather(
                *(malformed_connection(url, n, args.seed + i, report) for i, n in enumerate(share))
            )
            report.malformed_s = time.perf_counter() - t0
            report.rss_mib_after_malformed = rss_mib(pid)
            t0 = time.perf_counter()
            await churn(url, port, args.connects, args.parallel, args.seed, report, pid)
            report.connects_s = time.perf_counter() - t0
            report.final_connection_ok = await still_serving(url)
            report.rss_mib_after_connects = rss_mib(pid)
            report.rss_mib_peak = rss_mib(pid, "VmHWM")
    except TimeoutError:
        print(f"stopped at --time-limit {args.time_limit:g} s; the figures so far follow", file=sys.stderr)
    except (OSError, ConnectionClosed, InvalidHandshake) as exc:  # the server went away, most likely
        print(f"run stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        report.server_crashed = not server.running
        report.server_exit_code = await server.stop()
        report.server_crashed = report.server_crashed or report.server_exit_code is None
    text = "".join(server.lines)
    report.tracebacks_in_log = text.count("Traceback")
    report.log_connected = len(re.findall(r"client .* connected \(\d+ open\)", text))
    report.log_disconnected = len(re.findall(r"client .* disconnected\s*$", text, re.M))
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.realtime_fuzz", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--messages", type=int, default=10_000, help="malformed messages in all")
    ap.add_argument("--connections", type=int, default=4, help="connections the malformed messages go over")
    ap.add_argument("--connects", type=int, default=1_000, help="connect/drop cycles")
    ap.add_argument("--parallel", type=int, default=8, help="connect/drop cycles at a time")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config", action="append", default=[], help="server config (quickturn serve --config)")
    ap.add_argument("--start-timeout", type=float, default=300.0, help="seconds for models to load")
    ap.add_argument("--time-limit", type=float, default=900.0, help="seconds for the whole run, after start")
    ap.add_argument("--log", default="out/realtime_fuzz/server.log", help="the server's output")
    ap.add_argument("--json", help="write the report here too")
    args = ap.parse_args(argv)
    if min(args.messages, args.connects) < 0 or args.connections < 1 or args.parallel < 1:
        ap.error("counts must be >= 0, --connections and --parallel >= 1")

    report = asyncio.run(run(args))
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.processor()
            or platform.machine(), "cpus": os.cpu_count(), "command": " ".join(["python -m benchmarks.realtime_fuzz",
            *(argv if argv is not None else sys.argv[1:])])}  # fmt: skip
    for key, value in asdict(report).items():
        print(f"{key:26} {value:.1f}" if isinstance(value, float) else f"{key:26} {value}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, "report": asdict(report)}, indent=2) + "\n")
    ok = (
        not report.server_crashed
        and report.tracebacks_in_log == 0
        and report.wedged_connections == 0
        and report.errors_received == report.messages_sent  # each malformed message gets one error
        and report.final_connection_ok
        and report.log_connected == report.log_disconnected
    )
    print("OK" if ok else "PROBLEMS FOUND (see above and the server log: " + args.log + ")")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
