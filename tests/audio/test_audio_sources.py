"""FileSource and the wall-clock-paced SimulatedMic."""

from __future__ import annotations

import asyncio

import numpy as np

from audio.aec import PlaybackReference
from audio.formats import AudioClip
from audio.sources import AudioFrame, FileSource, SimulatedMic


def test_file_source_frames_and_padding(speech16k: AudioClip) -> None:
    async def collect() -> list[AudioFrame]:
        return [f async for f in FileSource(speech16k, 512)]

    frames = asyncio.run(collect())
    n = len(speech16k.samples)
    assert len(frames) == -(-n // 512)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert all(len(f.samples) == 512 and f.sample_rate == 16000 for f in frames)
    ts = [f.t for f in frames]
    assert ts == sorted(ts)
    joined = np.concatenate([f.samples for f in frames])
    np.testing.assert_array_equal(joined[:n], speech16k.samples)
    assert not joined[n:].any()


def _assert_paced(mic: SimulatedMic, frames: list[AudioFrame]) -> None:
    """Frame k covers [start + k*T, start + (k+1)*T): none may be emitted before its span has ended."""
    assert mic.start_time is not None
    for f in frames:
        assert f.t >= mic.start_time + (f.index + 1) * mic.frame_s, f"frame {f.index} came early"


def test_simulated_mic_pacing_and_order() -> None:
    async def run() -> tuple[SimulatedMic, list[AudioFrame]]:
        mic = SimulatedMic(16000, 512)
        frames = []
        async for f in mic:
            frames.append(f)
            if len(frames) == 20:
                break
        return mic, frames

    mic, frames = asyncio.run(run())
    assert mic.frame_s == 512 / 16000
    assert [f.index for f in frames] == list(range(20))
    assert all(b.t > a.t for a, b in zip(frames, frames[1:]))
    _assert_paced(mic, frames)  # 20 x 32 ms of audio is not handed out before it was "recorded"
    assert not any(f.samples.any() for f in frames)  # silence by default


def test_simulated_mic_inject_and_wait_idle(speech16k: AudioClip) -> None:
    clip = AudioClip(speech16k.samples[:8000], 16000)  # 0.5 s
    clip_frames = -(-len(clip.samples) // 512)

    async def run() -> tuple[SimulatedMic, list[AudioFrame], int, int]:
        mic = SimulatedMic(16000, 512)
        frames: list[AudioFrame] = []
        first_frame = asyncio.Event()

        async def consume() -> None:
            async for f in mic:
                frames.append(f)
                first_frame.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first_frame.wait(), 10.0)  # inject mid-stream, after a frame was out
        injected_at = len(frames)
        duration = mic.inject(clip)
        assert abs(duration - 0.5) < 1e-9
        await asyncio.wait_for(mic.wait_idle(), 10.0)  # only stops a hung test
        idle_at = len(frames)
        mic.close()
        await task
        return mic, frames, injected_at, idle_at

    mic, frames, injected_at, idle_at = asyncio.run(run())
    assert injected_at >= 1
    # wait_idle returns only once the frame carrying the clip's last sample has been emitted ...
    assert idle_at >= injected_at + clip_frames
    # ... and the clip was played out frame by frame in real time, not dumped at once
    _assert_paced(mic, frames)
    assert [f.index for f in frames] == list(range(len(frames)))
    audio = np.concatenate([f.samples for f in frames[injected_at:]])
    np.testing.assert_array_equal(audio[: len(clip.samples)], clip.samples)  # from the next frame on
    assert not audio[len(clip.samples) :].any()


def test_simulated_mic_resamples_noise_and_echo() -> None:
    ref = PlaybackReference(16000)
    tone = (0.5 * np.sin(2 * np.pi * 300 * np.arange(16000) / 16000)).astype(np.float32)

    async def run() -> list[AudioFrame]:
        mic = SimulatedMic(16000, 512, noise_level=0.01, echo_of=ref, echo_delay_ms=40, echo_gain=0.5)
        mic.inject(np.zeros(22050, np.float32), sample_rate=22050)  # 1 s at 22.05 kHz -> 16000 samples
        frames = []
        async for f in mic:
            if f.index == 0:
                ref.write(tone, mic.start_time + 0.05)  # the "speaker" plays 1 s of tone from 50 ms
            frames.append(f)
            if len(frames) == 25:
                break
        return frames

    frames = asyncio.run(run())
    x = np.concatenate([f.samples for f in frames])
    quiet = x[: int(0.08 * 16000)]  # before the echo arrives (50 + 40 ms)
    assert 0.005 < np.std(quiet) < 0.02  # noise floor at the requested level
    echo = x[int(0.15 * 16000) : int(0.75 * 16000)]
    assert abs(np.std(echo) - 0.25 / np.sqrt(2)) < 0.01  # 0.5 gain x 0.5 sine, plus noise
    onset = int(np.argmax(np.abs(x) > 0.1))
    assert 1440 <= onset <= 1460  # 50 ms playback start + 40 ms echo delay, sample-exact timeline
