"""Shared fixtures for the audio tests: real speech made with espeak-ng (installed system-wide)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from audio.formats import AudioClip, read_wav


def _espeak(path: Path, text: str, voice: str = "en") -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~3.4 s spoken sentence at espeak's native 22050 Hz."""
    return _espeak(
        tmp_path_factory.mktemp("speech") / "s.wav",
        "Hello there, could you set a timer for five minutes please",
    )


@pytest.fixture(scope="session")
def other_speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A different sentence and voice, for near-end speech in double-talk."""
    return _espeak(
        tmp_path_factory.mktemp("speech2") / "n.wav",
        "I would like to order a large pizza with mushrooms",
        "en+f3",
    )


@pytest.fixture(scope="session")
def speech16k(speech_wav: Path) -> AudioClip:
    clip = read_wav(speech_wav, target_rate=16000)
    clip.samples = (clip.samples * 0.7).astype(np.float32)  # headroom, like a real mic level
    return clip
