"""espeak-ng as a second, robotic test voice (demo turns, ASR tests, ASR benchmarks): text → float32 mono."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .formats import read_wav


class EspeakMissingError(RuntimeError):
    pass


def espeak_speech(text: str, rate: int, words_per_minute: int = 150) -> np.ndarray:
    """Speak ``text`` with espeak-ng's default English voice, resampled to ``rate`` Hz."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakMissingError(
            "espeak-ng is not installed (Debian package espeak-ng; `make env` installs it with the other system packages)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "espeak.wav"
        subprocess.run(
            [exe, "-s", str(words_per_minute), "-w", str(out), text], check=True, capture_output=True
        )
        return read_wav(out, target_rate=rate).samples
