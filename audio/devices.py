"""Sound devices: is PortAudio there, which devices exist, which one did the user mean.

sounddevice loads the PortAudio shared library when it is imported and raises a bare OSError
when it is missing; we turn that into an error that says what to install. Device lookups accept
an index or a (part of a) name, as a user would type them on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Literal

__all__ = ["AudioDeviceError", "DeviceInfo", "check_portaudio", "list_devices", "resolve_device"]

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


def resolve_device(name_or_index: int | str | None, kind: Kind) -> int:
    """Device index for `kind` from an index, an exact name, or a unique name substring.

    None means the system default. Raises AudioDeviceError listing the candidates when the device
    does not exist, is ambiguous, or has no channels of the needed kind.
    """
    if kind not in ("input", "output"):
        raise ValueError(f"kind must be 'input' or 'output', not {kind!r}")
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
