"""MicSource and SpeakerSink through a real audio stack: a private PulseAudio server with a virtual
microphone and a null speaker (docs: shared/reference/audio-testing.md). PortAudio reaches it
through ALSA's pulse plugin, exactly as it would reach a desktop's sound server."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from audio.aec import PlaybackReference
from audio.devices import AudioDeviceError, list_devices, resolve_device
from audio.sinks import SpeakerSink
from audio.sources import AudioFrame, MicSource
from audio.vad import SileroVAD

pytestmark = pytest.mark.audio_stack

SR = 16000


class MonitorRecorder:
    """Records what reaches the speaker (`spk.monitor`) with parec, as raw PCM16 at 16 kHz."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [
                "parec",
                "--device=spk.monitor",
                "--format=s16le",
                f"--rate={SR}",
                "--channels=1",
                "--latency-msec=20",
            ],
            stdout=subprocess.PIPE,
        )
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        while chunk := self._proc.stdout.read1(4096):
            self._chunks.append(chunk)

    def stop(self) -> np.ndarray:
        self._proc.terminate()
        self._proc.wait(timeout=5)
        self._thread.join(timeout=5)
        raw = b"".join(self._chunks)
        return np.frombuffer(raw[: len(raw) // 2 * 2], "<i2").astype(np.float32) / 32768.0


def _tone_seconds(x: np.ndarray, freq: float, win: int = 320) -> float:
    """How long a tone of `freq` is present in x (Goertzel-like energy per 20 ms window)."""
    n = len(x) // win
    t = np.arange(win) / SR
    ref = np.exp(-2j * np.pi * freq * t)
    amp = np.array([abs(np.dot(x[i * win : (i + 1) * win], ref)) * 2 / win for i in range(n)])
    return float(np.sum(amp > 0.05) * win / SR)


def test_devices_listed_and_resolved(pulse: Path) -> None:
    devs = list_devices()
    names = [d.name for d in devs]
    assert "pulse" in names
    assert any(d.is_default_input for d in devs) and any(d.is_default_output for d in devs)
    idx = resolve_device("pulse", "input")
    assert devs[idx].name == "pulse" and devs[idx].max_input_channels > 0
    assert resolve_device(str(idx), "output") == idx  # indices as typed on a command line
    assert resolve_device(None, "input") in [d.index for d in devs]
    with pytest.raises(AudioDeviceError, match="(?s)no input device named 'no-such-mic'.*pulse"):
        resolve_device("no-such-mic", "input")
    with pytest.raises(AudioDeviceError, match="no audio device with index 99"):
        resolve_device(99, "output")
    with pytest.raises(ValueError, match="kind"):
        resolve_device(None, "sideways")  # type: ignore[arg-type]


def test_mic_source_records_speech(pulse: Path, speech_wav: Path) -> None:
    async def capture() -> tuple[list[AudioFrame], int, MicSource]:
        # capture at 44.1 kHz (a typical device rate) so the streaming resampler path runs too
        mic = MicSource(device="pulse", sample_rate=SR, frame_samples=512, device_rate=44100)
        frames: list[AudioFrame] = []
        running = asyncio.Event()

        async def consume() -> None:
            async for f in mic:
                frames.append(f)
                running.set()

        assert not mic.running.is_set()
        task = asyncio.create_task(consume())
        # A fresh server takes ~2 s to deliver the first capture block; speak only once it listens.
        await asyncio.wait_for(running.wait(), 15)
        assert mic.running.is_set()  # what `quickturn talk` waits for before it says it listens
        await asyncio.sleep(0.3)
        before = len(frames)
        play = await asyncio.create_subprocess_exec("paplay", "--device=micsrc", str(speech_wav))
        assert await asyncio.wait_for(play.wait(), 15) == 0
        await asyncio.sleep(0.4)
        mic.close()
        await asyncio.wait_for(task, 5)
        assert not mic.running.is_set()  # the device is closed again
        return frames, before, mic

    frames, before, mic = asyncio.run(capture())
    assert len(frames) > 40 and all(len(f.samples) == 512 and f.sample_rate == SR for f in frames)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert all(b.t >= a.t for a, b in zip(frames, frames[1:]))
    rms = np.array([np.sqrt(np.mean(f.samples**2)) for f in frames])
    assert before >= 5 and rms[:before].max() < 1e-3  # before paplay: the virtual mic is silent
    assert rms[before:].max() > 0.02  # speech energy arrived
    vad = SileroVAD(SR)
    probs = np.array([vad.probability(f.samples) for f in frames])
    assert np.sum(probs > 0.5) >= 20  # >= 0.64 s recognised as speech
    assert mic.dropped_blocks == 0


def test_speaker_sink_reaches_monitor_and_stops(pulse: Path) -> None:
    rec = MonitorRecorder()
    time.sleep(0.3)
    drained = threading.Event()
    first: list[float] = []
    t = np.arange(SR * 3) / SR
    ref = PlaybackReference(SR)
    with SpeakerSink(device="pulse", sample_rate=SR, block_ms=20, reference=ref) as spk:
        spk.on_first_sample = first.append
        spk.on_drained = lambda _t: drained.set()
        assert spk.wait_running(10)
        spk.begin_utterance()
        spk.write((0.3 * np.sin(2 * np.pi * 440 * t[:SR])).astype(np.float32), SR)  # 1 s at 440 Hz
        spk.end_utterance()
        assert drained.wait(5)
        assert spk.played_seconds == pytest.approx(1.0)
        # the echo canceller's reference got the reply, stamped at (or just after) the hand-over time
        far = ref.read(first[0], SR + SR // 2)
        assert _tone_seconds(far, 440) == pytest.approx(1.0, abs=0.1)
        time.sleep(0.3)
        # barge-in: 3 s queued at 660 Hz, cut after ~0.5 s
        spk.begin_utterance()
        spk.write((0.3 * np.sin(2 * np.pi * 660 * t)).astype(np.float32), SR)
        time.sleep(0.5)
        heard = spk.stop_now()
        time.sleep(0.6)
        assert not spk.is_playing
    x = rec.stop()
    assert len(first) == 2
    assert 0.3 * SR <= heard <= 0.8 * SR
    assert _tone_seconds(x, 440) == pytest.approx(1.0, abs=0.15)  # all of the first reply reached it
    cut = _tone_seconds(x, 660)
    assert 0.2 <= cut <= heard / SR + 0.3  # the interrupted reply stopped, far short of 3 s
