"""SDAR-1.7B/4B-Chat (JetLM): Qwen3 converted to block diffusion.

Facts: config.json ``model_type: "sdar"``, ``architectures: ["SDARForCausalLM"]``, Qwen3 keys (1.7B:
hidden 2048, 28 layers, 16 q / 8 kv heads, ``head_dim`` 128, FFN 6144, vocab 151936, ``rope_theta`` 1e6,
``tie_word_embeddings`` false), plus ``block_size`` 4 and ``mask_token_id`` 151669 (``<|MASK|>``);
bos/eos 151643. Tensors use transformers' Qwen3 names, with per-head ``q_norm``/``k_norm`` RMSNorm
applied before RoPE; no q/k/v bias. No logit shift.

Generation (``JetAstra/SDAR:generate.py``): blocks are aligned to absolute positions; the prompt's
whole blocks are prefilled, its tail heads the first denoising block (padded with masks to the block
size), each block attends to all earlier blocks and bidirectionally to itself, and a finished block is
run once more to store its keys/values. The engine does the same. Chat: ChatML without a default
system prompt (Qwen3 style). Stop on ``<|endoftext|>`` and ``<|im_end|>``.
"""

from __future__ import annotations

from typing import Any

from ..config import ModelConfig
from ..errors import ModelLoadError
from .base import FamilySpec, Messages, TokenLookup, hf_layer_names, ids_in_vocab, render_chatml, resolve_id
from .qwen import QWEN_SPECIALS, qwen_config

SPECIALS = (*QWEN_SPECIALS, "<|MASK|>")
MASK_ID, EOS_ID, EOT_ID = 151669, 151643, 151645


def _detect(c: dict[str, Any]) -> bool:
    return c.get("model_type") == "sdar" or "SDARForCausalLM" in (c.get("architectures") or [])


def _to_config(c: dict[str, Any], lookup: TokenLookup) -> ModelConfig:
    if c.get("attention_bias"):
        raise ModelLoadError("sdar: attention_bias=true (biased q/k/v/o projections) is not supported")
    block = int(c.get("block_size") or 4)
    eos = resolve_id(c, "eos_token_id", lookup, "<|endoftext|>", EOS_ID)
    eot = resolve_id(c, None, lookup, "<|im_end|>", EOT_ID)
    return qwen_config(
        c,
        family="sdar",
        qkv_bias=False,
        qk_norm=True,
        attention="block_causal",
        block_size=block,
        gen_block_size=block,
        shift_logits=False,
        mask_token_id=resolve_id(c, "mask_token_id", lookup, "<|MASK|>", MASK_ID),
        eos_token_ids=ids_in_vocab([eos, eot], int(c.get("vocab_size", 0))),
        pad_token_id=resolve_id(c, "pad_token_id", lookup, "<|endoftext|>", EOS_ID),
    )


def _render(messages: Messages, add_generation_prompt: bool) -> str:
    return render_chatml(messages, add_generation_prompt, None)


SDAR = FamilySpec(
    name="sdar",
    description="SDAR-1.7B/4B-Chat: Qwen3 layout with QK-norm, block-causal (block 4), mask 151669",
    detect=_detect,
    to_config=_to_config,
    weight_names=hf_layer_names,
    render_chat=_render,
    special_tokens=SPECIALS,
)
