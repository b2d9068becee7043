"""Per-family facts, one small module each: how to read config.json, weight names, special ids, chat.

A family is detected from a checkpoint folder's ``config.json`` (``model_type`` / ``architectures``).
Everything else in dlm_core is family-independent: the loader turns a family's files into a
``ModelConfig`` plus native weights.

    quickturn     our own small models
    llada         LLaDA-8B-Instruct, LLaDA-1.5
    dream         Dream-v0-Instruct-7B
    fast_dllm_v2  Fast_dLLM_v2_1.5B / _7B
    sdar          SDAR-1.7B/4B-Chat
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelLoadError
from .base import FamilySpec, Messages, TokenLookup, hf_layer_names, native_names
from .dream import DREAM
from .fast_dllm_v2 import FAST_DLLM_V2
from .llada import LLADA
from .quickturn import QUICKTURN, QUICKTURN_SPECIALS
from .sdar import SDAR

FAMILIES: dict[str, FamilySpec] = {f.name: f for f in (QUICKTURN, LLADA, DREAM, FAST_DLLM_V2, SDAR)}


def register_family(spec: FamilySpec) -> None:
    FAMILIES[spec.name] = spec


def detect_family(cfg_json: dict[str, Any], override: str | None = None) -> FamilySpec:
    if override is not None:
        if override not in FAMILIES:
            raise ModelLoadError(f"unknown model family {override!r}; known: {', '.join(sorted(FAMILIES))}")
        return FAMILIES[override]
    for spec in FAMILIES.values():
        if spec.detect(cfg_json):
            return spec
    hint = cfg_json.get("model_type") or cfg_json.get("architectures")
    raise ModelLoadError(
        f"cannot tell which diffusion-LM family this checkpoint is (model_type/architectures: {hint!r}); "
        f"known families: {', '.join(sorted(FAMILIES))}. Pass family=... to force one."
    )


__all__ = [
    "DREAM",
    "FAMILIES",
    "FAST_DLLM_V2",
    "LLADA",
    "QUICKTURN",
    "QUICKTURN_SPECIALS",
    "SDAR",
    "FamilySpec",
    "Messages",
    "TokenLookup",
    "detect_family",
    "hf_layer_names",
    "native_names",
    "register_family",
]
