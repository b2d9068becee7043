"""Per-family facts in one place: how to read config.json, weight names, special ids, chat template.

A family is detected from a checkpoint folder's ``config.json``. Everything else in dlm_core is
family-independent: the loader turns a family's files into a ``ModelConfig`` plus native weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import ModelConfig
from .errors import ModelLoadError

Messages = Sequence[dict[str, str]]


@dataclass(frozen=True)
class FamilySpec:
    name: str
    description: str
    detect: Callable[[dict[str, Any]], bool]
    to_config: Callable[[dict[str, Any]], ModelConfig]
    weight_names: Callable[[ModelConfig], dict[str, str]]  # native name -> checkpoint name
    render_chat: Callable[[Messages, bool], str]
    default_system: str | None = None
    # Weight names a checkpoint may carry that the native model does not use (e.g. rotary caches).
    ignored_weights: tuple[str, ...] = field(default_factory=tuple)


def hf_layer_names(cfg: ModelConfig) -> dict[str, str]:
    """Native name -> name in a transformers LLaMA/Qwen2/Qwen3 checkpoint."""
    return {native: _hf_name(native) for native in native_names(cfg)}


def _hf_name(native: str) -> str:
    if native in ("embed_tokens.weight", "norm.weight"):
        return "model." + native
    if native == "lm_head.weight":
        return native
    native = native.replace("layers.", "model.layers.", 1)
    native = native.replace(".attn_norm.", ".input_layernorm.").replace(".mlp_norm.", ".post_attention_layernorm.")
    return native.replace(".attn.", ".self_attn.")


def native_names(cfg: ModelConfig) -> list[str]:
    """Every parameter name of the native Transformer for this config (our checkpoints use these)."""
    names = ["embed_tokens.weight", "norm.weight"]
    if not cfg.tie_word_embeddings:
        names.append("lm_head.weight")
    for i in range(cfg.num_layers):
        p = f"layers.{i}."
        names += [p + "attn_norm.weight", p + "mlp_norm.weight"]
        names += [p + f"attn.{proj}.weight" for proj in ("q_proj", "k_proj", "v_proj", "o_proj")]
        if cfg.qkv_bias:
            names += [p + f"attn.{proj}.bias" for proj in ("q_proj", "k_proj", "v_proj")]
        if cfg.qk_norm:
            names += [p + "attn.q_norm.weight", p + "attn.k_norm.weight"]
        names += [p + f"mlp.{proj}.weight" for proj in ("gate_proj", "up_proj", "down_proj")]
    return names


# --- quickturn: our own small models ------------------------------------------------------------

QUICKTURN_SPECIALS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|pad|>", "<|mask|>")


def _quickturn_fields(cfg_json: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg_json.items() if k not in ("model_type", "architectures", "quickturn_version")}


def _render_quickturn(messages: Messages, add_generation_prompt: bool) -> str:
    parts = []
    for m in messages:
        role = m["role"]
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"unknown chat role {role!r}")
        parts.append(f"<|{role}|>{m['content'].strip()}<|end|>")
    if add_generation_prompt:
        parts.append("<|assistant|>")
    return "".join(parts)


QUICKTURN = FamilySpec(
    name="quickturn",
    description="quickturn's own small models (native tensor names, causal context, written by our trainer)",
    detect=lambda c: c.get("model_type") == "quickturn",
    to_config=lambda c: ModelConfig.from_dict(_quickturn_fields(c)),
    weight_names=lambda cfg: {n: n for n in native_names(cfg)},
    render_chat=_render_quickturn,
)


FAMILIES: dict[str, FamilySpec] = {QUICKTURN.name: QUICKTURN}


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
