"""A linear acoustic echo canceller: a partitioned-block frequency-domain adaptive filter (PBFDAF)
over the delay and reverberant tail of the echo path, kept from diverging while the user talks.

Why our own and not only WebRTC's AEC3: AEC3 ends in a non-linear suppressor that, during double
talk, cuts the near end along with the echo — the user's words over a reply came out 30 dB down in
stretches, and a barge-in was missed or transcribed in pieces. A linear filter only subtracts its
estimate of the echo; what it cannot predict (the user) passes untouched. What it leaves of the echo
(the tail beyond the filter, misadjustment) is measured (``ResidualEchoGate``) rather than cut.

The filter (sans-I/O, numpy; ``block`` samples per step, here 256 = 16 ms at 16 kHz):

- ``partitions`` blocks of taps cover the echo path's delay plus its tail (24 × 16 ms = 384 ms: a
  150 ms delay and 230 ms of a reverberant tail), so no separate delay estimate is needed to cancel;
  the filter's own peak is the delay estimate (``delay_ms``).
- per-bin normalised LMS, the gradient constrained to the partition (overlap-save, no circular
  wrap-around).
- two filters (foreground / background): the background adapts every block the speaker plays; the
  foreground, whose output is used, copies it only when it cancels clearly better over the last
  blocks. While the user talks, the background's error is the user's speech and it drifts: its
  error rises above the foreground's, and it is reset to the foreground — double talk never reaches
  the output filter.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AdaptiveEchoFilter"]


class AdaptiveEchoFilter:
    """Subtracts the linear echo of ``reference`` from ``mic``, one block at a time (``process``).

    Takes any chunk length; returns exactly as many samples, delayed by one block (a constant
    latency, ``latency_samples``).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        block: int = 256,
        partitions: int = 24,
        step: float = 1.5,
        active_energy: float = 1e-6,
        smooth: float = 0.7,
        copy_ratio: float = 0.8,
        reset_ratio: float = 4.0,
    ) -> None:
        if block <= 0 or partitions <= 0:
            raise ValueError(f"block ({block}) and partitions ({partitions}) must be positive")
        self.sample_rate = sample_rate
        self.block = block
        self.partitions = partitions
        self.step = step
        self._active = active_energy  # reference energy per sample below which nothing adapts
        self._smooth = smooth  # error-energy smoothing across blocks (foreground/background race)
        self._copy_ratio = copy_ratio
        self._reset_ratio = reset_ratio
        bins = block + 1
        self._X = np.zeros((partitions, bins), np.complex128)  # spectra of the last reference blocks
        self._Wf = np.zeros((partitions, bins), np.complex128)  # foreground (output) filter
        self._Wb = np.zeros((partitions, bins), np.complex128)  # background (adapting) filter
        self._prev_ref = np.zeros(block, np.float64)
        self._ref_energy = np.zeros(partitions)  # energy per sample of the blocks in the span
        self._ef = 0.0  # smoothed error energies of the two filters
        self._eb = 0.0
        self._mic_buf = np.zeros(0, np.float32)
        self._ref_buf = np.zeros(0, np.float32)
        self._out_buf = np.zeros(block, np.float32)
        self.last_echo_energy = 0.0  # energy per sample of the foreground's echo estimate, last block
        self.adapted_blocks = 0

    @property
    def latency_samples(self) -> int:
        return self.block

    def process(self, mic: np.ndarray, reference: np.ndarray, adapt: bool = True) -> np.ndarray:
        """``adapt`` False: the user is talking (double talk): filter, but learn nothing from it."""
        mic = np.asarray(mic, dtype=np.float32).reshape(-1)
        ref = np.asarray(reference, dtype=np.float32).reshape(-1)
        if len(ref) != len(mic):
            raise ValueError(f"mic ({len(mic)}) and reference ({len(ref)}) chunks must be the same length")
        self._mic_buf = np.concatenate((self._mic_buf, mic))
        self._ref_buf = np.concatenate((self._ref_buf, ref))
        n = len(self._mic_buf) // self.block
        outs = [self._out_buf]
        for k in range(n):
            sl = slice(k * self.block, (k + 1) * self.block)
            d, x = self._mic_buf[sl].astype(np.float64), self._ref_buf[sl].astype(np.float64)
            outs.append(self._step(d, x, adapt))
        used = n * self.block
        self._mic_buf, self._ref_buf = self._mic_buf[used:], self._ref_buf[used:]
        out = np.concatenate(outs)
        self._out_buf = out[len(mic) :]
        return out[: len(mic)]

    def _step(self, d: np.ndarray, x: np.ndarray, adapt: bool) -> np.ndarray:
        B = self.block
        self._X = np.roll(self._X, 1, axis=0)
        self._X[0] = np.fft.rfft(np.concatenate((self._prev_ref, x)))
        self._prev_ref = x
        yf = np.fft.irfft(np.sum(self._Wf * self._X, axis=0))[B:]
        yb = np.fft.irfft(np.sum(self._Wb * self._X, axis=0))[B:]
        ef, eb = d - yf, d - yb
        self.last_echo_energy = float(np.mean(yf * yf))
        self._ref_energy = np.roll(self._ref_energy, 1)
        self._ref_energy[0] = float(np.mean(x * x))
        if adapt and float(np.max(self._ref_energy)) >= self._active:  # the speaker played lately
            a = self._smooth
            self._ef = a * self._ef + (1 - a) * float(np.mean(ef * ef))
            self._eb = a * self._eb + (1 - a) * float(np.mean(eb * eb))
            if self._eb < self._copy_ratio * self._ef:
                self._Wf[:] = self._Wb  # the background cancels better: it becomes the output filter
                self._ef = self._eb
            elif self._eb > self._reset_ratio * self._ef and self._ef > 0:
                self._Wb[:] = self._Wf  # it drifted (double talk): start again from the output filter
                self._eb = self._ef
            self._adapt(eb)
        return ef.astype(np.float32)

    def _adapt(self, e: np.ndarray) -> None:
        B = self.block
        power = np.sum(np.abs(self._X) ** 2, axis=0)  # per-bin reference energy over the filter span
        if float(np.sum(power)) <= 0.0:
            return
        E = np.fft.rfft(np.concatenate((np.zeros(B), e)))
        # Regularised so that a nearly silent reference (the reply's last blocks) takes no big steps.
        floor = 2 * B * self.partitions * self._active
        grad = np.conj(self._X) * (E / (power + 1e-3 * np.mean(power) + floor))
        g = np.fft.irfft(grad, axis=1)
        g[:, B:] = 0.0  # constrain: each partition holds B taps (no circular wrap-around)
        self._Wb += self.step * np.fft.rfft(g, axis=1)
        self.adapted_blocks += 1

    @property
    def delay_ms(self) -> float:
        """Where the foreground filter's taps peak: the echo path's delay as the filter sees it."""
        taps = np.fft.irfft(self._Wf, axis=1)[:, : self.block].reshape(-1)
        if not taps.any():
            return 0.0
        return float(np.argmax(np.abs(taps))) * 1000.0 / self.sample_rate
