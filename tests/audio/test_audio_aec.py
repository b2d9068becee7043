"""Echo cancellation (WebRTC AEC3 via livekit) on synthetic echo paths, and the playback reference."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from audio.aec import EchoCanceller, PlaybackReference, erle_db
from audio.formats import AudioClip, read_wav
from audio.sinks import SimulatedSpeaker
from audio.sources import SimulatedMic

SR = 16000


def echo_path(ref: np.ndarray, delay_ms: float, gain: float, seed: int = 0) -> np.ndarray:
    """A room in miniature: delayed, attenuated, low-passed copy of the reference plus sensor noise."""
    d = int(delay_ms * SR / 1000)
    e = np.concatenate([np.zeros(d, np.float32), ref[:-d]]) * gain
    e = np.convolve(e, [0.6, 0.3, 0.1])[: len(ref)]
    noise = np.random.default_rng(seed).standard_normal(len(ref)) * 1e-3
    return (e + noise).astype(np.float32)


def run_aec(mic: np.ndarray, ref: np.ndarray, chunk: int = 512) -> np.ndarray:
    aec = EchoCanceller(SR)
    out = np.concatenate(
        [aec.process(mic[i : i + chunk], ref[i : i + chunk]) for i in range(0, len(mic), chunk)]
    )
    assert len(out) == len(mic)
    return out[aec.latency_samples :]  # undo the fixed one-frame delay


def test_erle_white_noise() -> None:
    ref = (np.random.default_rng(2).standard_normal(SR * 6) * 0.1).astype(np.float32)
    mic = echo_path(ref, delay_ms=30, gain=0.5)
    out = run_aec(mic, ref)
    assert erle_db(mic[3 * SR : 5 * SR], out[3 * SR : 5 * SR]) >= 15.0


def test_erle_speech(speech16k: AudioClip) -> None:
    ref = np.tile(speech16k.samples, 3)[: SR * 8]
    mic = echo_path(ref, delay_ms=60, gain=0.4)
    out = run_aec(mic, ref, chunk=333)  # odd chunk size: internal 10 ms framing keeps the remainder
    assert erle_db(mic[4 * SR : 7 * SR], out[4 * SR : 7 * SR]) >= 15.0


def test_double_talk_keeps_near_end(speech16k: AudioClip, other_speech_wav) -> None:
    """While the speaker talks, the user's own speech must survive cancellation."""
    ref = np.tile(speech16k.samples, 4)[: SR * 10]
    near_clip = read_wav(other_speech_wav, target_rate=SR).samples * 0.3
    near = np.zeros_like(ref)
    a = 6 * SR
    near[a : a + len(near_clip)] = near_clip
    mic = echo_path(ref, delay_ms=40, gain=0.4) + near
    out = run_aec(mic, ref)
    seg = slice(a, a + len(near_clip))
    near_db = 10 * np.log10(np.mean(near[seg] ** 2))
    out_db = 10 * np.log10(np.mean(out[seg] ** 2))
    echo_db = 10 * np.log10(np.mean((mic[seg] - near[seg]) ** 2))
    assert out_db >= near_db - 4.0  # near-end cut by at most a few dB
    assert out_db <= near_db + 1.0  # and what is there is not the echo coming back
    assert echo_db < near_db  # (the echo alone would be quieter than near-end in this set-up)
    assert erle_db(mic[3 * SR : 5 * SR], out[3 * SR : 5 * SR]) >= 15.0  # echo-only before it


def test_arbitrary_chunks_and_errors() -> None:
    aec = EchoCanceller(SR)
    for n in [1, 159, 160, 161, 512, 1000]:
        assert len(aec.process(np.zeros(n, np.float32), np.zeros(n, np.float32))) == n
    assert len(aec.process(np.zeros(100, np.float32))) == 100  # no reference = speaker silent
    with pytest.raises(ValueError, match="same length"):
        aec.process(np.zeros(100, np.float32), np.zeros(99, np.float32))
    with pytest.raises(ValueError, match="8/16/32/48 kHz"):
        EchoCanceller(22050)


def test_playback_reference_timeline() -> None:
    r = PlaybackReference(SR, capacity_s=1.0)
    assert not r.read(100.0, 10).any()  # nothing written yet
    t0 = 1000.0
    a = np.arange(1, 321, dtype=np.float32)
    r.write(a, t0)
    np.testing.assert_array_equal(r.read(t0, 320), a)
    # 1 ms of clock jitter between blocks: snapped contiguous, no hole, no overlap
    r.write(a + 1000, t0 + 0.020 + 0.001)
    np.testing.assert_array_equal(r.read(t0 + 0.020, 320), a + 1000)
    # a real gap reads as silence; reads straddling the written span are zero-padded
    r.write(a, t0 + 0.100)
    assert not r.read(t0 + 0.050, 320).any()
    edge = r.read(t0 + 0.100 - 0.005, 160)
    assert not edge[:80].any() and np.array_equal(edge[80:], a[:80])
    # older than the capacity: gone
    r.write(a, t0 + 5.0)
    assert not r.read(t0, 320).any()


def test_read_next_is_seamless_under_jitter() -> None:
    r = PlaybackReference(SR)
    x = np.arange(SR, dtype=np.float32)
    r.write(x, 20.0)
    jitter = np.random.default_rng(3).uniform(0, 0.004, 20)  # frame times arrive 0-4 ms late
    chunks = [r.read_next(20.0 + k * 0.032 + jitter[k], 512) for k in range(20)]
    first = int(chunks[0][0])
    np.testing.assert_array_equal(np.concatenate(chunks), x[first : first + 20 * 512])  # no skips/repeats
    assert r.read_next(20.5, 512)[0] == 8000  # a jump beyond the resync window re-anchors


def test_playback_reference_resamples() -> None:
    r = PlaybackReference(SR)
    rate = 22050
    t = np.arange(rate) / rate
    x = np.sin(2 * np.pi * 500 * t).astype(np.float32)
    for i in range(0, rate, 441):  # 20 ms blocks, as a speaker would write them
        r.write(x[i : i + 441], 50.0 + i / rate, rate)
    y = r.read(50.1, 8000)
    spec = np.abs(np.fft.rfft(y))
    assert np.fft.rfftfreq(len(y), 1 / SR)[np.argmax(spec)] == pytest.approx(500, abs=3)


def test_playback_reference_concurrent_writer() -> None:
    r = PlaybackReference(SR)
    stop = threading.Event()

    def writer() -> None:
        t, k = 10.0, 0
        while not stop.is_set():
            r.write(np.full(320, 0.5, np.float32), t + k * 0.02)
            k += 1

    th = threading.Thread(target=writer)
    th.start()
    try:
        for _ in range(200):
            y = r.read(10.0, 320)
            assert y.shape == (320,) and set(np.unique(y)) <= {0.0, 0.5}
    finally:
        stop.set()
        th.join()


def test_end_to_end_speaker_mic_echo(speech16k: AudioClip) -> None:
    """SimulatedSpeaker plays speech into a PlaybackReference; SimulatedMic hears its echo 50 ms
    later; the canceller, fed from the reference by frame time, removes it (real time, ~4 s)."""
    ref = PlaybackReference(SR)
    speech = speech16k.samples

    async def main() -> tuple[np.ndarray, np.ndarray]:
        mic = SimulatedMic(SR, 512, echo_of=ref, echo_delay_ms=50, echo_gain=0.4)
        aec = EchoCanceller(SR)
        raw, clean = [], []
        with SimulatedSpeaker(SR, block_ms=20, reference=ref) as spk:
            t_end = None
            async for frame in mic:
                if frame.index == 3:
                    spk.write(speech, SR)
                    spk.end_utterance()
                    t_end = time.monotonic() + len(speech) / SR + 0.3
                far = ref.read_next(frame.t - frame.duration, len(frame.samples))
                raw.append(frame.samples)
                clean.append(aec.process(frame.samples, far))
                if t_end is not None and time.monotonic() > t_end:
                    break
        return np.concatenate(raw), np.concatenate(clean)

    raw, clean = asyncio.run(main())
    tail = slice(len(raw) - int(1.8 * SR), len(raw) - int(0.3 * SR))  # the last part of the speech
    assert np.sqrt(np.mean(raw[tail] ** 2)) > 0.02  # the echo really reached the mic
    assert erle_db(raw[tail], clean[tail]) >= 15.0
