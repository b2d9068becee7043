"""Home Assistant MQTT discovery: the configs (sans-I/O) and the bridge with the extension against a
real mosquitto broker, where a real client plays Home Assistant: it reads the retained configs, writes
the say text and the mute switch, and announces its own restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt
import pytest

from agent.config import MQTTSection
from agent.events import EventBus, LatencyReport, MuteChanged
from agent.hass import HassExtension, node_id
from agent.local_broker import LocalBroker, mosquitto_path
from agent.mqtt import BridgeOptions, Outbox, Priority, run_mqtt_bridge

no_mosquitto = pytest.mark.skipif(mosquitto_path() is None, reason="mosquitto not installed")
FAST = BridgeOptions(backoff_initial_s=0.1, backoff_max_s=0.3, timeout_s=3.0)


def _ext(port: int = 1883, **kw: object) -> HassExtension:
    cfg = MQTTSection(enabled=True, port=port, topic_prefix="qt", client_id="quickturn kitchen")
    said: list[str] = []
    return HassExtension(cfg, "Quinn", said.append, lambda m: None, **kw)  # type: ignore[arg-type]


def test_discovery_configs_describe_one_device_with_availability() -> None:
    ext = _ext()
    configs = {m.topic: json.loads(m.payload) for m in ext.discovery()}
    assert sorted(configs) == [
        "homeassistant/sensor/quickturn_kitchen/last_reply/config",
        "homeassistant/sensor/quickturn_kitchen/last_transcript/config",
        "homeassistant/sensor/quickturn_kitchen/state/config",
        "homeassistant/sensor/quickturn_kitchen/v2v/config",
        "homeassistant/switch/quickturn_kitchen/mute/config",
        "homeassistant/text/quickturn_kitchen/say/config",
    ]
    assert all(m.retain and m.qos == 1 for m in ext.discovery())
    for body in configs.values():
        assert body["availability_topic"] == "qt/status"
        assert body["device"]["identifiers"] == ["quickturn_quickturn_kitchen"]
    say = configs["homeassistant/text/quickturn_kitchen/say/config"]
    assert say["command_topic"] == "qt/say" and say["unique_id"] == "quickturn_quickturn_kitchen_say"
    mute = configs["homeassistant/switch/quickturn_kitchen/mute/config"]
    assert (mute["command_topic"], mute["state_topic"]) == ("qt/mute/set", "qt/mute")
    v2v = configs["homeassistant/sensor/quickturn_kitchen/v2v/config"]
    assert (v2v["state_topic"], v2v["unit_of_measurement"]) == ("qt/last_turn", "ms")
    assert node_id("a/b+c") == "a_b_c"
    assert all(m.payload == b"" for m in ext.removal())


def test_last_turn_and_mute_are_retained_states_and_coalesce_per_topic() -> None:
    ext = _ext()
    (last,) = ext.map(LatencyReport(3, 1.0, transcript="hi", reply="Hello!", v2v_ms=512.5))
    assert (last.topic, last.retain, last.priority) == ("qt/last_turn", True, Priority.RETAINED)
    assert json.loads(last.payload) == {"transcript": "hi", "reply": "Hello!", "v2v_ms": 512.5, "turn": 3,
                                        "interrupted": False}  # fmt: skip
    assert ext.map(LatencyReport(4, 2.0, transcript="", reply="Your timer is done.")) == []  # announcements
    box = Outbox()
    for m in [last, *ext.map(MuteChanged(3, 1.0, True)), *ext.map(MuteChanged(3, 1.1, False))]:
        box.add(m)
    assert len(box) == 2  # one per retained topic: the newest mute state only
    first = box.peek()
    assert first is last
    box.sent(first)
    mute = box.peek()
    assert mute is not None and (mute.topic, mute.payload) == ("qt/mute", b"OFF")


def test_commands_call_back() -> None:
    said: list[str] = []
    muted: list[bool] = []
    cfg = MQTTSection(topic_prefix="qt")
    ext = HassExtension(cfg, "Quinn", said.append, muted.append)
    assert ext.on_message("qt/say", b"  Dinner is ready.  ") == []
    ext.on_message("qt/say", b"   ")  # nothing to say
    ext.on_message("qt/mute/set", b"on")
    ext.on_message("qt/mute/set", b"maybe")
    assert said == ["Dinner is ready."] and muted == [True]
    assert len(ext.on_message("homeassistant/status", b"online")) == 6


async def _collect(client: aiomqtt.Client, until, timeout: float = 10.0) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    got: dict[str, bytes] = {}

    async def run() -> None:
        async for msg in client.messages:
            got[msg.topic.value] = bytes(msg.payload)  # type: ignore[arg-type]
            if until(got):
                return

    await asyncio.wait_for(run(), timeout)
    return got


@no_mosquitto
def test_home_assistant_sees_the_device_says_and_mutes(tmp_path: Path) -> None:
    async def scenario() -> None:
        with LocalBroker(tmp_path) as broker:
            bus, stop = EventBus(), asyncio.Event()
            said: asyncio.Queue[str] = asyncio.Queue()
            state = {"muted": False}

            def set_muted(m: bool) -> None:  # as the pipeline does: the change is an event
                state["muted"] = m
                bus.publish(MuteChanged(0, 1.0, m))

            cfg = MQTTSection(enabled=True, port=broker.port, topic_prefix="qt", client_id="qt-hass")
            ext = HassExtension(cfg, "Quinn", said.put_nowait, set_muted, lambda: state["muted"])
            bridge = asyncio.ensure_future(run_mqtt_bridge(cfg, bus, stop, options=FAST, extension=ext))
            async with aiomqtt.Client("127.0.0.1", broker.port) as ha:
                await ha.subscribe("homeassistant/#", qos=1)
                await ha.subscribe("qt/#", qos=1)
                got = await _collect(ha, lambda g: len([t for t in g if t.endswith("/config")]) == 6
                                     and "qt/mute" in g and g.get("qt/status") == b"online")  # fmt: skip
                assert got["qt/mute"] == b"OFF"
                await ha.publish("qt/say", b"Dinner is ready.", qos=1)
                assert await asyncio.wait_for(said.get(), 10) == "Dinner is ready."
                await ha.publish("qt/mute/set", b"ON", qos=1)
                got = await _collect(ha, lambda g: g.get("qt/mute") == b"ON")
                assert state["muted"] is True
                bus.publish(
                    LatencyReport(1, 1.0, transcript="turn on the lights", reply="Done.", v2v_ms=400.0)
                )
                got = await _collect(ha, lambda g: "qt/last_turn" in g)
                assert json.loads(got["qt/last_turn"])["transcript"] == "turn on the lights"
                await ha.publish("homeassistant/status", b"online", qos=1)  # HA restarted
                got = await _collect(ha, lambda g: len([t for t in g if t.endswith("/config")]) == 6)
                assert json.loads(got["homeassistant/text/qt-hass/say/config"])["command_topic"] == "qt/say"
            stop.set()
            await asyncio.wait_for(bridge, 5)
            # A newcomer gets every retained state at once (Home Assistant after its restart).
            async with aiomqtt.Client("127.0.0.1", broker.port) as late:
                await late.subscribe("qt/#", qos=1)
                got = await _collect(late, lambda g: {"qt/mute", "qt/last_turn", "qt/status"} <= set(g))
            assert got["qt/mute"] == b"ON" and got["qt/status"] == b"offline"

    asyncio.run(asyncio.wait_for(scenario(), 60))
