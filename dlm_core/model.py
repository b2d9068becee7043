"""One native transformer for every diffusion-LM family we load.

A decoder-style stack (RMSNorm, RoPE, MHA/GQA, SwiGLU) whose attention pattern is chosen by the caller:
there is no built-in causal mask. Three entry points cover all uses:

* ``forward_masked(tokens, mask)``       no cache, explicit boolean mask: training and parity tests;
* ``forward_context(tokens, start)``     append tokens to the static KV cache (prefill / block commit);
* ``forward_block(tokens, start, ...)``  one denoising step: the block attends to the cached context
                                         and to itself, and writes nothing to the cache.

Models with a copy head (``copy_head_dim > 0``, our small embedded model) return log-probabilities
from ``forward_block`` that mix generating a token with copying one from the cached context. Models
with ``user_turn_ids`` read the user's words through a second input table (``user_turn_mask``).

The KV cache is allocated once (static shapes, gpt-fast style) so the block step can be captured in a
CUDA graph. Positions enter as device tensors; nothing in ``forward_block`` synchronises with the host.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        # Normalise in fp32 like the reference implementations, then cast back.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


class RotaryTable(nn.Module):
    """Precomputed cos/sin for every position; rows are gathered by a positions tensor."""

    def __init__(self, rotary_dim: int, max_positions: int, theta: float) -> None:
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim))
        angles = torch.outer(torch.arange(max_positions, dtype=torch.float64), inv_freq)
        emb = torch.cat([angles, angles], dim=-1)  # "rotate_half" layout used by LLaMA/Qwen
        self.register_buffer("cos", emb.cos().float(), persistent=False)
        self.register_buffer("sin", emb.sin().float(), persistent=False)

    def forward(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        return self.cos[positions].to(dtype), self.sin[positions].to(dtype)


def _rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x: [B, H, T, D]; cos/sin: [T, R] with R ≤ D (partial rotary leaves the tail untouched)."""
    rot = cos.shape[-1]
    if rot == x.shape[-1]:
        return x * cos + _rotate_half(x) * sin
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    return torch.cat([x_rot * cos + _rotate_half(x_rot) * sin, x_pass], dim=-1)


class KVCache(nn.Module):
    """Static per-layer key/value storage: [batch, kv_heads, max_len, head_dim]."""

    def __init__(self, batch: int, kv_heads: int, max_len: int, head_dim: int, dtype, device) -> None:
        super().__init__()
        shape = (batch, kv_heads, max_len, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    @property
    def max_len(self) -> int:
        return self.k.shape[2]


def _repeat_kv(x: Tensor, rep: int) -> Tensor:
    """[B, Hkv, T, D] -> [B, Hkv * rep, T, D], each kv head repeated for its query group (expand + reshape:
    no host sync, unlike some versions of ``repeat_interleave``)."""
    b, h, t, d = x.shape
    return x[:, :, None].expand(b, h, rep, t, d).reshape(b, h * rep, t, d)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.num_heads * cfg.head_dim, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * cfg.head_dim, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * cfg.head_dim, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(cfg.num_heads * cfg.head_dim, cfg.hidden_size, bias=False)
        self.q_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps) if cfg.qk_norm else None
        self.k_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps) if cfg.qk_norm else None
        self.cache: KVCache | None = None

    def _project(self, x: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if self.q_norm is not None and self.k_norm is not None:  # Qwen3 / SDAR: norm before RoPE
            q, k = self.q_norm(q), self.k_norm(k)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        if self.num_kv_heads != self.num_heads:
            k, v = (
                _repeat_kv(k, self.num_heads // self.num_kv_heads),
                _repeat_kv(v, self.num_heads // self.num_kv_heads),
            )
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        b, _, t, _ = out.shape
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.num_heads * self.head_dim))

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        mask: Tensor | None,
        mode: str,
        write_at: Tensor | None = None,
        kv_len: int = 0,
    ) -> Tensor:
        q, k, v = self._project(x, cos, sin)
        if mode == "masked":  # no cache
            return self._attend(q, k, v, mask)
        cache = self.cache
        assert cache is not None, "call Transformer.setup_cache() first"
        if mode == "context":  # write, then read everything up to kv_len
            cache.k.index_copy_(2, write_at, k)
            cache.v.index_copy_(2, write_at, v)
            return self._attend(q, cache.k[:, :, :kv_len], cache.v[:, :, :kv_len], mask)
        # mode == "block": read cached context, append this block's keys without storing them
        keys = torch.cat([cache.k[:, :, :kv_len], k], dim=2)
        values = torch.cat([cache.v[:, :, :kv_len], v], dim=2)
        return self._attend(q, keys, values, mask)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def vocab_bias(allowed: Iterable[int], vocab_size: int, device: torch.device | str = "cpu") -> Tensor:
    """[V] 0 on the ``allowed`` token ids, -inf elsewhere: restricts a softmax to a sub-vocabulary."""
    bias = torch.full((vocab_size,), float("-inf"), device=device)
    bias[list(allowed)] = 0.0
    return bias


class CopyHead(nn.Module):
    """Pointer-generator output: p = (1 - g) · softmax(vocabulary logits) + g · attention over context tokens.

    A small model trained here never learned to look a name or a time up in its prompt: that needs an
    induction circuit it plateaus before forming. A pointer makes copying one learned lookup: the query
    of a reply position scores the keys of the context positions (final hidden states, cached at
    prefill), the scores become a distribution over the context's token ids, and a gate mixes it with
    the generator. It also lets the model say tokens outside its output vocabulary (an unseen name).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.dim = cfg.copy_head_dim
        self.query = nn.Linear(cfg.hidden_size, cfg.copy_head_dim, bias=False)
        self.key = nn.Linear(cfg.hidden_size, cfg.copy_head_dim, bias=False)
        self.gate = nn.Linear(cfg.hidden_size, 1)
        self.allowed = cfg.output_token_ids
        self._vocab_bias: Tensor | None = None
        # Whole-word copies (inference only, ``set_word_pieces``): per token id, whether its text can
        # continue a word (starts with a letter) and whether it can be continued (ends with one);
        # ``whole_words`` switches the rule per reply without recapturing a graph.
        self.continues: Tensor | None = None
        self.continuable: Tensor | None = None
        self.whole_words: Tensor | None = None

    def set_word_pieces(self, texts: list[str], device: torch.device | str) -> None:
        """Enable the whole-word copy rule (``copy_start_ok``) for a vocabulary of these token texts."""
        # Letters only: a number's digits are single tokens here, each its own copy ("12:05" is
        # " " "1" "2" ":" "0" "5"), and holding "5" back until "0" is revealed lets the generator guess it.
        self.continues = torch.tensor([t[:1].isalpha() for t in texts], device=device)
        self.continuable = torch.tensor([t[-1:].isalpha() for t in texts], device=device)
        self.whole_words = torch.zeros((), dtype=torch.bool, device=device)  # off until a reply asks

    def copy_start_ok(self, block: Tensor, context: Tensor, first_position: Tensor) -> Tensor | None:
        """[B, L, T] bool: which context slots each block position may copy from (None: all).

        A context token that continues a word ("ur" in "␣t" "ur" "quoise") may be copied only right
        after that word's previous token: a copy must start where the word starts. Without the rule
        the model glues word tails onto its own words ("I loveur" for "turquoise", "aighter" for
        "firefighter"). A still-masked neighbour is no token of the context, so tails wait until the
        position before them is revealed. ``block`` [B, L] the block's current tokens, ``context``
        [B, T] the cached ids, ``first_position`` [1] (or [B, 1]: one per row) the block's first
        position. Sync-free.
        """
        if self.continues is None or self.continuable is None or self.whole_words is None:
            return None
        b = context.shape[0]
        before_ctx = torch.cat([torch.full_like(context[:, :1], -1), context[:, :-1]], dim=1)
        tail = self.continues[context]
        tail[:, 1:] &= self.continuable[context[:, :-1]]
        tail[:, 0] = False
        before_first = context.gather(1, (first_position.view(-1, 1) - 1).clamp(min=0).expand(b, 1))
        before_block = torch.cat([before_first, block[:, :-1]], dim=1)
        follows = before_block[:, :, None] == before_ctx[:, None, :]
        return follows | ~tail[:, None, :] | ~self.whole_words

    def reset_gate(self, bias: float = -2.0) -> None:
        """Start by mostly generating, so a warm-started model keeps its replies while copying is learned."""
        with torch.no_grad():
            self.gate.bias.fill_(bias)

    def prepare(self, vocab_size: int, device: torch.device) -> Tensor | None:
        """Build the [V] 0 / -inf bias over the generator's output vocabulary (copies may be any context
        token) once, outside any graph capture: it is a host-to-device copy."""
        if self.allowed and (self._vocab_bias is None or self._vocab_bias.device != device):
            self._vocab_bias = vocab_bias(self.allowed, vocab_size, device)
        return self._vocab_bias

    def mix(self, logits: Tensor, h: Tensor, keys: Tensor, ids: Tensor, valid: Tensor) -> Tensor:
        """Log-probabilities [..., V] (fp32).

        ``logits`` [..., V] generator logits, ``h`` [..., H] hidden states of the predicted positions,
        ``keys`` [..., T, d] copy keys of the context, ``ids`` / ``valid`` [..., T] its token ids and which
        of its slots are real (padding and unused cache slots are not). Sync-free: graph-capturable.
        """
        logits = logits.float()
        bias = self.prepare(logits.shape[-1], logits.device)
        if bias is not None:
            logits = logits + bias
        scores = torch.einsum("...d,...td->...t", self.query(h).float(), keys.float()) * self.dim**-0.5
        scores = scores.masked_fill(~valid, float("-inf"))
        attn = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # no valid slot: copy nothing
        gate = self.gate(h).float()
        if torch.is_grad_enabled() and (logits.requires_grad or gate.requires_grad):
            # Training: in log space, so a target the generator finds unlikely still gets a gradient.
            copy = torch.zeros_like(logits).scatter_add_(-1, ids.expand_as(attn), attn)
            return torch.logaddexp(
                F.logsigmoid(-gate) + torch.log_softmax(logits, dim=-1),
                F.logsigmoid(gate) + torch.log(copy + 1e-12),
            )
        # Inference: the same mixture in probability space, one exp and one log over the vocabulary
        # instead of three transcendental passes (half the time of a step's [L, V] work on a CPU).
        g = torch.sigmoid(gate)
        copy = torch.full_like(logits, 1e-12).scatter_add_(-1, ids.expand_as(attn), attn).mul_(g)
        return torch.softmax(logits, dim=-1).mul_(1.0 - g).add_(copy).log_()


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None, **attn_kw) -> Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, mask, **attn_kw)
        return x + self.mlp(self.mlp_norm(x))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.embed_user = nn.Embedding(cfg.vocab_size, cfg.hidden_size) if cfg.user_turn_ids else None
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = (
            None if cfg.tie_word_embeddings else nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        )
        self.rotary = RotaryTable(cfg.rotary_dim, cfg.max_position_embeddings, cfg.rope_theta)
        self.copy_head = CopyHead(cfg) if cfg.copy_head_dim else None
        self.cache_len = 0
        # With a copy head: copy keys and token ids of the cached context, beside the KV cache.
        self.copy_keys: Tensor | None = None
        self.copy_ids: Tensor | None = None
        self._rows_cache: tuple | None = None  # see _output_rows

    @classmethod
    def empty(
        cls, cfg: ModelConfig, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> Transformer:
        """Allocate on ``device`` without initialising the weights (a loader or ``init_weights`` fills them)."""
        with torch.device("meta"):
            model = cls(cfg)
        model = model.to_empty(device=device).to(dtype)
        # Buffers are not weights: the rotary table must really be computed (in fp32).
        model.rotary = RotaryTable(cfg.rotary_dim, cfg.max_position_embeddings, cfg.rope_theta).to(device)
        return model

    # -- weights -----------------------------------------------------------------------------------
    def head(self, h: Tensor) -> Tensor:
        weight = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(h, weight)

    def init_weights(self, std: float = 0.02, seed: int | None = None) -> None:
        """Small-normal init with scaled residual projections (GPT-2 style) for training from scratch."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        residual_std = std / (2 * self.cfg.num_layers) ** 0.5
        for name, p in self.named_parameters():
            if p.dim() == 1:
                if name.endswith("bias"):
                    nn.init.zeros_(p)
                else:
                    nn.init.ones_(p)
                continue
            scale = residual_std if name.endswith(("o_proj.weight", "down_proj.weight")) else std
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
        if self.copy_head is not None:
            self.copy_head.reset_gate()

    # -- cache -------------------------------------------------------------------------------------
    def setup_cache(self, max_len: int, batch: int = 1, device=None, dtype=None) -> None:
        """Allocate the static KV cache once; later calls with the same shape keep it."""
        param = self.embed_tokens.weight
        device = device or param.device
        dtype = dtype or param.dtype
        for layer in self.layers:
            c = layer.attn.cache
            if c is not None and c.k.shape[0] == batch and c.max_len == max_len and c.k.dtype == dtype:
                continue
            layer.attn.cache = KVCache(
                batch, self.cfg.num_kv_heads, max_len, self.cfg.head_dim, dtype, device
            )
        if self.copy_head is not None and (
            self.copy_keys is None
            or self.copy_keys.shape[:2] != (batch, max_len)
            or self.copy_keys.dtype != dtype
        ):
            self.copy_keys = torch.zeros(batch, max_len, self.cfg.copy_head_dim, dtype=dtype, device=device)
            self.copy_ids = torch.zeros(batch, max_len, dtype=torch.long, device=device)
        if self.copy_head is not None:
            self.copy_head.prepare(self.cfg.vocab_size, torch.device(device))
        if self.cfg.output_token_ids:  # host-to-device copies happen here, not inside a graph capture
            self._output_rows()
        self.cache_len = max_len

    def drop_cache(self) -> None:
        for layer in self.layers:
            layer.attn.cache = None
        self.copy_keys = self.copy_ids = None
        self.cache_len = 0

    # -- forward modes -----------------------------------------------------------------------------
    def user_turns(self, tokens: Tensor) -> Tensor | None:
        """[B, T] bool: positions inside a user turn, for a model with a user input table (else None).
        ``tokens`` must start outside a user turn (a whole sequence does)."""
        if self.embed_user is None:
            return None
        return user_turn_mask(tokens, *self.cfg.user_turn_ids)

    def _trunk(
        self, tokens: Tensor, positions: Tensor, mask: Tensor | None, user: Tensor | None = None, **attn_kw
    ) -> Tensor:
        x = self.embed_tokens(tokens)
        if user is not None and self.embed_user is not None:
            x = torch.where(user.unsqueeze(-1), self.embed_user(tokens), x)
        cos, sin = self.rotary(positions, x.dtype)
        if positions.dim() == 2:  # one row of positions per sequence (a batch of sessions' blocks)
            cos, sin = cos[:, None], sin[:, None]
        for layer in self.layers:
            x = layer(x, cos, sin, mask, **attn_kw)
        return self.norm(x)

    def forward_masked(self, tokens: Tensor, mask: Tensor | None, positions: Tensor | None = None) -> Tensor:
        """Logits [B, T, V] for a whole sequence under an explicit bool mask [B|1, 1, T, T] (True = see)."""
        if positions is None:
            positions = torch.arange(tokens.shape[1], device=tokens.device)
        return self.head(self._trunk(tokens, positions, mask, self.user_turns(tokens), mode="masked"))

    def hidden_masked(self, tokens: Tensor, mask: Tensor | None, positions: Tensor | None = None) -> Tensor:
        """Final hidden states (before the head), for losses that only need some positions' logits."""
        if positions is None:
            positions = torch.arange(tokens.shape[1], device=tokens.device)
        return self._trunk(tokens, positions, mask, self.user_turns(tokens), mode="masked")

    def forward_context(
        self,
        tokens: Tensor,
        start: int,
        last_logits_only: bool = True,
        causal: bool = False,
        user: Tensor | None = None,
    ) -> Tensor:
        """Append ``tokens`` (positions start..start+T) to the cache; returns logits (last or all).

        ``causal=True`` forces a token-causal mask whatever the family's pattern (the autoregressive
        baseline runs full-attention models this way, for timing only). ``user`` ([B, T] bool) says
        which tokens are the user's words, for a model with a user input table; by default they are
        found in ``tokens`` alone, which is right whenever the chunk starts outside a user turn (the
        engine passes them, found in its whole cached sequence).
        """
        t = tokens.shape[1]
        end = start + t
        positions = torch.arange(start, end, device=tokens.device)
        mask = self.context_mask(start, t, tokens.device, block_size=1 if causal else None)
        if user is None:
            user = self.user_turns(tokens)
        h = self._trunk(tokens, positions, mask, user, mode="context", write_at=positions, kv_len=end)
        if self.copy_head is not None and self.copy_keys is not None and self.copy_ids is not None:
            self.copy_keys[:, start:end] = self.copy_head.key(h)
            self.copy_ids[:, start:end] = tokens
        return self.head(h[:, -1:] if last_logits_only else h)

    def forward_block(
        self, tokens: Tensor, positions: Tensor, ctx_len: int, key_mask: Tensor | None = None
    ) -> Tensor:
        """One denoising step: logits [B, L, V] for a block attending to cache[:ctx_len] and itself.

        ``key_mask`` (bool [1|B, 1, 1, ctx_len + L]) hides padded cache slots when ``ctx_len`` is a static
        bucket bound rather than the true context length (CUDA-graph replay), or, one row per sequence,
        when sequences of different lengths share one forward (``batch.BatchedEngine``); ``positions``
        is then [B, L]. With a copy head the
        result is log-probabilities (generator and copies mixed), which samplers use as logits.
        """
        h = self._trunk(tokens, positions, key_mask, mode="block", kv_len=ctx_len)
        logits = self._reply_logits(h)
        if self.copy_head is None or self.copy_keys is None or self.copy_ids is None:
            return logits
        keys, ids = self.copy_keys[:, None, :ctx_len], self.copy_ids[:, None, :ctx_len]
        if key_mask is None:
            valid = torch.ones(1, 1, ctx_len, dtype=torch.bool, device=h.device)
        else:
            valid = key_mask[:, 0, :, :ctx_len]
        valid = valid.expand(h.shape[0], h.shape[1], ctx_len)
        starts = self.copy_head.copy_start_ok(tokens, self.copy_ids[:, :ctx_len], positions[..., :1])
        if starts is not None:
            valid = valid & starts
        return self.copy_head.mix(logits, h, keys, ids, valid)

    def _reply_logits(self, h: Tensor) -> Tensor:
        """Denoiser logits. With an output vocabulary only its rows of the head are multiplied (-inf
        elsewhere: the engine or the copy head bans those tokens anyway) — for our small model the head
        is a quarter of a step, and its output vocabulary 40 % of the table."""
        if not self.cfg.output_token_ids:
            return self.head(h)
        rows, index = self._output_rows()
        logits = h.new_full((*h.shape[:-1], self.cfg.vocab_size), float("-inf"))
        return logits.index_copy_(-1, index, F.linear(h, rows))

    def _output_rows(self) -> tuple[Tensor, Tensor]:
        """(head rows of the output vocabulary, their ids), rebuilt when the weights change in place."""
        weight = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        # Inference tensors (made under torch.inference_mode) keep no version counter: nothing trains them.
        version = -1 if weight.is_inference() else weight._version
        key = (weight.data_ptr(), version, weight.dtype)
        cached = self._rows_cache
        if cached is None or cached[0] != key:
            index = torch.tensor(self.cfg.output_token_ids, device=weight.device)
            cached = (key, weight.detach()[index], index)
            self._rows_cache = cached
        return cached[1], cached[2]

    def context_mask(self, start: int, t: int, device, block_size: int | None = None) -> Tensor | None:
        """Mask for appending t tokens at ``start`` to a cache holding ``start`` tokens."""
        if block_size is None and self.cfg.attention == "full":
            return None
        b = block_size or self.cfg.block_size
        q = torch.arange(start, start + t, device=device)
        k = torch.arange(start + t, device=device)
        return ((k[None, :] // b) <= (q[:, None] // b))[None, None]


def user_turn_mask(tokens: Tensor, open_id: int, close_id: int) -> Tensor:
    """[..., T] bool: the tokens after an ``open_id`` up to (not including) the next ``close_id`` —
    a chat template's user turns, markers excluded. Turns never nest, so a position is inside one iff
    its latest opener comes after its latest closer."""
    idx = torch.arange(tokens.shape[-1], device=tokens.device).expand_as(tokens)
    none = torch.full_like(idx, -1)
    last_open = torch.where(tokens == open_id, idx, none).cummax(-1).values
    last_close = torch.where(tokens == close_id, idx, none).cummax(-1).values
    return (last_open > last_close) & (tokens != open_id)


def block_causal_mask(length: int, block_size: int, device=None) -> Tensor:
    """[1, 1, T, T] bool mask: j visible from i iff j // b <= i // b (b = 1: causal)."""
    idx = torch.arange(length, device=device)
    return ((idx[None, :] // block_size) <= (idx[:, None] // block_size))[None, None]
