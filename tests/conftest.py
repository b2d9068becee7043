"""Shared fixtures: a private PulseAudio server with a virtual microphone and a null speaker, so mic
and speaker code is tested through a real audio stack (docs: shared/reference/audio-testing.md)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from audio.devices import AudioDeviceError, check_portaudio

# Nothing in the test suite may fetch from a model hub: every model comes from a pip package or the repo.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _rescan_portaudio() -> None:
    """PortAudio enumerates devices once at initialisation; re-init to see (or forget) the server."""
    sd = check_portaudio()
    sd._terminate()
    sd._initialize()


def _kill_if_ours(pid_file: Path) -> None:
    """If `pulseaudio --kill` left our daemon running, kill it by its pid (only if it is pulseaudio)."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text().strip())
        if Path(f"/proc/{pid}/comm").read_text().strip() == "pulseaudio":
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    for tool in ("pulseaudio", "pactl", "paplay", "parec"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (apt install pulseaudio pulseaudio-utils)")
    try:
        check_portaudio()
    except AudioDeviceError as e:
        pytest.skip(str(e))
    runtime = tmp_path_factory.mktemp("pulse")
    saved = {k: os.environ.get(k) for k in ("XDG_RUNTIME_DIR", "PULSE_SERVER")}
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)  # a private server, not anybody else's
    os.environ.pop("PULSE_SERVER", None)  # pulseaudio refuses to start while one is configured
    pid_file = runtime / "pulse" / "pid"
    try:
        started = subprocess.run(
            [
                "pulseaudio", "--start", "--exit-idle-time=-1", "-n",
                "--load=module-native-protocol-unix",
                "--load=module-null-sink sink_name=spk",
                "--load=module-null-sink sink_name=micsrc",
                "--load=module-remap-source master=micsrc.monitor source_name=mic",
            ],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        info = subprocess.run(["pactl", "info"], capture_output=True, text=True, timeout=10)
        if started.returncode != 0 or info.returncode != 0:
            pytest.skip(f"pulseaudio could not start: {(started.stderr + info.stderr).strip()[-300:]}")
        os.environ["PULSE_SERVER"] = f"unix:{runtime}/pulse/native"  # pin clients to this server
        for cmd in (["pactl", "set-default-source", "mic"], ["pactl", "set-default-sink", "spk"]):
            subprocess.run(cmd, check=True, capture_output=True, timeout=10)
        _rescan_portaudio()
        yield runtime
    finally:
        os.environ.pop("PULSE_SERVER", None)
        subprocess.run(["pulseaudio", "--kill"], capture_output=True, timeout=10)
        _kill_if_ours(pid_file)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _rescan_portaudio()
