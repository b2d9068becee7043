"""Dream-v0-Instruct-7B (Dream-org): Qwen2.5-7B weights trained as a full-attention masked-diffusion LM.

Facts: config.json ``model_type: "Dream"``, ``architectures: ["DreamModel"]``, Qwen2 keys (hidden 3584,
28 layers, 28 q / 4 kv heads, FFN 18944, vocab 152064, ``rope_theta`` 1e6, ``rms_norm_eps`` 1e-6, untied
head), ``mask_token_id`` 151666 (``<|mask|>``), bos/eos/pad 151643. Tensors use transformers' Qwen2 names
(``model.layers.{i}.self_attn.q_proj.{weight,bias}`` …, ``lm_head.weight``); q/k/v carry a bias.
Logits are shifted: position i is predicted by the output at i-1 (``generation_utils``:
``logits = cat([logits[:, :1], logits[:, :-1]], 1)``). Chat: the Qwen2.5 ChatML template, which
injects ``You are a helpful assistant.`` when the first message is not a system one. Stop on
``<|endoftext|>`` and ``<|im_end|>``.
"""

from __future__ import annotations

from typing import Any

from ..config import ModelConfig
from .base import FamilySpec, Messages, TokenLookup, hf_layer_names, ids_in_vocab, render_chatml, resolve_id
from .qwen import QWEN_SPECIALS, qwen_config

SPECIALS = (*QWEN_SPECIALS, "<|beginoftext|>", "<|mask|>")
DEFAULT_SYSTEM = "You are a helpful assistant."
MASK_ID, EOS_ID, EOT_ID = 151666, 151643, 151645


def _detect(c: dict[str, Any]) -> bool:
    return c.get("model_type") in ("Dream", "dream") or "DreamModel" in (c.get("architectures") or [])


def _to_config(c: dict[str, Any], lookup: TokenLookup) -> ModelConfig:
    eos = resolve_id(c, "eos_token_id", lookup, "<|endoftext|>", EOS_ID)
    eot = resolve_id(c, None, lookup, "<|im_end|>", EOT_ID)
    return qwen_config(
        c,
        family="dream",
        qkv_bias=True,
        qk_norm=False,
        attention="full",
        block_size=1,
        gen_block_size=32,
        shift_logits=True,
        mask_token_id=resolve_id(c, "mask_token_id", lookup, "<|mask|>", MASK_ID),
        eos_token_ids=ids_in_vocab([eos, eot], int(c.get("vocab_size", 0))),
        pad_token_id=resolve_id(c, "pad_token_id", lookup, "<|endoftext|>", EOS_ID),
    )


def _render(messages: Messages, add_generation_prompt: bool) -> str:
    return render_chatml(messages, add_generation_prompt, DEFAULT_SYSTEM)


DREAM = FamilySpec(
    name="dream",
    description="Dream-v0-Instruct-7B: Qwen2 layout, GQA, qkv bias, shifted logits, full attention, mask 151666",
    detect=_detect,
    to_config=_to_config,
    weight_names=hf_layer_names,
    render_chat=_render,
    default_system=DEFAULT_SYSTEM,
    special_tokens=SPECIALS,
)
