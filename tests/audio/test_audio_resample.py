"""One-shot and streaming resampling: frequencies and lengths survive, identity is exact."""

from __future__ import annotations

import numpy as np
import pytest

from audio.resample import StreamResampler, resample


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spec)])


@pytest.mark.parametrize(("src", "dst"), [(22050, 16000), (16000, 48000), (48000, 16000), (44100, 22050)])
def test_sine_frequency_and_length(src: int, dst: int) -> None:
    x = np.sin(2 * np.pi * 1000 * np.arange(src) / src).astype(np.float32)
    y = resample(x, src, dst)
    assert y.dtype == np.float32
    assert abs(len(y) - dst) <= 1
    assert _peak_hz(y, dst) == pytest.approx(1000, abs=2)
    assert np.max(np.abs(y[200:-200])) == pytest.approx(1.0, abs=0.02)  # no gain change


def test_identity_when_rates_match() -> None:
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    assert resample(x, 16000, 16000) is x
    s = StreamResampler(16000, 16000)
    assert s.process(x) is x and len(s.flush()) == 0


def test_stream_matches_one_shot() -> None:
    src, dst = 22050, 16000
    x = np.sin(2 * np.pi * 440 * np.arange(src) / src).astype(np.float32)
    s = StreamResampler(src, dst)
    sizes = [1, 100, 333, 2048, 1000, 7]
    chunks, pos, i = [], 0, 0
    while pos < len(x):
        n = sizes[i % len(sizes)]
        chunks.append(s.process(x[pos : pos + n]))
        pos, i = pos + n, i + 1
    chunks.append(s.flush())
    y = np.concatenate(chunks)
    assert abs(len(y) - dst) <= 2  # the tail comes out on flush: nothing lost
    ref = resample(x, src, dst)
    n = min(len(y), len(ref))
    np.testing.assert_allclose(y[500 : n - 500], ref[500 : n - 500], atol=2e-3)


def test_bad_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        resample(np.zeros(10, np.float32), 0, 16000)
    with pytest.raises(ValueError, match="positive"):
        StreamResampler(16000, -1)
