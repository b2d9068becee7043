"""Turn events and per-turn latency over MQTT, for home automation (Home Assistant and friends).

Two halves:

* sans-I/O (``EventMapper``, ``Outbox``, ``backoff_delays``): events → ``MQTTMessage`` (topic, payload
  bytes, qos, retain), the turn-state tracker and the bounded, prioritised buffer. Pure and testable.
* I/O (``run_mqtt_bridge``): a bus queue drained at once into the outbox, an aiomqtt connection with a
  last will, reconnects with backoff. The voice pipeline never waits for the broker.

Topics under ``{prefix}`` (``mqtt.topic_prefix``):

* ``{prefix}/status``  ``online`` / ``offline``, retained, qos 1; ``offline`` is also the last will, so
  the broker announces it when quickturn dies without saying goodbye (Home Assistant availability).
* ``{prefix}/state``   retained JSON ``{"state", "turn", "wall_t", "wall_time"}``; state is one of
  ``idle``, ``listening``, ``processing``, ``responding`` (Home Assistant's Assist vocabulary).
* ``{prefix}/latency`` JSON ``quickturn.latency`` report, qos 1, NOT retained: it is one event per turn,
  and a retained copy would be replayed to every new subscriber as if that old turn just finished.
  Reports are kept (bounded) while the broker is away and sent after reconnecting.
* ``{prefix}/event/{type}`` JSON of every other event, qos 0, not retained; live notifications that
  are dropped (oldest first, counted) when the broker is slow or away.

Every JSON payload is ``Event.to_dict()`` plus ``wall_t`` (Unix seconds) and ``wall_time`` (ISO 8601,
UTC) of the event itself, converted from its monotonic ``t`` — so a report sent late still carries
the time its turn ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import aiomqtt

from .config import MQTTSection
from .events import (
    BargeIn,
    EndpointCommitted,
    Event,
    EventBus,
    FirstReplySample,
    LatencyReport,
    SpeechResumed,
    SpeechStarted,
)

log = logging.getLogger("quickturn.mqtt")

ONLINE = b"online"
OFFLINE = b"offline"


class MQTTConfigError(ValueError):
    """The ``[mqtt]`` configuration cannot work (bad topic prefix, port, host...)."""


def check_mqtt_config(cfg: MQTTSection) -> None:
    """Fail fast with a clear message instead of retrying a broker that can never work."""
    prefix = cfg.topic_prefix
    if not prefix.strip("/"):
        raise MQTTConfigError("mqtt.topic_prefix is empty; set it to e.g. 'quickturn'")
    bad = [c for c in ("+", "#", "\0") if c in prefix]
    if bad:
        raise MQTTConfigError(
            f"mqtt.topic_prefix {prefix!r} contains {', '.join(map(repr, bad))}: "
            "wildcards and NUL are not allowed in topics one publishes to"
        )
    if not cfg.host:
        raise MQTTConfigError("mqtt.host is empty; set it to the broker's address (e.g. 127.0.0.1)")
    if not 1 <= cfg.port <= 65535:
        raise MQTTConfigError(f"mqtt.port {cfg.port} is not a TCP port (1-65535)")
    if not cfg.client_id:
        # An empty id makes the broker invent one per connection; two quickturns would then be
        # indistinguishable and the last will could not be tied to this instance.
        raise MQTTConfigError("mqtt.client_id is empty; set a stable, unique id (e.g. 'quickturn-kitchen')")


# -- sans-I/O -----------------------------------------------------------------------------------------


class Priority(enum.IntEnum):
    """What the outbox may drop: lower values are sent first and kept longer."""

    STATE = 0  # coalesced: only the newest state matters
    LATENCY = 1  # kept (bounded) across broker outages
    EVENT = 2  # live notification: dropped first
    RETAINED = 3  # coalesced per topic (discovery configs, last turn, mute), sent right after the state


@dataclass(frozen=True)
class MQTTMessage:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    priority: Priority = Priority.EVENT


class TurnState(enum.StrEnum):
    IDLE = "idle"  # waiting for the user
    LISTENING = "listening"  # the user is speaking
    PROCESSING = "processing"  # turn committed: transcript, reply, first audio being made
    RESPONDING = "responding"  # the reply is playing


def _json_safe(value: Any) -> Any:
    """JSON has no NaN/inf; numpy scalars and the like become plain numbers or strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    if hasattr(value, "__float__"):
        return _json_safe(float(value))
    return str(value)


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(_json_safe(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class EventMapper:
    """Maps bus events to MQTT messages and tracks the turn state (no I/O, injectable clocks)."""

    def __init__(
        self,
        topic_prefix: str,
        wall_clock: Callable[[], float] = time.time,
        mono_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = topic_prefix.rstrip("/")  # a leading "/" is a legal (if odd) separate level
        self._wall = wall_clock
        self._mono = mono_clock
        self.status_topic = f"{self.prefix}/status"
        self.state_topic = f"{self.prefix}/state"
        self.latency_topic = f"{self.prefix}/latency"
        self.state = TurnState.IDLE
        self._state_turn = 0
        self._state_wall_t = wall_clock()

    def event_topic(self, kind: str) -> str:
        return f"{self.prefix}/event/{kind}"

    def wall_time(self, t: float) -> float:
        """Monotonic event time → Unix time (the wall clock may jump; the offset is taken now)."""
        return self._wall() - (self._mono() - t)

    def _stamp(self, wall_t: float) -> dict[str, Any]:
        iso = datetime.fromtimestamp(wall_t, tz=UTC).isoformat(timespec="milliseconds")
        return {"wall_t": round(wall_t, 3), "wall_time": iso}

    # status: plain strings, the payloads Home Assistant's availability expects by default
    def online(self) -> MQTTMessage:
        return MQTTMessage(self.status_topic, ONLINE, qos=1, retain=True, priority=Priority.STATE)

    def offline(self) -> MQTTMessage:
        return MQTTMessage(self.status_topic, OFFLINE, qos=1, retain=True, priority=Priority.STATE)

    def will(self) -> aiomqtt.Will:
        return aiomqtt.Will(self.status_topic, OFFLINE, qos=1, retain=True)

    def state_message(self) -> MQTTMessage:
        payload = {"state": self.state.value, "turn": self._state_turn, **self._stamp(self._state_wall_t)}
        return MQTTMessage(self.state_topic, _dumps(payload), qos=1, retain=True, priority=Priority.STATE)

    def _next_state(self, event: Event) -> TurnState | None:
        if isinstance(event, SpeechStarted | SpeechResumed | BargeIn):
            return TurnState.LISTENING
        if isinstance(event, EndpointCommitted):
            return TurnState.PROCESSING
        if isinstance(event, FirstReplySample):
            return TurnState.RESPONDING
        if isinstance(event, LatencyReport):
            # Every turn ends with its report; after a barge-in the user is already speaking again.
            return TurnState.LISTENING if event.interrupted else TurnState.IDLE
        return None

    def map(self, event: Event) -> list[MQTTMessage]:
        """The messages one event produces: itself, plus the new state when it changes the state."""
        wall_t = self.wall_time(event.t)
        payload = _dumps({**event.to_dict(), **self._stamp(wall_t)})
        if isinstance(event, LatencyReport):
            out = [MQTTMessage(self.latency_topic, payload, qos=1, retain=False, priority=Priority.LATENCY)]
        else:
            out = [MQTTMessage(self.event_topic(event.kind), payload, qos=0, retain=False)]
        state = self._next_state(event)
        if state is not None and (state != self.state or event.turn != self._state_turn):
            self.state, self._state_turn, self._state_wall_t = state, event.turn, wall_t
            out.append(self.state_message())
        return out


class Outbox:
    """Bounded, prioritised messages waiting for the broker (no I/O).

    The state is coalesced (only the newest is sent); latency reports wait in their own bounded queue
    and survive outages; other events wait in a bounded queue that drops its oldest when full and is
    emptied on disconnect (stale live notifications are worse than none). ``peek`` then ``sent`` lets
    a message leave only once the broker has it, so a report in flight when the link drops is resent.
    """

    def __init__(self, max_events: int = 500, max_latency: int = 200) -> None:
        if max_events < 1 or max_latency < 1:
            raise ValueError("Outbox sizes must be at least 1")
        self._state: MQTTMessage | None = None
        self._retained: dict[str, MQTTMessage] = {}  # the newest per topic, kept across outages
        self._latency: deque[MQTTMessage] = deque()
        self._events: deque[MQTTMessage] = deque()
        self.max_events = max_events
        self.max_latency = max_latency
        self.connected = False
        self.dropped_events = 0
        self.dropped_latency = 0

    def __len__(self) -> int:
        return (self._state is not None) + len(self._retained) + len(self._latency) + len(self._events)

    @property
    def latency_waiting(self) -> int:
        return len(self._latency)

    def add(self, msg: MQTTMessage) -> None:
        if msg.priority is Priority.STATE:
            self._state = msg
        elif msg.priority is Priority.RETAINED:
            self._retained.pop(msg.topic, None)  # the newest goes last: they leave in the order set
            self._retained[msg.topic] = msg
        elif msg.priority is Priority.LATENCY:
            if len(self._latency) >= self.max_latency:
                self._latency.popleft()
                self.dropped_latency += 1
            self._latency.append(msg)
        elif not self.connected:
            self.dropped_events += 1
        else:
            if len(self._events) >= self.max_events:
                self._events.popleft()
                self.dropped_events += 1
            self._events.append(msg)

    def peek(self) -> MQTTMessage | None:
        if self._state is not None:
            return self._state
        if self._retained:
            return next(iter(self._retained.values()))
        if self._latency:
            return self._latency[0]
        return self._events[0] if self._events else None

    def sent(self, msg: MQTTMessage) -> None:
        """``msg`` (from ``peek``) reached the broker; identity checks survive adds in between."""
        if msg is self._state:
            self._state = None
        elif self._retained.get(msg.topic) is msg:
            del self._retained[msg.topic]
        elif self._latency and msg is self._latency[0]:
            self._latency.popleft()
        elif self._events and msg is self._events[0]:
            self._events.popleft()

    def on_connect(self, state: MQTTMessage) -> None:
        self.connected = True
        self._state = state  # a restarted broker may have lost the retained state

    def on_disconnect(self) -> None:
        self.connected = False
        self.dropped_events += len(self._events)
        self._events.clear()


class BridgeExtension(Protocol):
    """More for the bridge to publish and to listen to (Home Assistant discovery: agent/hass.py)."""

    subscriptions: Sequence[str]  # topics the bridge subscribes to (qos 1) on every connection

    def on_connect(self) -> list[MQTTMessage]: ...  # sent after "online" on every connection

    def map(self, event: Event) -> list[MQTTMessage]: ...  # more messages for a bus event

    def on_message(self, topic: str, payload: bytes) -> list[MQTTMessage]: ...  # a subscribed message


def backoff_delays(initial_s: float, max_s: float, factor: float = 2.0) -> Iterator[float]:
    """initial, initial·factor, ... capped at max_s, forever."""
    delay = initial_s
    while True:
        yield min(delay, max_s)
        delay = min(delay * factor, max_s)


# -- I/O ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BridgeOptions:
    max_events: int = 500  # non-essential events buffered while the broker is slow
    max_latency: int = 200  # latency reports kept while the broker is away (200 turns)
    bus_queue: int = 1000  # drained at once; only overflows if the event loop itself stalls
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0  # a home broker back from a restart is found within 10 s
    keepalive_s: int = 30  # a hung (not dead) quickturn is declared offline after 1.5× this
    timeout_s: float = 5.0  # connect / publish acknowledgement
    stop_flush_s: float = 1.0  # on stop: time to send what is still waiting, then "offline"
    drop_log_interval_s: float = 30.0


class _Bridge:
    def __init__(
        self, cfg: MQTTSection, opts: BridgeOptions, extension: BridgeExtension | None = None
    ) -> None:
        check_mqtt_config(cfg)
        self.extension = extension
        self.cfg = cfg
        self.opts = opts
        self.mapper = EventMapper(cfg.topic_prefix)
        self.outbox = Outbox(opts.max_events, opts.max_latency)
        self._wake = asyncio.Event()
        self._reported_drops = 0
        self._last_drop_log = -math.inf

    @property
    def where(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    async def run(self, bus: EventBus, stop: asyncio.Event) -> None:
        queue = bus.queue(self.opts.bus_queue)
        drain = asyncio.ensure_future(self._drain(queue))
        try:
            await self._connection_loop(stop)
        finally:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
            bus.unqueue(queue)

    async def _drain(self, queue: asyncio.Queue[Event]) -> None:
        """Bus → outbox without ever waiting on the network, so the bus queue stays near empty."""
        while True:
            event = await queue.get()
            try:
                for msg in self.mapper.map(event):
                    self.outbox.add(msg)
                for msg in self.extension.map(event) if self.extension else ():
                    self.outbox.add(msg)
            except Exception:  # one odd event must not end the bridge
                log.exception("MQTT: could not encode %r", event)
            self._log_drops()
            self._wake.set()

    def _log_drops(self) -> None:
        dropped = self.outbox.dropped_events + self.outbox.dropped_latency
        now = time.monotonic()
        if dropped > self._reported_drops and now - self._last_drop_log >= self.opts.drop_log_interval_s:
            log.warning(
                "MQTT: broker at %s slow or away: %d events and %d latency reports dropped so far",
                self.where, self.outbox.dropped_events, self.outbox.dropped_latency,
            )  # fmt: skip
            self._reported_drops, self._last_drop_log = dropped, now

    def _client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            hostname=self.cfg.host,
            port=self.cfg.port,
            identifier=self.cfg.client_id,
            username=self.cfg.username or None,  # e.g. Home Assistant's Mosquitto add-on requires a login
            password=self.cfg.password or None,
            will=self.mapper.will(),
            keepalive=self.opts.keepalive_s,
            timeout=self.opts.timeout_s,
        )

    async def _connection_loop(self, stop: asyncio.Event) -> None:
        delays = backoff_delays(self.opts.backoff_initial_s, self.opts.backoff_max_s)
        failures = 0
        while not stop.is_set():
            connected = False
            try:
                async with self._client() as client:
                    connected = True
                    log.info(
                        "MQTT: connected to %s as %r (%d latency reports waiting)",
                        self.where, self.cfg.client_id, self.outbox.latency_waiting,
                    )  # fmt: skip
                    await self._session(client, stop)
                    return
            except aiomqtt.MqttError as exc:
                self.outbox.on_disconnect()
                if stop.is_set():
                    log.info("MQTT: left %s without a clean goodbye (%s)", self.where, exc)
                    return
                if connected:
                    log.warning("MQTT: lost the broker at %s (%s); reconnecting", self.where, exc)
                    delays = backoff_delays(self.opts.backoff_initial_s, self.opts.backoff_max_s)
                    failures = 0
                elif failures % 10 == 0:  # say it once, then now and then, not on every retry
                    log.warning(
                        "MQTT: no broker at %s (%s); retrying in the background, the voice agent "
                        "keeps running and keeps up to %d latency reports",
                        self.where, exc, self.opts.max_latency,
                    )  # fmt: skip
                failures += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), next(delays))

    async def _publish(self, client: aiomqtt.Client, msg: MQTTMessage, timeout: float | None = None) -> None:
        await client.publish(
            msg.topic, msg.payload, qos=msg.qos, retain=msg.retain, timeout=timeout or self.opts.timeout_s
        )

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """One connection: announce, publish until stop or loss, then say goodbye."""
        try:
            await self._publish(client, self.mapper.online())
            self.outbox.on_connect(self.mapper.state_message())
            if self.extension is not None:
                for msg in self.extension.on_connect():
                    self.outbox.add(msg)
                for topic in self.extension.subscriptions:
                    await client.subscribe(topic, qos=1, timeout=self.opts.timeout_s)
            watch = asyncio.ensure_future(self._watch(client))
            pump = asyncio.ensure_future(self._pump(client, stop))
            try:
                done, _ = await asyncio.wait({watch, pump}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (watch, pump):
                    task.cancel()
                await asyncio.gather(watch, pump, return_exceptions=True)
            if pump in done:
                pump.result()  # re-raises a failed publish (MqttError → reconnect)
            else:
                watch.result()  # always raises: the connection is gone
        except asyncio.CancelledError:
            # Cancelled instead of stopped: aiomqtt will disconnect cleanly, which suppresses the
            # will, so say "offline" ourselves (best effort) before going.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._publish(client, self.mapper.offline()), self.opts.stop_flush_s)
            raise
        # A clean DISCONNECT suppresses the last will: announce "offline" explicitly.
        await self._publish(client, self.mapper.offline(), timeout=self.opts.stop_flush_s)
        log.info("MQTT: disconnected from %s", self.where)

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Subscribed messages go to the extension; the iterator ends only with the connection."""
        async for message in client.messages:
            if self.extension is None:
                continue
            raw = message.payload
            payload = bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw or "").encode()
            try:
                for msg in self.extension.on_message(message.topic.value, payload):
                    self.outbox.add(msg)
            except Exception:  # one odd message must not end the bridge
                log.exception("MQTT: could not handle a message on %s", message.topic.value)
            self._wake.set()
        raise aiomqtt.MqttError("connection closed")

    async def _pump(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Publish the outbox in priority order; on stop, flush for at most stop_flush_s."""
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            if stop.is_set():
                deadline = deadline if deadline is not None else loop.time() + self.opts.stop_flush_s
                if not len(self.outbox) or loop.time() >= deadline:
                    return
            msg = self.outbox.peek()
            if msg is None:
                self._wake.clear()
                await _wait_any(self._wake, stop)
                continue
            timeout = self.opts.timeout_s if deadline is None else max(0.05, deadline - loop.time())
            await self._publish(client, msg, timeout)
            self.outbox.sent(msg)


async def _wait_any(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def run_mqtt_bridge(
    cfg: MQTTSection,
    bus: EventBus,
    stop: asyncio.Event,
    *,
    options: BridgeOptions | None = None,
    extension: BridgeExtension | None = None,
) -> None:
    """Publish ``bus`` events to the broker in ``cfg`` until ``stop`` is set.

    Never raises for broker trouble (absent at start, lost, slow): it logs, reconnects with backoff
    and keeps latency reports meanwhile. Raises ``MQTTConfigError`` at once for a configuration that
    cannot work. Unsubscribes from the bus when it returns or is cancelled.
    """
    await _Bridge(cfg, options or BridgeOptions(), extension).run(bus, stop)
