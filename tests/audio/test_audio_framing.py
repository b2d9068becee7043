"""Framer: arbitrary chunks in, fixed frames out, remainder kept."""

from __future__ import annotations

import numpy as np
import pytest

from audio.framing import PIPELINE_FRAME_SAMPLES, Framer


def test_frames_are_fixed_and_lossless() -> None:
    x = np.arange(5000, dtype=np.float32)
    f = Framer(512)
    frames: list[np.ndarray] = []
    pos = 0
    for n in [1, 511, 3, 1200, 0, 700, 2585]:
        frames += f.push(x[pos : pos + n])
        pos += n
    assert pos == 5000
    assert all(len(fr) == 512 for fr in frames)
    assert len(frames) == 5000 // 512 and f.pending == 5000 % 512
    np.testing.assert_array_equal(np.concatenate(frames), x[: len(frames) * 512])
    last = f.flush()
    assert last is not None and len(last) == 512
    np.testing.assert_array_equal(last[: 5000 % 512], x[len(frames) * 512 :])
    assert not last[5000 % 512 :].any() and f.pending == 0
    assert f.flush() is None


def test_flush_unpadded_and_reset() -> None:
    f = Framer(4)
    assert f.push(np.ones(6, np.float32))[0].tolist() == [1, 1, 1, 1]
    assert f.flush(pad=False).tolist() == [1, 1]
    f.push(np.ones(3, np.float32))
    f.reset()
    assert f.pending == 0


def test_pipeline_frame_is_32ms() -> None:
    assert PIPELINE_FRAME_SAMPLES / 16000 == 0.032
    with pytest.raises(ValueError, match="positive"):
        Framer(0)
