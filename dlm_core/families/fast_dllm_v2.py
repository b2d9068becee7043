"""Fast_dLLM_v2_1.5B / _7B (Efficient-Large-Model, NVlabs): Qwen2.5-Instruct fine-tuned for block diffusion.

Facts: config.json ``model_type: "Fast_dLLM_Qwen"``, ``architectures: ["Fast_dLLM_QwenForCausalLM"]``,
Qwen2 keys plus ``bd_size`` (32). Tensors use transformers' Qwen2 names; q/k/v carry a bias; the 1.5B
ties its head to the embedding (Qwen2.5-1.5B), the 7B does not. Mask token ``|<MASK>|`` = 151665,
stop token ``<|im_end|>`` = 151645 (the reference ``generate`` defaults).

Attention is block-causal over blocks of ``bd_size`` aligned to absolute positions (``eval_mask``:
``q // bs >= k // bs``). The reference ``generate``:
  * prefills only the prompt's whole blocks (``input_ids[:, :len // bs * bs]``); the prompt's tail
    becomes the head of the first denoising block, which is padded with masks to ``bs``;
  * shifts logits (``cat([logits[:, :1], logits[:, :-1]])``): position i is predicted at i-1;
  * after a block is complete it runs the block once more to cache it and takes the argmax of the
    last position as the next block's first token (so every later block starts with one AR token).
The engine follows all three (``ModelConfig.ar_block_start``). Chat: the Qwen2.5-Instruct ChatML
template (default system ``You are Qwen, created by Alibaba Cloud. You are a helpful assistant.``).
"""

from __future__ import annotations

from typing import Any

from ..config import ModelConfig
from .base import FamilySpec, Messages, TokenLookup, hf_layer_names, ids_in_vocab, render_chatml, resolve_id
from .qwen import QWEN_SPECIALS, qwen_config

MASK_TOKEN = "|<MASK>|"
SPECIALS = (*QWEN_SPECIALS, MASK_TOKEN)
DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
MASK_ID, EOT_ID, EOS_ID = 151665, 151645, 151643


def _detect(c: dict[str, Any]) -> bool:
    archs = c.get("architectures") or []
    return c.get("model_type") == "Fast_dLLM_Qwen" or "Fast_dLLM_QwenForCausalLM" in archs


def _to_config(c: dict[str, Any], lookup: TokenLookup) -> ModelConfig:
    block = int(c.get("bd_size") or 32)
    eot = resolve_id(c, None, lookup, "<|im_end|>", EOT_ID)
    eos = resolve_id(c, None, lookup, "<|endoftext|>", EOS_ID)
    return qwen_config(
        c,
        family="fast_dllm_v2",
        qkv_bias=True,
        qk_norm=False,
        attention="block_causal",
        block_size=block,
        gen_block_size=block,
        shift_logits=True,
        ar_block_start=True,
        mask_token_id=resolve_id(c, "mask_token_id", lookup, MASK_TOKEN, MASK_ID),
        eos_token_ids=ids_in_vocab([eot, eos], int(c.get("vocab_size", 0))),
        pad_token_id=resolve_id(c, "pad_token_id", lookup, "<|endoftext|>", EOS_ID),
    )


def _render(messages: Messages, add_generation_prompt: bool) -> str:
    return render_chatml(messages, add_generation_prompt, DEFAULT_SYSTEM)


FAST_DLLM_V2 = FamilySpec(
    name="fast_dllm_v2",
    description="Fast_dLLM_v2 1.5B/7B: Qwen2 layout, block-causal (bd_size 32), shifted logits, mask 151665",
    detect=_detect,
    to_config=_to_config,
    weight_names=hf_layer_names,
    render_chat=_render,
    default_system=DEFAULT_SYSTEM,
    special_tokens=SPECIALS,
)
