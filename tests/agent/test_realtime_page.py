"""The browser page of ``quickturn serve`` (``GET /``): its files over real HTTP, and one spoken turn in a
real headless Chromium whose fake microphone plays a demo clip, driven over the DevTools protocol.

The Chromium test needs Debian's ``chromium`` (``.ci/bootstrap.sh`` installs it) and skips without it.
Set ``QUICKTURN_PAGE_SCREENSHOT=/tmp/quickturn-page.png`` to keep a screenshot of the page after the turn.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect

from agent.config import QuickturnConfig, load_config
from agent.pipeline import Services
from agent.realtime.server import RealtimeServer
from audio.formats import read_wav, write_wav

DEMO = Path(__file__).resolve().parents[2] / "demo"
OVERRIDES = ["lm.min_tokens=4", "lm.max_tokens=16"]  # short replies that always say something
KEY = "page-test-key"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TURN_TIMEOUT_S = 120.0  # browser start, one spoken turn and its reply, on a busy 2-core machine


@pytest.fixture(scope="module")
def cfg() -> QuickturnConfig:
    return load_config(None, OVERRIDES)


@pytest.fixture(scope="module")
def services(cfg: QuickturnConfig) -> Services:
    return Services.load(cfg)


def keyed(cfg: QuickturnConfig, key: str) -> QuickturnConfig:
    out = copy.deepcopy(cfg)
    out.server.api_key = key
    return out


def http_get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def test_page_files_are_served_with_their_types(cfg, services):
    async def main() -> None:
        for key in ("", KEY):
            async with RealtimeServer(keyed(cfg, key), services, host="127.0.0.1", port=0) as server:
                base = f"http://127.0.0.1:{server.port}"
                got = {p: await asyncio.to_thread(http_get, base + p) for p in
                       ("/", "/app.js", "/worklet.js", "/style.css", "/config.json", "/nope.js", "/../pyproject.toml")}  # fmt: skip
                status, ctype, body = got["/"]
                assert (status, ctype) == (200, "text/html; charset=utf-8")
                assert b'<script src="/app.js"' in body
                assert got["/app.js"][:2] == (200, "text/javascript; charset=utf-8")
                assert b"registerProcessor" in got["/worklet.js"][2]
                assert got["/style.css"][:2] == (200, "text/css; charset=utf-8")
                status, ctype, body = got["/config.json"]
                assert (status, ctype) == (200, "application/json")
                assert json.loads(body) == {"realtime_path": "/v1/realtime", "api_key_required": bool(key)}
                assert got["/nope.js"][0] == 404
                assert got["/../pyproject.toml"][0] == 404

    asyncio.run(main())


# -- a real browser ---------------------------------------------------------------------------------------
class DevTools:
    """A minimal Chrome DevTools Protocol client over the browser's WebSocket (flat sessions)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._next = 0
        self._calls: dict[int, asyncio.Future[dict]] = {}
        self.events: asyncio.Queue[dict] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            future = self._calls.pop(msg.get("id", -1), None)
            if future is None:
                self.events.put_nowait(msg)
            elif "error" in msg:
                future.set_exception(RuntimeError(f"DevTools: {msg['error']}"))
            else:
                future.set_result(msg.get("result", {}))

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict:
        self._next += 1
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._calls[self._next] = future
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session is not None:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        return await future

    async def wait_event(self, method: str) -> dict:
        while True:
            msg = await self.events.get()
            if msg.get("method") == method:
                return msg

    async def evaluate(self, session: str, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", session, expression=expression, awaitPromise=True,
                                 returnByValue=True)  # fmt: skip
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self._reader.cancel()


@contextlib.asynccontextmanager
async def chromium(wav: Path, profile: Path) -> AsyncIterator[tuple[DevTools, list[str]]]:
    """Headless Chromium whose fake microphone plays ``wav``; yields a DevTools client and its log."""
    assert CHROMIUM is not None
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--no-default-browser-check", f"--user-data-dir={profile}", "--remote-debugging-port=0",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required",
        "--window-size=900,700", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    log: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        while True:  # Chromium prints its DevTools address on stderr
            line = (await proc.stderr.readline()).decode(errors="replace")
            if not line:
                raise AssertionError("chromium exited before DevTools was up:\n" + "".join(log[-30:]))
            log.append(line)
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                break

        async def keep_reading() -> None:  # a full pipe would block the browser
            assert proc.stderr is not None
            while line := await proc.stderr.readline():
                log.append(line.decode(errors="replace"))

        drain = asyncio.create_task(keep_reading())
        async with connect(found.group(1), max_size=None) as ws:
            tools = DevTools(ws)
            try:
                yield tools, log
            finally:
                tools.close()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if drain is not None:
            drain.cancel()


def wait_for(condition: str) -> str:
    """A page expression resolving to ``condition``'s first truthy value: re-checked on each DOM change."""
    return f"""new Promise((resolve) => {{
  const check = () => {{ const v = ({condition}); if (v) resolve(v); return v; }};
  if (!check()) new MutationObserver((_, obs) => {{ if (check()) obs.disconnect(); }})
    .observe(document.body, {{subtree: true, childList: true, attributes: true, characterData: true}});
}})"""


def turns_done_or_error(n: int) -> str:
    """An expression: ``{done: true}`` once ``n`` turns show their latency, ``{error}`` if the page shows one."""
    return f"""(() => {{
  const error = document.getElementById("error");
  if (!error.hidden) return {{error: error.textContent}};
  return document.querySelectorAll(".turn .latency:not([hidden])").length >= {n} ? {{done: true}} : null;
}})()"""


READ_TURNS = """Array.from(document.querySelectorAll(".turn")).map((t) => ({
  user: t.querySelector(".user .text").textContent,
  agent: t.querySelector(".agent .text").textContent,
  latency: t.querySelector(".latency").hidden ? null : t.querySelector(".latency").textContent,
  latency_ms: t.querySelector(".latency").dataset.ms || null,
}))"""


def click(element_id: str) -> str:
    return f"document.getElementById({json.dumps(element_id)}).click(); true"


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_open_mic_and_push_to_talk_turns_in_headless_chromium(cfg, services, tmp_path):
    # The fake microphone: the demo question at 48 kHz (a common device rate: the worklet resamples it to
    # 24 kHz), a second of silence first and long silence after (Chromium loops the file, and starts it
    # afresh for each new capture stream).
    rate = 48000
    clip = read_wav(DEMO / "03_time.wav", target_rate=rate).samples
    mic = np.concatenate([np.zeros(rate, np.float32), clip, np.zeros(10 * rate, np.float32)])
    wav = write_wav(tmp_path / "mic.wav", mic, rate)
    hold_ms = 1000 + 1000 * len(clip) / rate + 700  # push to talk: the silence, the question, a little after

    async def main() -> None:
        async with (
            RealtimeServer(keyed(cfg, KEY), services, host="127.0.0.1", port=0) as server,
            chromium(wav, tmp_path / "profile") as (tools, log),
        ):
            target = await tools.call("Target.createTarget", url="about:blank")
            attached = await tools.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
            session = attached["sessionId"]

            async def page(expression: str) -> Any:
                return await tools.evaluate(session, expression)

            await tools.call("Page.enable", session)
            await tools.call("Page.navigate", session, url=f"http://127.0.0.1:{server.port}/")
            await tools.wait_event("Page.loadEventFired")
            # The server has a key: the page asks for it (config.json) and sends it as a subprotocol.
            assert await page(wait_for("!document.getElementById('key-row').hidden"))
            await page(f"document.getElementById('key').value = {json.dumps(KEY)}; true")

            # Open mic (the default): server VAD ends the turn and answers.
            await page(click("start"))
            outcome = await page(wait_for(turns_done_or_error(1)))
            assert outcome == {"done": True}, f"open mic: {outcome}\n" + "".join(log[-20:])

            # Push to talk: a new capture stream (the clip from its start); hold the button (real mouse
            # events) until the page has sent the question, release: commit + response.create.
            await page(click("start"))  # stop
            await page("document.querySelector('input[name=mode][value=ptt]').click(); true")
            await page(click("start"))
            assert await page(wait_for("!document.getElementById('talk').disabled"))
            box = await page("(() => { const r = document.getElementById('talk').getBoundingClientRect();"
                             " return [r.x + r.width / 2, r.y + r.height / 2]; })()")  # fmt: skip
            mouse = {"x": box[0], "y": box[1], "button": "left", "clickCount": 1}
            await tools.call("Input.dispatchMouseEvent", session, type="mousePressed", **mouse)
            assert await page(
                wait_for(f"Number(document.getElementById('talk').dataset.sentMs) >= {hold_ms}")
            )
            await tools.call("Input.dispatchMouseEvent", session, type="mouseReleased", **mouse)
            outcome = await page(wait_for(turns_done_or_error(2)))

            turns = await page(READ_TURNS)
            shot = os.environ.get("QUICKTURN_PAGE_SCREENSHOT")
            if shot:
                png = await tools.call("Page.captureScreenshot", session, format="png")
                Path(shot).write_bytes(base64.b64decode(png["data"]))
            assert outcome == {"done": True}, f"push to talk: {outcome}\n" + "".join(log[-20:])
            done = [t for t in turns if t["latency"]]
            assert len(done) == 2, turns
            for turn, measure in zip(
                done, (r"voice-to-voice \d+ ms", r"release to reply \d+ ms \(measured here\)")
            ):
                assert "time" in turn["user"].lower(), turns
                assert turn["agent"].strip(), turns
                assert re.fullmatch(measure, turn["latency"]), turns
                assert float(turn["latency_ms"]) > 0, turns

    async def bounded() -> None:
        async with asyncio.timeout(TURN_TIMEOUT_S):
            await main()

    asyncio.run(bounded())
