"""Tool calls in a turn: which tools a reply may call, the decider behind them, and a tool's result as
words the agent can say.

The decision itself is ``dlm_core``'s (``ToolCaller.decide(messages, tools, tool_choice)``: "speak or
call", then the call's arguments by schema-constrained infilling). This module is the small adapter the
agent talks to, so the pipeline and the Realtime server depend on ``ToolDecider``'s signature only.
Sans-I/O apart from ``load_tool_caller``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dlm_core import DiffusionEngine
from dlm_core.tools import Tool, ToolCall, ToolCaller, tool_slots

# "auto" | "none" | "required" | {"type": "function", "name": ...}: the OpenAI shape, as the decider takes it
ToolChoice = str | Mapping[str, str]

MAX_RESULT_CHARS = 240  # a tool's result, said: a sentence or two


class ToolDecider(Protocol):
    """Decides whether a turn calls a tool, and fills the call (``dlm_core.tools.ToolCaller``)."""

    def decide(
        self, messages: Sequence[Mapping[str, str]], tools: Sequence[Tool], tool_choice: ToolChoice = "auto"
    ) -> ToolCall | None: ...


@dataclass(frozen=True)
class ToolRequest:
    """The tools one reply may call, and how it must choose (``tool_choice``)."""

    tools: tuple[Tool, ...] = ()
    choice: ToolChoice = "auto"

    @property
    def offered(self) -> bool:
        """True when the decider is asked at all (tools declared, and the choice is not "none")."""
        return bool(self.tools) and self.choice != "none"


def load_tool_caller(reply: object) -> ToolDecider | None:
    """The tool caller on the reply model's diffusion engine (through any wrapper: the reply gate), or
    None for a reply model without one (the AR baseline, the teacher cannot call tools)."""
    while getattr(reply, "engine", None) is None and getattr(reply, "inner", None) is not None:
        reply = reply.inner  # type: ignore[attr-defined]
    engine = getattr(reply, "engine", None)
    return ToolCaller(engine) if isinstance(engine, DiffusionEngine) else None


def schema_checker() -> Callable[[Tool], object]:
    """The decoder's own check of a tool's schema (``dlm_core.tools.tool_slots``: raises
    ``ToolSchemaError`` naming a construct it cannot fill), so a client hears of it when it declares
    the tool rather than when a response fails."""
    return tool_slots


# -- a tool's result as words -------------------------------------------------------------------------
def _words(name: str) -> str:
    """'get_weather' / 'getWeather' → 'get weather' (how a sentence names a tool or a field)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ").lower().strip()


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | str):
        return str(value).strip() or None
    return None


def _spoken(value: Any) -> str:
    """A JSON value as short words: objects as 'key value' pairs, lists joined with 'and'."""
    if isinstance(value, Mapping):
        parts = []
        for key, v in value.items():
            said = _scalar(v)
            if said is None and isinstance(v, list):
                said = " and ".join(s for x in v if (s := _scalar(x)))
            if said:
                parts.append(f"{_words(str(key))} {said}")
        return ", ".join(parts)
    if isinstance(value, list):
        return " and ".join(s for x in value if (s := _spoken(x)))
    return _scalar(value) or ""


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") or text[:limit]


def spoken_result(output: str) -> str:
    """A function's output as the words the agent says: plain text as it is, JSON as plain words
    ({"temp_c": 18, "sky": "sunny"} → "Temp c 18, sky sunny."), cut to ``MAX_RESULT_CHARS`` at a word;
    an empty output is "Done." """
    text = output.strip()
    try:
        said = _spoken(json.loads(text))
    except ValueError:
        said = text
    said = _clip(" ".join(said.split()), MAX_RESULT_CHARS).strip()
    if not said:
        return "Done."
    said = said[0].upper() + said[1:]
    return said if said[-1] in ".!?" else said + "."
