"""Voice activity detection: silero VAD run through onnxruntime, plus a hysteresis detector.

Model choice: `silero_vad/data/silero_vad.onnx` from the `silero-vad` pip package (already a
project dependency). It is silero's reference streaming export: one 32 ms frame per call with the
recurrent state passed in and out, inputs `input` (64 samples of context + 512 new), `state`
(2x1x128) and `sr`. faster-whisper's bundled `silero_vad_v6.onnx` is a different export (a
sequence model taking windows of 576 with separate h/c LSTM states) meant for batch use inside
faster-whisper; depending on it would tie us to an asset path inside another library.

Why onnxruntime and not torch: the package's torch model runs at ~80 ms per frame with 2 torch
threads on our 2-core CPU (slower than real time); ONNX with one thread and no spinning costs
~0.1-0.2 ms per frame and leaves the cores to ASR/LM/TTS. We locate the file without importing
`silero_vad`, whose `__init__` imports torch.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

__all__ = ["SileroVAD", "SpeechDetector", "VadDecision", "VADError", "silero_model_path"]

# samples per frame and samples of context from the previous frame, per supported rate
_RATE_CONFIG = {16000: (512, 64), 8000: (256, 32)}


class VADError(RuntimeError):
    """The VAD model is missing or was fed something it cannot take."""


def silero_model_path() -> Path:
    """Path of silero_vad.onnx inside the installed `silero-vad` package (without importing it)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise VADError("the 'silero-vad' package is not installed (pip install silero-vad)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise VADError(f"silero-vad is installed but its ONNX model is missing: {path}")
    return path


@functools.lru_cache(maxsize=8)
def _session(path: str, threads: int) -> ort.InferenceSession:
    """One onnxruntime session per model and thread count, shared by every stream.

    The recurrent state is passed in and out of each call, so streams share nothing but the weights,
    and ``run`` may be called from several threads at once. A session per stream cost ~3.5 MiB of
    native memory that was never given back: a server's RSS grew with every connection it ever had.
    """
    opts = ort.SessionOptions()
    # One thread, no busy-waiting: a 0.1 ms model must not keep a core spinning between frames.
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3  # the export carries unused initialisers; ort warns about them
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


class SileroVAD:
    """Per-frame speech probability from silero VAD (stateful: feed frames in order)."""

    def __init__(self, sample_rate: int = 16000, threads: int = 1, model_path: str | Path | None = None):
        if sample_rate not in _RATE_CONFIG:
            raise VADError(f"silero VAD supports 8000 or 16000 Hz, not {sample_rate}")
        self.sample_rate = sample_rate
        self.frame_samples, self._context_samples = _RATE_CONFIG[sample_rate]
        self._session = _session(str(model_path or silero_model_path()), threads)
        self._sr = np.array(sample_rate, dtype=np.int64)
        self.reset()

    @property
    def frame_ms(self) -> float:
        return 1000.0 * self.frame_samples / self.sample_rate

    def reset(self) -> None:
        """Forget the recurrent state and context (start of an unrelated stream)."""
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(self._context_samples, np.float32)

    def probability(self, frame: np.ndarray) -> float:
        """Speech probability in [0, 1] for the next frame (512 samples at 16 kHz)."""
        x = np.asarray(frame, dtype=np.float32)
        if x.shape != (self.frame_samples,):
            raise VADError(
                f"silero VAD needs frames of exactly {self.frame_samples} samples at "
                f"{self.sample_rate} Hz, got shape {x.shape}"
            )
        inp = np.concatenate((self._context, x))[None, :]
        out, self._state = self._session.run(None, {"input": inp, "state": self._state, "sr": self._sr})
        self._context = x[-self._context_samples :].copy()
        return float(out[0, 0])

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities for every full frame of a clip (state is reset first; tail is dropped)."""
        self.reset()
        n = len(samples) // self.frame_samples
        return np.array(
            [
                self.probability(samples[i * self.frame_samples : (i + 1) * self.frame_samples])
                for i in range(n)
            ],
            dtype=np.float32,
        )


@dataclass(frozen=True)
class VadDecision:
    """The detector's verdict on one frame.

    `is_speech` is the state after this frame. `event` is "start" on the frame where speech is
    confirmed (then `start_index` is the first frame of that voiced run, which may be a few frames
    back, so the caller can include them) and "stop" on the first frame that falls below the off
    threshold. Hangover/endpointing on top of "stop" is the caller's policy.
    """

    index: int
    prob: float
    is_speech: bool
    event: str | None = None
    start_index: int | None = None


class SpeechDetector:
    """Hysteresis on VAD probabilities: on at >= `on_threshold` sustained for `min_speech_ms`,
    off as soon as a frame is below `off_threshold`. Two thresholds keep a borderline frame from
    flickering the state; the minimum duration ignores clicks and short noise bursts."""

    def __init__(
        self,
        on_threshold: float = 0.5,
        off_threshold: float = 0.35,
        min_speech_ms: float = 96.0,
        frame_ms: float = 32.0,
    ) -> None:
        if not 0.0 <= off_threshold <= on_threshold <= 1.0:
            raise ValueError(f"need 0 <= off ({off_threshold}) <= on ({on_threshold}) <= 1")
        self.on_threshold = on_threshold
        self.off_threshold = off_threshold
        self.min_speech_frames = max(1, int(np.ceil(min_speech_ms / frame_ms - 1e-9)))
        self.reset()

    def reset(self) -> None:
        self._index = 0
        self._speaking = False
        self._run_start: int | None = None  # first frame of a not-yet-confirmed voiced run

    @property
    def is_speech(self) -> bool:
        return self._speaking

    def update(self, prob: float) -> VadDecision:
        """Feed the next frame's probability; return the decision for that frame."""
        i, prob = self._index, float(prob)
        self._index += 1
        if self._speaking:
            if prob < self.off_threshold:
                self._speaking = False
                return VadDecision(i, prob, False, "stop")
            return VadDecision(i, prob, True)
        if prob >= self.on_threshold:
            if self._run_start is None:
                self._run_start = i
            if i - self._run_start + 1 >= self.min_speech_frames:
                start, self._run_start, self._speaking = self._run_start, None, True
                return VadDecision(i, prob, True, "start", start)
        else:
            self._run_start = None
        return VadDecision(i, prob, False)
