"""Fixed-size framing of audio that arrives in arbitrary-length chunks.

The pipeline works in 32 ms frames (512 samples at 16 kHz; silero VAD's native window), while
mic callbacks, WebSocket messages and TTS chunks come in whatever sizes they like.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PIPELINE_FRAME_SAMPLES", "PIPELINE_RATE", "Framer"]

PIPELINE_RATE = 16000
PIPELINE_FRAME_SAMPLES = 512  # 32 ms at 16 kHz


class Framer:
    """Accumulate chunks and hand out fixed-size frames; the remainder waits for the next chunk."""

    def __init__(self, frame_samples: int = PIPELINE_FRAME_SAMPLES) -> None:
        if frame_samples <= 0:
            raise ValueError(f"frame_samples must be positive, got {frame_samples}")
        self.frame_samples = frame_samples
        self._buf = np.zeros(0, np.float32)

    @property
    def pending(self) -> int:
        """Samples waiting for a full frame."""
        return len(self._buf)

    def push(self, chunk: np.ndarray) -> list[np.ndarray]:
        """Add a chunk; return every frame that is now complete (possibly none)."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        buf = np.concatenate((self._buf, chunk)) if len(self._buf) else chunk
        n = len(buf) // self.frame_samples * self.frame_samples
        frames = [buf[i : i + self.frame_samples].copy() for i in range(0, n, self.frame_samples)]
        self._buf = buf[n:].copy()
        return frames

    def flush(self, pad: bool = True) -> np.ndarray | None:
        """Return the remainder as a last frame (zero-padded if `pad`), or None if empty."""
        if not len(self._buf):
            return None
        rest, self._buf = self._buf, np.zeros(0, np.float32)
        if pad:
            rest = np.pad(rest, (0, self.frame_samples - len(rest)))
        return rest

    def reset(self) -> None:
        """Drop the remainder."""
        self._buf = np.zeros(0, np.float32)
