"""MQTT bridge: the pure event → message mapping, and the bridge against a real mosquitto broker
(started here on a free port) read back by a real aiomqtt subscriber. Synthetic typed events go onto a
real EventBus; no models are needed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from agent.config import MQTTSection
from agent.events import (
    BargeIn,
    EndpointCommitted,
    EventBus,
    FirstReplySample,
    LatencyReport,
    LMBlock,
    PartialTranscript,
    PlaybackFinished,
    SpeechStarted,
)
from agent.local_broker import LocalBroker, mosquitto_path
from agent.mqtt import (
    BridgeOptions,
    EventMapper,
    MQTTConfigError,
    MQTTMessage,
    Outbox,
    Priority,
    TurnState,
    backoff_delays,
    check_mqtt_config,
    run_mqtt_bridge,
)

REPO = Path(__file__).resolve().parents[2]
FAST = BridgeOptions(backoff_initial_s=0.1, backoff_max_s=0.3, timeout_s=3.0)
MOSQUITTO = mosquitto_path()
no_mosquitto = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto binary not installed (apt install mosquitto)"
)


def _latency(turn: int, t: float = 100.0, **kw: Any) -> LatencyReport:
    return LatencyReport(turn, t, transcript=f"question {turn}", reply=f"answer {turn}",
                         stages_ms={"asr": 80.5, "lm": 120.0}, v2v_ms=610.25, **kw)  # fmt: skip


# -- sans-I/O ------------------------------------------------------------------------------------------


def _mapper() -> EventMapper:
    # Wall clock 1_700_000_000.0 when the monotonic clock reads 1000.0.
    return EventMapper("home/quickturn/", wall_clock=lambda: 1_700_000_000.0, mono_clock=lambda: 1000.0)


def test_event_maps_to_its_topic_with_the_wall_clock_time_of_the_event() -> None:
    (msg,) = _mapper().map(PartialTranscript(3, 998.5, committed="turn on", tentative="the lights"))
    assert (msg.topic, msg.qos, msg.retain) == ("home/quickturn/event/transcript.partial", 0, False)
    assert json.loads(msg.payload) == {
        "type": "transcript.partial", "turn": 3, "t": 998.5, "committed": "turn on", "tentative": "the lights",
        "wall_t": 1_699_999_998.5, "wall_time": "2023-11-14T22:13:18.500+00:00",
    }  # fmt: skip


def test_latency_report_goes_to_its_own_topic_qos1_not_retained_and_ends_the_turn() -> None:
    mapper = _mapper()
    report, state = mapper.map(_latency(2, t=1000.0, discarded_speculations=1))
    assert (report.topic, report.qos, report.retain, report.priority) == (
        "home/quickturn/latency", 1, False, Priority.LATENCY,
    )  # fmt: skip
    body = json.loads(report.payload)
    assert body["type"] == "quickturn.latency" and body["v2v_ms"] == 610.25
    assert body["stages_ms"] == {"asr": 80.5, "lm": 120.0} and body["discarded_speculations"] == 1
    assert body["wall_t"] == 1_700_000_000.0
    assert (state.topic, state.qos, state.retain) == ("home/quickturn/state", 1, True)
    assert json.loads(state.payload)["state"] == "idle"


def test_state_follows_a_turn_and_a_barge_in() -> None:
    mapper = _mapper()
    states: list[str] = []
    events = [
        SpeechStarted(1, 990.0, 989.7), PartialTranscript(1, 990.5, "what", ""), EndpointCommitted(1, 991.0, 990.7, 300.0),
        FirstReplySample(1, 991.6), PlaybackFinished(1, 993.0, "hi", 1.4), _latency(1, 993.0),
        SpeechStarted(2, 994.0, 993.8), EndpointCommitted(2, 995.0, 994.7, 300.0), FirstReplySample(2, 995.5),
        BargeIn(2, 996.0, 995.8, "it is", 0.5, 20.0), _latency(2, 996.0, interrupted=True),
    ]  # fmt: skip
    for ev in events:
        for msg in mapper.map(ev):
            if msg.topic.endswith("/state"):
                states.append(json.loads(msg.payload)["state"])
    assert states == ["listening", "processing", "responding", "idle",
                      "listening", "processing", "responding", "listening"]  # fmt: skip
    assert mapper.state is TurnState.LISTENING
    last = json.loads(mapper.state_message().payload)
    assert last["turn"] == 2 and last["wall_t"] == 1_699_999_996.0


def test_status_messages_and_last_will_are_retained_plain_strings() -> None:
    mapper = _mapper()
    assert (mapper.online().topic, mapper.online().payload, mapper.online().retain) == (
        "home/quickturn/status", b"online", True,
    )  # fmt: skip
    will = mapper.will()
    assert (will.topic, will.payload, will.qos, will.retain) == ("home/quickturn/status", b"offline", 1, True)


def test_non_finite_numbers_become_json_null() -> None:
    report = LatencyReport(1, 999.0, "q", "a", stages_ms={"lm": float("nan")}, v2v_ms=float("inf"))
    body = json.loads(_mapper().map(report)[0].payload)  # strict JSON parsers would reject NaN
    assert body["v2v_ms"] is None and body["stages_ms"] == {"lm": None}


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [("topic_prefix", "", "empty"), ("topic_prefix", "home/#", "'#'"), ("topic_prefix", "a/+/b", "'+'"),
     ("port", 0, "mqtt.port 0"), ("host", "", "mqtt.host"), ("client_id", "", "mqtt.client_id")],
)  # fmt: skip
def test_bad_config_is_a_clear_error(field: str, value: Any, needle: str) -> None:
    cfg = MQTTSection(enabled=True)
    setattr(cfg, field, value)
    with pytest.raises(MQTTConfigError, match=needle.replace("+", r"\+")):
        check_mqtt_config(cfg)


def _msg(i: int, priority: Priority = Priority.EVENT) -> MQTTMessage:
    return MQTTMessage(f"q/{priority.name}/{i}", str(i).encode(), 0, False, priority)


def test_outbox_drops_oldest_events_but_keeps_latency_and_newest_state() -> None:
    box = Outbox(max_events=3, max_latency=2)
    box.on_connect(_msg(0, Priority.STATE))
    for i in range(10):
        box.add(_msg(i))
    box.add(_msg(1, Priority.LATENCY))
    box.add(_msg(2, Priority.STATE))
    assert box.dropped_events == 7 and box.dropped_latency == 0
    # State first (only the newest), then latency, then the three newest events in order.
    expected = ["q/STATE/2", "q/LATENCY/1", "q/EVENT/7", "q/EVENT/8", "q/EVENT/9"]
    assert [m.topic for m in _drain(box)] == expected


def test_outbox_keeps_latency_across_an_outage_and_drops_live_events() -> None:
    box = Outbox(max_events=10, max_latency=2)
    box.on_connect(_msg(0, Priority.STATE))
    box.sent(box.peek())  # type: ignore[arg-type]
    box.add(_msg(1))
    in_flight = box.peek()
    box.on_disconnect()
    assert box.dropped_events == 1 and box.peek() is None
    for i in range(3):
        box.add(_msg(i, Priority.LATENCY))
        box.add(_msg(i))  # not buffered while away
    assert box.dropped_latency == 1 and box.dropped_events == 4 and box.latency_waiting == 2
    box.sent(in_flight)  # type: ignore[arg-type]  # a stale ack must not remove anything else
    box.on_connect(_msg(9, Priority.STATE))
    assert [m.topic for m in _drain(box)] == ["q/STATE/9", "q/LATENCY/1", "q/LATENCY/2"]


def _drain(box: Outbox) -> Iterator[MQTTMessage]:
    while (msg := box.peek()) is not None:
        box.sent(msg)
        yield msg


def test_backoff_doubles_up_to_its_cap() -> None:
    delays = backoff_delays(0.5, 4.0)
    assert [next(delays) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


# -- a real broker -----------------------------------------------------------------------------------------


Broker = LocalBroker  # agent/local_broker.py: the demo's hub, the tests' broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


def _cfg(broker: Broker, prefix: str = "qt", client_id: str = "quickturn-test") -> MQTTSection:
    return MQTTSection(
        enabled=True, host="127.0.0.1", port=broker.port, topic_prefix=prefix, client_id=client_id
    )


def _run(coro: Awaitable[None], timeout: float = 20.0) -> None:
    async def main() -> None:
        await asyncio.wait_for(coro, timeout)

    asyncio.run(main())


@asynccontextmanager
async def _subscriber(broker: Broker, topic: str, *, persistent: str = "") -> AsyncIterator[aiomqtt.Client]:
    """A real client subscribed to ``topic`` (qos 1). ``persistent``: a session id the broker keeps
    (with messages queued for it) while this client or the broker itself is away."""
    client = aiomqtt.Client("127.0.0.1", broker.port, identifier=persistent or None,
                            clean_session=False if persistent else None)  # fmt: skip
    async with client:
        await client.subscribe(topic, qos=1)
        yield client


def _decode(msg: aiomqtt.Message) -> Any:
    """JSON, or the plain string of the status topic."""
    text = bytes(msg.payload).decode()  # type: ignore[arg-type]
    return text if msg.topic.value.endswith("/status") else json.loads(text)


async def _next(client: aiomqtt.Client, topic: str, timeout: float = 10.0) -> Any:
    """The next message on ``topic``: JSON decoded, or the plain string for status."""

    async def first() -> Any:
        async for msg in client.messages:
            if msg.topic.matches(topic):
                return _decode(msg)
        raise AssertionError("subscriber disconnected")

    return await asyncio.wait_for(first(), timeout)


@pytest.mark.mqtt
async def _gather(client: aiomqtt.Client, until: Any, timeout: float = 10.0) -> dict[str, list[Any]]:
    """Every JSON message by topic until ``until(got)`` holds (latency may overtake events)."""
    got: dict[str, list[Any]] = {}

    async def collect() -> None:
        async for msg in client.messages:
            got.setdefault(msg.topic.value, []).append(_decode(msg))
            if until(got):
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(collect(), timeout)
    return got


def _last_state(got: dict[str, list[Any]]) -> str | None:
    states = got.get("qt/state", [])
    return states[-1]["state"] if states else None


@no_mosquitto
def test_events_latency_and_retained_state_reach_the_broker(broker: Broker) -> None:
    async def scenario() -> None:
        bus, stop = EventBus(), asyncio.Event()
        async with _subscriber(broker, "qt/#") as sub:
            bridge = asyncio.ensure_future(run_mqtt_bridge(_cfg(broker), bus, stop, options=FAST))
            assert await _next(sub, "qt/status") == "online"
            assert (await _next(sub, "qt/state"))["state"] == "idle"
            t = time.monotonic()
            bus.publish(SpeechStarted(1, t, t - 0.3))
            bus.publish(LMBlock(1, t + 0.1, 0, "Hello there."))
            bus.publish(EndpointCommitted(1, t + 0.2, t, 300.0))
            bus.publish(_latency(1, t + 0.5))
            topics = [
                "qt/event/speech.started",
                "qt/event/lm.block",
                "qt/event/endpoint.committed",
                "qt/latency",
            ]
            got = await _gather(sub, lambda got: all(t in got for t in topics) and _last_state(got) == "idle")
            assert sorted(got) == sorted([*topics, "qt/state"])
            # The state is coalesced (only the newest is retained); the turn ended, so it is idle.
            assert _last_state(got) == "idle" and got["qt/state"][-1]["turn"] == 1
            (started,), (report,) = got["qt/event/speech.started"], got["qt/latency"]
            assert started["turn"] == 1 and started["audio_start_t"] == pytest.approx(t - 0.3)
            # A real Unix time, not the monotonic one: the event's time plus the offset between the two
            # clocks (constant however slow the run; the slack is for a pause between two clock reads).
            offset = time.time() - time.monotonic()
            assert started["wall_t"] == pytest.approx(t + offset, abs=1.0)
            assert got["qt/event/lm.block"][0]["text"] == "Hello there."
            assert report["type"] == "quickturn.latency" and report["transcript"] == "question 1"
            assert report["v2v_ms"] == 610.25 and report["stages_ms"] == {"asr": 80.5, "lm": 120.0}
            stop.set()
            await asyncio.wait_for(bridge, 5)
            assert await _next(sub, "qt/status") == "offline"  # said explicitly: a clean exit sends no will
        assert bus._queues == []  # unsubscribed from the bus
        # A newcomer (Home Assistant after a restart) gets the retained state and status at once.
        async with _subscriber(broker, "qt/#") as late:
            got = {"status": await _next(late, "qt/status"), "state": await _next(late, "qt/state")}
        assert got["status"] == "offline"
        assert (got["state"]["state"], got["state"]["turn"]) == ("idle", 1)

    _run(scenario())


_BRIDGE_PROCESS = """
import asyncio, sys
from agent.config import MQTTSection
from agent.events import EventBus
from agent.mqtt import run_mqtt_bridge
cfg = MQTTSection(enabled=True, host="127.0.0.1", port=int(sys.argv[1]), topic_prefix="qt", client_id="doomed")
asyncio.run(run_mqtt_bridge(cfg, EventBus(), asyncio.Event()))
"""


@pytest.mark.mqtt
@no_mosquitto
def test_last_will_says_offline_when_the_process_dies(broker: Broker) -> None:
    async def scenario() -> None:
        async with _subscriber(broker, "qt/status") as sub:
            proc = subprocess.Popen([sys.executable, "-c", _BRIDGE_PROCESS, str(broker.port)], cwd=REPO)
            try:
                assert await _next(sub, "qt/status", timeout=15) == "online"
                proc.kill()  # SIGKILL: no goodbye, the socket just closes; the broker sends the will
                assert await _next(sub, "qt/status") == "offline"
            finally:
                proc.kill()
                proc.wait()

    _run(scenario(), timeout=30)


@pytest.mark.mqtt
@no_mosquitto
def test_cancelled_bridge_still_says_offline(broker: Broker) -> None:
    async def scenario() -> None:
        bus = EventBus()
        async with _subscriber(broker, "qt/status") as sub:
            bridge = asyncio.ensure_future(run_mqtt_bridge(_cfg(broker), bus, asyncio.Event(), options=FAST))
            assert await _next(sub, "qt/status") == "online"
            bridge.cancel()
            with pytest.raises(asyncio.CancelledError):
                await bridge
            assert await _next(sub, "qt/status") == "offline"
        assert bus._queues == []

    _run(scenario())


async def _read_until_disconnected(client: aiomqtt.Client) -> None:
    async for _ in client.messages:
        pass


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@pytest.mark.mqtt
@no_mosquitto
def test_broker_down_at_start_bridge_retries_and_delivers_when_it_comes_up(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with _subscriber(broker, "qt/#", persistent="ha"):
            pass  # the broker now keeps a session (and queues qos-1 messages) for "ha"
        broker.stop()
        bus, stop = EventBus(), asyncio.Event()
        bridge = asyncio.ensure_future(run_mqtt_bridge(_cfg(broker), bus, stop, options=FAST))
        await _until(lambda: "no broker at 127.0.0.1" in caplog.text)
        t = time.monotonic()
        for i in range(2000):  # the pipeline never blocks on the missing broker
            bus.publish(PartialTranscript(1, t, "word", str(i)))
        bus.publish(_latency(1, t))
        await asyncio.sleep(0.5)  # a few more retries
        assert not bridge.done()
        broker.start()
        async with _subscriber(broker, "qt/#", persistent="ha") as sub:
            report = await _next(sub, "qt/latency")
            assert report["transcript"] == "question 1"
        async with _subscriber(broker, "qt/#") as late:
            assert await _next(late, "qt/status") == "online"
        stop.set()
        await asyncio.wait_for(bridge, 5)

    with caplog.at_level("INFO", logger="quickturn.mqtt"):
        _run(scenario())
    assert "connected to 127.0.0.1" in caplog.text


@pytest.mark.mqtt
@no_mosquitto
def test_broker_restart_mid_session_delivers_the_latency_reports_queued_meanwhile(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        bus, stop = EventBus(), asyncio.Event()
        async with _subscriber(broker, "qt/#", persistent="ha") as sub:
            bridge = asyncio.ensure_future(run_mqtt_bridge(_cfg(broker), bus, stop, options=FAST))
            assert await _next(sub, "qt/status") == "online"
            bus.publish(_latency(1))
            assert (await _next(sub, "qt/latency"))["turn"] == 1
            broker.stop()
            with pytest.raises(aiomqtt.MqttError):  # the subscriber loses it too
                await asyncio.wait_for(_read_until_disconnected(sub), 10)
            await _until(lambda: "lost the broker" in caplog.text)
        for turn in (2, 3, 4):
            bus.publish(_latency(turn))
        await asyncio.sleep(0.3)
        broker.start()
        async with _subscriber(broker, "qt/latency", persistent="ha") as sub:
            turns = [(await _next(sub, "qt/latency"))["turn"] for _ in range(3)]
        assert turns == [2, 3, 4]
        stop.set()
        await asyncio.wait_for(bridge, 5)

    with caplog.at_level("INFO", logger="quickturn.mqtt"):
        _run(scenario())


@pytest.mark.mqtt
@no_mosquitto
def test_frozen_broker_never_blocks_the_bus_drops_events_and_keeps_the_report(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGSTOP: the broker's sockets stay open but nothing is acknowledged — a slow broker at its worst."""

    async def scenario() -> None:
        bus, stop = EventBus(), asyncio.Event()
        opts = BridgeOptions(backoff_initial_s=0.1, backoff_max_s=0.3, timeout_s=1.0, max_events=50)
        async with _subscriber(broker, "qt/#") as sub:
            bridge = asyncio.ensure_future(run_mqtt_bridge(_cfg(broker), bus, stop, options=opts))
            assert await _next(sub, "qt/status") == "online"
            assert broker.proc is not None
            broker.proc.send_signal(signal.SIGSTOP)
            try:
                t = time.monotonic()
                bus.publish(_latency(7, t))
                for i in range(3000):
                    bus.publish(LMBlock(7, t, i, "x" * 200))
                    if i % 100 == 0:
                        await asyncio.sleep(0)  # the pipeline yields now and then; the bridge drains
                # Publishing never waited for the broker: bus.publish is synchronous, and a frozen
                # broker answers nothing until SIGCONT (after this loop), so a publish that waited
                # would hang here until _run's guard fails the test.
                await _until(lambda: "dropped so far" in caplog.text)
                # The report's acknowledgement times out: the bridge gives the link up and retries.
                await _until(lambda: "lost the broker" in caplog.text)
            finally:
                broker.proc.send_signal(signal.SIGCONT)
            got = await _gather(sub, lambda got: "qt/latency" in got, timeout=15)
            assert got["qt/latency"][0]["turn"] == 7  # (at least once: a resend may follow)
            stop.set()
            await asyncio.wait_for(bridge, 5)

    with caplog.at_level("INFO", logger="quickturn.mqtt"):
        _run(scenario(), timeout=30)
