"""``quickturn talk`` end to end through a real audio stack (private PulseAudio, virtual mic/speaker):
the CLI opens the devices, hears a question spoken into the microphone, answers on the speaker, and
exits cleanly on Ctrl-C. Also its clear errors when a device does not exist."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from agent.talk import list_devices_text
from audio.devices import AudioDeviceError, list_devices, pulse_devices, resolve_device

pytestmark = pytest.mark.audio_stack

REPO = Path(__file__).resolve().parents[2]
QUESTION = REPO / "demo" / "02_your_name.wav"


def _start_talk(*extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "talk", "--input-device", "pulse", "--output-device", "pulse",
         "--set", "lm.min_tokens=4", *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy(),
    )  # fmt: skip


class _Output:
    """The process's output, read on a thread: waiting for a line can then time out even when the
    process prints nothing at all (a blocking readline would hang the test run instead)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.put(line)
        self.lines.put(None)  # end of output

    def wait_for(self, text: str, timeout: float, seen: list[str]) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                return False
            seen.append(line)
            if text in line:
                return True
        return False

    def rest(self, timeout: float) -> str:
        self.thread.join(timeout)
        out = []
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                out.append(line)
        return "".join(out)


def test_talk_answers_through_the_speaker_and_exits_on_ctrl_c(pulse) -> None:
    recorder = subprocess.Popen(
        ["parec", "--device=spk.monitor", "--format=s16le", "--rate=16000", "--channels=1", "--raw"],
        stdout=subprocess.PIPE,
    )
    # Drain the recorder as it records: an unread pipe fills after 2 s of audio, parec then blocks and
    # the server drops what the speaker plays later — the reply included (a flaky test until this).
    recorded: list[bytes] = []
    drain = threading.Thread(target=lambda: recorded.extend(iter(lambda: recorder.stdout.read(3200), b"")))
    drain.start()
    proc = _start_talk()
    output = _Output(proc)
    lines: list[str] = []
    try:
        assert output.wait_for("is listening", 120, lines), "".join(lines)
        subprocess.run(["paplay", "--device=micsrc", str(QUESTION)], check=True, timeout=30)
        assert output.wait_for("agent:", 60, lines), "".join(lines)
        time.sleep(2.0)  # let the reply play out
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        lines.append(output.rest(timeout=10))
    finally:
        if proc.poll() is None:
            proc.kill()
        recorder.terminate()
        drain.join(timeout=10)
    log = "".join(lines)
    assert proc.returncode == 0, log
    assert "bye." in log
    heard = [line for line in log.splitlines() if "you:" in line]
    assert heard and "your name" in heard[0].lower(), log
    played = np.frombuffer(b"".join(recorded), dtype=np.int16).astype(np.float32) / 32768
    assert np.sqrt(np.mean(played**2)) > 1e-3, "nothing reached the speaker:\n" + log


def test_talk_names_a_missing_device(pulse) -> None:
    proc = _start_talk("--input-device", "no-such-microphone")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2  # a request that cannot run as given
    assert "no-such-microphone" in out and "error: no input device" in out
    assert "models ready" not in out  # checked before the models load


def test_pulse_devices_are_listed_and_picked_by_name(pulse, monkeypatch) -> None:
    monkeypatch.delenv("PULSE_SOURCE", raising=False)  # restored after the test
    found = pulse_devices()
    assert found is not None and "mic" in found["input"] and "spk" in found["output"], found
    assert not [n for n in found["input"] if n.endswith(".monitor")]  # monitors are not microphones
    text = list_devices_text()
    assert "--input-device pulse:NAME" in text and "\n  mic" in text and "\n  spk" in text, text
    with pytest.raises(AudioDeviceError, match=r"no PulseAudio/PipeWire input named 'nope'(.|\n)*pulse:mic"):
        resolve_device("pulse:nope", "input")
    index = resolve_device("pulse:mic", "input")
    assert list_devices()[index].name == "pulse"  # reached through the ALSA pulse device ...
    assert os.environ["PULSE_SOURCE"] == "mic"  # ... which opens the named source
