"""Training objective for block-diffusion chat models (masked diffusion ELBO + optional AR term).

A training sequence is ``[causal prefix | noised block]``: the prefix is the prompt plus the reply's
earlier blocks (clean), attended causally exactly as the engine caches them; the block is one reply
block of L tokens in which each position is masked with probability t ~ U(ε, 1). The block attends to
the prefix and to itself. Loss (LLaDA/MDLM ELBO): Σ_masked CE / t, normalised by L.

Because the prefix is causal, the same pass also yields next-token predictions for every prefix
position; ``ar_weight`` adds that cross-entropy (dense extra signal for a small model, and it makes the
same weights a working autoregressive baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..model import Transformer, vocab_bias


@dataclass
class Batch:
    tokens: Tensor  # [B, T] input ids (block positions partly masked)
    targets: Tensor  # [B, T] clean ids (pad beyond each row's length)
    prefix_len: Tensor  # [B] length of the causal prefix C
    block_len: int  # L
    lengths: Tensor  # [B] C + L
    t: Tensor  # [B] masking rate of each row's block
    noised: Tensor  # [B, T] bool: positions masked in the input


def attention_mask(prefix_len: Tensor, block_len: int, total: int) -> Tensor:
    """[B, 1, T, T] bool: causal over the prefix; the block sees prefix + block; pad rows stay causal."""
    idx = torch.arange(total, device=prefix_len.device)
    i, j = idx[None, :, None], idx[None, None, :]
    c = prefix_len[:, None, None]
    in_block = (i >= c) & (i < c + block_len)
    return torch.where(in_block, j < c + block_len, j <= i)[:, None]


def make_batch(
    prefixes: list[list[int]],
    blocks: list[list[int]],
    *,
    mask_id: int,
    pad_id: int,
    eps: float = 1e-3,
    generator: torch.Generator | None = None,
) -> Batch:
    """Noise each block at its own rate; t values are stratified across the batch (low variance)."""
    b = len(prefixes)
    block_len = len(blocks[0])
    lengths = [len(p) + block_len for p in prefixes]
    total = max(lengths)
    targets = torch.full((b, total), pad_id, dtype=torch.long)
    for r, (p, blk) in enumerate(zip(prefixes, blocks)):
        targets[r, : len(p) + block_len] = torch.tensor(p + blk)
    prefix_len = torch.tensor([len(p) for p in prefixes])
    u = (torch.rand(1, generator=generator) + torch.arange(b)) / b
    t = eps + (1 - eps) * u[torch.randperm(b, generator=generator)]
    pos = torch.arange(total)[None, :]
    in_block = (pos >= prefix_len[:, None]) & (pos < prefix_len[:, None] + block_len)
    noised = in_block & (torch.rand(b, total, generator=generator) < t[:, None])
    # every row masks at least one block position, so every row contributes to the loss
    forced = prefix_len + torch.randint(0, block_len, (b,), generator=generator)
    noised[torch.arange(b), forced] |= ~noised.any(-1)
    tokens = torch.where(noised, torch.full_like(targets, mask_id), targets)
    return Batch(tokens, targets, prefix_len, block_len, torch.tensor(lengths), t, noised)


def loss_terms(
    model: Transformer,
    batch: Batch,
    ar_weight: float,
    pad_id: int,
    ar_fraction: float = 1.0,
    generator: torch.Generator | None = None,
    output_bias: Tensor | None = None,
) -> dict[str, Tensor]:
    """Returns {"loss", "diffusion", "ar"} (scalars); only ``loss`` carries gradients for training.

    ``ar_fraction`` < 1 computes the next-token term on a random share of prefix positions (an unbiased
    estimate of the same mean at a fraction of the vocabulary-head cost). ``output_bias`` ([V]: 0 or
    -inf) restricts the denoiser's softmax to an output vocabulary: tokens outside it get no gradient
    from the reply head, so rare tokens cannot drift (with Adam, a token that is only ever pushed down
    moves by ~lr every step) into confident nonsense. A model with a copy head scores its mixed
    distribution (``CopyHead.mix``) over the row's prefix, exactly as the engine runs it, and may then
    also be scored on targets outside the output vocabulary that it can copy from the prefix.
    """
    mask = attention_mask(batch.prefix_len, batch.block_len, batch.tokens.shape[1])
    hidden = model.hidden_masked(batch.tokens, mask)
    copy_head = model.copy_head
    # Diffusion term: only masked block positions need logits.
    noised = batch.noised
    if output_bias is not None:  # targets outside the output vocabulary are not scored (unless copyable)
        scorable = torch.isfinite(output_bias[batch.targets])
        if copy_head is not None:
            seen = in_prefix(batch, output_bias.shape[0])
            scorable |= seen.gather(1, batch.targets) > 0
        noised = noised & scorable
    rows, cols = noised.nonzero(as_tuple=True)
    targets = batch.targets[rows, cols]
    log_p = reply_log_probs(model, batch, hidden, rows, cols, output_bias)
    ce = -log_p.gather(1, targets[:, None])[:, 0]
    per_row = torch.zeros(batch.tokens.shape[0]).index_add_(0, rows, ce / batch.t[rows])
    diffusion = (per_row / batch.block_len).mean()
    out = {"diffusion": diffusion}
    loss = diffusion
    if ar_weight > 0:
        pos = torch.arange(batch.tokens.shape[1])[None, :]
        # prefix position i predicts token i+1 (the last prefix position predicts the block's first token)
        valid = pos < batch.prefix_len[:, None]
        nxt = torch.roll(batch.targets, -1, dims=1)
        valid &= nxt != pad_id
        if ar_fraction < 1.0:  # the vocabulary head is a big share of the cost: sample positions
            valid &= torch.rand(valid.shape, generator=generator) < ar_fraction
        r, c = valid.nonzero(as_tuple=True)
        ar = F.cross_entropy(model.head(hidden[r, c]).float(), nxt[r, c])
        out["ar"] = ar
        loss = loss + ar_weight * ar
    out["loss"] = loss
    return out


def reply_log_probs(
    model: Transformer, batch: Batch, hidden: Tensor, rows: Tensor, cols: Tensor, output_bias: Tensor | None
) -> Tensor:
    """[N, V] log-probabilities at block positions (rows, cols), as the engine computes them: generator
    logits under the output vocabulary, mixed with copies from the row's prefix when there is a copy head."""
    logits = model.head(hidden[rows, cols]).float()
    copy_head = model.copy_head
    if copy_head is None:
        if output_bias is not None:
            logits = logits + output_bias
        return torch.log_softmax(logits, dim=-1)
    prefix = torch.arange(batch.tokens.shape[1])[None, :] < batch.prefix_len[:, None]
    keys = copy_head.key(hidden)
    return copy_head.mix(logits, hidden[rows, cols], keys[rows], batch.targets[rows], prefix[rows])


@torch.no_grad()
def masked_elbo(
    model: Transformer,
    examples: list,
    *,
    block_len: int,
    mask_id: int,
    pad_id: int,
    batch_size: int = 32,
    seed: int = 1234,
    output_bias: Tensor | None = None,
) -> float:
    """Mean masked-diffusion loss (an ELBO bound, nats per block position) with fixed noise draws.

    ``examples`` are ``train.data.Example``s; one reply block per example is scored, as in training.
    ``exp`` of the result is an upper bound on the per-token perplexity.
    """
    import random

    from .data import sample_block

    was_training = model.training
    model.eval()
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        pairs = [sample_block(ex, block_len, pad_id, rng) for ex in chunk]
        batch = make_batch(
            [p for p, _ in pairs], [b for _, b in pairs], mask_id=mask_id, pad_id=pad_id, generator=gen
        )
        total += float(loss_terms(model, batch, 0.0, pad_id, output_bias=output_bias)["diffusion"]) * len(
            chunk
        )
        count += len(chunk)
    model.train(was_training)
    return total / max(1, count)


def output_bias_for(cfg) -> Tensor | None:
    """[V] 0 / -inf over a model's output vocabulary (None when it may generate every token)."""
    if not cfg.output_token_ids:
        return None
    return vocab_bias(cfg.output_token_ids, cfg.vocab_size)


def in_prefix(batch: Batch, vocab_size: int) -> Tensor:
    """[B, V] float: 1 where token v occurs in row b's prefix, else 0."""
    b, t = batch.targets.shape
    pos = torch.arange(t)[None, :]
    rows = torch.arange(b)[:, None].expand(b, t)
    seen = pos < batch.prefix_len[:, None]
    table = torch.zeros(b, vocab_size)
    table[rows[seen], batch.targets[seen]] = 1.0
    return table
