"""WAV reading/writing and PCM frame validation, including every bad-input error."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from audio.formats import (
    AudioFileNotFoundError,
    AudioFormatError,
    float_to_pcm16_bytes,
    pcm16_bytes_to_float,
    read_wav,
    to_float32,
    validate_pcm_frame,
    write_wav,
)


def _sine(n: int, rate: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


def _write_int_wav(path: Path, ints: np.ndarray, width: int, rate: int, channels: int = 1) -> Path:
    """Write raw integer PCM of any width with the stdlib (little-endian, interleaved)."""
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()
    elif width == 3:
        b = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        raw = b.tobytes()
    else:
        raw = ints.astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def _write_riff(path: Path, fmt: bytes, data: bytes) -> Path:
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def test_round_trip_pcm16(tmp_path: Path) -> None:
    x = _sine(16000, 16000)
    clip = read_wav(write_wav(tmp_path / "a.wav", x, 16000), target_rate=16000, strict=True)
    assert clip.sample_rate == 16000 and clip.samples.dtype == np.float32
    assert clip.path == tmp_path / "a.wav"
    assert len(clip.samples) == len(x)
    np.testing.assert_allclose(clip.samples, x, atol=1.0 / 32768)
    assert clip.duration == pytest.approx(1.0)


def test_write_clips_instead_of_wrapping(tmp_path: Path) -> None:
    x = np.array([0.0, 1.5, -1.5, 0.999, -1.0], np.float32)
    y = read_wav(write_wav(tmp_path / "c.wav", x, 8000)).samples
    assert y[1] == pytest.approx(32767 / 32768) and y[2] == -1.0  # saturated, sign kept
    assert y[3] > 0.99 and y[4] == -1.0


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_integer_widths(tmp_path: Path, width: int) -> None:
    x = _sine(4000, 8000, amp=0.5)
    full = 2 ** (8 * width - 1)
    ints = np.round(x * (full - 1)).astype(np.int64)
    clip = read_wav(_write_int_wav(tmp_path / f"w{width}.wav", ints, width, 8000))
    np.testing.assert_allclose(clip.samples, x, atol=2.5 / full + 1e-6)


def test_float32_wav_and_extensible(tmp_path: Path) -> None:
    x = _sine(1600, 16000, amp=0.8)
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 16000 * 4, 4, 32)
    clip = read_wav(_write_riff(tmp_path / "f.wav", fmt, x.astype("<f4").tobytes()))
    np.testing.assert_array_equal(clip.samples, x)
    # WAVE_FORMAT_EXTENSIBLE with a PCM sub-format (what many tools write for >2 ch or 24 bit)
    guid_pcm = struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    ext = struct.pack("<HHIIHH", 0xFFFE, 1, 16000, 32000, 2, 16) + struct.pack("<HHI", 22, 16, 4) + guid_pcm
    ints = np.round(x * 32767).astype("<i2")
    clip = read_wav(_write_riff(tmp_path / "e.wav", ext, ints.tobytes()))
    np.testing.assert_allclose(clip.samples, x, atol=2.0 / 32768)


def test_unsupported_float16_encoding(tmp_path: Path) -> None:
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 32000, 2, 16)
    with pytest.raises(AudioFormatError, match="unsupported WAV encoding"):
        read_wav(_write_riff(tmp_path / "h.wav", fmt, b"\x00" * 64))


def test_unsupported_sample_width(tmp_path: Path) -> None:
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 40000, 5, 40)  # 40-bit PCM
    with pytest.raises(AudioFormatError, match="unsupported sample width 40 bits"):
        read_wav(_write_riff(tmp_path / "w5.wav", fmt, b"\x00" * 50))


def test_strict_rejects_wrong_rate_and_stereo(tmp_path: Path) -> None:
    p = write_wav(tmp_path / "r.wav", _sine(2205, 22050), 22050)
    with pytest.raises(AudioFormatError, match=r"expected mono at 16000 Hz, got 22050 Hz"):
        read_wav(p, target_rate=16000, strict=True)
    stereo = np.round(np.stack([_sine(1600, 16000), _sine(1600, 16000, 880)], 1) * 32767).astype(np.int64)
    ps = _write_int_wav(tmp_path / "s.wav", stereo.reshape(-1), 2, 16000, channels=2)
    with pytest.raises(AudioFormatError, match=r"expected mono at 16000 Hz, got 2 channels"):
        read_wav(ps, target_rate=16000, strict=True)


def test_lenient_downmixes_and_resamples(tmp_path: Path) -> None:
    left, right = _sine(22050, 22050, 440, 0.4), _sine(22050, 22050, 440, 0.2)
    ints = np.round(np.stack([left, right], 1) * 32767).astype(np.int64).reshape(-1)
    clip = read_wav(_write_int_wav(tmp_path / "st.wav", ints, 2, 22050, channels=2), target_rate=16000)
    assert clip.sample_rate == 16000
    assert abs(len(clip.samples) - 16000) <= 2
    # mean of the two channels: amplitude 0.3
    assert np.max(np.abs(clip.samples[1000:-1000])) == pytest.approx(0.3, abs=0.01)


def test_empty_wav(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    with pytest.raises(AudioFormatError, match="no audio"):
        read_wav(p)


def test_corrupt_and_non_wav(tmp_path: Path) -> None:
    good = write_wav(tmp_path / "g.wav", _sine(1000, 16000), 16000).read_bytes()
    (tmp_path / "trunc.wav").write_bytes(good[:30])  # header cut inside the fmt chunk
    with pytest.raises(AudioFormatError, match="corrupt|not a valid"):
        read_wav(tmp_path / "trunc.wav")
    (tmp_path / "garbage.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(AudioFormatError, match="corrupt|not a valid"):
        read_wav(tmp_path / "garbage.wav")
    (tmp_path / "notes.txt").write_text("this is not audio at all\n")
    with pytest.raises(AudioFormatError, match="not a valid WAV"):
        read_wav(tmp_path / "notes.txt")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioFileNotFoundError, match="not found") as e:
        read_wav(tmp_path / "nope.wav")
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, AudioFormatError)
    with pytest.raises(AudioFormatError, match="not a regular file"):
        read_wav(tmp_path)


def test_pcm16_bytes_helpers() -> None:
    x = np.array([0.0, 0.5, -0.5, 1.2, -1.2], np.float32)
    b = float_to_pcm16_bytes(x)
    assert len(b) == 10
    assert struct.unpack("<5h", b) == (0, 16384, -16384, 32767, -32768)
    y = pcm16_bytes_to_float(b)
    np.testing.assert_allclose(y[:3], x[:3], atol=1e-4)
    with pytest.raises(AudioFormatError, match="even number of bytes"):
        pcm16_bytes_to_float(b"\x00\x01\x02")


def test_validate_pcm_frame() -> None:
    ok = np.zeros(512, np.float32)
    assert validate_pcm_frame(ok, 16000, 16000) is ok
    with pytest.raises(AudioFormatError, match="8000 Hz does not match the expected 16000"):
        validate_pcm_frame(ok, 8000, 16000)
    with pytest.raises(AudioFormatError, match=r"1-D mono frame, got shape \(256, 2\)"):
        validate_pcm_frame(np.zeros((256, 2), np.float32), 16000, 16000)
    with pytest.raises(AudioFormatError, match="dtype int16"):
        validate_pcm_frame(np.zeros(512, np.int16), 16000, 16000)
    with pytest.raises(AudioFormatError, match="NaN"):
        validate_pcm_frame(np.array([0.0, np.nan], np.float32), 16000, 16000)
    with pytest.raises(AudioFormatError, match="empty"):
        validate_pcm_frame(np.zeros(0, np.float32), 16000, 16000)


def test_to_float32() -> None:
    assert to_float32(np.array([16384], np.int16))[0] == 0.5
    with pytest.raises(AudioFormatError, match="dtype int32"):
        to_float32(np.array([1], np.int32))
