"""Tool calls for a diffusion LM: decide "speak or call", then fill a call's arguments by
schema-constrained infilling (the skeleton is fixed, each slot is decoded under its constraint).

This module holds the types every consumer shares (the agent's skills, the Realtime server); the
decoder that fills them lives beside them (``ToolCaller``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import GenerationError


class ToolSchemaError(GenerationError):
    """A tool's definition cannot be decoded under constraints (an unsupported JSON-schema construct)."""


@dataclass(frozen=True)
class Tool:
    """One callable tool: a name, what it does, and its parameters as a JSON-schema object
    (``{"type": "object", "properties": {...}, "required": [...]}``) — the shape OpenAI's function
    tools use."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ToolCall:
    """A decided call: the tool's name and its arguments (valid for the tool's schema by construction)."""

    name: str
    arguments: Mapping[str, Any]
    confidence: float = 1.0  # the decoder's probability for "call this tool" (for traces and gates)

    def arguments_json(self) -> str:
        return json.dumps(dict(self.arguments), ensure_ascii=False, separators=(",", ":"))
