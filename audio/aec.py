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

from audio.echo_filter import AdaptiveEchoFilter
from audio.formats import float_to_pcm16_bytes
from audio.resample import StreamResampler

__all__ = ["EchoCanceller", "EchoCoupling", "PlaybackReference", "ResidualEchoGate", "erle_db"]


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
        warmup_blocks: int = 0,
        smooth: bool = False,
    ) -> None:
        self.window_blocks = window_blocks
        self.smooth = smooth
        self.min_blocks = min_blocks
        self._active = 10 ** (active_db / 10)
        self._no_echo_db = no_echo_db
        self._default = 10 ** (default_db / 10)
        self._ratios: collections.deque[float] = collections.deque(maxlen=window_blocks)
        self._recent_ref: collections.deque[float] = collections.deque(maxlen=tail_blocks)
        self._recent_mic: collections.deque[float] = collections.deque(maxlen=tail_blocks)
        # Blocks the speaker has been playing for (a silence as long as the tail restarts it): the
        # echo of the first ones has not arrived yet (the path's delay), so they say nothing about
        # the path. Counting them took a 150 ms echo path for none at the start of every reply.
        self.warmup_blocks = warmup_blocks
        self._playing_blocks = 0

    def update(self, mic: np.ndarray, ref: np.ndarray) -> None:
        self._recent_ref.append(float(np.mean(np.square(ref, dtype=np.float64))))
        self._recent_mic.append(float(np.mean(np.square(mic, dtype=np.float64))))
        r = self.reference_energy
        self._playing_blocks = self._playing_blocks + 1 if r >= self._active else 0
        if self._playing_blocks > self.warmup_blocks:  # playing lately: how much comes back
            if self.smooth:
                # Energies over the tail, not per block: a dry echo (no reverberation) is silent
                # between the reply's words exactly as the reference is, and those blocks' ratios,
                # taken against the loudest recent block, read as "no echo path".
                self._ratios.append(sum(self._recent_mic) / max(sum(self._recent_ref), 1e-20))
            else:
                self._ratios.append(self._recent_mic[-1] / r)

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


class ResidualEchoGate:
    """Whether what is left after cancellation may be the agent's own voice, judged against what
    cancellation usually leaves of it, not against the echo's raw level.

    Per block while the speaker plays: the cancelled signal's energy over the loudest reference
    energy of the last ``tail_blocks`` (the residual's coupling). That window spans the path's
    delay and its reverberant tail (600 ms): the echo of a reply's last words rings on after the
    reference falls silent, and a gate that opened 250 ms after it let that tail through to the
    VAD. The ratio's median over the last ``window_blocks`` is the residual echo's level — the
    user talking over a reply for less than half the window only raises the upper half. A block
    is echo when it stays below that level plus ``margin_db`` (the residual's own swings: AEC3
    lets a reverberant tail through ~10 dB above its median), and never below ``min_db`` under
    the reference (AEC3's suppressor can push the residual to -90 dB, where its own flutter would
    pass for a talker; a user 40 dB under the agent's playback is not heard by ASR either). Until
    ``min_blocks`` were seen, the raw echo's level (``EchoCoupling``) less ``cold_margin_db``.
    """

    def __init__(
        self,
        window_blocks: int = 300,
        min_blocks: int = 50,
        tail_blocks: int = 60,
        margin_db: float = 12.0,
        min_db: float = -40.0,
        cold_margin_db: float = 6.0,
        active_db: float = -45.0,
        warmup_blocks: int = 25,
    ) -> None:
        self.min_blocks = min_blocks
        self.margin_db = margin_db
        self.min_db = min_db
        self.cold_margin_db = cold_margin_db
        self._active = 10 ** (active_db / 10)
        self._ratios: collections.deque[float] = collections.deque(maxlen=window_blocks)
        self._recent_ref: collections.deque[float] = collections.deque(maxlen=tail_blocks)
        self._warmup = warmup_blocks
        self._playing_blocks = 0

    def update(self, out: np.ndarray, ref: np.ndarray) -> None:
        self._recent_ref.append(float(np.mean(np.square(ref, dtype=np.float64))))
        r = self.reference_energy
        self._playing_blocks = self._playing_blocks + 1 if r >= self._active else 0
        if self._playing_blocks > self._warmup:
            self._ratios.append(float(np.mean(np.square(out, dtype=np.float64))) / r)

    @property
    def reference_energy(self) -> float:
        return max(self._recent_ref, default=0.0)

    @property
    def residual_db(self) -> float | None:
        """The residual echo's typical level relative to the reference (None: not measured yet)."""
        if len(self._ratios) < self.min_blocks:
            return None
        return 10 * float(np.log10(np.median(np.fromiter(self._ratios, float)) + 1e-20))

    def floor(self, coupling: EchoCoupling) -> float:
        """Energy below which the cancelled signal may be the agent's echo now (0: no echo path)."""
        if not coupling.echo_path or self.reference_energy < self._active:
            return 0.0
        db = self.residual_db
        if db is None:
            return coupling.echo_floor(self.cold_margin_db)
        return self.reference_energy * 10 ** (max(db + self.margin_db, self.min_db) / 10)


class EchoCanceller:
    """Removes the echo of `reference` (what the speaker played) from `mic`, in two ways at once.

    - WebRTC AEC3 (10 ms frames): its suppressor leaves almost nothing of the echo, so its output
      tells echo from speech — ``may_be_echo``, against what it usually leaves (``ResidualEchoGate``)
      — but in double talk it cuts the user too (stretches 30 dB down, words lost to ASR).
    - a linear adaptive filter (``AdaptiveEchoFilter``) over the path's delay and reverberant tail,
      adapting only while AEC3 hears no one but the echo: it subtracts its estimate and nothing
      else, so the user comes out whole (``near_end_audio``, for ASR), with what the filter has
      not learnt of the echo — which the gate keeps from being taken for speech.

    `process` takes any length, keeps the remainder and returns exactly len(mic) samples, delayed
    by a constant latency (`latency_samples`, one 16 ms block; the linear filter's): the linear
    output where AEC3 heard speech, AEC3's elsewhere (a signal for the VAD). Not thread-safe: one
    mic path. When `EchoCoupling` finds no acoustic path from the speaker to the microphone,
    AEC3's output is the microphone's own signal (`bypassed`): cancelling an echo that is not
    there only suppresses the user. ``near_end_filter=False, residual_gate=False`` is the
    canceller before these changes (AEC3 alone, a gate 6 dB under the raw echo's level).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        stream_delay_ms: int = 0,
        noise_suppression: bool = False,
        high_pass_filter: bool = True,
        auto_gain_control: bool = False,
        near_end_filter: bool = True,
        residual_gate: bool = True,
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
        self.coupling = EchoCoupling(warmup_blocks=25, smooth=True) if residual_gate else EchoCoupling()
        self.bypassed = False
        self.linear = AdaptiveEchoFilter(sample_rate) if near_end_filter else None
        self.gate = ResidualEchoGate() if residual_gate else None
        self._detect = np.zeros(0, np.float32)  # AEC3's output for the last chunk returned
        self.near_end = False  # AEC3 left more than its residual echo in the last chunk
        # What ASR should hear of the last chunk: the linear filter's output, the user whole.
        self.near_end_audio = np.zeros(0, np.float32)
        lag = self.linear.latency_samples - self.block if self.linear is not None else 0
        self._aec3_lag = np.zeros(lag, np.float32)

    @property
    def latency_samples(self) -> int:
        return self.linear.latency_samples if self.linear is not None else self.block

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
        self._detect = out[: len(mic)]
        if self.linear is None:
            self.near_end_audio = self._detect
            return self._detect
        self.near_end = not self._aec3_echo()
        # Learn the echo path only from echo: while the user talks the error is their voice, and
        # adapting on it would pull the filter off the path (and subtract garbage from them).
        adapt = not (self.bypassed or self.near_end)
        self.near_end_audio = self.linear.process(mic, ref, adapt=adapt)
        # AEC3's output, delayed to the linear filter's latency: one signal, whichever is chosen.
        self._aec3_lag = np.concatenate((self._aec3_lag, self._detect))
        aec3, self._aec3_lag = self._aec3_lag[: len(mic)], self._aec3_lag[len(mic) :]
        return self.near_end_audio if self.near_end else aec3

    def may_be_echo(self, out: np.ndarray | None = None, margin_db: float = 6.0) -> bool:
        """True when what ``process`` returned last is too quiet to be told from the agent's own
        voice: residual echo (a canceller converges over seconds, a reverberant tail outlasts its
        filter) is still speech to a VAD, and would make the agent interrupt itself.

        With the residual gate: AEC3's output against what AEC3 usually leaves of the echo
        (``ResidualEchoGate``); before it, ``out`` against the raw echo's level less ``margin_db``,
        which cut the user's quieter syllables too."""
        return self._aec3_echo(out, margin_db)

    def _aec3_echo(self, out: np.ndarray | None = None, margin_db: float = 6.0) -> bool:
        if self.gate is not None:
            floor = self.gate.floor(self.coupling)
            return floor > 0 and float(np.mean(np.square(self._detect, dtype=np.float64))) < floor
        floor = self.coupling.echo_floor(margin_db)
        x = self._detect if out is None else out
        return floor > 0 and float(np.mean(np.square(x, dtype=np.float64))) < floor

    def _process_block(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
        far = rtc.AudioFrame(bytearray(float_to_pcm16_bytes(ref)), self.sample_rate, 1, self.block)
        self._apm.process_reverse_stream(far)
        near = rtc.AudioFrame(bytearray(float_to_pcm16_bytes(mic)), self.sample_rate, 1, self.block)
        self._apm.set_stream_delay_ms(self.stream_delay_ms)  # WebRTC wants it before every frame
        self._apm.process_stream(near)  # in place (the canceller keeps adapting while bypassed)
        self.coupling.update(mic, ref)
        self.bypassed = not self.coupling.echo_path
        out = np.frombuffer(near.data, dtype=np.int16).astype(np.float32) / 32768.0
        if self.gate is not None:
            self.gate.update(out, ref)
        if self.bypassed:
            return mic.copy()
        return out


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
        self,
        sample_rate: int = 16000,
        capacity_s: float = 4.0,
        snap_ms: float = 3.0,
        resync_ms: float = 500.0,
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
        drifts more than `resync_ms` from that cursor (a gap in capture, a first call).

        The frames' time stamps jitter by a capture block and by a busy event loop (20–30 ms under
        load, and a stalled loop gets a burst of frames stamped alike, 150–330 ms seen); following
        them moved the reference against the echo by as much, and both cancellers had to learn the
        path again. The sample count of a continuous stream is the better clock: only a jump larger
        than any stall re-anchors (a capture source drops blocks only after seconds of stall)."""
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
