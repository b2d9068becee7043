"""``quickturn talk``: the local voice assistant on a real microphone and speaker.

Echo cancellation (WebRTC APM) uses what the speaker plays as its reference, so the assistant does
not hear itself and barge-in works on speakers, not only headphones. Ctrl-C exits cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

from audio.aec import EchoCanceller, PlaybackReference
from audio.devices import AudioDeviceError, check_portaudio, list_devices, pulse_devices, resolve_device
from audio.sinks import SpeakerSink
from audio.sources import MicSource

from .config import QuickturnConfig
from .errors import CommandError, UsageError
from .events import BargeIn, EventBus, LatencyReport, PartialTranscript, StageError


def list_devices_text() -> str:
    check_portaudio()
    lines = [
        "audio devices (> default output, < default input): --input-device/--output-device INDEX or NAME"
    ]
    lines += [f"  {d}" for d in list_devices()]
    pulse = pulse_devices()
    if (
        pulse is not None
    ):  # a PulseAudio/PipeWire server: its devices, reached through the ALSA "pulse" device
        for kind, flag in (("input", "--input-device"), ("output", "--output-device")):
            names = pulse[kind]
            lines.append(f"PulseAudio/PipeWire {kind}s ({flag} pulse:NAME):")
            lines += [f"  {n}" for n in names] or ["  (none)"]
    return "\n".join(lines)


def _printer(console):
    def on_event(event) -> None:
        if isinstance(event, PartialTranscript):
            console.print(f"[dim]… {event.committed} {event.tentative}[/dim]")
        elif isinstance(event, LatencyReport):
            v2v = f"{event.v2v_ms:.0f} ms" if event.v2v_ms is not None else "—"
            console.print(f"[cyan]you:[/cyan] {event.transcript}")
            console.print(f"[green]agent:[/green] {event.reply}  [dim](voice-to-voice {v2v})[/dim]")
        elif isinstance(event, BargeIn):
            console.print(f"[yellow]interrupted[/yellow] after {event.heard_s:.1f} s")
        elif isinstance(event, StageError):
            console.print(f"[red]{event.stage} error:[/red] {event.message}")

    return on_event


def _start_mqtt(
    cfg: QuickturnConfig, bus: EventBus, stop: asyncio.Event, console, pipeline=None
) -> asyncio.Task | None:
    """Events and latency to the MQTT broker; broker trouble is logged and retried, never fatal."""
    if not cfg.mqtt.enabled:
        return None
    from .mqtt import run_mqtt_bridge

    console.print(
        f"[dim]MQTT: publishing to {cfg.mqtt.host}:{cfg.mqtt.port} under {cfg.mqtt.topic_prefix}/[/dim]"
    )
    extension = None
    if cfg.mqtt.discovery and pipeline is not None:  # Home Assistant: sensors, say, mute (agent/hass.py)
        from .hass import HassExtension

        extension = HassExtension(
            cfg.mqtt,
            cfg.agent.name,
            say=lambda text: pipeline.announce(text, "home_assistant"),
            set_muted=pipeline.set_muted,
            muted=lambda: pipeline.muted,
        )
    return asyncio.ensure_future(run_mqtt_bridge(cfg.mqtt, bus, stop, extension=extension))


def check_skills_config(cfg: QuickturnConfig) -> None:
    """Before the models load: a bad [[home.devices]] entry fails in a second, with its name."""
    if cfg.tools.enabled and cfg.tools.home and cfg.home.devices:
        from .skills.home import HomeConfigError, load_devices

        try:
            load_devices(cfg.home.devices)
        except HomeConfigError as exc:
            raise UsageError(f"config: {exc}") from None


def start_skills(cfg: QuickturnConfig, pipeline, services, console):
    """Timers and home control for ``pipeline`` when ``[tools] enabled`` (agent/actions.py)."""
    if not cfg.tools.enabled:
        return None
    from .actions import SkillRuntime, ToolsUnavailable, require_tool_caller

    try:
        caller = require_tool_caller(services.reply)
    except ToolsUnavailable as exc:
        raise UsageError(f"config: {exc}; set tools.enabled=false") from None
    runtime = SkillRuntime(cfg, pipeline, caller)
    runtime.start()
    names = ", ".join(t.name for t in runtime.actions.tools)
    console.print(f"[dim]tools: {names}[/dim]")
    return runtime


async def _talk(cfg: QuickturnConfig, console, load_services, duration_s: float) -> int:
    from .pipeline import VoicePipeline

    try:
        check_portaudio()
        in_dev = resolve_device(cfg.audio.input_device or None, "input")
        out_dev = resolve_device(cfg.audio.output_device or None, "output")
    except AudioDeviceError as exc:
        raise UsageError(str(exc)) from None
    if cfg.mqtt.enabled:
        from .mqtt import MQTTConfigError, check_mqtt_config

        try:  # before the models load: a bad [mqtt] block should fail in a second, not after
            check_mqtt_config(cfg.mqtt)
        except MQTTConfigError as exc:
            raise UsageError(f"config: {exc}") from None
    check_skills_config(cfg)
    services = await asyncio.to_thread(load_services)
    reference = PlaybackReference(cfg.audio.sample_rate) if cfg.audio.echo_cancellation else None
    aec = EchoCanceller(cfg.audio.sample_rate) if reference is not None else None
    bus = EventBus()
    bus.subscribe(_printer(console))
    try:
        sink = SpeakerSink(out_dev, block_ms=cfg.audio.output_block_ms, reference=reference)
        sink.wait_running()
        mic = MicSource(
            in_dev, cfg.audio.sample_rate, round(cfg.audio.sample_rate * cfg.audio.frame_ms / 1000)
        )
    except (AudioDeviceError, OSError) as exc:
        raise CommandError(f"could not open the audio device: {exc}") from None
    pipeline = VoicePipeline(cfg, services, sink, bus, echo_canceller=aec, reference=reference)
    mqtt_stop = asyncio.Event()
    mqtt_task = _start_mqtt(cfg, bus, mqtt_stop, console, pipeline)
    skills = start_skills(cfg, pipeline, services, console)
    task = asyncio.ensure_future(pipeline.run(mic))
    # Say so only once the microphone is really open: words spoken before would be lost.
    deadline = time.monotonic() + 10.0
    while not mic.running.is_set() and not task.done():
        if time.monotonic() > deadline:  # a silent device: say so, and keep waiting for it
            console.print("[yellow]no audio from the microphone after 10 s[/yellow]")
            break
        await asyncio.sleep(0.02)
    console.print(f"[bold]{cfg.agent.name} is listening.[/bold] Speak; Ctrl-C to quit.")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        waiters = [asyncio.ensure_future(stop.wait()), task]
        timeout = duration_s if duration_s > 0 else None
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if task in done and task.exception() is not None:
            raise CommandError(f"audio input failed: {task.exception()}")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        mic.close()
        if skills is not None:
            await skills.close()
        pipeline.close()
        sink.close()
        if mqtt_task is not None:  # after the pipeline: its last latency report still goes out
            mqtt_stop.set()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(mqtt_task, 5.0)
        console.print("bye.")
    return 0


def run_talk(cfg: QuickturnConfig, console, load_services, duration_s: float = 0.0) -> int:
    return asyncio.run(_talk(cfg, console, load_services, duration_s))
