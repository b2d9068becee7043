"""Feed recorded speech through the real pipeline in simulated real time.

A ``SimulatedMic`` delivers frames at wall-clock pace (silence between utterances) and a
``SimulatedSpeaker`` plays replies at wall-clock pace, so every latency is what a live user would
get. A ``ScriptItem`` says when its clip is spoken: after the agent has finished its turn
(``respond``), or a given time after the agent's reply starts playing (``barge_in`` — it should
interrupt — and ``backchannel`` — it should not). ``demo`` and ``profile`` both run through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio.aec import EchoCanceller, PlaybackReference
from audio.formats import AUDIO_SUFFIXES, AudioFormatError, read_audio
from audio.sinks import SimulatedSpeaker
from audio.sources import SimulatedMic

from .config import QuickturnConfig
from .events import (
    Announcement,
    BargeIn,
    BargeInIgnored,
    Event,
    EventBus,
    FirstReplySample,
    LatencyReport,
    SpeechStarted,
)
from .pipeline import Services, VoicePipeline

ACTIONS = ("respond", "barge_in", "backchannel")


class InputError(ValueError):
    """Profile/demo input is missing or malformed."""


@dataclass
class ScriptItem:
    file: Path
    text: str | None = None  # reference transcript (for word error rate)
    action: str = "respond"
    after_ms: float = 0.0  # for barge_in / backchannel: delay after the reply's first sample
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EchoPath:
    """How the room carries the agent's voice back into the simulated microphone."""

    delay_ms: float = 60.0
    gain: float = 0.3
    reverb_ms: float = 300.0  # RT60 of the room's tail; 0 = a plain delayed copy


@dataclass
class ItemResult:
    item: ScriptItem
    turns: list[int] = field(default_factory=list)  # pipeline turn ids started by this clip
    reports: list[LatencyReport] = field(default_factory=list)
    barge_in: BargeIn | None = None
    ignored: BargeInIgnored | None = None
    timed_out: bool = False


def load_items(path: str | Path) -> list[ScriptItem]:
    """One audio file, or a folder of them (ordered by name, or by ``manifest.json`` when present).

    WAV always; MP3, FLAC, OGG/Opus when soundfile is installed (``audio.formats.read_audio``)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"input not found: {p}")
    kinds = ", ".join(AUDIO_SUFFIXES)
    if p.is_file():
        if p.suffix.lower() not in AUDIO_SUFFIXES:
            raise InputError(f"{p} is not an audio file ({kinds})")
        return [ScriptItem(p)]
    manifest = p / "manifest.json"
    if manifest.is_file():
        try:
            entries = json.loads(manifest.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{manifest}: invalid JSON: {exc}") from exc
        if not isinstance(entries, list):
            raise InputError(f"{manifest}: expected a list of {{'file': ..., 'text': ...}} objects")
        items = []
        for n, e in enumerate(entries):
            if not isinstance(e, dict) or "file" not in e:
                raise InputError(f"{manifest}: entry {n} has no 'file'")
            f = p / e["file"]
            if not f.is_file():
                raise InputError(f"{manifest}: entry {n} names a missing file: {f}")
            action = e.get("action", "respond")
            if action not in ACTIONS:
                raise InputError(
                    f"{manifest}: entry {n} has unknown action {action!r} ({', '.join(ACTIONS)})"
                )
            after = e.get("barge_in_after_ms", e.get("backchannel_after_ms", 0.0))
            extra = {k: v for k, v in e.items() if k not in ("file", "text", "action")}
            items.append(ScriptItem(f, e.get("text"), action, float(after), extra))
        return items
    clips = sorted(x for x in p.iterdir() if x.is_file() and x.suffix.lower() in AUDIO_SUFFIXES)
    others = sorted(x.name for x in p.iterdir() if x.is_file() and x.suffix.lower() not in AUDIO_SUFFIXES)
    if not clips:
        hint = f" (found only: {', '.join(others[:5])})" if others else " (the folder is empty)"
        raise InputError(f"no audio files ({kinds}) in {p}{hint}")
    return [ScriptItem(c) for c in clips]


def load_clip(item: ScriptItem, rate: int) -> np.ndarray:
    try:
        return read_audio(item.file, target_rate=rate).samples
    except AudioFormatError as exc:
        raise InputError(str(exc)) from exc


class ScriptRunner:
    """Runs a script of clips through a fresh pipeline on simulated audio devices."""

    def __init__(
        self,
        cfg: QuickturnConfig,
        services: Services,
        bus: EventBus | None = None,
        *,
        gap_s: float = 0.8,
        turn_timeout_s: float = 25.0,
        record: bool = True,
        echo: EchoPath | None = None,
        echo_cancellation: bool = False,
    ) -> None:
        """``echo``: the agent's voice comes back into the mic (a room); ``echo_cancellation``: the
        pipeline cancels it (as ``talk`` does with a speaker and a microphone)."""
        self.cfg = cfg
        self.bus = bus or EventBus()
        rate = cfg.audio.sample_rate
        reference = PlaybackReference(rate) if echo is not None or echo_cancellation else None
        self.mic = SimulatedMic(
            rate,
            round(rate * cfg.audio.frame_ms / 1000),
            echo_of=reference if echo is not None else None,
            **(
                {"echo_delay_ms": echo.delay_ms, "echo_gain": echo.gain, "echo_reverb_ms": echo.reverb_ms}
                if echo
                else {}
            ),
        )
        self.speaker = SimulatedSpeaker(
            services.tts.sample_rate, cfg.audio.output_block_ms, reference=reference, record=record
        )
        aec = EchoCanceller(rate) if echo_cancellation else None
        self.pipeline = VoicePipeline(
            cfg, services, self.speaker, self.bus, echo_canceller=aec, reference=reference if aec else None
        )
        self.gap_s = gap_s
        self.turn_timeout_s = turn_timeout_s
        self.events: list[Event] = []
        self.bus.subscribe(self.events.append)
        self.record = record
        self.mic_frames: list[tuple[float, np.ndarray]] = []  # (capture time, samples) when recording

    async def _frames(self):
        async for frame in self.mic:
            if self.record:
                self.mic_frames.append((frame.t, frame.samples))
            yield frame

    async def run(self, items: list[ScriptItem], on_item=None) -> list[ItemResult]:
        if self.pipeline.actions is None:  # skills turns ("needs": "tools") only with skills running
            items = [i for i in items if i.extra.get("needs") != "tools"]
        clips = [load_clip(item, self.cfg.audio.sample_rate) for item in items]  # fail before starting
        results: list[ItemResult] = []
        marks: list[int] = []
        pipe_task = asyncio.ensure_future(self.pipeline.run(self._frames()))
        try:
            await asyncio.sleep(0.3)  # a little silence first, like a real mic
            for i, (item, clip) in enumerate(zip(items, clips)):
                next_action = items[i + 1].action if i + 1 < len(items) else "respond"
                marks.append(len(self.events))
                results.append(await self._run_item(item, clip, next_action))
            await self._wait_idle()
        finally:
            self.mic.close()
            pipe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pipe_task
            self.pipeline.close()
            self.speaker.close()
        # Attribute turns (and their latency reports) to the clip that started them.
        bounds = [*marks, len(self.events)]
        for n, result in enumerate(results):
            window = self.events[bounds[n] : bounds[n + 1]]
            result.turns = [e.turn for e in window if isinstance(e, SpeechStarted)]
            result.barge_in = next((e for e in window if isinstance(e, BargeIn)), None)
            result.ignored = result.ignored or next(
                (e for e in window if isinstance(e, BargeInIgnored)), None
            )
            result.reports = [
                e for e in self.events if isinstance(e, LatencyReport) and e.turn in result.turns
            ]
            if on_item is not None:
                on_item(result)
        return results

    async def _wait_idle(self) -> bool:
        try:
            await asyncio.wait_for(self.pipeline.idle.wait(), self.turn_timeout_s)
            return True
        except TimeoutError:
            return False

    async def _wait_event(self, kind: type, since: int, timeout: float) -> Event | None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for e in self.events[since:]:
                if isinstance(e, kind):
                    return e
            await asyncio.sleep(0.01)
        return None

    async def _run_item(self, item: ScriptItem, clip: np.ndarray, next_action: str) -> ItemResult:
        result = ItemResult(item)
        if item.extra.get("after_announcement"):  # e.g. "Okay, thanks." once the timer has rung
            said = await self._wait_event(Announcement, self._last_reply_start(), self.turn_timeout_s)
            result.timed_out = said is None
        if item.action == "respond":
            if not await self._wait_idle():
                result.timed_out = True
            await asyncio.sleep(self.gap_s)
        else:
            # Speak over the agent: wait for its reply to start playing, then for the delay.
            sample = await self._wait_event(FirstReplySample, self._last_reply_start(), self.turn_timeout_s)
            if sample is None:
                result.timed_out = True
            else:
                delay = sample.t + item.after_ms / 1000 - asyncio.get_running_loop().time()
                await asyncio.sleep(max(0.0, delay))
        mark = len(self.events)
        self.mic.inject(clip)
        await self.mic.wait_idle()
        if item.action == "backchannel":
            result.ignored = await self._wait_event(BargeInIgnored, mark, 3.0)  # type: ignore[assignment]
        elif next_action == "respond":
            result.timed_out |= not await self._wait_idle()
        # else: the next clip talks over this turn's reply; it waits for the reply to start itself.
        return result

    def _last_reply_start(self) -> int:
        """Index in the event log from which to look for the current reply's first sample."""
        for i in range(len(self.events) - 1, -1, -1):
            if isinstance(self.events[i], SpeechStarted):
                return i
        return 0
