"""Home control over MQTT: the devices declared in ``[[home.devices]]``, commanded by the model's calls.

* sans-I/O: ``Device`` (a checked ``DeviceSpec``), ``home_tool`` (its schema: an enum of the declared
  names, so the model can only pick a known device, plus "another device" for the rest), ``HomeSkill``
  (call → payload and confirmation) and ``CommandQueue`` (bounded, each command with an expiry:
  nothing issued while the broker is away is lost, and nothing is delivered so late that it surprises).
* I/O: ``run_device_link`` — its own aiomqtt connection that drains the queue (qos 1: a command
  leaves the queue only once the broker has it), reconnects with backoff, and reports commands that
  expired so the agent can say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiomqtt

from dlm_core.tools import Tool, ToolCall

from ..config import DeviceSpec, HomeSection, MQTTSection
from ..events import DeviceCommand, DeviceCommandFailed, Event
from ..mqtt import backoff_delays
from . import SkillError, SkillResult, failed

log = logging.getLogger("quickturn.home")

KINDS = ("light", "switch", "dimmer", "cover")
ACTIONS = ("turn_on", "turn_off", "set_level", "open", "close", "stop")
OTHER_DEVICE = "another device"  # the enum's way out: a device the user named that is not declared


class HomeConfigError(ValueError):
    """A ``[[home.devices]]`` entry that cannot work (no topic, a duplicate name, an unknown kind...)."""


@dataclass(frozen=True)
class Device:
    spec: DeviceSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def names(self) -> tuple[str, ...]:
        return (self.spec.name, *self.spec.aliases)

    @property
    def has_levels(self) -> bool:
        return bool(self.spec.level_template)

    def payload(self, action: str, level: int | None = None) -> tuple[str, str]:
        """(topic, payload) for ``action``; ``SkillError`` when this kind of device cannot do it."""
        s = self.spec
        cover = s.kind == "cover"
        if action in ("turn_on", "open") and (cover or action == "turn_on"):
            return s.command_topic, s.payload_on
        if action in ("turn_off", "close") and (cover or action == "turn_off"):
            return s.command_topic, s.payload_off
        if action == "stop" and cover:
            return s.command_topic, s.payload_stop
        if action == "set_level":
            if not self.has_levels:
                raise SkillError(f"The {s.name} can only be turned on or off.")
            if level is None:
                raise SkillError(f"To what level should I set the {s.name}?")
            percent = max(0, min(100, int(level)))
            value = round(percent * s.level_max / 100)
            body = s.level_template.replace("{value}", str(value)).replace("{percent}", str(percent))
            return s.level_topic or s.command_topic, body
        verbs = "opened, closed or stopped" if cover else "turned on or off"
        raise SkillError(
            f"The {s.name} can only be {verbs}{' or set to a level' if self.has_levels else ''}."
        )

    def doing(self, action: str, level: int | None) -> str:
        """'turn off the kitchen lights', 'set the bedroom lamp to 30 percent', 'open the blinds'."""
        if action == "set_level":
            return f"set the {self.spec.name} to {max(0, min(100, int(level or 0)))} percent"
        if self.spec.kind == "cover":
            action = {"turn_on": "open", "turn_off": "close"}.get(action, action)
        return f"{action.replace('_', ' ')} the {self.spec.name}"

    def confirmation(self, action: str, level: int | None) -> str:
        name = self.spec.name
        subject = name[0].upper() + name[1:]
        plural = name.endswith("s") and not name.endswith("ss")
        verb = "are" if plural else "is"
        if self.spec.kind == "cover":
            action = {"turn_on": "open", "turn_off": "close"}.get(action, action)
            said = {"open": "opening", "close": "closing", "stop": "stopped"}.get(action)
            if said:
                return f"{subject} {verb} {said}."
        if action == "set_level":
            return f"{subject} {verb} at {max(0, min(100, int(level or 0)))} percent."
        return f"{subject} {verb} {'on' if action == 'turn_on' else 'off'}."


def _check_topic(topic: str, where: str) -> None:
    if not topic.strip("/"):
        raise HomeConfigError(f"{where}: command_topic is empty; e.g. 'zigbee2mqtt/kitchen/set'")
    bad = [c for c in ("+", "#", "\0") if c in topic]
    if bad:
        raise HomeConfigError(
            f"{where}: topic {topic!r} contains {bad[0]!r}; wildcards cannot be published to"
        )


def load_devices(specs: Sequence[DeviceSpec]) -> list[Device]:
    """Checked devices; ``HomeConfigError`` names the entry and what is wrong with it."""
    devices: list[Device] = []
    seen: dict[str, str] = {}
    for i, spec in enumerate(specs):
        where = f"home.devices[{i}] ({spec.name or 'no name'})"
        if not spec.name.strip():
            raise HomeConfigError(f"{where}: name is empty; e.g. name = 'kitchen lights'")
        if spec.kind not in KINDS:
            raise HomeConfigError(f"{where}: kind {spec.kind!r} is not one of {', '.join(KINDS)}")
        _check_topic(spec.command_topic, where)
        if spec.level_topic:
            _check_topic(spec.level_topic, where)
        if spec.kind == "dimmer" and not spec.level_template:
            raise HomeConfigError(f"{where}: a dimmer needs level_template, e.g. '{{percent}}'")
        if spec.level_max < 1:
            raise HomeConfigError(f"{where}: level_max must be at least 1")
        for n in (spec.name, *spec.aliases):
            key = _key(n)
            if key in seen or key == _key(OTHER_DEVICE):
                raise HomeConfigError(
                    f"{where}: the name {n!r} is already used by {seen.get(key, 'quickturn')}"
                )
            seen[key] = spec.name
        devices.append(Device(spec))
    return devices


def _key(name: str) -> str:
    words = name.lower().replace("the ", " ").split()
    return " ".join(words)


def home_tool(devices: Sequence[Device]) -> Tool:
    names = [n for d in devices for n in d.names] + [OTHER_DEVICE]
    return Tool(
        "control_device",
        "Turn a home device on or off, dim it, or open or close it.",
        {
            "type": "object",
            "properties": {
                "device": {"type": "string", "enum": names, "description": "the device the user named"},
                "action": {"type": "string", "enum": list(ACTIONS)},
                "level": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 100,
                    "description": "percent, for set_level",
                },  # fmt: skip
            },
            "required": ["device", "action"],
        },
    )


# -- the queue (sans-I/O) ----------------------------------------------------------------------------------


class QueueFull(SkillError):
    pass


@dataclass(frozen=True)
class DeviceMessage:
    device: str
    action: str
    topic: str
    payload: str
    queued_t: float
    expires_t: float
    turn: int = 0


class CommandQueue:
    """Device commands waiting for the broker, oldest first (no I/O; times are plain numbers)."""

    def __init__(self, max_queued: int = 50, ttl_s: float = 60.0) -> None:
        if max_queued < 1 or ttl_s <= 0:
            raise ValueError("max_queued must be at least 1 and ttl_s positive")
        self.max_queued = max_queued
        self.ttl_s = ttl_s
        self._q: deque[DeviceMessage] = deque()
        self.connected = False
        self.on_change: Callable[[], None] = lambda: None  # the link wakes up here

    def __len__(self) -> int:
        return len(self._q)

    @property
    def full(self) -> bool:
        return len(self._q) >= self.max_queued

    def check_room(self) -> None:
        if self.full:
            raise QueueFull(
                f"I can't reach the home hub, and {len(self._q)} commands are already waiting for it. "
                "Try again when it is back."
            )

    def add(self, msg: DeviceMessage) -> None:
        self.check_room()
        self._q.append(msg)
        self.on_change()

    def peek(self) -> DeviceMessage | None:
        return self._q[0] if self._q else None

    def sent(self, msg: DeviceMessage) -> None:
        if self._q and self._q[0] is msg:
            self._q.popleft()

    def expire(self, now: float) -> list[DeviceMessage]:
        """Commands whose time is up, removed (a light switched minutes late would surprise)."""
        gone = [m for m in self._q if m.expires_t <= now]
        if gone:
            self._q = deque(m for m in self._q if m.expires_t > now)
        return gone

    def next_expiry(self) -> float | None:
        return min((m.expires_t for m in self._q), default=None)


def failure_sentence(expired: Sequence[DeviceMessage]) -> str:
    what = [f"{m.action.replace('_', ' ')} the {m.device}" for m in expired]  # "turn off the kitchen lights"
    if len(what) > 1:
        what = [", ".join(what[:-1]) + " and " + what[-1]]
    return f"Sorry, I couldn't {what[0]}: the home hub has not been reachable."


# -- the skill -------------------------------------------------------------------------------------------------


class HomeSkill:
    def __init__(self, devices: Sequence[Device], queue: CommandQueue) -> None:
        self.devices = list(devices)
        self.queue = queue
        self._by_name = {_key(n): d for d in self.devices for n in d.names}
        self._tool = home_tool(self.devices)

    def tools(self) -> Sequence[Tool]:
        return (self._tool,)

    def known(self) -> str:
        names = [d.name for d in self.devices]
        if not names:
            return "I don't control any devices yet; they are declared in the config under home.devices."
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"I know these devices: {listed}."

    def run(self, call: ToolCall, now: float, turn: int = 0) -> SkillResult:
        if call.name != "control_device":
            raise SkillError(f"The home skill has no tool called {call.name}.")
        asked = str(call.arguments.get("device", ""))
        device = self._by_name.get(_key(asked))
        if device is None:
            which = (
                f"a device called {asked}" if asked and _key(asked) != _key(OTHER_DEVICE) else "that device"
            )
            return SkillResult(f"I don't know {which}. {self.known()}", ok=False)
        action = str(call.arguments.get("action", ""))
        level = call.arguments.get("level")
        try:
            if action not in ACTIONS:
                raise SkillError(f"I can't {action.replace('_', ' ')} the {device.name}.")
            topic, payload = device.payload(action, int(level) if level is not None else None)
            self.queue.check_room()
        except SkillError as exc:
            return failed(exc)
        say = device.confirmation(action, level)
        if not self.queue.connected:  # queued: say what will happen, not that it has
            say = f"The home hub isn't reachable right now; I'll {device.doing(action, level)} as soon as it's back."
        msg = DeviceMessage(device.name, action, topic, payload, now, now + self.queue.ttl_s, turn)

        def apply() -> list[Event]:
            try:
                self.queue.add(msg)
            except QueueFull as exc:  # filled between the decision and the commit
                return [
                    DeviceCommandFailed(turn, time.monotonic(), device.name, action, f"queue full: {exc}")
                ]
            return [DeviceCommand(turn, time.monotonic(), device.name, action, topic, payload, False)]

        return SkillResult(say, apply)


# -- I/O: the link to the broker ----------------------------------------------------------------------------


async def run_device_link(
    mqtt: MQTTSection,
    home: HomeSection,
    queue: CommandQueue,
    stop: asyncio.Event,
    emit: Callable[[Event], None],
    announce: Callable[[str], None],
    *,
    backoff_initial_s: float = 0.5,
    backoff_max_s: float = 10.0,
    timeout_s: float = 5.0,
) -> None:
    """Deliver ``queue`` to the broker until ``stop``; commands that expire meanwhile are announced."""
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()
    expiry: asyncio.TimerHandle | None = None

    def check_expiry() -> None:
        nonlocal expiry
        expiry = None
        gone = queue.expire(time.monotonic())
        if gone:
            t = time.monotonic()
            for m in gone:
                emit(DeviceCommandFailed(m.turn, t, m.device, m.action, "expired"))
            log.warning("home: %d device commands expired undelivered", len(gone))
            announce(failure_sentence(gone))
        arm_expiry()

    def arm_expiry() -> None:
        nonlocal expiry
        if expiry is not None:
            expiry.cancel()
        nxt = queue.next_expiry()
        expiry = loop.call_later(max(0.0, nxt - time.monotonic()), check_expiry) if nxt is not None else None

    def changed() -> None:
        wake.set()
        arm_expiry()

    queue.on_change = changed
    arm_expiry()  # commands queued before the link started
    client_id = home.client_id or f"{mqtt.client_id}-home"
    delays = backoff_delays(backoff_initial_s, backoff_max_s)
    failures = 0
    try:
        while not stop.is_set():
            try:
                async with aiomqtt.Client(
                    mqtt.host, mqtt.port, identifier=client_id, username=mqtt.username or None,
                    password=mqtt.password or None, timeout=timeout_s,
                ) as client:  # fmt: skip
                    queue.connected = True
                    delays = backoff_delays(backoff_initial_s, backoff_max_s)
                    failures = 0
                    log.info(
                        "home: connected to %s:%d (%d commands waiting)", mqtt.host, mqtt.port, len(queue)
                    )
                    await _pump(client, queue, wake, stop, emit, timeout_s)
                    return
            except aiomqtt.MqttError as exc:
                queue.connected = False
                if stop.is_set():
                    return
                if failures % 10 == 0:
                    log.warning("home: broker at %s:%d unreachable (%s); %d commands waiting",
                                mqtt.host, mqtt.port, exc, len(queue))  # fmt: skip
                failures += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), next(delays))
    finally:
        queue.connected = False
        queue.on_change = lambda: None
        if expiry is not None:
            expiry.cancel()


async def _pump(
    client: aiomqtt.Client,
    queue: CommandQueue,
    wake: asyncio.Event,
    stop: asyncio.Event,
    emit: Callable[[Event], None],
    timeout_s: float,
) -> None:
    watch = asyncio.ensure_future(_until_closed(client))
    try:
        while not stop.is_set():
            msg = queue.peek()
            if msg is None:
                wake.clear()
                waiters = {watch, asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
                done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for w in pending - {watch}:
                    w.cancel()
                if watch in done:
                    watch.result()
                continue
            await client.publish(msg.topic, msg.payload.encode(), qos=1, timeout=timeout_s)
            queue.sent(msg)
            emit(
                DeviceCommand(
                    msg.turn, time.monotonic(), msg.device, msg.action, msg.topic, msg.payload, True
                )
            )
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await watch


async def _until_closed(client: aiomqtt.Client) -> None:
    """We subscribe to nothing: the message iterator ends only with the connection."""
    async for _ in client.messages:
        pass
    raise aiomqtt.MqttError("connection closed")
