"""WAV files and raw PCM frames: reading, writing, validating.

Everything inside quickturn is float32 mono in [-1, 1]; this module is the border where files and
wire formats (PCM16 little-endian, as sent base64-encoded over the WebSocket API) get converted
to and from that, with a clear `AudioFormatError` for anything we cannot or will not take.

`read_audio` reads any file: WAV here, anything else (MP3, FLAC, OGG/Opus, ...) through soundfile
(libsndfile >= 1.1 reads MP3), with an error that says how to convert when it cannot.

Integer PCM (8/16/24/32-bit) goes through the stdlib `wave` module. `wave` (Python 3.11) rejects
IEEE-float and WAVE_FORMAT_EXTENSIBLE files, which many tools (sox, DAWs, soundfile) write, so a
small RIFF reader handles those two layouts instead.
"""

from __future__ import annotations

import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.resample import resample

__all__ = [
    "AudioClip",
    "AudioFileNotFoundError",
    "AudioFormatError",
    "float_to_pcm16_bytes",
    "pcm16_bytes_to_float",
    "read_audio",
    "read_wav",
    "to_float32",
    "validate_pcm_frame",
    "write_wav",
]

_FORMAT_PCM = 0x0001
_FORMAT_FLOAT = 0x0003
_FORMAT_EXTENSIBLE = 0xFFFE


class AudioFormatError(ValueError):
    """Audio data or a file is not in a format we accept; the message says what and why."""


class AudioFileNotFoundError(AudioFormatError, FileNotFoundError):
    """The audio file does not exist (also a FileNotFoundError, so generic handlers catch it)."""


@dataclass
class AudioClip:
    """A whole piece of audio in the internal format: float32 mono in [-1, 1]."""

    samples: np.ndarray
    sample_rate: int
    path: Path | None = None

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


def read_wav(path: str | Path, *, target_rate: int | None = None, strict: bool = False) -> AudioClip:
    """Read a WAV file as float32 mono.

    strict=False: stereo/multichannel is averaged to mono and the audio is resampled to
    `target_rate` (if given). strict=True: the file must already be mono at `target_rate`;
    anything else raises AudioFormatError naming expected vs actual format (useful where silent
    conversion would hide a misconfigured producer).
    """
    path = Path(path)
    if not path.exists():
        raise AudioFileNotFoundError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioFormatError(f"not a regular file: {path}")
    data, rate, channels = _decode(path)
    if rate <= 0:
        raise AudioFormatError(f"{path}: corrupt WAV header (sample rate {rate})")
    if data.size == 0:
        raise AudioFormatError(f"{path}: WAV file contains no audio (0 frames)")
    if strict:
        problems = []
        if channels != 1:
            problems.append(f"{channels} channels")
        if target_rate is not None and rate != target_rate:
            problems.append(f"{rate} Hz")
        if problems:
            want = f"mono{f' at {target_rate} Hz' if target_rate else ''}"
            raise AudioFormatError(f"{path}: expected {want}, got {', '.join(problems)}")
    mono = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
    if target_rate is not None and target_rate != rate:
        mono = resample(mono, rate, target_rate)
        rate = target_rate
    return AudioClip(np.ascontiguousarray(mono, dtype=np.float32), rate, path)


# What read_audio takes besides WAV, when soundfile is installed (libsndfile decodes them).
COMPRESSED_SUFFIXES = (".mp3", ".flac", ".ogg", ".oga", ".opus")
AUDIO_SUFFIXES = (".wav", *COMPRESSED_SUFFIXES)


def read_audio(path: str | Path, *, target_rate: int | None = None) -> AudioClip:
    """Read a WAV (``read_wav``) or a compressed file (MP3, FLAC, OGG/Opus via soundfile) as float32 mono,
    averaged to mono and resampled to ``target_rate`` when given."""
    path = Path(path)
    if path.suffix.lower() == ".wav":
        return read_wav(path, target_rate=target_rate)
    if not path.exists():
        raise AudioFileNotFoundError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioFormatError(f"not a regular file: {path}")
    convert = f"convert it to WAV first, e.g. `ffmpeg -i {path} out.wav` or `sox {path} out.wav`"
    try:
        import soundfile
    except ImportError:
        raise AudioFormatError(
            f"{path}: reading {path.suffix or 'this'} files needs the soundfile package "
            f"(pip install soundfile); or {convert}"
        ) from None
    except OSError as exc:  # soundfile installed, its libsndfile not found
        raise AudioFormatError(f"{path}: soundfile cannot load libsndfile ({exc}); {convert}") from None
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.SoundFileError) as exc:  # LibsndfileError is a RuntimeError
        raise AudioFormatError(f"{path}: cannot decode this file ({exc}); {convert}") from None
    if data.size == 0:
        raise AudioFormatError(f"{path}: the file contains no audio (0 frames)")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if target_rate is not None and target_rate != rate:
        mono = resample(mono, rate, target_rate)
        rate = target_rate
    return AudioClip(np.ascontiguousarray(mono, dtype=np.float32), int(rate), path)


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    """Write float samples as a 16-bit PCM WAV; values outside [-1, 1] are clipped, not wrapped.

    ``samples`` is mono [n] or multi-channel [n, channels] (interleaved on disk)."""
    arr = np.asarray(samples)
    channels = 1 if arr.ndim == 1 else arr.shape[1]
    x = to_float32(arr.reshape(-1) if arr.ndim == 2 else arr)
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(float_to_pcm16_bytes(x))
    return path


def to_float32(samples: np.ndarray) -> np.ndarray:
    """Coerce a 1-D float or int16 array to float32 (int16 is scaled to [-1, 1])."""
    x = np.asarray(samples)
    if x.ndim != 1:
        raise AudioFormatError(f"expected 1-D mono samples, got an array of shape {x.shape}")
    if x.dtype == np.int16:
        return x.astype(np.float32) / 32768.0
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioFormatError(f"expected float samples in [-1, 1] (or int16), got dtype {x.dtype}")
    return x.astype(np.float32, copy=False)


def pcm16_bytes_to_float(b: bytes | bytearray | memoryview) -> np.ndarray:
    """PCM16 little-endian bytes → float32 in [-1, 1)."""
    if len(b) % 2:
        raise AudioFormatError(f"PCM16 data must have an even number of bytes, got {len(b)}")
    return np.frombuffer(b, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16_bytes(x: np.ndarray) -> bytes:
    """float samples → PCM16 little-endian bytes, clipping to the int16 range (no wrap-around)."""
    x = np.asarray(x, dtype=np.float32)
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2").tobytes()


def validate_pcm_frame(samples: np.ndarray, rate: int, expected_rate: int) -> np.ndarray:
    """Check a raw incoming frame before it enters the pipeline; return it as float32.

    Raises AudioFormatError for a wrong rate, non-1-D shape, integer/complex dtype, or NaN/inf,
    each named in the message, so a misbehaving client is told exactly what to fix.
    """
    if rate != expected_rate:
        raise AudioFormatError(f"sample rate {rate} Hz does not match the expected {expected_rate} Hz")
    x = np.asarray(samples)
    if x.ndim != 1:
        raise AudioFormatError(f"expected a 1-D mono frame, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioFormatError(f"expected float32 samples, got dtype {x.dtype}")
    if x.size == 0:
        raise AudioFormatError("empty frame (0 samples)")
    if not np.all(np.isfinite(x)):
        raise AudioFormatError("frame contains NaN or infinite samples")
    return x.astype(np.float32, copy=False)


# --- decoding -------------------------------------------------------------------------------


def _decode(path: Path) -> tuple[np.ndarray, int, int]:
    """Return (frames x channels float32, rate, channels) for a PCM or float WAV."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
        return _ints_to_float(raw, width, channels, path), rate, channels
    except wave.Error as e:
        if str(e).startswith("unknown format"):
            return _decode_riff(path)  # float or WAVE_FORMAT_EXTENSIBLE: wave can't, we can
        raise AudioFormatError(f"{path}: not a valid WAV file ({e})") from e
    except (EOFError, struct.error, RuntimeError) as e:  # wave raises RuntimeError on bad chunk sizes
        raise AudioFormatError(f"{path}: corrupt or truncated WAV header ({e or type(e).__name__})") from e


def _ints_to_float(raw: bytes, width: int, channels: int, path: Path) -> np.ndarray:
    if channels < 1:
        raise AudioFormatError(f"{path}: invalid channel count {channels}")
    frame_bytes = width * channels
    raw = raw[: len(raw) - len(raw) % frame_bytes]  # a truncated last frame is dropped
    if width == 1:  # 8-bit WAV is unsigned
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:  # no 24-bit dtype: place the 3 bytes in the top of an int32
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        i32 = (
            (b[:, 0].astype(np.int32) << 8)
            | (b[:, 1].astype(np.int32) << 16)
            | (b[:, 2].astype(np.int32) << 24)
        )
        x = i32.astype(np.float32) / 2147483648.0
    elif width == 4:
        x = (np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        raise AudioFormatError(f"{path}: unsupported sample width {width * 8} bits (want 8/16/24/32)")
    return x.reshape(-1, channels)


def _decode_riff(path: Path) -> tuple[np.ndarray, int, int]:
    """Minimal RIFF/WAVE walker for IEEE-float and WAVE_FORMAT_EXTENSIBLE files."""
    blob = path.read_bytes()
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise AudioFormatError(f"{path}: not a RIFF/WAVE file")
    fmt: bytes | None = None
    data: bytes | None = None
    pos = 12
    while pos + 8 <= len(blob):
        cid, size = blob[pos : pos + 4], struct.unpack("<I", blob[pos + 4 : pos + 8])[0]
        body = blob[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            data = body  # may be shorter than `size` if truncated; we keep what is there
        pos += 8 + size + (size & 1)  # chunks are word-aligned
    if fmt is None or len(fmt) < 16 or data is None:
        raise AudioFormatError(f"{path}: corrupt WAV (missing fmt or data chunk)")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    if channels < 1:
        raise AudioFormatError(f"{path}: invalid channel count {channels}")
    if tag == _FORMAT_EXTENSIBLE:
        if len(fmt) < 26:
            raise AudioFormatError(f"{path}: corrupt WAVE_FORMAT_EXTENSIBLE header")
        tag = struct.unpack("<H", fmt[24:26])[0]  # first two bytes of the sub-format GUID
    if tag == _FORMAT_PCM:
        return _ints_to_float(data, bits // 8, channels, path), rate, channels
    if tag == _FORMAT_FLOAT and bits in (32, 64):
        dt = "<f4" if bits == 32 else "<f8"
        n = len(data) // (bits // 8 * channels) * channels
        x = np.frombuffer(data[: n * bits // 8], dt).astype(np.float32)
        return x.reshape(-1, channels), rate, channels
    raise AudioFormatError(
        f"{path}: unsupported WAV encoding (format tag {tag:#06x}, {bits} bits); "
        "want integer PCM or 32/64-bit float"
    )
