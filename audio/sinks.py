"""Audio outputs for streaming reply audio, with barge-in.

The agent writes reply audio in pieces as TTS produces it, delimited by begin_utterance() /
end_utterance(). A sink plays it out, tells the agent when the first sample of a reply reached
the device (`on_first_sample`, the end point of voice-to-voice latency) and when a reply finished
(`on_drained`), and on barge-in drops everything queued at once (`stop_now`), reporting how much
of the reply the user actually heard.

Three sinks share one queue implementation (`BufferedSink`) and differ only in who pulls blocks
out of it: a wall-clock thread (`SimulatedSpeaker`), a PortAudio callback (`SpeakerSink`), or
nobody waiting at all (`MemorySink`, which "plays" instantly; for tests and file output).

Callbacks run on whichever thread plays the audio (the speaker thread or PortAudio's callback
thread) or on the caller's thread; they must be quick and thread-safe, e.g. hand the timestamp
to an event loop with `loop.call_soon_threadsafe`.
"""

from __future__ import annotations

import abc
import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.aec import PlaybackReference
from audio.formats import to_float32, write_wav
from audio.resample import StreamResampler

__all__ = ["AudioSink", "BufferedSink", "MemorySink", "PlayedBlock", "SimulatedSpeaker", "SpeakerSink"]

TimeCallback = Callable[[float], None]


class AudioSink(abc.ABC):
    """What the agent needs from an audio output."""

    sample_rate: int
    on_first_sample: TimeCallback | None
    on_drained: TimeCallback | None

    @abc.abstractmethod
    def begin_utterance(self) -> int:
        """Start a new reply; returns its id. Audio written afterwards belongs to it."""

    @abc.abstractmethod
    def end_utterance(self) -> None:
        """No more audio for the current reply; `on_drained` fires once it has all played."""

    @abc.abstractmethod
    def write(self, samples: np.ndarray, sample_rate: int) -> None:
        """Queue audio (resampled to the sink's rate); never blocks on playback.

        Without an open reply this starts one; after stop_now() the interrupted reply's late
        chunks are dropped until the next begin_utterance()."""

    @abc.abstractmethod
    def stop_now(self) -> int:
        """Barge-in: drop everything queued; return samples of the current reply already played."""

    @property
    @abc.abstractmethod
    def played_seconds(self) -> float:
        """Seconds of the current reply handed to the device so far."""

    @property
    @abc.abstractmethod
    def is_playing(self) -> bool:
        """True while audio is queued or playing."""

    def close(self) -> None:  # noqa: B027 - optional for sinks holding no resources
        """Release threads/devices."""

    def __enter__(self) -> AudioSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class PlayedBlock:
    """A block that carried reply audio: when it was handed over, for which reply, how many samples."""

    t: float
    utterance: int
    samples: int


class BufferedSink(AudioSink):
    """The shared queue: writers enqueue under a lock, the player calls `_pull(n, t)` per block."""

    def __init__(self, sample_rate: int, reference: PlaybackReference | None = None, record: bool = False):
        self.sample_rate = sample_rate
        self.reference = reference
        self.record = record
        self.on_first_sample: TimeCallback | None = None
        self.on_drained: TimeCallback | None = None
        # (bounded so a long-running speaker does not grow without limit: ~17 min of speech)
        self.timeline: collections.deque[PlayedBlock] = collections.deque(maxlen=50_000)
        self.underruns = 0  # blocks that ran dry while a reply was still open
        self.dropped_writes = 0  # writes that arrived after stop_now for the stopped reply
        self._recording: list[np.ndarray] = []
        self._lock = threading.RLock()
        self._played = threading.Condition(self._lock)  # notified whenever samples reach the device
        self._queue: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self._utt = 0  # id of the current (latest) reply; 0 = none yet
        self._open = False  # current reply accepts audio
        self._stopped = False  # current reply was cut by stop_now
        self._heard = 0  # samples of the current reply handed to the device
        self._drain_fired = True
        self._resampler: StreamResampler | None = None

    # --- writer side ---------------------------------------------------------------------------

    def begin_utterance(self) -> int:
        with self._lock:
            self._finish_resampler()
            self._utt += 1
            self._open, self._stopped, self._heard, self._drain_fired = True, False, 0, False
            self._resampler = None
            return self._utt

    def end_utterance(self) -> None:
        with self._lock:
            if not self._open:
                return
            self._finish_resampler()
            self._open = False
        self._after_enqueue()
        self._maybe_drained(time.monotonic())

    def write(self, samples: np.ndarray, sample_rate: int) -> None:
        x = to_float32(samples)
        with self._lock:
            if self._stopped:
                self.dropped_writes += 1  # late TTS chunk of a reply the user interrupted
                return
            if not self._open:
                self.begin_utterance()
            if sample_rate != self.sample_rate:
                if self._resampler is None:
                    self._resampler = StreamResampler(sample_rate, self.sample_rate)
                elif self._resampler.in_rate != sample_rate:
                    raise ValueError(
                        f"sample rate changed within a reply ({self._resampler.in_rate} -> {sample_rate} Hz)"
                    )
                x = self._resampler.process(x)
            if len(x):
                self._queue.append((self._utt, x))
        self._after_enqueue()

    def stop_now(self) -> int:
        with self._lock:
            self._queue.clear()
            self._resampler = None
            self._stopped, self._open, self._drain_fired = True, False, True
            return self._heard

    def _finish_resampler(self) -> None:
        if self._resampler is not None:
            tail = self._resampler.flush()
            if len(tail):
                self._queue.append((self._utt, tail))
            self._resampler = None

    def _after_enqueue(self) -> None:
        """Hook for sinks that play synchronously (MemorySink)."""

    # --- player side ---------------------------------------------------------------------------

    @property
    def played_seconds(self) -> float:
        return self._heard / self.sample_rate

    @property
    def heard_samples(self) -> int:
        return self._heard

    @property
    def is_playing(self) -> bool:
        with self._lock:
            return bool(self._queue)

    def wait_heard(self, samples: int, timeout: float) -> bool:
        """Block until ``samples`` of the current reply reached the device (or it was stopped);
        False when ``timeout`` seconds passed first. For callers that must act mid-reply."""
        with self._played:
            return self._played.wait_for(lambda: self._heard >= samples or self._stopped, timeout)

    def _pull(self, n: int, t: float | None = None) -> tuple[np.ndarray, float]:
        """Take the next n samples (zero-padded when short) to hand to the device now.

        Returns the block and its hand-over time: `t` if given, else the clock read under the
        lock, so a write that raced with this pull is never stamped as played before it happened.
        """
        out = np.zeros(n, np.float32)
        filled = 0
        first_at: float | None = None
        with self._lock:
            if t is None:
                t = time.monotonic()
            while filled < n and self._queue:
                uid, x = self._queue[0]
                take = min(len(x), n - filled)
                out[filled : filled + take] = x[:take]
                if uid == self._utt:
                    if self._heard == 0:
                        first_at = t + filled / self.sample_rate
                    self._heard += take
                self.timeline.append(PlayedBlock(t + filled / self.sample_rate, uid, take))
                filled += take
                if take == len(x):
                    self._queue.popleft()
                else:
                    self._queue[0] = (uid, x[take:])
            if filled:
                self._played.notify_all()
            if filled and self.record:
                self._recording.append(out[:filled].copy())
            if filled < n and self._open and self._heard:
                self.underruns += 1
        if first_at is not None and self.on_first_sample is not None:
            self.on_first_sample(first_at)
        if filled:
            self._maybe_drained(t + filled / self.sample_rate)
        return out, t

    def _maybe_drained(self, t: float) -> None:
        with self._lock:
            if self._open or self._drain_fired or self._queue or self._utt == 0:
                return
            self._drain_fired = True
        if self.on_drained is not None:
            self.on_drained(t)

    # --- recording -----------------------------------------------------------------------------

    def recorded(self) -> np.ndarray:
        """All reply audio handed to the device so far (record=True), silence between replies excluded."""
        with self._lock:
            return np.concatenate(self._recording) if self._recording else np.zeros(0, np.float32)

    def save_wav(self, path: str | Path) -> Path:
        return write_wav(path, self.recorded(), self.sample_rate)


class MemorySink(BufferedSink):
    """Plays instantly into memory: every write is 'heard' at once. For tests and file output."""

    def __init__(self, sample_rate: int = 22050, reference: PlaybackReference | None = None) -> None:
        super().__init__(sample_rate, reference, record=True)

    def _after_enqueue(self) -> None:
        with self._lock:
            n = sum(len(x) for _, x in self._queue)
        if n:
            block, t = self._pull(n)
            if self.reference is not None:
                self.reference.write(block, t, self.sample_rate)


class SimulatedSpeaker(BufferedSink):
    """A virtual speaker that consumes queued audio at wall-clock pace, one block every `block_ms`.

    Runs in its own thread rather than an asyncio task: like a sound card, it keeps time even
    while the event loop is busy, and it works from synchronous code too. Block k is due at
    start + k*block (scheduled against the start time, no drift). Callbacks get the actual
    hand-over time (so `on_first_sample` is never earlier than the write that fed it), while the
    reference gets the scheduled time: the simulated device plays blocks back to back on a steady
    clock, whatever the thread's wake-up jitter. If the thread is starved for more than two blocks
    it re-anchors the schedule instead of bursting (`late_resyncs`).
    Every block (silent ones too) is written to `reference` for the echo canceller, stamped
    `latency_blocks` later than its hand-over: like a sound card's buffer, what is handed over now
    plays a little later. Stamped at hand-over, the reference for the span the microphone had just
    captured was often not written yet (the thread wakes after its due time) and read as silence:
    holes of up to 35 ms per frame in what the canceller was told the speaker played.
    """

    def __init__(
        self,
        sample_rate: int = 22050,
        block_ms: float = 20.0,
        reference: PlaybackReference | None = None,
        record: bool = False,
        latency_blocks: int = 2,
    ) -> None:
        super().__init__(sample_rate, reference, record)
        self.block = int(sample_rate * block_ms / 1000)
        self.block_s = self.block / sample_rate
        self.latency_s = latency_blocks * self.block_s
        self.late_resyncs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="SimulatedSpeaker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start, k = time.monotonic(), 0
        while not self._stop.is_set():
            due = start + k * self.block_s
            now = time.monotonic()
            if due > now:
                if self._stop.wait(due - now):
                    break
            elif now - due > 2 * self.block_s:
                self.late_resyncs += 1
                start, k, due = now, 0, now
            block, _ = self._pull(self.block)  # callbacks get the actual hand-over moment
            if self.reference is not None:
                # the device clock is steady; the block plays once the buffer ahead of it has
                self.reference.write(block, due + self.latency_s, self.sample_rate)
            k += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


class SpeakerSink(BufferedSink):
    """A real output device through sounddevice; PortAudio's callback pulls blocks from the queue.

    stop_now() empties the queue under the lock, so the next callback (at most one block later)
    plays silence. The block is handed over at the callback time; the reference gets the DAC time
    PortAudio estimates for it. `sample_rate=None` uses the device's default rate.
    """

    def __init__(
        self,
        device: int | str | None = None,
        sample_rate: int | None = None,
        block_ms: float = 20.0,
        reference: PlaybackReference | None = None,
        record: bool = False,
    ) -> None:
        from audio.devices import check_portaudio, resolve_device

        sd = check_portaudio()
        self.device = resolve_device(device, "output")
        rate = int(sample_rate or sd.query_devices(self.device)["default_samplerate"])
        super().__init__(rate, reference, record)
        self.block = int(rate * block_ms / 1000)
        self.status_flags = 0
        self._last_callback: float | None = None
        self._running = threading.Event()
        self._stream = sd.OutputStream(
            device=self.device,
            samplerate=rate,
            channels=1,
            dtype="float32",
            blocksize=self.block,
            callback=self._callback,
        )
        self._stream.start()

    def wait_running(self, timeout: float = 5.0) -> bool:
        """Wait until the device consumes blocks at its own pace (True) or `timeout` passes.

        Right after opening, PortAudio calls back in a burst to prefill its buffers, and a sound
        server may then take a while (PulseAudio: up to ~2 s for a fresh stream) before playing
        them; audio written before that would be stamped as played too early. Open the sink at
        start-up and call this once before measuring latency.
        """
        return self._running.wait(timeout)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        t = time.monotonic()
        if status:
            self.status_flags += 1
        if self._last_callback is not None and t - self._last_callback > 0.5 * frames / self.sample_rate:
            self._running.set()  # callbacks now come at playback pace, not as a prefill burst
        self._last_callback = t
        block, t = self._pull(frames, t)
        outdata[:, 0] = block
        if self.reference is not None:
            ahead = time_info.outputBufferDacTime - time_info.currentTime  # type: ignore[attr-defined]
            self.reference.write(block, t + (ahead if 0 <= ahead < 1 else 0.0), self.sample_rate)

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()
