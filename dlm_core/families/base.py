"""What a family is, plus the helpers every family shares (native names, HF names, id resolution)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import ModelConfig
from ..errors import ModelLoadError

Messages = Sequence[dict[str, str]]
# token string -> id in the checkpoint's tokenizer (None when the tokenizer lacks it)
TokenLookup = Callable[[str], "int | None"]

# Imported checkpoints advertise huge windows (Dream: 131072). The rotary table is precomputed for every
# position, so we cap it: a voice agent's conversations stay far below this.
MAX_IMPORTED_POSITIONS = 8192


@dataclass(frozen=True)
class FamilySpec:
    name: str
    description: str
    detect: Callable[[dict[str, Any]], bool]
    to_config: Callable[[dict[str, Any], TokenLookup], ModelConfig]
    weight_names: Callable[[ModelConfig], dict[str, str]]  # native name -> checkpoint name
    render_chat: Callable[[Messages, bool], str]
    default_system: str | None = None
    # Special token strings the family's tokenizer defines (documentation and test fixtures).
    special_tokens: tuple[str, ...] = ()


def native_names(cfg: ModelConfig) -> list[str]:
    """Every parameter name of the native Transformer for this config (our checkpoints use these)."""
    names = ["embed_tokens.weight", "norm.weight"]
    if not cfg.tie_word_embeddings:
        names.append("lm_head.weight")
    if cfg.user_turn_ids:
        names.append("embed_user.weight")
    for i in range(cfg.num_layers):
        p = f"layers.{i}."
        names += [p + "attn_norm.weight", p + "mlp_norm.weight"]
        names += [p + f"attn.{proj}.weight" for proj in ("q_proj", "k_proj", "v_proj", "o_proj")]
        if cfg.qkv_bias:
            names += [p + f"attn.{proj}.bias" for proj in ("q_proj", "k_proj", "v_proj")]
        if cfg.qk_norm:
            names += [p + "attn.q_norm.weight", p + "attn.k_norm.weight"]
        names += [p + f"mlp.{proj}.weight" for proj in ("gate_proj", "up_proj", "down_proj")]
    if cfg.copy_head_dim:
        names += [
            "copy_head.query.weight",
            "copy_head.key.weight",
            "copy_head.gate.weight",
            "copy_head.gate.bias",
        ]
    return names


def hf_layer_names(cfg: ModelConfig) -> dict[str, str]:
    """Native name -> name in a transformers LLaMA/Qwen2/Qwen3 checkpoint."""
    return {native: _hf_name(native) for native in native_names(cfg)}


def _hf_name(native: str) -> str:
    if native in ("embed_tokens.weight", "norm.weight"):
        return "model." + native
    if native == "lm_head.weight":
        return native
    native = native.replace("layers.", "model.layers.", 1)
    native = native.replace(".attn_norm.", ".input_layernorm.").replace(
        ".mlp_norm.", ".post_attention_layernorm."
    )
    return native.replace(".attn.", ".self_attn.")


def resolve_id(
    cfg_json: dict[str, Any], key: str | None, lookup: TokenLookup, token: str | None, default: int | None
) -> int | None:
    """A special id: config.json's value if present, else the tokenizer's id for ``token``, else ``default``.

    Real checkpoints carry the documented ids; tiny test fixtures carry their own small ids, and the
    same code path serves both.
    """
    if key is not None:
        value = cfg_json.get(key)
        if isinstance(value, list):  # eos_token_id may be a list
            value = value[0] if value else None
        if value is not None:
            return int(value)
    if token is not None:
        found = lookup(token)
        if found is not None:
            return int(found)
    return default


def ids_in_vocab(ids: Sequence[int | None], vocab_size: int) -> tuple[int, ...]:
    """Distinct ids (in order) that exist in the vocabulary."""
    out: list[int] = []
    for i in ids:
        if i is not None and 0 <= i < vocab_size and i not in out:
            out.append(i)
    return tuple(out)


def require(cfg_json: dict[str, Any], key: str, family: str) -> Any:
    if key not in cfg_json or cfg_json[key] is None:
        raise ModelLoadError(f"config.json of a {family!r} checkpoint lacks the required key {key!r}")
    return cfg_json[key]


def check_rope_scaling(cfg_json: dict[str, Any], family: str) -> None:
    scaling = cfg_json.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type")) not in (None, "default"):
        raise ModelLoadError(f"{family}: rope_scaling {scaling!r} is not supported (only plain RoPE)")


def render_chatml(messages: Messages, add_generation_prompt: bool, default_system: str | None) -> str:
    """ChatML as the Qwen templates write it: ``<|im_start|>role\\ncontent<|im_end|>\\n`` per message."""
    parts: list[str] = []
    if default_system is not None and (not messages or messages[0]["role"] != "system"):
        parts.append(f"<|im_start|>system\n{default_system}<|im_end|>\n")
    for m in messages:
        check_role(m["role"])
        parts.append(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n")
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def check_role(role: str) -> None:
    if role not in ("system", "user", "assistant"):
        raise ValueError(f"unknown chat role {role!r}")
