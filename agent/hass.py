"""Home Assistant MQTT discovery: quickturn appears in Home Assistant as one device, no YAML needed.

Entities (retained configs under ``{discovery_prefix}/<component>/<node_id>/<object>/config``, all
with availability from the bridge's ``{prefix}/status`` and its last will):

* sensors: ``state`` (idle / listening / processing / responding, from ``{prefix}/state``), ``last
  transcript``, ``last reply`` and ``voice-to-voice`` (ms), from the retained ``{prefix}/last_turn``;
* ``text`` "say": what is written to ``{prefix}/say`` is spoken (announcements, automations);
* ``switch`` "mute": ``{prefix}/mute/set`` ON/OFF mutes the microphone; state on ``{prefix}/mute``.

When Home Assistant restarts it says ``online`` on ``{discovery_prefix}/status``; the configs are sent
again then. ``HassExtension`` plugs into the bridge (``agent.mqtt.BridgeExtension``); it does no I/O
itself: messages in, messages and callbacks out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .config import MQTTSection
from .events import Event, LatencyReport, MuteChanged
from .mqtt import MQTTMessage, Priority

MAX_SAY_CHARS = 500  # an announcement longer than this is cut (a runaway automation)
ON, OFF = "ON", "OFF"


def _version() -> str:
    try:
        return version("quickturn")
    except PackageNotFoundError:
        return "dev"


def node_id(client_id: str) -> str:
    """Discovery ids allow [a-zA-Z0-9_-] only."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", client_id) or "quickturn"


class HassExtension:
    def __init__(
        self,
        cfg: MQTTSection,
        agent_name: str,
        say: Callable[[str], None],
        set_muted: Callable[[bool], None],
        muted: Callable[[], bool] = lambda: False,
    ) -> None:
        self.prefix = cfg.topic_prefix.rstrip("/")
        self.discovery_prefix = cfg.discovery_prefix.strip("/") or "homeassistant"
        self.node = node_id(cfg.client_id)
        self.agent_name = agent_name
        self._say = say
        self._set_muted = set_muted
        self._muted = muted
        self.say_topic = f"{self.prefix}/say"
        self.mute_command_topic = f"{self.prefix}/mute/set"
        self.mute_topic = f"{self.prefix}/mute"
        self.last_turn_topic = f"{self.prefix}/last_turn"
        self.ha_status_topic = f"{self.discovery_prefix}/status"
        self.subscriptions = [self.say_topic, self.mute_command_topic, self.ha_status_topic]

    # -- discovery ---------------------------------------------------------------------------------
    def _device(self) -> dict[str, Any]:
        return {
            "identifiers": [f"quickturn_{self.node}"],
            "name": f"{self.agent_name} (quickturn)",
            "manufacturer": "quickturn",
            "model": "local voice agent",
            "sw_version": _version(),
        }

    def _config(self, component: str, obj: str, name: str, **fields: Any) -> MQTTMessage:
        body = {
            "name": name,
            "unique_id": f"quickturn_{self.node}_{obj}",
            "object_id": f"quickturn_{self.node}_{obj}",
            "availability_topic": f"{self.prefix}/status",
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": self._device(),
            **fields,
        }
        topic = f"{self.discovery_prefix}/{component}/{self.node}/{obj}/config"
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return MQTTMessage(topic, payload, qos=1, retain=True, priority=Priority.RETAINED)

    def discovery(self) -> list[MQTTMessage]:
        last = self.last_turn_topic
        return [
            self._config("sensor", "state", "State", state_topic=f"{self.prefix}/state",
                         value_template="{{ value_json.state }}", icon="mdi:account-voice"),
            self._config("sensor", "last_transcript", "Last transcript", state_topic=last,
                         value_template="{{ value_json.transcript[:255] }}", icon="mdi:text-recognition"),
            self._config("sensor", "last_reply", "Last reply", state_topic=last,
                         value_template="{{ value_json.reply[:255] }}", icon="mdi:message-reply-text"),
            self._config("sensor", "v2v", "Voice-to-voice latency", state_topic=last,
                         value_template="{{ value_json.v2v_ms }}", unit_of_measurement="ms",
                         device_class="duration", state_class="measurement"),
            self._config("text", "say", "Say", command_topic=self.say_topic, mode="text",
                         max=255, icon="mdi:bullhorn"),
            self._config("switch", "mute", "Mute microphone", command_topic=self.mute_command_topic,
                         state_topic=self.mute_topic, payload_on=ON, payload_off=OFF, icon="mdi:microphone-off"),
        ]  # fmt: skip

    def removal(self) -> list[MQTTMessage]:
        """Empty retained configs: Home Assistant removes the entities (``quickturn`` uninstalled)."""
        return [
            MQTTMessage(m.topic, b"", qos=1, retain=True, priority=Priority.RETAINED)
            for m in self.discovery()
        ]

    def mute_state(self, muted: bool) -> MQTTMessage:
        return MQTTMessage(self.mute_topic, (ON if muted else OFF).encode(), 1, True, Priority.RETAINED)

    # -- BridgeExtension ---------------------------------------------------------------------------
    def on_connect(self) -> list[MQTTMessage]:
        return [*self.discovery(), self.mute_state(self._muted())]

    def map(self, event: Event) -> list[MQTTMessage]:
        if isinstance(event, LatencyReport) and event.transcript:  # a user turn (not an announcement)
            body = {"transcript": event.transcript, "reply": event.reply, "v2v_ms": event.v2v_ms,
                    "turn": event.turn, "interrupted": event.interrupted}  # fmt: skip
            payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            return [
                MQTTMessage(self.last_turn_topic, payload, qos=1, retain=True, priority=Priority.RETAINED)
            ]
        if isinstance(event, MuteChanged):
            return [self.mute_state(event.muted)]
        return []

    def on_message(self, topic: str, payload: bytes) -> list[MQTTMessage]:
        text = payload.decode("utf-8", errors="replace").strip()
        if topic == self.say_topic:
            if text:
                self._say(text[:MAX_SAY_CHARS])
        elif topic == self.mute_command_topic:
            if text.upper() in (ON, OFF):
                self._set_muted(text.upper() == ON)  # the state follows from its MuteChanged event
        elif topic == self.ha_status_topic and text == "online":
            return self.discovery()  # Home Assistant restarted: it may have lost the configs
        return []
