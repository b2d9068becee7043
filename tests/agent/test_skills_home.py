"""Home control: device payloads and confirmations (sans-I/O), and the device link against a real
mosquitto broker, where a real aiomqtt subscriber plays the device and checks what it receives —
including a broker that is down when the command is given, and one that restarts."""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest

from agent.config import ConfigError, DeviceSpec, HomeSection, MQTTSection, QuickturnConfig, _apply
from agent.events import DeviceCommand, DeviceCommandFailed, Event
from agent.local_broker import LocalBroker, mosquitto_path
from agent.skills import ToolCall
from agent.skills.home import (
    OTHER_DEVICE,
    CommandQueue,
    DeviceMessage,
    HomeConfigError,
    HomeSkill,
    failure_sentence,
    home_tool,
    load_devices,
    run_device_link,
)

no_mosquitto = pytest.mark.skipif(mosquitto_path() is None, reason="mosquitto not installed")

DEVICES_TOML = """
[[home.devices]]
name = "kitchen lights"
aliases = ["kitchen light"]
kind = "light"
command_topic = "zigbee2mqtt/kitchen_lights/set"
payload_on = '{"state": "ON"}'
payload_off = '{"state": "OFF"}'
level_template = '{"state": "ON", "brightness": {value}}'
level_max = 254

[[home.devices]]
name = "bedroom lamp"
kind = "dimmer"
command_topic = "cmnd/bedroom_lamp/POWER"
level_topic = "cmnd/bedroom_lamp/Dimmer"
level_template = "{percent}"

[[home.devices]]
name = "coffee machine"
kind = "switch"
command_topic = "cmnd/coffee/POWER"

[[home.devices]]
name = "living room blinds"
kind = "cover"
command_topic = "zigbee2mqtt/blinds/set"
payload_on = '{"state": "OPEN"}'
payload_off = '{"state": "CLOSE"}'
payload_stop = '{"state": "STOP"}'
level_template = '{"position": {percent}}'
"""


def _home(text: str = DEVICES_TOML) -> HomeSection:
    cfg = QuickturnConfig()
    _apply(cfg, tomllib.loads(text), "test.toml")
    return cfg.home


def _skill(connected: bool = True, max_queued: int = 50) -> HomeSkill:
    queue = CommandQueue(max_queued, ttl_s=60.0)
    queue.connected = connected
    return HomeSkill(load_devices(_home().devices), queue)


def _call(**arguments: object) -> ToolCall:
    return ToolCall("control_device", arguments)


def test_devices_load_from_toml_tables() -> None:
    home = _home()
    assert [d.name for d in home.devices] == ["kitchen lights", "bedroom lamp", "coffee machine",
                                              "living room blinds"]  # fmt: skip
    assert home.devices[0] == DeviceSpec(
        name="kitchen lights", aliases=["kitchen light"], kind="light",
        command_topic="zigbee2mqtt/kitchen_lights/set", payload_on='{"state": "ON"}',
        payload_off='{"state": "OFF"}', level_template='{"state": "ON", "brightness": {value}}', level_max=254,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "needle"),
    [('colour = "red"', "unknown key 'colour'"), ('level_max = "lots"', "expected a number")],
)
def test_bad_device_tables_are_config_errors(extra: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        _home(f'[[home.devices]]\nname = "x"\ncommand_topic = "a/b"\n{extra}\n')


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (DeviceSpec(name="", command_topic="a"), "name is empty"),
        (DeviceSpec(name="fan", kind="blender", command_topic="a"), "not one of"),
        (DeviceSpec(name="fan", command_topic=""), "command_topic is empty"),
        (DeviceSpec(name="fan", command_topic="a/+/set"), "wildcards"),
        (DeviceSpec(name="fan", kind="dimmer", command_topic="a"), "needs level_template"),
    ],
)
def test_bad_devices_are_named_errors(spec: DeviceSpec, needle: str) -> None:
    with pytest.raises(HomeConfigError, match=needle):
        load_devices([spec])


def test_duplicate_names_are_refused() -> None:
    specs = [
        DeviceSpec(name="lamp", command_topic="a"),
        DeviceSpec(name="desk", aliases=["Lamp"], command_topic="b"),
    ]
    with pytest.raises(HomeConfigError, match="already used by lamp"):
        load_devices(specs)


def test_tool_schema_lets_the_model_pick_only_declared_names() -> None:
    tool = home_tool(load_devices(_home().devices))
    assert tool.parameters["properties"]["device"]["enum"] == [
        "kitchen lights", "kitchen light", "bedroom lamp", "coffee machine", "living room blinds", OTHER_DEVICE,
    ]  # fmt: skip
    assert tool.parameters["required"] == ["device", "action"]


@pytest.mark.parametrize(
    ("arguments", "say", "topic", "payload"),
    [
        ({"device": "kitchen lights", "action": "turn_off"}, "Kitchen lights are off.",
         "zigbee2mqtt/kitchen_lights/set", '{"state": "OFF"}'),
        ({"device": "kitchen light", "action": "set_level", "level": 50}, "Kitchen lights are at 50 percent.",
         "zigbee2mqtt/kitchen_lights/set", '{"state": "ON", "brightness": 127}'),
        ({"device": "bedroom lamp", "action": "set_level", "level": 30}, "Bedroom lamp is at 30 percent.",
         "cmnd/bedroom_lamp/Dimmer", "30"),
        ({"device": "bedroom lamp", "action": "turn_on"}, "Bedroom lamp is on.", "cmnd/bedroom_lamp/POWER", "ON"),
        ({"device": "living room blinds", "action": "close"}, "Living room blinds are closing.",
         "zigbee2mqtt/blinds/set", '{"state": "CLOSE"}'),
        ({"device": "living room blinds", "action": "turn_on"}, "Living room blinds are opening.",
         "zigbee2mqtt/blinds/set", '{"state": "OPEN"}'),
    ],
)  # fmt: skip
def test_calls_become_device_payloads_and_confirmations(
    arguments: dict[str, object], say: str, topic: str, payload: str
) -> None:
    skill = _skill()
    result = skill.run(_call(**arguments), now=10.0, turn=4)
    assert result.ok and result.say == say
    assert len(skill.queue) == 0  # nothing is sent before the turn is committed
    (event,) = result.apply()
    assert isinstance(event, DeviceCommand) and (event.topic, event.payload, event.sent) == (
        topic,
        payload,
        False,
    )
    msg = skill.queue.peek()
    assert msg is not None and (msg.topic, msg.payload, msg.turn, msg.expires_t) == (topic, payload, 4, 70.0)


def test_unknown_devices_and_impossible_actions_are_said() -> None:
    skill = _skill()
    other = skill.run(_call(device=OTHER_DEVICE, action="turn_on"), now=0.0)
    assert not other.ok and other.say == (
        "I don't know that device. I know these devices: kitchen lights, bedroom lamp, coffee machine "
        "and living room blinds."
    )
    garage = skill.run(_call(device="garage door", action="open"), now=0.0)
    assert garage.say.startswith("I don't know a device called garage door.")
    dim = skill.run(_call(device="coffee machine", action="set_level", level=20), now=0.0)
    assert not dim.ok and dim.say == "The coffee machine can only be turned on or off."
    assert dim.apply() == [] and len(skill.queue) == 0


def test_broker_away_the_command_is_queued_and_said_so_then_refused_when_full() -> None:
    skill = _skill(connected=False, max_queued=2)
    first = skill.run(_call(device="kitchen lights", action="turn_on"), now=0.0)
    assert (
        first.say
        == "The home hub isn't reachable right now; I'll turn on the kitchen lights as soon as it's back."
    )
    first.apply()
    skill.run(_call(device="coffee machine", action="turn_on"), now=1.0).apply()
    full = skill.run(_call(device="bedroom lamp", action="turn_off"), now=2.0)
    assert not full.ok and "2 commands are already waiting" in full.say


def test_queue_expires_old_commands() -> None:
    queue = CommandQueue(10, ttl_s=60.0)
    for i, device in enumerate(("kitchen lights", "coffee machine")):
        queue.add(DeviceMessage(device, "turn_off", "t", "OFF", float(i), i + 60.0))
    assert queue.next_expiry() == 60.0 and queue.expire(59.9) == []
    gone = queue.expire(61.0)
    assert len(gone) == 2 and len(queue) == 0 and queue.next_expiry() is None
    assert failure_sentence(gone) == (
        "Sorry, I couldn't turn off the kitchen lights and turn off the coffee machine: "
        "the home hub has not been reachable."
    )


# -- a real broker, a subscriber playing the devices ---------------------------------------------------------


@asynccontextmanager
async def _device(
    broker: LocalBroker, topic: str = "#", persistent: str = ""
) -> AsyncIterator[aiomqtt.Client]:
    client = aiomqtt.Client("127.0.0.1", broker.port, identifier=persistent or None,
                            clean_session=False if persistent else None)  # fmt: skip
    async with client:
        await client.subscribe(topic, qos=1)
        yield client


async def _received(client: aiomqtt.Client, n: int, timeout: float = 10.0) -> list[tuple[str, str]]:
    got: list[tuple[str, str]] = []

    async def collect() -> None:
        async for msg in client.messages:
            got.append((msg.topic.value, bytes(msg.payload).decode()))  # type: ignore[arg-type]
            if len(got) == n:
                return

    await asyncio.wait_for(collect(), timeout)
    return got


def _mqtt(broker: LocalBroker) -> MQTTSection:
    return MQTTSection(enabled=True, host="127.0.0.1", port=broker.port, client_id="qt-test")


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@no_mosquitto
def test_device_receives_the_payloads(tmp_path: Path) -> None:
    async def scenario() -> None:
        with LocalBroker(tmp_path) as broker:
            skill = _skill()
            events: list[Event] = []
            stop = asyncio.Event()
            async with _device(broker) as device:
                link = asyncio.ensure_future(
                    run_device_link(_mqtt(broker), HomeSection(), skill.queue, stop, events.append, print)
                )
                await _until(lambda: skill.queue.connected)
                skill.run(_call(device="kitchen lights", action="turn_off"), now=time.monotonic()).apply()
                skill.run(
                    _call(device="bedroom lamp", action="set_level", level=30), now=time.monotonic()
                ).apply()
                got = await _received(device, 2)
                stop.set()
                await asyncio.wait_for(link, 5)
            assert got == [
                ("zigbee2mqtt/kitchen_lights/set", '{"state": "OFF"}'),
                ("cmnd/bedroom_lamp/Dimmer", "30"),
            ]
            assert [json.loads(got[0][1])] == [{"state": "OFF"}]
            sent = [e for e in events if isinstance(e, DeviceCommand)]
            assert [(e.device, e.sent) for e in sent] == [("kitchen lights", True), ("bedroom lamp", True)]

    asyncio.run(asyncio.wait_for(scenario(), 30))


@no_mosquitto
def test_commands_given_while_the_broker_is_down_or_restarting_arrive(tmp_path: Path) -> None:
    async def scenario() -> None:
        broker = LocalBroker(tmp_path)
        broker.start()
        try:
            async with _device(broker, persistent="lamp"):
                pass  # the broker keeps the device's session (qos-1 messages wait for it)
            skill = _skill()
            stop = asyncio.Event()
            said: list[str] = []
            link = asyncio.ensure_future(
                run_device_link(
                    _mqtt(broker),
                    HomeSection(),
                    skill.queue,
                    stop,
                    lambda e: None,
                    said.append,
                    backoff_initial_s=0.05,
                    backoff_max_s=0.2,
                )  # fmt: skip
            )
            await _until(lambda: skill.queue.connected)
            broker.stop()  # a restart: the link drops ...
            await _until(lambda: not skill.queue.connected)
            result = skill.run(_call(device="kitchen lights", action="turn_on"), now=time.monotonic())
            assert "isn't reachable" in result.say
            result.apply()
            skill.run(_call(device="coffee machine", action="turn_off"), now=time.monotonic()).apply()
            assert len(skill.queue) == 2
            broker.start()  # ... and comes back: what was queued meanwhile is delivered, in order
            async with _device(broker, persistent="lamp") as device:
                got = await _received(device, 2)
            assert got == [
                ("zigbee2mqtt/kitchen_lights/set", '{"state": "ON"}'),
                ("cmnd/coffee/POWER", "OFF"),
            ]
            await _until(lambda: len(skill.queue) == 0)
            assert said == []
            stop.set()
            await asyncio.wait_for(link, 5)
        finally:
            broker.stop()

    asyncio.run(asyncio.wait_for(scenario(), 40))


@no_mosquitto
def test_a_command_that_cannot_be_delivered_in_time_is_announced(tmp_path: Path) -> None:
    async def scenario() -> None:
        broker = LocalBroker(tmp_path)  # never started: the hub is away the whole time
        queue = CommandQueue(10, ttl_s=0.3)
        skill = HomeSkill(load_devices(_home().devices), queue)
        stop = asyncio.Event()
        said: asyncio.Queue[str] = asyncio.Queue()
        events: list[Event] = []
        link = asyncio.ensure_future(
            run_device_link(
                _mqtt(broker),
                HomeSection(),
                queue,
                stop,
                events.append,
                said.put_nowait,
                backoff_initial_s=0.05,
                backoff_max_s=0.2,
            )  # fmt: skip
        )
        skill.run(_call(device="coffee machine", action="turn_on"), now=time.monotonic()).apply()
        assert await asyncio.wait_for(said.get(), 10) == (
            "Sorry, I couldn't turn on the coffee machine: the home hub has not been reachable."
        )
        failed = [e for e in events if isinstance(e, DeviceCommandFailed)]
        assert [(e.device, e.reason) for e in failed] == [("coffee machine", "expired")] and len(queue) == 0
        stop.set()
        await asyncio.wait_for(link, 5)

    asyncio.run(asyncio.wait_for(scenario(), 30))
