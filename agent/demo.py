"""``quickturn demo``: a scripted multi-turn conversation from the WAVs in ``demo/``, no mic needed.

Runs the whole pipeline in simulated real time (greeting, name, time, weekday, a mid-sentence pause,
a user fact and its recall, a request it cannot do with a barge-in over its reply, a joke with a
backchannel over it, a sum, goodbye; with a tool caller also a timer that rings and a light switched
on a local mosquitto, printed as the MQTT messages its topic receives), prints each turn with its stage times and voice-to-voice latency, and writes the reply
audio, a two-channel recording of the whole conversation, and (``--json``) a report in the same
schema as ``quickturn profile --json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import tempfile
from pathlib import Path

import numpy as np

from audio.formats import write_wav
from audio.resample import resample

from .config import DeviceSpec, QuickturnConfig
from .events import Announcement, BargeIn, BargeInIgnored, Event, EventBus, LatencyReport, ToolCalled
from .pipeline import Services
from .report import build_report, turn_row, write_json
from .simulate import ScriptRunner, load_items

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"


# The demo's home: one light on a local mosquitto, shown as the MQTT messages its topic receives.
DEMO_DEVICE = DeviceSpec(
    name="kitchen lights",
    aliases=["kitchen light"],
    kind="light",
    command_topic="zigbee2mqtt/kitchen_lights/set",
    payload_on='{"state": "ON"}',
    payload_off='{"state": "OFF"}',
    level_template='{"state": "ON", "brightness": {value}}',
    level_max=254,
)


def _print_event(console, event: Event) -> None:
    if isinstance(event, LatencyReport) and not event.transcript:
        return  # an announcement: printed when it starts
    if isinstance(event, Announcement):
        console.print(
            f"[bold magenta]announcement[/bold magenta] ({event.source}): [green]{event.text!r}[/green]"
        )
    elif isinstance(event, ToolCalled):
        console.print(f"         [magenta]tool call[/magenta] {event.name}({event.arguments}) "
                      f"p={event.confidence:.2f} in {event.decide_ms:.0f} ms")  # fmt: skip
    elif isinstance(event, LatencyReport):
        s = event.stages_ms
        v2v = f"{event.v2v_ms:.0f} ms" if event.v2v_ms is not None else "—"
        console.print(f"[bold]turn {event.turn}[/bold]  user: [cyan]{event.transcript!r}[/cyan]")
        console.print(
            f"         agent: [green]{event.reply!r}[/green]{'  (interrupted)' if event.interrupted else ''}"
        )
        parts = [
            f"{k.removesuffix('_ms')} {s[k]:.0f}"
            for k in ("endpoint_ms", "asr_final_ms", "lm_ms", "tts_first_chunk_ms", "output_ms")
            if k in s
        ]
        console.print(f"         ms: {', '.join(parts)}  [bold]V2V {v2v}[/bold]")
    elif isinstance(event, BargeIn):
        console.print(
            f"[yellow]barge-in[/yellow]: reply stopped after {event.heard_s:.2f} s "
            f"(heard: {event.heard_text!r}); output silent within {event.stop_ms:.0f} ms"
        )
    elif isinstance(event, BargeInIgnored):
        console.print(f"[dim]ignored {event.reason}: {event.text!r}[/dim]")


def conversation_wav(
    mic_frames: list[tuple[float, np.ndarray]], runner: ScriptRunner, rate: int
) -> np.ndarray:
    """Stereo timeline of the session: left = what the user said, right = what the agent played."""
    if not mic_frames:
        return np.zeros((0, 2), np.float32)
    t0 = mic_frames[0][0] - len(mic_frames[0][1]) / rate
    t_end = mic_frames[-1][0]
    speaker = runner.speaker
    played = speaker.recorded()
    out_len = int((t_end - t0) * rate) + rate
    out = np.zeros((out_len, 2), np.float32)
    for t, frame in mic_frames:
        start = int((t - t0) * rate) - len(frame)
        if start >= 0 and start + len(frame) <= out_len:
            out[start : start + len(frame), 0] = frame
    pos = 0
    for block in list(speaker.timeline):
        chunk = played[pos : pos + block.samples]
        pos += block.samples
        audio = resample(chunk, speaker.sample_rate, rate)
        start = int((block.t - t0) * rate)
        end = min(out_len, start + len(audio))
        if start >= 0 and end > start:
            out[start:end, 1] = audio[: end - start]
    return out


async def run_demo(
    cfg: QuickturnConfig,
    services: Services,
    folder: Path,
    out_dir: Path | None,
    json_path: Path | None,
    console,
) -> dict:
    items = load_items(folder)
    bus = EventBus()
    bus.subscribe(lambda e: _print_event(console, e))
    async with _skills_home(cfg, services, console) as (cfg, caller):
        runner = ScriptRunner(cfg, services, bus)
        runner.pipeline.keep_reply_audio = True
        runtime = None
        if caller is not None:
            from .actions import SkillRuntime

            runtime = SkillRuntime(cfg, runner.pipeline, caller)
            runtime.start()
        try:
            results = await runner.run(items)
        finally:
            if runtime is not None:
                await runtime.close()
    rows = []
    for result in results:
        for report in result.reports:
            rows.append(turn_row(report, runner.events, result.item.file.name, result.item.text))
    report = build_report(cfg, rows, {"input": str(folder), "mode": "demo"})
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for turn, chunks in runner.pipeline.reply_audio.items():
            if chunks:
                write_wav(
                    out_dir / f"reply_turn{turn:02d}.wav",
                    np.concatenate([c.samples for c in chunks]),
                    chunks[0].sample_rate,
                )
        stereo = conversation_wav(runner.mic_frames, runner, cfg.audio.sample_rate)
        write_wav(out_dir / "conversation.wav", stereo, cfg.audio.sample_rate)
    if json_path is not None:
        write_json(report, json_path)
    return report


@contextlib.asynccontextmanager
async def _skills_home(cfg: QuickturnConfig, services: Services, console):
    """The demo's skills, with ``[tools] enabled``: a local mosquitto plays the home hub (unless
    [[home.devices]] are declared) and every message to the device topics is printed. Off by default:
    the shipped model is not trained for tool calls yet (docs/notes/tool-calls.md), and asking it
    would cost every turn a forward."""
    from .actions import ToolsUnavailable, require_tool_caller

    if not cfg.tools.enabled:
        console.print(
            "[dim]skills turns skipped: tools.enabled=false (the shipped model does not call tools "
            "yet: docs/notes/tool-calls.md); --set tools.enabled=true runs them[/dim]"
        )
        yield cfg, None
        return
    try:
        caller = require_tool_caller(services.reply)
    except ToolsUnavailable as exc:
        console.print(f"[dim]skills turns skipped: {exc}[/dim]")
        yield cfg, None
        return
    cfg = copy.deepcopy(cfg)
    if cfg.home.devices:  # the user's own devices and broker
        yield cfg, caller
        return
    from .local_broker import BrokerError, LocalBroker

    with tempfile.TemporaryDirectory(prefix="quickturn-demo-broker-") as folder:
        try:
            broker = LocalBroker(Path(folder))
            broker.start()
        except BrokerError as exc:
            console.print(f"[dim]no light to switch: {exc}[/dim]")
            cfg.tools.home = False
            yield cfg, caller
            return
        cfg.mqtt.host, cfg.mqtt.port = "127.0.0.1", broker.port
        cfg.home.devices = [DEMO_DEVICE]
        console.print(
            f"[dim]home hub: mosquitto on 127.0.0.1:{broker.port}; device: {DEMO_DEVICE.name}[/dim]"
        )
        watcher = asyncio.ensure_future(_print_device_messages(broker.port, console))
        try:
            yield cfg, caller
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            broker.stop()


async def _print_device_messages(port: int, console) -> None:
    """The demo's device: what its topic receives, as it arrives."""
    import aiomqtt

    async with aiomqtt.Client("127.0.0.1", port, identifier="quickturn-demo-device") as client:
        await client.subscribe(DEMO_DEVICE.command_topic, qos=1)
        async for msg in client.messages:
            payload = bytes(msg.payload).decode()  # type: ignore[arg-type]
            console.print(f"         [magenta]MQTT[/magenta] {msg.topic.value} <- {payload}")


def run(
    cfg: QuickturnConfig,
    services: Services,
    folder: Path,
    out_dir: Path | None,
    json_path: Path | None,
    console,
) -> dict:
    return asyncio.run(run_demo(cfg, services, folder, out_dir, json_path, console))
