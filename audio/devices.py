"""Sound devices: is PortAudio there, which devices exist, which one did the user mean.

sounddevice loads the PortAudio shared library when it is imported and raises a bare OSError
when it is missing; we turn that into an error that says what to install. Device lookups accept
an index or a (part of a) name, as a user would type them on the command line.

PortAudio sees a PulseAudio/PipeWire server only as ALSA's one "pulse" device. ``pulse:NAME`` picks a
source or sink of that server by its name (``pactl list short sources|sinks``): the "pulse" device
is opened with PULSE_SOURCE / PULSE_SINK set, which the ALSA pulse plugin's libpulse client follows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

__all__ = [
    "AudioDeviceError",
    "DeviceInfo",
    "check_portaudio",
    "list_devices",
    "pulse_devices",
    "resolve_device",
]

PULSE_PREFIX = "pulse:"
_PULSE_ENV = {"input": "PULSE_SOURCE", "output": "PULSE_SINK"}

Kind = Literal["input", "output"]


class AudioDeviceError(RuntimeError):
    """No usable audio library or device; the message says which and what to do."""


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    is_default_input: bool
    is_default_output: bool

    def __str__(self) -> str:
        marks = ("<" if self.is_default_input else " ") + (">" if self.is_default_output else " ")
        return (
            f"{marks} {self.index:2d} {self.name} ({self.hostapi}, {self.max_input_channels} in, "
            f"{self.max_output_channels} out, {self.default_samplerate:.0f} Hz)"
        )


def check_portaudio() -> ModuleType:
    """Import sounddevice, or raise AudioDeviceError naming the missing system package."""
    try:
        import sounddevice
    except OSError as e:
        raise AudioDeviceError(
            "PortAudio library not found, so microphone/speaker modes cannot work "
            "(install it: `apt install libportaudio2` on Debian/Ubuntu, `brew install portaudio` on macOS). "
            f"Original error: {e}"
        ) from e
    return sounddevice


def _defaults(sd: ModuleType) -> tuple[int, int]:
    dev = sd.default.device
    return int(dev[0]), int(dev[1])


def list_devices() -> list[DeviceInfo]:
    """All devices PortAudio sees, with default input (<) / output (>) markers in str()."""
    sd = check_portaudio()
    d_in, d_out = _defaults(sd)
    apis = sd.query_hostapis()
    return [
        DeviceInfo(
            index=i,
            name=d["name"],
            hostapi=apis[d["hostapi"]]["name"],
            max_input_channels=d["max_input_channels"],
            max_output_channels=d["max_output_channels"],
            default_samplerate=d["default_samplerate"],
            is_default_input=i == d_in,
            is_default_output=i == d_out,
        )
        for i, d in enumerate(sd.query_devices())
    ]


def pulse_devices() -> dict[str, list[str]] | None:
    """Sources ("input") and sinks ("output") of the PulseAudio/PipeWire server; None without one.

    Monitor sources (what a sink plays) are left out: they are not microphones."""
    pactl = shutil.which("pactl")
    if pactl is None:
        return None
    found: dict[str, list[str]] = {}
    for kind, what in (("input", "sources"), ("output", "sinks")):
        try:
            out = subprocess.run(
                [pactl, "list", "short", what], capture_output=True, text=True, timeout=5, check=True
            ).stdout
        except (OSError, subprocess.SubprocessError):  # no server running, or it did not answer
            return None
        names = [line.split("\t")[1] for line in out.splitlines() if line.count("\t") >= 1]
        found[kind] = [n for n in names if not n.endswith(".monitor")]
    return found


def _resolve_pulse(name: str, kind: Kind) -> int:
    """``pulse:NAME``: the ALSA "pulse" device, told by PULSE_SOURCE/PULSE_SINK which server device to use."""
    pulse = pulse_devices()
    if pulse is None:
        raise AudioDeviceError(
            f"{PULSE_PREFIX}{name}: no PulseAudio/PipeWire server answers `pactl` "
            "(install pulseaudio-utils, start the server, or pick a device by index)"
        )
    if name not in pulse[kind]:
        listing = "\n".join(f"  {PULSE_PREFIX}{n}" for n in pulse[kind]) or "  (none)"
        raise AudioDeviceError(f"no PulseAudio/PipeWire {kind} named {name!r}; {kind}s:\n{listing}")
    try:
        index = resolve_device("pulse", kind)
    except AudioDeviceError:
        raise AudioDeviceError(
            f"{PULSE_PREFIX}{name}: PortAudio has no ALSA 'pulse' device to reach it through "
            "(install the ALSA pulse plugin: `apt install libasound2-plugins`)"
        ) from None
    os.environ[_PULSE_ENV[kind]] = name  # read by the pulse plugin when the stream opens
    return index


def resolve_device(name_or_index: int | str | None, kind: Kind) -> int:
    """Device index for `kind` from an index, an exact name, a unique name substring, or
    ``pulse:NAME`` (a PulseAudio/PipeWire source or sink, through the ALSA "pulse" device).

    None means the system default. Raises AudioDeviceError listing the candidates when the device
    does not exist, is ambiguous, or has no channels of the needed kind.
    """
    if kind not in ("input", "output"):
        raise ValueError(f"kind must be 'input' or 'output', not {kind!r}")
    if isinstance(name_or_index, str) and name_or_index.startswith(PULSE_PREFIX):
        return _resolve_pulse(name_or_index.removeprefix(PULSE_PREFIX), kind)
    devices = list_devices()
    channels = "max_input_channels" if kind == "input" else "max_output_channels"
    usable = [d for d in devices if getattr(d, channels) > 0]
    listing = "\n".join(str(d) for d in usable) or "  (none)"
    if not usable:
        raise AudioDeviceError(f"no audio {kind} devices found")
    if name_or_index is None:
        default = next(
            (d for d in usable if (d.is_default_input if kind == "input" else d.is_default_output)), None
        )
        if default is None:
            raise AudioDeviceError(f"no default {kind} device; pick one of:\n{listing}")
        return default.index
    if isinstance(name_or_index, str) and name_or_index.strip().isdigit():
        name_or_index = int(name_or_index)
    if isinstance(name_or_index, int):
        match = [d for d in devices if d.index == name_or_index]
        if not match:
            raise AudioDeviceError(f"no audio device with index {name_or_index}; {kind} devices:\n{listing}")
        if getattr(match[0], channels) == 0:
            raise AudioDeviceError(f"device {name_or_index} ({match[0].name}) has no {kind} channels")
        return name_or_index
    exact = [d for d in usable if d.name == name_or_index]
    if exact:
        return exact[0].index
    partial = [d for d in usable if name_or_index.lower() in d.name.lower()]
    if len(partial) == 1:
        return partial[0].index
    if len(partial) > 1:
        raise AudioDeviceError(
            f"{kind} device name {name_or_index!r} is ambiguous; matches:\n" + "\n".join(map(str, partial))
        )
    raise AudioDeviceError(f"no {kind} device named {name_or_index!r}; {kind} devices:\n{listing}")
