"""silero VAD through onnxruntime on real (espeak-ng) speech, and the hysteresis detector."""

from __future__ import annotations

import numpy as np
import pytest

from audio.formats import AudioClip
from audio.vad import SileroVAD, SpeechDetector, VADError


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD(16000, threads=1)


@pytest.fixture(scope="module")
def padded(speech16k: AudioClip) -> tuple[np.ndarray, int, int]:
    """1 s silence + speech + 1 s silence; returns (audio, first, last speech frame index)."""
    pad = np.zeros(16000, np.float32)
    x = np.concatenate([pad, speech16k.samples, pad])
    return x, 16000 // 512, (16000 + len(speech16k.samples)) // 512


def test_speech_vs_silence(vad: SileroVAD, padded: tuple[np.ndarray, int, int]) -> None:
    x, first, last = padded
    p = vad.probabilities(x)
    assert len(p) == len(x) // 512
    assert p[: first - 1].max() < 0.2  # leading silence
    assert p[last + 3 :].max() < 0.2  # trailing silence (a few frames of decay allowed)
    inside = p[first:last]
    assert np.mean(inside > 0.5) > 0.6  # most of the sentence is voiced (pauses between words)


def test_noise_is_not_speech(vad: SileroVAD) -> None:
    noise = (np.random.default_rng(1).standard_normal(16000 * 2) * 0.05).astype(np.float32)
    assert vad.probabilities(noise).max() < 0.5


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_matches_silero_reference_wrapper(vad: SileroVAD, padded: tuple[np.ndarray, int, int]) -> None:
    """Our numpy context/state handling reproduces silero-vad's own (torch-based) ONNX wrapper."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad  # its import sets torch's global thread count to 1

        x = padded[0][: 512 * 60]
        ref = load_silero_vad(onnx=True).audio_forward(torch.from_numpy(x), 16000).numpy()[0]
    finally:
        torch.set_num_threads(threads)  # don't leak that into other tests in this process
    np.testing.assert_allclose(vad.probabilities(x), ref, atol=1e-5)


def test_detector_on_speech(vad: SileroVAD, padded: tuple[np.ndarray, int, int]) -> None:
    x, first, last = padded
    det = SpeechDetector(0.5, 0.35, min_speech_ms=96)
    vad.reset()
    decisions = [det.update(vad.probability(x[i * 512 : (i + 1) * 512])) for i in range(len(x) // 512)]
    starts = [d for d in decisions if d.event == "start"]
    stops = [d for d in decisions if d.event == "stop"]
    assert starts and first - 1 <= starts[0].start_index <= first + 5
    assert starts[0].index - starts[0].start_index == 2  # 96 ms = 3 frames before confirming
    assert stops and stops[-1].index <= last + 5 and stops[-1].index > starts[-1].index
    assert not any(d.is_speech for d in decisions[: first - 1] + decisions[last + 5 :])
    assert [d.index for d in decisions] == list(range(len(decisions)))


def test_detector_hysteresis_and_min_duration() -> None:
    det = SpeechDetector(on_threshold=0.5, off_threshold=0.35, min_speech_ms=64, frame_ms=32)
    probs = [0.1, 0.9, 0.2, 0.9, 0.9, 0.4, 0.45, 0.3, 0.6, 0.9]
    d = [det.update(p) for p in probs]
    assert [x.is_speech for x in d] == [False, False, False, False, True, True, True, False, False, True]
    assert d[1].event is None  # a single-frame blip is not speech
    assert (d[4].event, d[4].start_index) == ("start", 3)
    assert d[5].event is None  # 0.4 is between off and on: stays on (hysteresis)
    assert d[7].event == "stop"
    assert (d[9].event, d[9].start_index) == ("start", 8)
    with pytest.raises(ValueError, match="off"):
        SpeechDetector(on_threshold=0.3, off_threshold=0.5)


def test_bad_frames(vad: SileroVAD) -> None:
    with pytest.raises(VADError, match="exactly 512 samples"):
        vad.probability(np.zeros(480, np.float32))
    with pytest.raises(VADError, match="8000 or 16000"):
        SileroVAD(44100)


def test_streams_share_the_model_but_not_their_state() -> None:
    """Many streams (one per server connection) share one onnxruntime session; each keeps its own
    recurrent state, so interleaving them gives each the probabilities it gets alone."""
    rng = np.random.default_rng(5)
    speechy = (np.sin(np.arange(512 * 20) * 0.05) * 0.3 + rng.standard_normal(512 * 20) * 0.01).astype(
        np.float32
    )
    quiet = np.zeros(512 * 20, np.float32)
    a, b = SileroVAD(), SileroVAD()
    assert a._session is b._session
    alone_a = SileroVAD().probabilities(speechy)
    alone_b = SileroVAD().probabilities(quiet)
    a.reset()
    b.reset()
    mixed_a, mixed_b = [], []
    for i in range(20):
        mixed_a.append(a.probability(speechy[i * 512 : (i + 1) * 512]))
        mixed_b.append(b.probability(quiet[i * 512 : (i + 1) * 512]))
    np.testing.assert_allclose(mixed_a, alone_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixed_b, alone_b, rtol=1e-5, atol=1e-6)
