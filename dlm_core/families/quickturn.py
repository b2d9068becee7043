"""quickturn: our own small models (native tensor names, causal context, written by our trainer)."""

from __future__ import annotations

from typing import Any

from ..config import ModelConfig
from .base import FamilySpec, Messages, TokenLookup, check_role, native_names

QUICKTURN_SPECIALS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|pad|>", "<|mask|>")


def _to_config(cfg_json: dict[str, Any], lookup: TokenLookup) -> ModelConfig:
    fields = {
        k: v for k, v in cfg_json.items() if k not in ("model_type", "architectures", "quickturn_version")
    }
    return ModelConfig.from_dict(fields)


def _render(messages: Messages, add_generation_prompt: bool) -> str:
    parts = []
    for m in messages:
        check_role(m["role"])
        parts.append(f"<|{m['role']}|>{m['content'].strip()}<|end|>")
    if add_generation_prompt:
        parts.append("<|assistant|>")
    return "".join(parts)


QUICKTURN = FamilySpec(
    name="quickturn",
    description="quickturn's own small models (native tensor names, causal context, written by our trainer)",
    detect=lambda c: c.get("model_type") == "quickturn",
    to_config=_to_config,
    weight_names=lambda cfg: {n: n for n in native_names(cfg)},
    render_chat=_render,
    special_tokens=QUICKTURN_SPECIALS,
)
