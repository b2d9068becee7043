"""``quickturn profile --live``: profile a microphone session — the same pipeline as ``talk``.

Runs for ``duration_s`` seconds, ``max_turns`` finished turns, or until Ctrl-C, whichever comes
first, recording the events; the report is then built exactly as for WAV input (file = "live").
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from audio.aec import EchoCanceller, PlaybackReference
from audio.devices import AudioDeviceError, check_portaudio, resolve_device

from ..config import QuickturnConfig
from ..events import Event, LatencyReport
from ..pipeline import Services, VoicePipeline
from .recorder import TimedEventBus
from .run import VariantRun, rows_from_events
from .variants import Variant


class LiveAudioError(AudioDeviceError):
    """The microphone or speaker for a live profile cannot be used."""


@dataclass
class Devices:
    input: int
    output: int


@dataclass
class LiveRun:
    events: list[Event]
    reports: list[LatencyReport]
    bus: TimedEventBus
    seconds: float
    stopped_by: str
    dropped_blocks: int = 0
    errors: list[str] = field(default_factory=list)


def check_devices(cfg: QuickturnConfig) -> Devices:
    """Resolve the configured devices before any model is loaded (fail fast, clearly)."""
    try:
        check_portaudio()
        return Devices(
            resolve_device(cfg.audio.input_device or None, "input"),
            resolve_device(cfg.audio.output_device or None, "output"),
        )
    except AudioDeviceError as exc:
        raise LiveAudioError(f"--live needs a microphone and a speaker: {exc}") from exc


async def run_live(
    cfg: QuickturnConfig,
    services: Services,
    devices: Devices,
    duration_s: float = 0.0,
    max_turns: int = 0,
    on_listening: Callable[[], None] | None = None,
    on_turn: Callable[[LatencyReport], None] | None = None,
) -> LiveRun:
    from audio.sinks import SpeakerSink
    from audio.sources import MicSource

    reference = PlaybackReference(cfg.audio.sample_rate) if cfg.audio.echo_cancellation else None
    aec = EchoCanceller(cfg.audio.sample_rate) if reference is not None else None
    bus = TimedEventBus()
    reports: list[LatencyReport] = []
    stop = asyncio.Event()
    stopped_by = ["duration" if duration_s > 0 else "Ctrl-C"]

    def on_event(event: Event) -> None:
        if isinstance(event, LatencyReport):
            reports.append(event)
            if on_turn is not None:
                on_turn(event)
            if max_turns and len(reports) >= max_turns:
                stopped_by[0] = f"{max_turns} turns"
                stop.set()

    bus.subscribe(on_event)
    try:
        sink = SpeakerSink(devices.output, block_ms=cfg.audio.output_block_ms, reference=reference)
    except Exception as exc:  # PortAudioError and friends: say which device failed
        raise LiveAudioError(f"could not open the speaker (device {devices.output}): {exc}") from exc
    try:
        await asyncio.to_thread(sink.wait_running)  # a fresh stream stamps its prefill too early
        mic = MicSource(
            devices.input, cfg.audio.sample_rate, round(cfg.audio.sample_rate * cfg.audio.frame_ms / 1000)
        )
    except Exception as exc:
        sink.close()
        raise LiveAudioError(f"could not open the microphone (device {devices.input}): {exc}") from exc
    pipeline = VoicePipeline(cfg, services, sink, bus, echo_canceller=aec, reference=reference)

    async def frames():
        first = True
        async for frame in mic:
            if first and on_listening is not None:
                on_listening()
            first = False
            yield frame

    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not in the main thread: no handler
        loop.add_signal_handler(signal.SIGINT, lambda: (stopped_by.__setitem__(0, "Ctrl-C"), stop.set()))
    t0 = time.monotonic()
    task = asyncio.ensure_future(pipeline.run(frames()))
    errors: list[str] = []
    try:
        waiter = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait(
            [waiter, task],
            timeout=duration_s if duration_s > 0 else None,
            return_when=asyncio.FIRST_COMPLETED,
        )
        waiter.cancel()
        if task in done and task.exception() is not None:
            errors.append(f"audio input failed: {task.exception()}")
            stopped_by[0] = "error"
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        mic.close()
        pipeline.close()
        sink.close()
    return LiveRun(bus.events, reports, bus, time.monotonic() - t0, stopped_by[0], mic.dropped_blocks, errors)


def live_variant_run(cfg: QuickturnConfig, run: LiveRun, reply_model: str) -> tuple[Variant, VariantRun]:
    variant = Variant("live", cfg)
    rows, overhead = rows_from_events(
        run.events, [(r, "live", None) for r in run.reports], run.bus, variant.name, 0
    )
    return variant, VariantRun(variant, 0, reply_model, run.events, rows, overhead)
