"""Echo cancellation (WebRTC AEC3 via livekit) on synthetic echo paths, and the playback reference."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from audio.aec import EchoCanceller, EchoCoupling, PlaybackReference, erle_db
from audio.echo_filter import AdaptiveEchoFilter
from audio.formats import AudioClip, read_wav
from audio.sinks import SimulatedSpeaker
from audio.sources import SimulatedMic, room_impulse_response
from audio.vad import SileroVAD, SpeechDetector

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
    r.write(np.arange(SR, dtype=np.float32), 30.0)
    assert r.read_next(30.5, 512)[0] == 8000  # a jump beyond the resync window (500 ms) re-anchors


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


def reverberant_echo(ref: np.ndarray, delay_ms: float, gain: float, rt60_ms: float) -> np.ndarray:
    """A room as SimulatedMic makes it: delayed, attenuated, with a diffuse reverberant tail."""
    wet = np.convolve(ref, room_impulse_response(rt60_ms, SR, 1))[: len(ref)] * gain
    d = int(delay_ms * SR / 1000)
    return np.concatenate([np.zeros(d, np.float32), wet[: len(ref) - d]]).astype(np.float32)


def test_linear_filter_learns_a_long_reverberant_path() -> None:
    """150 ms of delay and a 300 ms tail: the taps cover both, and the peak is the delay."""
    ref = (np.random.default_rng(0).standard_normal(SR * 5) * 0.1).astype(np.float32)
    mic = reverberant_echo(ref, 150, 0.3, 300)
    f = AdaptiveEchoFilter(SR)
    out = np.concatenate([f.process(mic[i : i + 512], ref[i : i + 512]) for i in range(0, len(ref), 512)])
    out = out[f.latency_samples :]
    assert erle_db(mic[4 * SR :], out[4 * SR :]) >= 25.0
    assert f.delay_ms == pytest.approx(150, abs=2)


def test_linear_filter_learns_nothing_from_the_user() -> None:
    """While the user talks (adapt=False) the filter only subtracts: what it cannot predict of the
    microphone, the user, comes out sample for sample."""
    rng = np.random.default_rng(1)
    ref = (rng.standard_normal(SR * 6) * 0.1).astype(np.float32)
    echo = reverberant_echo(ref, 80, 0.3, 250)
    near = np.zeros_like(ref)
    near[4 * SR : 5 * SR] = rng.standard_normal(SR) * 0.05
    f = AdaptiveEchoFilter(SR)
    out = []
    for i in range(0, len(ref), 512):
        talking = bool(near[i : i + 512].any())
        out.append(f.process(echo[i : i + 512] + near[i : i + 512], ref[i : i + 512], adapt=not talking))
    y = np.concatenate(out)[f.latency_samples :]
    seg = slice(4 * SR + 600, 5 * SR - 600)
    # the user's signal passes: what differs from it is the (cancelled) echo, far below it
    assert erle_db(near[seg], y[seg] - near[seg]) >= 20.0
    assert erle_db(echo[5 * SR + 600 :], y[5 * SR + 600 :]) >= 20.0  # and the filter did not drift


def test_echo_path_found_despite_its_delay(speech16k: AudioClip) -> None:
    """The first blocks of a reply have no echo yet (it arrives 150 ms later). Counting them took
    the path for absent at the start of every reply; the canceller passed the raw echo on and the
    agent interrupted itself. With the warm-up, the path is never taken for absent."""
    ref = np.tile(speech16k.samples, 2)[: SR * 4]
    mic = reverberant_echo(ref, 150, 0.3, 400)
    found = {}
    for warmup in (0, 25):
        c = EchoCoupling(warmup_blocks=warmup)
        paths = []
        for i in range(0, len(ref), 160):
            c.update(mic[i : i + 160], ref[i : i + 160])
            paths.append(c.echo_path)
        found[warmup] = all(paths)
    assert found == {0: False, 25: True}


def test_the_echo_never_reads_as_speech_and_the_user_comes_out_whole(
    speech16k: AudioClip, other_speech_wav
) -> None:
    """The canceller's two jobs for barge-in, through the pipeline's own front end (VAD on what
    ``process`` returns, its probability zeroed where ``may_be_echo``): over a 150 ms reverberant
    echo, from the reply's first sample on, the detector is voiced for less than a barge-in needs
    (300 ms) in all the echo before the user speaks (no self-interruption), and for more than that
    while the user speaks; ``near_end_audio`` (what ASR hears) has the user at their level, what is
    left of the echo far below them."""
    ref = np.tile(speech16k.samples, 3)[: SR * 9]
    user = read_wav(other_speech_wav, target_rate=SR).samples * 0.3
    near = np.zeros_like(ref)
    a = 5 * SR
    near[a : a + len(user)] = user
    mic = reverberant_echo(ref, 150, 0.3, 400) + near
    aec, vad, detector = EchoCanceller(SR), SileroVAD(SR), SpeechDetector()
    voiced_ms = {"echo": 0.0, "user": 0.0}
    heard = []
    for i in range(0, len(ref) - 511, 512):
        x = aec.process(mic[i : i + 512], ref[i : i + 512])
        prob = vad.probability(x)
        if detector.update(0.0 if aec.may_be_echo(x) else prob).is_speech:
            voiced_ms["echo" if i < a else "user"] += 32.0
        heard.append(aec.near_end_audio)
    assert voiced_ms["echo"] < 300.0 <= voiced_ms["user"], voiced_ms
    out = np.concatenate(heard)[aec.latency_samples :]
    seg = slice(a, a + len(user))
    assert erle_db(near[seg], out[seg] - near[seg]) >= 10.0  # the user whole, the echo 10 dB under
