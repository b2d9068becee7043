"""LLaDA-8B-Instruct / LLaDA-1.5 (GSAI-ML): a LLaMA-like masked-diffusion model in OLMo clothing.

Facts (checked against the released files, see docs in the module's tests and the report):
  * config.json: ``model_type: "llada"``, ``architectures: ["LLaDAModelLM"]``, OLMo keys ``d_model``,
    ``n_layers``, ``n_heads``, ``n_kv_heads`` (32 = MHA), ``mlp_hidden_size``, ``embedding_size``,
    ``rope_theta`` 500000, ``rms_norm_eps`` 1e-5, ``weight_tying`` false, ``block_type: "llama"``,
    ``mask_token_id`` 126336, ``eos_token_id``/``pad_token_id`` 126081.
  * tensors ``model.transformer.{wte, ln_f, ff_out}`` and ``model.transformer.blocks.{i}.{attn_norm,
    q_proj, k_proj, v_proj, attn_out, ff_norm, ff_proj, up_proj, ff_out}``; the MLP is
    ``ff_out(silu(ff_proj(x)) * up_proj(x))``, so ff_proj is the gate.
  * RoPE in the split-halves ("rotate_half") layout, as ours.
  * chat: ``<|startoftext|>`` then per message ``<|start_header_id|>{role}<|end_header_id|>\\n\\n{content|trim}<|eot_id|>``,
    then ``<|start_header_id|>assistant<|end_header_id|>\\n\\n``; no default system prompt.
  * stop on ``<|endoftext|>`` (126081) and ``<|eot_id|>`` (126348); full bidirectional attention, no logit shift.
"""

from __future__ import annotations

from typing import Any

from ..config import ModelConfig
from ..errors import ModelLoadError
from .base import (
    MAX_IMPORTED_POSITIONS,
    FamilySpec,
    Messages,
    TokenLookup,
    check_role,
    ids_in_vocab,
    native_names,
    require,
    resolve_id,
)

SPECIALS = (
    "<|startoftext|>",
    "<|endoftext|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|mdm_mask|>",
)
MASK_ID, EOS_ID, EOT_ID = 126336, 126081, 126348


def _detect(c: dict[str, Any]) -> bool:
    return c.get("model_type") == "llada" or "LLaDAModelLM" in (c.get("architectures") or [])


def _to_config(c: dict[str, Any], lookup: TokenLookup) -> ModelConfig:
    name = "llada"
    unsupported = {
        "block_type": ("llama", None),
        "layer_norm_type": ("rms", None),
        "activation_type": ("silu", "swiglu", None),
        "alibi": (False, None),
        "rope": (True, None),
        "attention_layer_norm": (False, None),
        "include_bias": (False, None),
        "scale_logits": (False, None),
    }
    for key, allowed in unsupported.items():
        if c.get(key) not in allowed:
            raise ModelLoadError(f"llada: {key}={c.get(key)!r} is not supported (expected one of {allowed})")
    d_model = int(require(c, "d_model", name))
    heads = int(require(c, "n_heads", name))
    kv_heads = 1 if c.get("multi_query_attention") else int(c.get("n_kv_heads") or heads)
    hidden = c.get("mlp_hidden_size") or int(c.get("mlp_ratio", 4)) * d_model
    vocab = int(c.get("embedding_size") or require(c, "vocab_size", name))
    eos = resolve_id(c, "eos_token_id", lookup, "<|endoftext|>", EOS_ID)
    eot = resolve_id(c, None, lookup, "<|eot_id|>", EOT_ID)
    return ModelConfig(
        vocab_size=vocab,
        hidden_size=d_model,
        num_layers=int(require(c, "n_layers", name)),
        num_heads=heads,
        num_kv_heads=kv_heads,
        intermediate_size=int(hidden),
        rope_theta=float(c.get("rope_theta", 10000.0)),
        rms_norm_eps=float(c.get("rms_norm_eps", 1e-5)),
        qkv_bias=bool(c.get("include_qkv_bias", False)),
        tie_word_embeddings=bool(c.get("weight_tying", False)),
        attention="full",
        block_size=1,
        gen_block_size=32,  # semi-autoregressive blocks of 32 avoid LLaDA's EOS overflow
        shift_logits=False,
        max_position_embeddings=min(int(c.get("max_sequence_length", 4096)), MAX_IMPORTED_POSITIONS),
        mask_token_id=resolve_id(c, "mask_token_id", lookup, "<|mdm_mask|>", MASK_ID),
        eos_token_ids=ids_in_vocab([eos, eot], vocab),
        pad_token_id=resolve_id(c, "pad_token_id", lookup, "<|endoftext|>", EOS_ID),
        family=name,
    )


_RENAME = {
    "attn_norm": "attn_norm",
    "mlp_norm": "ff_norm",
    "attn.q_proj": "q_proj",
    "attn.k_proj": "k_proj",
    "attn.v_proj": "v_proj",
    "attn.o_proj": "attn_out",
    "mlp.gate_proj": "ff_proj",
    "mlp.up_proj": "up_proj",
    "mlp.down_proj": "ff_out",
}


def _weight_names(cfg: ModelConfig) -> dict[str, str]:
    top = {
        "embed_tokens.weight": "model.transformer.wte.weight",
        "norm.weight": "model.transformer.ln_f.weight",
        "lm_head.weight": "model.transformer.ff_out.weight",
    }
    out: dict[str, str] = {}
    for native in native_names(cfg):
        if native in top:
            out[native] = top[native]
            continue
        _, i, rest = native.split(".", 2)  # layers.{i}.<module>.<param>
        module, param = rest.rsplit(".", 1)
        out[native] = f"model.transformer.blocks.{i}.{_RENAME[module]}.{param}"
    return out


def _render(messages: Messages, add_generation_prompt: bool) -> str:
    parts = ["<|startoftext|>"] if messages else []
    for m in messages:
        check_role(m["role"])
        parts.append(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>")
    if add_generation_prompt:
        parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(parts)


LLADA = FamilySpec(
    name="llada",
    description="LLaDA-8B-Instruct / LLaDA-1.5: LLaMA-like MHA, full attention, mask 126336, OLMo tensor names",
    detect=_detect,
    to_config=_to_config,
    weight_names=_weight_names,
    render_chat=_render,
    special_tokens=SPECIALS,
)
