"""Autoregressive baseline on the same weights: greedy, one token per forward, static KV cache.

The prompt is prefilled with ``forward_context(causal=True)``, then each new token is appended with one
more ``forward_context`` call. The mask is always token-causal, whatever the family's own pattern:
  * quickturn models (block size 1, trained with an AR term) and the shifted-logit families (Dream,
    Fast-dLLM v2) read the next token off the last position, so their AR output is meaningful;
  * for full-attention or unshifted families (LLaDA, SDAR) the forced causal mask and the same
    read-out make the tokens meaningless: there the baseline exists for timing only (same weights,
    same number of tokens, one forward each).
Used by ``benchmarks.lm_bench`` and the profiler's ``--baseline ar``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from .errors import GenerationError
from .model import Transformer


@torch.inference_mode()
def ar_generate(
    model: Transformer, prompt_ids: Sequence[int], max_new_tokens: int, eos_ids: Iterable[int] = ()
) -> list[int]:
    """Greedy continuation of ``prompt_ids``; stops after an EOS id (included) or ``max_new_tokens``."""
    if max_new_tokens < 1:
        raise GenerationError(f"max_new_tokens must be ≥ 1, got {max_new_tokens}")
    if not prompt_ids:
        raise GenerationError("the prompt is empty")
    needed = len(prompt_ids) + max_new_tokens
    if model.layers[0].attn.cache is None:
        model.setup_cache(needed)
    if needed > model.cache_len:
        raise GenerationError(
            f"prompt of {len(prompt_ids)} tokens + {max_new_tokens} new tokens exceeds the KV cache of "
            f"{model.cache_len} positions"
        )
    device = model.embed_tokens.weight.device
    stop = {int(i) for i in eos_ids}
    mask_id = model.cfg.mask_token_id
    logits = model.forward_context(torch.tensor([list(prompt_ids)], device=device), start=0, causal=True)
    pos = len(prompt_ids)
    out: list[int] = []
    while True:
        last = logits[0, -1].float()
        last[mask_id] = float("-inf")  # the mask token is never a word
        token = last.argmax()
        out.append(int(token))  # one host sync per token: an AR decoder must look at each token
        if out[-1] in stop or len(out) >= max_new_tokens:
            return out
        logits = model.forward_context(token.view(1, 1), start=pos, causal=True)
        pos += 1
