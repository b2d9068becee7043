"""The ``quickturn`` command line as a user meets it: real subprocesses of ``python -m agent.cli``.

Requests that cannot run must fail with ``error: ...`` on stderr and exit 2 before any model loads
(checked on the output: nothing about models appears), so these tests stay fast.
"""

from __future__ import annotations

import importlib.metadata
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.simulate import InputError, load_clip, load_items
from audio.formats import AudioFormatError, read_audio

REPO = Path(__file__).resolve().parents[2]


def quickturn(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the CLI with stdout/stderr piped (not a terminal), as a script or CI would."""
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def assert_usage_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2, one 'error:' line on stderr naming the problem, and no model was loaded first."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    assert "models ready" not in proc.stdout, proc.stdout  # failed before loading models


def test_version() -> None:
    proc = quickturn("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"quickturn {importlib.metadata.version('quickturn')}"


def test_bench_is_a_normal_subcommand_with_the_common_options() -> None:
    proc = quickturn("bench", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: quickturn bench")
    for option in ("--config", "--set", "--device", "--quick", "examples:"):
        assert option in proc.stdout, option
    assert "benchmarks" not in proc.stdout
    # --set is applied: a bad key is a config error, before any timing
    assert_usage_error(quickturn("bench", "--set", "lm.nope=1"), "unknown key lm.nope")
    assert_usage_error(quickturn("bench", "--set", "lm.model_path=/no/such/model"), "/no/such/model")


@pytest.mark.parametrize("command", ["demo", "talk", "serve", "profile", "bench"])
def test_every_command_has_a_description_and_examples(command: str) -> None:
    proc = quickturn(command, "--help")
    assert proc.returncode == 0, proc.stderr
    usage, description = proc.stdout.split("\n\n")[:2]
    assert usage.startswith(f"usage: quickturn {command}")
    assert len(description.split()) >= 10, description  # a sentence, not just the one-line help
    assert f"examples:\n  quickturn {command}" in proc.stdout


def test_error_style_and_exit_codes(tmp_path: Path) -> None:
    assert_usage_error(quickturn("demo", "--set", "lm.steps=many"), "error: config:", "expected a number")
    assert_usage_error(quickturn("profile", "--input", "x.wav", "--set", "nodot=1"), "section.key=value")
    assert_usage_error(quickturn("demo", "--config", str(tmp_path / "none.toml")), "config file not found")
    assert_usage_error(quickturn("profile"), "--input PATH")
    proc = quickturn("nonsense")  # argparse's own usage error: also exit 2
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_missing_or_empty_input_fails_before_models_load(tmp_path: Path) -> None:
    assert_usage_error(quickturn("demo", "--input", str(tmp_path / "missing")), "input not found")
    assert_usage_error(quickturn("demo", "--input", str(tmp_path)), "no audio files", "empty")
    (tmp_path / "notes.txt").write_text("not audio")
    assert_usage_error(quickturn("profile", "--input", str(tmp_path)), "no audio files", "notes.txt")
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    assert_usage_error(quickturn("demo", "--input", str(tmp_path)), "bad.wav")


def test_a_port_in_use_is_reported_before_models_load() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = quickturn("serve", "--port", str(port))
    assert_usage_error(proc, f"127.0.0.1:{port}", "in use", "--port")
    assert_usage_error(quickturn("serve", "--port", "70000"), "out of range")


def test_piped_output_is_not_cut_at_80_columns() -> None:
    script = "from agent.cli import _console; c = _console(); c.print('x' * 150); print(c.width)"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    ).stdout.splitlines()  # fmt: skip
    assert out == ["x" * 150, "200"]
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True,
        env={**os.environ, "COLUMNS": "100"},
    ).stdout.splitlines()  # fmt: skip
    assert out[-1] == "100"  # the user's COLUMNS wins


def _tone(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_an_mp3_input_is_read(tmp_path: Path) -> None:
    soundfile = pytest.importorskip("soundfile", reason="soundfile (MP3/FLAC/OGG input) is not installed")
    if "MP3" not in soundfile.available_formats():
        pytest.skip(f"this libsndfile ({soundfile.__libsndfile_version__}) has no MP3 support")
    path = tmp_path / "tone.mp3"
    soundfile.write(str(path), np.stack([_tone(44100, 1.0)] * 2, axis=1), 44100, format="MP3")
    clip = read_audio(path, target_rate=16000)
    assert clip.sample_rate == 16000
    assert abs(clip.duration - 1.0) < 0.1  # MP3 frames pad the ends a little
    rms = float(np.sqrt(np.mean(clip.samples[1600:-1600] ** 2)))
    assert 0.15 < rms < 0.25, rms  # the 0.3-amplitude tone survived (rms 0.21), stereo averaged to mono
    items = load_items(tmp_path)  # a folder of MP3s is a demo/profile input
    assert [i.file.name for i in items] == ["tone.mp3"]
    assert len(load_clip(items[0], 16000)) == len(clip.samples)


def test_an_unreadable_mp3_says_how_to_convert(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp3"
    path.write_bytes(b"this is not an mp3 file at all" * 10)
    with pytest.raises(AudioFormatError, match=r"broken\.mp3.*(ffmpeg -i|pip install soundfile)"):
        read_audio(path)
    with pytest.raises(InputError, match="broken.mp3"):
        load_clip(load_items(path)[0], 16000)


def test_a_public_address_without_an_api_key_is_refused_before_models_load() -> None:
    assert_usage_error(quickturn("serve", "--host", "0.0.0.0"), "'0.0.0.0'", "server.api_key", "--insecure")
    assert_usage_error(quickturn("serve", "--host", "::"), "'::'", "without an API key")
    # Allowed when asked for (--insecure or server.insecure) or with a key: the next check (a port in use)
    # is reached, still before any model loads.
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for extra in (["--insecure"], ["--set", "server.insecure=true"], ["--set", "server.api_key=k"]):
            proc = quickturn("serve", "--host", "0.0.0.0", "--port", port, *extra)
            assert_usage_error(proc, "in use")
