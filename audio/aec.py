"""Acoustic echo cancellation (WebRTC AEC3 via livekit's AudioProcessingModule) and the
playback reference it needs.

Without AEC the agent hears its own voice through the speaker and "barges in" on itself. The
canceller needs to know what the speaker played (the far-end / reference signal); the speaker
sinks write every block they hand to the device into a `PlaybackReference`, keyed by the monotonic
time it is played, and the mic path reads the reference for the same time span as each mic frame.
AEC3 estimates the remaining acoustic delay itself (tens to hundreds of ms), so this coarse
time alignment is enough.
"""

from __future__ import annotations

import collections
import threading

import numpy as np
from livekit import rtc

from audio.formats import float_to_pcm16_bytes
from audio.resample import StreamResampler

__all__ = ["EchoCanceller", "EchoCoupling", "PlaybackReference", "erle_db"]


class EchoCoupling:
    """How loud the agent's own voice comes back into the microphone, if at all.

    Per 10 ms block: the mic's energy over the loudest reference energy of the last ``tail_blocks``
    (the echo of a block lingers: delay and reverberation), kept for blocks where the reference plays.
    Two statistics of the recent blocks:

    - a low quantile decides whether there is an acoustic path at all. AEC3 assumes there is; with
      none (headphones, a virtual mic) its suppressor still treats the near end as echo while the far
      end plays — the user's words over a reply come out 6 dB down and whole stretches are cut, so a
      barge-in is never heard. The user's own speech only raises the mic energy, so the low quantile
      follows the echo, not the talker. Below ``no_echo_db`` the path is taken to be absent.
    - the median is the echo's level relative to the reference: ``echo_floor`` turns it into the
      energy below which what is left after cancellation may be the agent's own voice.
    Until enough blocks were seen, there is taken to be an echo at ``default_db`` (the safe side).
    """

    def __init__(
        self,
        window_blocks: int = 150,
        min_blocks: int = 40,
        tail_blocks: int = 25,
        active_db: float = -45.0,
        no_echo_db: float = -40.0,
        default_db: float = -10.0,
    ) -> None:
        self.window_blocks = window_blocks
        self.min_blocks = min_blocks
        self._active = 10 ** (active_db / 10)
        self._no_echo_db = no_echo_db
        self._default = 10 ** (default_db / 10)
        self._ratios: collections.deque[float] = collections.deque(maxlen=window_blocks)
        self._recent_ref: collections.deque[float] = collections.deque(maxlen=tail_blocks)

    def update(self, mic: np.ndarray, ref: np.ndarray) -> None:
        self._recent_ref.append(float(np.mean(np.square(ref, dtype=np.float64))))
        r = self.reference_energy
        if r >= self._active:  # the speaker played lately: this block tells how much comes back
            self._ratios.append(float(np.mean(np.square(mic, dtype=np.float64))) / r)

    @property
    def reference_energy(self) -> float:
        return max(self._recent_ref, default=0.0)

    def _quantile_db(self, q: float) -> float | None:
        if len(self._ratios) < self.min_blocks:
            return None
        return 10 * float(np.log10(np.quantile(np.fromiter(self._ratios, float), q) + 1e-20))

    @property
    def coupling_db(self) -> float | None:
        """The echo's typical level relative to the reference (None: not enough playback yet)."""
        return self._quantile_db(0.5)

    @property
    def echo_path(self) -> bool:
        low = self._quantile_db(0.2)
        return low is None or low > self._no_echo_db

    def echo_floor(self, margin_db: float) -> float:
        """Energy that the agent's echo may reach at the mic now, ``margin_db`` below its level."""
        if not self.echo_path:
            return 0.0
        db = self.coupling_db
        coupling = self._default if db is None else 10 ** (db / 10)
        return self.reference_energy * coupling * 10 ** (-margin_db / 10)


class EchoCanceller:
    """Removes the echo of `reference` (what the speaker played) from `mic`.

    WebRTC processes exactly 10 ms frames; `process` takes any length, keeps the remainder and
    returns exactly len(mic) samples by delaying the output by one 10 ms frame (a constant
    latency, so 512-sample pipeline frames stay 512 samples). Not thread-safe: one mic path.
    When `EchoCoupling` finds no acoustic path from the speaker to the microphone, the microphone's
    own signal (delayed alike) is passed through instead: cancelling an echo that is not there only
    suppresses the user (`bypassed` says so).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        stream_delay_ms: int = 0,
        noise_suppression: bool = False,
        high_pass_filter: bool = True,
        auto_gain_control: bool = False,
    ) -> None:
        if sample_rate not in (8000, 16000, 32000, 48000):
            raise ValueError(f"WebRTC APM supports 8/16/32/48 kHz, not {sample_rate}")
        self.sample_rate = sample_rate
        self.block = sample_rate // 100  # 10 ms
        self.stream_delay_ms = int(stream_delay_ms)
        self._apm = rtc.AudioProcessingModule(
            echo_cancellation=True,
            noise_suppression=noise_suppression,
            high_pass_filter=high_pass_filter,
            auto_gain_control=auto_gain_control,
        )
        self._mic_buf = np.zeros(0, np.float32)
        self._ref_buf = np.zeros(0, np.float32)
        self._out_buf = np.zeros(self.block, np.float32)  # the one-frame output delay
        self.coupling = EchoCoupling()
        self.bypassed = False

    @property
    def latency_samples(self) -> int:
        return self.block

    def process(self, mic: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """Cancel echo in `mic`; `reference` is what was played over the same span (None = silence)."""
        mic = np.asarray(mic, dtype=np.float32).reshape(-1)
        ref = np.zeros_like(mic) if reference is None else np.asarray(reference, dtype=np.float32).reshape(-1)
        if len(ref) != len(mic):
            raise ValueError(f"mic ({len(mic)}) and reference ({len(ref)}) chunks must be the same length")
        self._mic_buf = np.concatenate((self._mic_buf, mic))
        self._ref_buf = np.concatenate((self._ref_buf, ref))
        n_blocks = len(self._mic_buf) // self.block
        outs = [self._out_buf]
        for k in range(n_blocks):
            sl = slice(k * self.block, (k + 1) * self.block)
            outs.append(self._process_block(self._mic_buf[sl], self._ref_buf[sl]))
        used = n_blocks * self.block
        self._mic_buf, self._ref_buf = self._mic_buf[used:], self._ref_buf[used:]
        out = np.concatenate(outs)
        self._out_buf = out[len(mic) :]
        return out[: len(mic)]

    def may_be_echo(self, out: np.ndarray, margin_db: float = 6.0) -> bool:
        """True when ``out`` (what ``process`` returned) is too quiet to be told from the agent's
        own voice: residual echo that AEC3 left (it converges over seconds, and a reverberant tail
        outlasts its filter) is still speech to a VAD, and would make the agent interrupt itself.
        The user, nearer the microphone than the speaker, is louder than that."""
        floor = self.coupling.echo_floor(margin_db)
        return floor > 0 and float(np.mean(np.square(out, dtype=np.float64))) < floor

    def _process_block(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
        far = rtc.AudioFrame(bytearray(float_to_pcm16_bytes(ref)), self.sample_rate, 1, self.block)
        self._apm.process_reverse_stream(far)
        near = rtc.AudioFrame(bytearray(float_to_pcm16_bytes(mic)), self.sample_rate, 1, self.block)
        self._apm.set_stream_delay_ms(self.stream_delay_ms)  # WebRTC wants it before every frame
        self._apm.process_stream(near)  # in place (the canceller keeps adapting while bypassed)
        self.coupling.update(mic, ref)
        self.bypassed = not self.coupling.echo_path
        if self.bypassed:
            return mic.copy()
        return np.frombuffer(near.data, dtype=np.int16).astype(np.float32) / 32768.0


def erle_db(mic: np.ndarray, out: np.ndarray) -> float:
    """Echo return loss enhancement: energy of the echo-only mic signal over what is left, in dB."""
    e_in = float(np.mean(np.square(np.asarray(mic, np.float64))))
    e_out = float(np.mean(np.square(np.asarray(out, np.float64))))
    return 10.0 * np.log10((e_in + 1e-20) / (e_out + 1e-20))


class PlaybackReference:
    """Thread-safe timeline of what the speaker played, at `sample_rate` (16 kHz by default).

    Writers (speaker threads / PortAudio callbacks) call `write(samples, t, rate)` with the
    monotonic time the block is played; the mic path calls `read_next(t_start, n)` for the time
    span of each mic frame (`read` is random access). Storage is a ring of `capacity_s` seconds indexed by absolute sample
    time, so gaps read as silence and stale audio is never returned. A write that starts within
    `snap_ms` of where the previous one ended is placed right after it, so clock jitter between
    blocks does not punch holes or overlaps into a continuous signal.
    """

    def __init__(
        self, sample_rate: int = 16000, capacity_s: float = 4.0, snap_ms: float = 3.0, resync_ms: float = 20.0
    ) -> None:
        self.sample_rate = sample_rate
        self._cap = int(capacity_s * sample_rate)
        self._ring = np.zeros(self._cap, np.float32)
        self._snap_s = snap_ms / 1000.0
        self._next_t: float | None = None  # writer time where the last write ended
        self._cursor: int | None = None  # read_next's position (absolute sample index)
        self._resync = int(resync_ms * sample_rate / 1000)
        self._lock = threading.Lock()
        self._end: int | None = None  # absolute sample index just after the last write
        self._begin = 0  # absolute index of the oldest valid sample
        self._resampler: StreamResampler | None = None

    def write(self, samples: np.ndarray, t: float, sample_rate: int | None = None) -> None:
        """Record that `samples` (at `sample_rate`, default ours) start playing at monotonic time t."""
        rate = sample_rate or self.sample_rate
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        with self._lock:
            # Contiguity is judged on the writer's clock: a block that starts where the previous
            # one ended continues the signal (and the resampler's stream) without a seam.
            contiguous = self._next_t is not None and abs(t - self._next_t) <= self._snap_s
            self._next_t = t + len(x) / rate
            if rate != self.sample_rate:
                if self._resampler is None or self._resampler.in_rate != rate:
                    self._resampler = StreamResampler(rate, self.sample_rate)
                elif not contiguous:
                    self._resampler.reset()
                x = self._resampler.process(x)
            pos = self._end if contiguous and self._end is not None else round(t * self.sample_rate)
            self._put(pos, x)

    def _put(self, pos: int, x: np.ndarray) -> None:
        if len(x) > self._cap:
            pos, x = pos + len(x) - self._cap, x[-self._cap :]
        if self._end is None or pos > self._end + self._cap or pos + len(x) < self._end - self._cap:
            self._begin = pos  # first write or far jump: nothing before is valid
            self._end = pos
        elif pos > self._end:  # gap: it was silent then
            self._fill(self._end, np.zeros(pos - self._end, np.float32))
        self._fill(pos, x)
        self._end = max(self._end, pos + len(x))
        self._begin = max(self._begin, self._end - self._cap)

    def _fill(self, pos: int, x: np.ndarray) -> None:
        idx = (pos + np.arange(len(x))) % self._cap
        self._ring[idx] = x

    def read(self, t_start: float, n: int) -> np.ndarray:
        """The n reference samples starting at monotonic time t_start (zeros where nothing played)."""
        pos = round(t_start * self.sample_rate)
        out = np.zeros(n, np.float32)
        with self._lock:
            if self._end is None:
                return out
            lo, hi = max(pos, self._begin), min(pos + n, self._end)
            if hi > lo:
                out[lo - pos : hi - pos] = self._ring[(np.arange(lo, hi)) % self._cap]
        return out

    def read_next(self, t_start: float, n: int) -> np.ndarray:
        """Like `read`, for the one continuous mic stream: consecutive calls return consecutive
        samples (the canceller needs a seamless far-end signal), following `t_start` only when it
        drifts more than `resync_ms` from that cursor (a gap in capture, a first call)."""
        pos = round(t_start * self.sample_rate)
        with self._lock:
            if self._cursor is None or abs(pos - self._cursor) > self._resync:
                self._cursor = pos
            start, self._cursor = self._cursor, self._cursor + n
        return self.read(start / self.sample_rate, n)

    def clear(self) -> None:
        with self._lock:
            self._end = None
            self._next_t = None
            self._cursor = None
            self._begin = 0
            if self._resampler is not None:
                self._resampler.reset()
