"""Shared reading of Qwen2/Qwen3-layout config.json files (Dream, Fast-dLLM v2 and SDAR use them)."""

from __future__ import annotations

from typing import Any

from ..config import Attention, ModelConfig
from ..errors import ModelLoadError
from .base import MAX_IMPORTED_POSITIONS, check_rope_scaling, require

QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def rope_theta(cfg_json: dict[str, Any], default: float) -> float:
    """transformers ≤ 4 writes ``rope_theta``; transformers 5 nests it in ``rope_parameters``."""
    if cfg_json.get("rope_theta") is not None:
        return float(cfg_json["rope_theta"])
    params = cfg_json.get("rope_parameters") or {}
    return float(params.get("rope_theta", default))


def qwen_config(
    cfg_json: dict[str, Any],
    *,
    family: str,
    qkv_bias: bool,
    qk_norm: bool,
    attention: Attention,
    block_size: int,
    gen_block_size: int,
    shift_logits: bool,
    mask_token_id: int,
    eos_token_ids: tuple[int, ...],
    pad_token_id: int,
    ar_block_start: bool = False,
) -> ModelConfig:
    if cfg_json.get("use_sliding_window"):
        raise ModelLoadError(f"{family}: sliding-window attention is not supported")
    if cfg_json.get("hidden_act", "silu") != "silu":
        raise ModelLoadError(f"{family}: hidden_act {cfg_json['hidden_act']!r} is not supported (silu only)")
    check_rope_scaling(cfg_json, family)
    heads = int(require(cfg_json, "num_attention_heads", family))
    return ModelConfig(
        vocab_size=int(require(cfg_json, "vocab_size", family)),
        hidden_size=int(require(cfg_json, "hidden_size", family)),
        num_layers=int(require(cfg_json, "num_hidden_layers", family)),
        num_heads=heads,
        num_kv_heads=int(cfg_json.get("num_key_value_heads") or heads),
        intermediate_size=int(require(cfg_json, "intermediate_size", family)),
        head_dim=int(cfg_json.get("head_dim") or 0),
        rope_theta=rope_theta(cfg_json, 10000.0),
        rms_norm_eps=float(cfg_json.get("rms_norm_eps", 1e-6)),
        qkv_bias=qkv_bias,
        qk_norm=qk_norm,
        tie_word_embeddings=bool(cfg_json.get("tie_word_embeddings", False)),
        attention=attention,
        block_size=block_size,
        gen_block_size=gen_block_size,
        shift_logits=shift_logits,
        ar_block_start=ar_block_start,
        max_position_embeddings=min(
            int(cfg_json.get("max_position_embeddings", 32768)), MAX_IMPORTED_POSITIONS
        ),
        mask_token_id=mask_token_id,
        eos_token_ids=eos_token_ids,
        pad_token_id=pad_token_id,
        family=family,
    )
