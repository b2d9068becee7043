"""Tiny checkpoints in each family's exact on-disk format, plus the matching transformers reference model.

``write_family`` writes config.json (the keys the released checkpoints use), random weights under the
released tensor names (one file, or shards + ``model.safetensors.index.json``) and a tokenizer.json
that carries the family's special tokens. ``reference_model`` builds the architecture transformers
implements for that family (LLaMA for LLaDA, Qwen2 for Dream and Fast-dLLM v2, Qwen3 for SDAR) and
loads the same tensors through an independent, hand-written name map.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer

from dlm_core.families import FAMILIES

from .helpers import train_tokenizer

DIMS = dict(hidden=64, layers=2, heads=4, kv_heads=2, inter=128, head_dim=16)


@dataclass
class Fixture:
    family: str
    folder: Path
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]  # checkpoint name -> tensor
    ids: dict[str, int]  # special token -> id


def _config(family: str, v: int, ids: dict[str, int], block: int) -> dict[str, Any]:
    d = DIMS
    if family == "llada":
        return {
            "activation_type": "silu",
            "alibi": False,
            "architectures": ["LLaDAModelLM"],
            "attention_layer_norm": False,
            "block_type": "llama",
            "d_model": d["hidden"],
            "embedding_size": v,
            "eos_token_id": ids["<|endoftext|>"],
            "include_bias": False,
            "include_qkv_bias": False,
            "layer_norm_type": "rms",
            "mask_token_id": ids["<|mdm_mask|>"],
            "max_sequence_length": 4096,
            "mlp_hidden_size": d["inter"],
            "mlp_ratio": 4,
            "model_type": "llada",
            "n_heads": d["heads"],
            "n_kv_heads": d["heads"],
            "n_layers": d["layers"],
            "pad_token_id": ids["<|endoftext|>"],
            "rms_norm_eps": 1e-05,
            "rope": True,
            "rope_theta": 500000.0,
            "scale_logits": False,
            "vocab_size": v,
            "weight_tying": False,
        }
    qwen = {
        "hidden_act": "silu",
        "hidden_size": d["hidden"],
        "intermediate_size": d["inter"],
        "num_attention_heads": d["heads"],
        "num_hidden_layers": d["layers"],
        "num_key_value_heads": d["kv_heads"],
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "rope_scaling": None,
        "sliding_window": None,
        "use_sliding_window": False,
        "vocab_size": v,
        "bos_token_id": ids["<|endoftext|>"],
    }
    if family == "dream":
        return {
            **qwen,
            "architectures": ["DreamModel"],
            "model_type": "Dream",
            "max_position_embeddings": 131072,
            "tie_word_embeddings": False,
            "eos_token_id": ids["<|endoftext|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "mask_token_id": ids["<|mask|>"],
        }
    if family == "fast_dllm_v2":  # like the 1.5B: tied head, no mask id in config (tokenizer has it)
        return {
            **qwen,
            "architectures": ["Fast_dLLM_QwenForCausalLM"],
            "model_type": "Fast_dLLM_Qwen",
            "bd_size": block,
            "max_position_embeddings": 32768,
            "tie_word_embeddings": True,
            "eos_token_id": ids["<|im_end|>"],
            "layer_types": ["full_attention"] * d["layers"],
        }
    if family == "sdar":
        return {
            **qwen,
            "architectures": ["SDARForCausalLM"],
            "model_type": "sdar",
            "attention_bias": False,
            "block_size": block,
            "head_dim": d["head_dim"],
            "max_position_embeddings": 32768,
            "tie_word_embeddings": False,
            "eos_token_id": ids["<|endoftext|>"],
            "mask_token_id": ids["<|MASK|>"],
        }
    raise ValueError(family)


def _tensors(family: str, cfg: dict[str, Any], v: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    d = DIMS
    hd = d["head_dim"] if family == "sdar" else d["hidden"] // d["heads"]
    kv = d["heads"] if family == "llada" else d["kv_heads"]
    h, inter = d["hidden"], d["inter"]

    def w(*shape: int, scale: float = 0.3) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * scale

    def norm(n: int) -> torch.Tensor:
        return 1.0 + 0.1 * torch.randn(n, generator=gen)

    out: dict[str, torch.Tensor] = {}
    if family == "llada":
        out["model.transformer.wte.weight"] = w(v, h)
        out["model.transformer.ln_f.weight"] = norm(h)
        out["model.transformer.ff_out.weight"] = w(v, h)
        for i in range(d["layers"]):
            p = f"model.transformer.blocks.{i}."
            out[p + "attn_norm.weight"] = norm(h)
            out[p + "ff_norm.weight"] = norm(h)
            out[p + "q_proj.weight"] = w(d["heads"] * hd, h)
            out[p + "k_proj.weight"] = w(kv * hd, h)
            out[p + "v_proj.weight"] = w(kv * hd, h)
            out[p + "attn_out.weight"] = w(h, d["heads"] * hd)
            out[p + "ff_proj.weight"] = w(inter, h)
            out[p + "up_proj.weight"] = w(inter, h)
            out[p + "ff_out.weight"] = w(h, inter)
        return out
    out["model.embed_tokens.weight"] = w(v, h)
    out["model.norm.weight"] = norm(h)
    if not cfg["tie_word_embeddings"]:
        out["lm_head.weight"] = w(v, h)
    for i in range(d["layers"]):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = norm(h)
        out[p + "post_attention_layernorm.weight"] = norm(h)
        out[p + "self_attn.q_proj.weight"] = w(d["heads"] * hd, h)
        out[p + "self_attn.k_proj.weight"] = w(kv * hd, h)
        out[p + "self_attn.v_proj.weight"] = w(kv * hd, h)
        out[p + "self_attn.o_proj.weight"] = w(h, d["heads"] * hd)
        if family in ("dream", "fast_dllm_v2"):
            for proj, n in (("q_proj", d["heads"] * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
                out[p + f"self_attn.{proj}.bias"] = w(n, scale=0.1)
        if family == "sdar":
            out[p + "self_attn.q_norm.weight"] = norm(hd)
            out[p + "self_attn.k_norm.weight"] = norm(hd)
        out[p + "mlp.gate_proj.weight"] = w(inter, h)
        out[p + "mlp.up_proj.weight"] = w(inter, h)
        out[p + "mlp.down_proj.weight"] = w(h, inter)
    return out


def write_family(folder: Path, family: str, *, seed: int = 0, shards: int = 1, block: int = 8) -> Fixture:
    folder.mkdir(parents=True, exist_ok=True)
    spec = FAMILIES[family]
    train_tokenizer(folder / "tokenizer.json", specials=spec.special_tokens)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = {t: tok.token_to_id(t) for t in spec.special_tokens}
    v = tok.get_vocab_size()
    cfg = _config(family, v, ids, block)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    tensors = _tensors(family, cfg, v, torch.Generator().manual_seed(seed))
    names = sorted(tensors)
    if shards == 1:
        save_file({n: tensors[n].contiguous() for n in names}, str(folder / "model.safetensors"))
    else:
        weight_map = {}
        for k in range(shards):
            part = names[k::shards]
            fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
            save_file({n: tensors[n].contiguous() for n in part}, str(folder / fname))
            weight_map.update(dict.fromkeys(part, fname))
        index = {
            "metadata": {"total_size": sum(t.numel() * 4 for t in tensors.values())},
            "weight_map": weight_map,
        }
        (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return Fixture(family, folder, cfg, tensors, ids)


# -- the transformers reference ---------------------------------------------------------------------------

_LLADA_TO_LLAMA = {
    "attn_norm": "input_layernorm",
    "ff_norm": "post_attention_layernorm",
    "q_proj": "self_attn.q_proj",
    "k_proj": "self_attn.k_proj",
    "v_proj": "self_attn.v_proj",
    "attn_out": "self_attn.o_proj",
    "ff_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "ff_out": "mlp.down_proj",
}


def _llada_state_for_llama(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for name, t in tensors.items():
        if name == "model.transformer.wte.weight":
            out["model.embed_tokens.weight"] = t
        elif name == "model.transformer.ln_f.weight":
            out["model.norm.weight"] = t
        elif name == "model.transformer.ff_out.weight":
            out["lm_head.weight"] = t
        else:
            _, _, _, i, module, param = name.split(".")
            out[f"model.layers.{i}.{_LLADA_TO_LLAMA[module]}.{param}"] = t
    return out


def reference_model(fx: Fixture) -> torch.nn.Module:
    """The transformers architecture of the family, eager attention, fp32, with the fixture's weights."""
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
        Qwen3Config,
        Qwen3ForCausalLM,
    )

    c, d = fx.config, DIMS
    if fx.family == "llada":
        cfg = LlamaConfig(
            vocab_size=c["vocab_size"],
            hidden_size=d["hidden"],
            intermediate_size=d["inter"],
            num_hidden_layers=d["layers"],
            num_attention_heads=d["heads"],
            num_key_value_heads=d["heads"],
            rms_norm_eps=c["rms_norm_eps"],
            rope_parameters={"rope_type": "default", "rope_theta": c["rope_theta"]},
            tie_word_embeddings=False,
            attention_bias=False,
            mlp_bias=False,
            max_position_embeddings=512,
        )
        cls, state = LlamaForCausalLM, _llada_state_for_llama(fx.tensors)
    else:
        common = dict(
            vocab_size=c["vocab_size"],
            hidden_size=d["hidden"],
            intermediate_size=d["inter"],
            num_hidden_layers=d["layers"],
            num_attention_heads=d["heads"],
            num_key_value_heads=d["kv_heads"],
            rms_norm_eps=c["rms_norm_eps"],
            rope_parameters={"rope_type": "default", "rope_theta": c["rope_theta"]},
            tie_word_embeddings=c["tie_word_embeddings"],
            max_position_embeddings=512,
        )
        if fx.family == "sdar":
            cfg, cls = Qwen3Config(head_dim=d["head_dim"], attention_bias=False, **common), Qwen3ForCausalLM
        else:
            cfg, cls = Qwen2Config(**common), Qwen2ForCausalLM
        state = dict(fx.tensors)
    cfg._attn_implementation = "eager"
    model = cls(cfg).float().eval()
    missing, unexpected = model.load_state_dict(state, strict=False)
    allowed_missing = {"lm_head.weight"} if c.get("tie_word_embeddings") else set()
    assert set(missing) <= allowed_missing and not unexpected, (missing, unexpected)
    if c.get("tie_word_embeddings"):
        model.tie_weights()
    return model


def additive_mask(visible: torch.Tensor) -> torch.Tensor:
    """bool [T, T] (True = may attend) -> the float [1, 1, T, T] mask transformers adds to attention scores."""
    return torch.where(visible, 0.0, torch.finfo(torch.float32).min)[None, None]
