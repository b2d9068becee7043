"""Normalised model configuration shared by every family (one dataclass, family-independent)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from .errors import ModelLoadError

Attention = Literal["full", "block_causal"]


@dataclass
class ModelConfig:
    """Everything the native transformer needs; loaders translate each family's config.json into this.

    Attention patterns:
      * ``full``: every context token sees every other context token (LLaDA, Dream). A context KV cache
        is then an approximation once new tokens are appended (see ``engine`` for the refresh policy).
      * ``block_causal``: token i sees token j iff ``j // block_size <= i // block_size``. With
        ``block_size == 1`` this is plain causal attention (our own models). Cached context is exact.
    In both cases the block being denoised sees all context plus itself (bidirectionally).

    Block-causal models with ``block_size > 1`` (Fast-dLLM v2, SDAR) denoise blocks aligned to absolute
    positions, exactly ``block_size`` long; ``ar_block_start`` (Fast-dLLM v2) decodes the first token of
    a block whose predecessor is cached autoregressively, before the block is denoised (see ``engine``).
    """

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    head_dim: int = 0  # 0 → hidden_size // num_heads
    rope_theta: float = 10000.0
    partial_rotary_factor: float = 1.0
    rms_norm_eps: float = 1e-6
    qkv_bias: bool = False
    qk_norm: bool = False
    tie_word_embeddings: bool = True
    attention: Attention = "block_causal"
    block_size: int = 1  # granularity of block-causal context attention
    gen_block_size: int = 32  # default length of a denoising block
    shift_logits: bool = False  # AR-adapted models predict token i at position i-1
    ar_block_start: bool = False  # first token of each block comes from the previous position's logits
    max_position_embeddings: int = 2048
    mask_token_id: int = 0
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int = 0
    family: str = "quickturn"
    # If set, the only tokens the model may generate (a small model's reply vocabulary); the engine
    # bans every other token. Empty = the whole vocabulary.
    output_token_ids: tuple[int, ...] = ()
    # > 0: a copy head (pointer over the cached context, see ``model.CopyHead``) of this width; the
    # model then returns log-probabilities that mix generating a token and copying one from the prompt.
    copy_head_dim: int = 0
    # (open, close) token ids: the tokens between them — the user's words — are read through a second
    # input table, ``embed_user`` (see ``model.user_turn_mask``). Empty = one input table for all.
    user_turn_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.head_dim == 0:
            if self.hidden_size % self.num_heads:
                raise ModelLoadError(
                    f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
                )
            self.head_dim = self.hidden_size // self.num_heads
        if self.num_heads % self.num_kv_heads:
            raise ModelLoadError(
                f"num_heads {self.num_heads} must be a multiple of num_kv_heads {self.num_kv_heads}"
            )
        if self.copy_head_dim < 0:
            raise ModelLoadError(f"copy_head_dim must be ≥ 0, got {self.copy_head_dim}")
        if self.block_size < 1:
            raise ModelLoadError(f"block_size must be ≥ 1, got {self.block_size}")
        if self.attention not in ("full", "block_causal"):
            raise ModelLoadError(f"unknown attention pattern {self.attention!r} (full | block_causal)")
        self.eos_token_ids = tuple(int(i) for i in self.eos_token_ids)
        self.output_token_ids = tuple(sorted({int(i) for i in self.output_token_ids}))
        if (
            self.output_token_ids
            and not 0 <= self.output_token_ids[0] <= self.output_token_ids[-1] < self.vocab_size
        ):
            raise ModelLoadError("output_token_ids must lie inside the vocabulary")
        self.user_turn_ids = tuple(int(i) for i in self.user_turn_ids)
        if self.user_turn_ids and (
            len(self.user_turn_ids) != 2 or not all(0 <= i < self.vocab_size for i in self.user_turn_ids)
        ):
            raise ModelLoadError(
                f"user_turn_ids must be two token ids of the vocabulary, got {self.user_turn_ids}"
            )
        for name in ("mask_token_id", "pad_token_id"):
            value = getattr(self, name)
            if not 0 <= value < self.vocab_size:
                raise ModelLoadError(f"{name}={value} is outside the vocabulary (size {self.vocab_size})")

    @property
    def aligned_blocks(self) -> bool:
        """Whether denoising blocks must sit on absolute multiples of ``block_size`` (block-causal, b > 1)."""
        return self.attention == "block_causal" and self.block_size > 1

    @property
    def rotary_dim(self) -> int:
        dim = int(self.head_dim * self.partial_rotary_factor)
        return dim - dim % 2

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["eos_token_ids"] = list(self.eos_token_ids)
        data["output_token_ids"] = list(self.output_token_ids)
        data["user_turn_ids"] = list(self.user_turn_ids)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelLoadError(f"unknown model config keys: {sorted(unknown)}")
        data = dict(data)
        for key in ("eos_token_ids", "output_token_ids", "user_turn_ids"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
