"""Async audio sources that yield fixed-size `AudioFrame`s: files, a simulated real-time mic, a
real mic (sounddevice).

All three look the same to the pipeline (`async for frame in source`), so the demo, profiler and
tests can swap a live microphone for a paced virtual one without changing any other code.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from audio.aec import PlaybackReference
from audio.formats import AudioClip, AudioFormatError
from audio.framing import PIPELINE_FRAME_SAMPLES, PIPELINE_RATE, Framer
from audio.resample import StreamResampler, resample

__all__ = ["AudioFrame", "FileSource", "MicSource", "SimulatedMic"]


@dataclass
class AudioFrame:
    """One fixed-size frame: float32 mono samples, the monotonic time it became available, its index."""

    samples: np.ndarray
    sample_rate: int
    t: float
    index: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def _clip_at(clip: AudioClip | np.ndarray, rate: int, clip_rate: int | None = None) -> np.ndarray:
    """A clip's samples at `rate` (resampled if needed)."""
    if isinstance(clip, AudioClip):
        samples, clip_rate = clip.samples, clip.sample_rate
    else:
        samples, clip_rate = np.asarray(clip, np.float32), clip_rate or rate
    if samples.ndim != 1:
        raise AudioFormatError(f"expected mono samples, got shape {samples.shape}")
    return resample(samples, clip_rate, rate) if clip_rate != rate else samples.astype(np.float32, copy=False)


class FileSource:
    """A clip as frames, as fast as the consumer takes them (t = when each frame is yielded).

    The last partial frame is zero-padded so every frame has `frame_samples` samples.
    """

    def __init__(self, clip: AudioClip, frame_samples: int = PIPELINE_FRAME_SAMPLES) -> None:
        self.clip = clip
        self.frame_samples = frame_samples

    async def __aiter__(self) -> AsyncIterator[AudioFrame]:
        framer = Framer(self.frame_samples)
        frames = framer.push(self.clip.samples)
        last = framer.flush(pad=True)
        if last is not None:
            frames.append(last)
        for i, f in enumerate(frames):
            yield AudioFrame(f, self.clip.sample_rate, time.monotonic(), i)
            await asyncio.sleep(0)  # let other tasks run between frames


class SimulatedMic:
    """A virtual microphone paced by the wall clock: one frame every frame duration, forever.

    Frame k covers [start + k*T, start + (k+1)*T) and is yielded at the end of that span, scheduled
    against the start time (never accumulated sleeps), so pacing does not drift. A slow consumer
    gets the frames it missed in a burst, as a real capture buffer would deliver them.

    `inject(clip)` queues audio that plays out from the next frame on (clips queue back to back);
    `await wait_idle()` returns once all injected audio has been emitted. Between clips the mic
    gives silence or, with `noise_level` > 0, white noise of that RMS. With `echo_of` set, a copy
    of what the speaker played (read from that PlaybackReference for the frame's time span) is
    mixed in, `echo_delay_ms` later and scaled by `echo_gain`, so AEC can be exercised end to end;
    `echo_reverb_ms` > 0 adds a room's tail (an exponentially decaying impulse response whose level
    falls 60 dB over that time). Use from one event loop only.
    """

    def __init__(
        self,
        sample_rate: int = PIPELINE_RATE,
        frame_samples: int = PIPELINE_FRAME_SAMPLES,
        noise_level: float = 0.0,
        echo_of: PlaybackReference | None = None,
        echo_delay_ms: float = 40.0,
        echo_gain: float = 0.3,
        echo_reverb_ms: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self.frame_s = frame_samples / sample_rate
        self.noise_level = noise_level
        self.echo_of = echo_of
        self.echo_delay_s = echo_delay_ms / 1000.0
        self.echo_gain = echo_gain
        self._rng = np.random.default_rng(seed)
        self._echo_ir = (
            room_impulse_response(echo_reverb_ms, sample_rate, seed) if echo_reverb_ms > 0 else None
        )
        self._clips: collections.deque[np.ndarray] = collections.deque()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self.start_time: float | None = None

    def inject(self, clip: AudioClip | np.ndarray, sample_rate: int | None = None) -> float:
        """Queue audio to be "spoken" into the mic; returns its duration in seconds."""
        x = _clip_at(clip, self.sample_rate, sample_rate)
        if len(x):
            self._clips.append(x)
            self._idle.clear()
        return len(x) / self.sample_rate

    async def wait_idle(self) -> None:
        """Wait until every injected sample has been emitted in a frame."""
        await self._idle.wait()

    def close(self) -> None:
        """End the iteration after the current frame."""
        self._closed = True

    def _next_samples(self) -> np.ndarray:
        out = np.zeros(self.frame_samples, np.float32)
        filled = 0
        while filled < self.frame_samples and self._clips:
            clip = self._clips[0]
            take = min(len(clip), self.frame_samples - filled)
            out[filled : filled + take] = clip[:take]
            filled += take
            if take == len(clip):
                self._clips.popleft()
            else:
                self._clips[0] = clip[take:]
        if not self._clips:
            self._idle.set()
        return out

    async def __aiter__(self) -> AsyncIterator[AudioFrame]:
        self.start_time = start = time.monotonic()
        k = 0
        while not self._closed:
            due = start + (k + 1) * self.frame_s
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            x = self._next_samples()
            if self.noise_level > 0:
                x += (self._rng.standard_normal(len(x)) * self.noise_level).astype(np.float32)
            if self.echo_of is not None:
                x += self.echo_gain * self._echo(start + k * self.frame_s - self.echo_delay_s, len(x))
            yield AudioFrame(x, self.sample_rate, time.monotonic(), k)
            k += 1

    def _echo(self, t0: float, n: int) -> np.ndarray:
        if self._echo_ir is None:
            return self.echo_of.read(t0, n)
        # Stateless streaming convolution: read the IR's length of history before the frame too.
        m = len(self._echo_ir) - 1
        played = self.echo_of.read(t0 - m / self.sample_rate, n + m)
        return np.convolve(played, self._echo_ir, mode="valid").astype(np.float32)


def room_impulse_response(rt60_ms: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A direct path plus a diffuse tail decaying 60 dB over ``rt60_ms``, normalised to unit energy."""
    n = max(2, int(rt60_ms / 1000 * sample_rate))
    t = np.arange(n) / sample_rate
    tail = np.random.default_rng(seed).standard_normal(n) * np.exp(-6.91 * t / (rt60_ms / 1000)) * 0.3
    tail[0] = 1.0
    return (tail / np.sqrt(np.sum(tail**2))).astype(np.float32)


class MicSource:
    """A real microphone through sounddevice, as frames of `frame_samples` at `sample_rate`.

    The PortAudio callback thread only copies each block into a bounded deque (oldest dropped,
    counted in `dropped_blocks`, if the consumer stalls) and wakes the event loop; resampling and
    framing happen in the consumer. If the device cannot capture at `sample_rate`, it is opened
    at its default rate and resampled (`device_rate` forces a capture rate). Frames carry t = the callback time of the block that
    completed them. The stream is open while iterating: `close()` it, or iterate inside
    `contextlib.aclosing(...)` so that breaking out closes the device at once.
    """

    def __init__(
        self,
        device: int | str | None = None,
        sample_rate: int = PIPELINE_RATE,
        frame_samples: int = PIPELINE_FRAME_SAMPLES,
        block_ms: float = 20.0,
        max_queued_blocks: int = 100,
        device_rate: int | None = None,
    ) -> None:
        from audio.devices import check_portaudio, resolve_device

        self._sd = check_portaudio()
        self.device = resolve_device(device, "input")
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self.device_rate = device_rate or self._pick_rate(sample_rate)
        self.block = int(self.device_rate * block_ms / 1000)
        self._blocks: collections.deque[tuple[np.ndarray, float]] = collections.deque(
            maxlen=max_queued_blocks
        )
        self._lock = threading.Lock()
        self.dropped_blocks = 0
        self.status_flags = 0  # count of callbacks reporting overflow etc.
        self._closed = False
        self.running = threading.Event()  # set once the device delivers audio, until iteration ends

    def _pick_rate(self, want: int) -> int:
        try:
            self._sd.check_input_settings(device=self.device, samplerate=want, channels=1, dtype="float32")
            return want
        except (self._sd.PortAudioError, ValueError):  # can't do `want`: use its native rate, resample
            return int(self._sd.query_devices(self.device)["default_samplerate"])

    def close(self) -> None:
        self._closed = True

    async def __aiter__(self) -> AsyncIterator[AudioFrame]:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        with self._lock:
            self._blocks.clear()  # nothing stale from an earlier iteration

        def callback(indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
            t = time.monotonic()
            if status:
                self.status_flags += 1
            with self._lock:
                if len(self._blocks) == self._blocks.maxlen:
                    self.dropped_blocks += 1  # deque(maxlen) drops the oldest on append
                self._blocks.append((indata[:, 0].copy(), t))
            if not self.running.is_set():  # the first block: the device really captures now
                self.running.set()
            with contextlib.suppress(RuntimeError):  # loop already closed while the stream shuts down
                loop.call_soon_threadsafe(wake.set)

        resampler = StreamResampler(self.device_rate, self.sample_rate)
        framer = Framer(self.frame_samples)
        index = 0
        stream = self._sd.InputStream(
            device=self.device,
            samplerate=self.device_rate,
            channels=1,
            dtype="float32",
            blocksize=self.block,
            callback=callback,
        )
        try:
            with stream:
                while not self._closed:
                    try:  # time out now and then so close() works even if the device stalls
                        await asyncio.wait_for(wake.wait(), 0.5)
                    except TimeoutError:
                        continue
                    wake.clear()
                    while True:
                        with self._lock:
                            if not self._blocks:
                                break
                            block, t = self._blocks.popleft()
                        for f in framer.push(resampler.process(block)):
                            yield AudioFrame(f, self.sample_rate, t, index)
                            index += 1
                            if self._closed:
                                return
        finally:
            self.running.clear()  # after the stream has stopped: no callback sets it again
