"""Sample-rate conversion with soxr (fast, high quality, no torch).

`resample` is for whole clips; `StreamResampler` is for audio that arrives in chunks (mic
callbacks, TTS output) where resampling each chunk on its own would click at the chunk borders:
soxr's stream keeps the filter state between calls.
"""

from __future__ import annotations

import numpy as np
import soxr

__all__ = ["StreamResampler", "resample"]


def _check_rates(in_rate: int, out_rate: int) -> None:
    if in_rate <= 0 or out_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")


def resample(x: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Resample a whole 1-D clip; returns float32 of length ~len(x) * out_rate / in_rate."""
    _check_rates(in_rate, out_rate)
    x = np.asarray(x, dtype=np.float32)
    if in_rate == out_rate or x.size == 0:
        return x
    return soxr.resample(x, in_rate, out_rate, quality="HQ").astype(np.float32, copy=False)


class StreamResampler:
    """Chunk-by-chunk resampler; an identity pass-through when the rates match.

    soxr delays its output by a few milliseconds (filter length), so early calls return fewer
    samples than `len(chunk) * ratio`; `flush()` returns the tail at the end of a stream.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        _check_rates(in_rate, out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = (
            None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32")
        )

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Resample the next chunk of the stream."""
        x = np.asarray(chunk, dtype=np.float32)
        if self._stream is None:
            return x
        return self._stream.resample_chunk(x, last=False)

    def flush(self) -> np.ndarray:
        """End the stream: return the samples still held in the filter, then reset."""
        if self._stream is None:
            return np.zeros(0, np.float32)
        tail = self._stream.resample_chunk(np.zeros(0, np.float32), last=True)
        self._stream.clear()
        return tail

    def reset(self) -> None:
        """Forget the filter state (start of an unrelated stream)."""
        if self._stream is not None:
            self._stream.clear()
