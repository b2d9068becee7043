"""Reveal rules for one denoising step, written as sync-free tensor code.

Every rule works on a fixed-shape block ``x`` [B, L] where masked positions hold the mask id. No
``.item()``, ``nonzero``, boolean-index assignment or data-dependent shapes: the same code runs eagerly
on a CPU and inside a captured CUDA graph. Anything that depends on the step number is computed from
``step`` (a Python int or a 0-dim device tensor) with tensor ops, so one step can also be captured
once and replayed S times.

Rules (all finish the block in exactly S steps):
  * ``low_confidence``  reveal the k_s most confident masked positions; k_s from a precomputed schedule
                        (LLaDA's low-confidence remasking).
  * ``threshold``       reveal every masked position with confidence ≥ τ, and at least
                        ceil(remaining / steps_left) (Fast-dLLM's threshold rule plus a completion floor).
  * ``entropy_bound``   reveal the lowest-entropy positions while their summed entropy stays ≤ γ, plus
                        the same floor (EB-sampler).
  * ``random``          reveal each masked position with probability 1 / steps_left, sampling its token
                        (MDLM ancestral sampling).
Confidence is the probability of the chosen token, the top-1/top-2 margin, or negative entropy.
Greedy by default; temperature > 0 samples tokens with Gumbel noise (float64, seeded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .errors import GenerationError

RuleName = Literal["low_confidence", "threshold", "entropy_bound", "random"]
ConfidenceName = Literal["prob", "margin", "neg_entropy"]
RULES: tuple[str, ...] = ("low_confidence", "threshold", "entropy_bound", "random")
CONFIDENCES: tuple[str, ...] = ("prob", "margin", "neg_entropy")


@dataclass(frozen=True)
class SamplerConfig:
    rule: RuleName = "threshold"
    confidence: ConfidenceName = "prob"
    threshold: float = 0.9
    entropy_bound: float = 1.0
    temperature: float = 0.0
    schedule: Literal["linear", "cosine"] = "linear"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise GenerationError(f"unknown sampler rule {self.rule!r}; choose one of {RULES}")
        if self.confidence not in CONFIDENCES:
            raise GenerationError(f"unknown confidence {self.confidence!r}; choose one of {CONFIDENCES}")
        if self.temperature < 0:
            raise GenerationError(f"temperature must be ≥ 0, got {self.temperature}")
        if self.schedule not in ("linear", "cosine"):
            raise GenerationError(f"unknown schedule {self.schedule!r} (linear | cosine)")


def reveal_schedule(length: int, steps: int, kind: str = "linear") -> list[int]:
    """How many positions to reveal at each step; sums to ``length`` and every entry is ≥ 1."""
    if steps < 1:
        raise GenerationError(f"steps must be ≥ 1, got {steps}")
    if steps > length:
        raise GenerationError(
            f"steps ({steps}) cannot exceed the block length ({length}): each step reveals ≥ 1 token"
        )
    if kind == "linear":
        base, extra = divmod(length, steps)
        return [base + (1 if s < extra else 0) for s in range(steps)]
    # cosine: masked fraction follows cos(π/2 · t); reveal few tokens first, more later
    remaining = [round(length * math.cos(math.pi / 2 * s / steps)) for s in range(steps + 1)]
    counts = [max(1, remaining[s] - remaining[s + 1]) for s in range(steps)]
    # repair rounding so the counts sum to length while keeping every step ≥ 1
    diff = length - sum(counts)
    i = steps - 1
    while diff != 0:
        if diff > 0:
            counts[i] += 1
            diff -= 1
        elif counts[i] > 1:
            counts[i] -= 1
            diff += 1
        i = (i - 1) % steps
    return counts


@dataclass
class StepPlan:
    """Per-(block, S, sampler, constraints) tensors, built once and reused (static for CUDA graphs)."""

    steps: int
    reveal_counts: Tensor  # [S] int64
    logit_bias: Tensor  # [V] float: 0 or -inf (banned tokens, the mask token)
    terminator_ids: Tensor  # [n] int64: EOS ids and the pad id
    no_terminator_before: Tensor  # [L] bool: True where a terminator may not be chosen
    pad_id: int
    mask_id: int
    generator: torch.Generator | None


def build_plan(
    cfg: SamplerConfig,
    *,
    block_len: int,
    steps: int,
    vocab_size: int,
    mask_id: int,
    pad_id: int,
    eos_ids: tuple[int, ...],
    banned_ids: Tensor | None,
    min_len_in_block: int,
    device: torch.device | str,
    free: int | None = None,
) -> StepPlan:
    """``free``: how many positions start masked (default: the whole block); the schedule covers them."""
    counts = torch.tensor(
        reveal_schedule(free or block_len, steps, cfg.schedule), dtype=torch.long, device=device
    )
    bias = torch.zeros(vocab_size, device=device)
    if banned_ids is not None and banned_ids.numel():
        bias[banned_ids.to(device)] = float("-inf")
    bias[mask_id] = float("-inf")
    terms = torch.tensor(sorted({*eos_ids, pad_id}), dtype=torch.long, device=device)
    no_term = torch.arange(block_len, device=device) < min_len_in_block
    gen = None
    if cfg.temperature > 0 or cfg.rule == "random":
        gen = torch.Generator(device=device).manual_seed(cfg.seed)
    return StepPlan(steps, counts, bias, terms, no_term, pad_id, mask_id, gen)


def _confidence(probs: Tensor, cand: Tensor, kind: str) -> Tensor:
    if kind == "prob":
        return probs.gather(-1, cand.unsqueeze(-1)).squeeze(-1)
    if kind == "margin":
        top2 = probs.topk(2, dim=-1).values
        return top2[..., 0] - top2[..., 1]
    return torch.xlogy(probs, probs).sum(-1)  # negative entropy (0·log 0 = 0 for banned tokens)


def _ranks(score: Tensor) -> Tensor:
    """Rank of each position by descending score (0 = best); ties broken by position."""
    order = torch.sort(score, dim=-1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(
        -1, order, torch.arange(score.shape[-1], device=score.device).expand_as(order).contiguous()
    )
    return ranks


def denoise_step(
    logits: Tensor,
    x: Tensor,
    fixed: Tensor,
    step: int | Tensor,
    cfg: SamplerConfig,
    plan: StepPlan,
    draft: Tensor | None = None,
    draft_threshold: float | Tensor = 0.05,
) -> Tensor:
    """One reveal step (``denoise_step_probs`` without the probabilities)."""
    return denoise_step_probs(logits, x, fixed, step, cfg, plan, draft, draft_threshold)[0]


def denoise_step_probs(
    logits: Tensor,
    x: Tensor,
    fixed: Tensor,
    step: int | Tensor,
    cfg: SamplerConfig,
    plan: StepPlan,
    draft: Tensor | None = None,
    draft_threshold: float | Tensor = 0.05,
) -> tuple[Tensor, Tensor]:
    """One reveal step; returns the new x and, at every position, the probability the model gave the
    token this step would put there (what a position revealed now is committed with). logits [B, L, V]; x [B, L]; fixed [B, L] bool (never changed). Returns new x.

    ``draft`` [B, L] (token ids, -1 where none; see ``accept_draft``): a position revealed now takes the
    draft's token instead of the model's choice wherever the model gives it probability ≥
    ``draft_threshold``. A draft token vetoed at the start, when its neighbours were still masked, can
    so come back once they are known (a repeated reply's words, once the words around them are in)."""
    logits = _constrain(logits, plan, plan.no_terminator_before)
    probs = torch.softmax(logits, dim=-1)
    masked = x == plan.mask_id
    cand = _candidates(logits, cfg, plan)
    if draft is not None:
        cand = torch.where(_plausible(probs, draft, draft_threshold), draft, cand)

    steps_left = plan.steps - step  # ≥ 1 by construction
    n_masked = masked.sum(-1, keepdim=True)
    floor = torch.div(n_masked + steps_left - 1, steps_left, rounding_mode="floor")

    if cfg.rule == "random":
        u = torch.rand(masked.shape, generator=plan.generator, device=x.device)
        reveal = masked & (u * steps_left < 1.0)
    else:
        conf = _confidence(probs, cand, cfg.confidence)
        neg_inf = torch.full_like(conf, float("-inf"))
        if cfg.rule == "low_confidence":
            # A 0-dim tensor used as an index would be read back to the host: gather instead.
            k = (
                plan.reveal_counts[step]
                if isinstance(step, int)
                else plan.reveal_counts.gather(0, step.view(1))
            )
            reveal = masked & (_ranks(torch.where(masked, conf, neg_inf)) < k)
        elif cfg.rule == "threshold":
            ranks = _ranks(torch.where(masked, conf, neg_inf))
            reveal = masked & ((conf >= cfg.threshold) | (ranks < floor))
        else:  # entropy_bound: lowest entropy first while the running sum stays within γ
            entropy = -torch.xlogy(probs, probs).sum(-1)  # banned tokens have p = 0: no NaN
            key = torch.where(masked, -entropy, neg_inf)
            order = torch.sort(key, dim=-1, descending=True, stable=True).indices
            sorted_ent = torch.where(
                masked.gather(-1, order), entropy.gather(-1, order), torch.zeros_like(entropy)
            )
            within = sorted_ent.cumsum(-1) <= cfg.entropy_bound
            ranks = torch.empty_like(order)
            ranks.scatter_(
                -1, order, torch.arange(x.shape[-1], device=x.device).expand_as(order).contiguous()
            )
            reveal = masked & (within.gather(-1, ranks) | (ranks < floor))

    x = torch.where(reveal, cand, x)
    return _terminate(x, fixed, plan), probs.gather(-1, cand.unsqueeze(-1)).squeeze(-1)


def _constrain(logits: Tensor, plan: StepPlan, no_terminator: Tensor) -> Tensor:
    """fp32 logits with banned tokens and the mask removed, and no EOS/pad where ``no_terminator``."""
    logits = logits.float() + plan.logit_bias
    term_cols = logits[..., plan.terminator_ids]
    logits[..., plan.terminator_ids] = torch.where(
        no_terminator[None, :, None], torch.full_like(term_cols, float("-inf")), term_cols
    )
    return logits


def _candidates(logits: Tensor, cfg: SamplerConfig, plan: StepPlan) -> Tensor:
    """Greedy: the argmax (no normalisation needed). Sampling: Gumbel-max over the log-probabilities."""
    if cfg.temperature > 0:
        logp = torch.log_softmax(logits, dim=-1)
        u = torch.rand(logits.shape, generator=plan.generator, device=logits.device, dtype=torch.float64)
        gumbel = -torch.log(-torch.log(u.clamp_min(1e-20)))
        return (logp.double() / cfg.temperature + gumbel).argmax(-1)
    return logits.argmax(-1)


def reveal_first(anchor: Tensor, x: Tensor, fixed: Tensor, cfg: SamplerConfig, plan: StepPlan) -> Tensor:
    """Decode position 0 from the previous position's logits ``anchor`` [B, 1, V] (Fast-dLLM v2's
    autoregressive block start), honouring bans and the minimum length. Other positions are untouched."""
    return reveal_first_probs(anchor, x, fixed, cfg, plan)[0]


def reveal_first_probs(
    anchor: Tensor, x: Tensor, fixed: Tensor, cfg: SamplerConfig, plan: StepPlan
) -> tuple[Tensor, Tensor]:
    """``reveal_first`` and the probability [B, 1] the model gave the first token."""
    logits = _constrain(anchor, plan, plan.no_terminator_before[:1])
    cand = _candidates(logits, cfg, plan)
    p = torch.softmax(logits, dim=-1).gather(-1, cand.unsqueeze(-1)).squeeze(-1)
    first = torch.where(x[:, :1] == plan.mask_id, cand, x[:, :1])
    return _terminate(torch.cat([first, x[:, 1:]], dim=1), fixed, plan), p


def accept_draft(
    logits: Tensor, x: Tensor, fixed: Tensor, draft: Tensor, threshold: float, plan: StepPlan
) -> Tensor:
    """Draft-conditioned start: keep the draft's token at every masked position where the model gives
    it probability ≥ ``threshold``; the rest stays masked for the normal steps to fill.

    ``draft`` [B, L] holds token ids, or -1 where there is no suggestion. Kept tokens are then fixed
    context like any revealed token — a start that only diffusion allows: the reply is written
    around a retrieved or teacher draft instead of from scratch, and the model vetoes whatever does
    not fit this prompt (a stale time, another name).
    """
    return accept_draft_probs(logits, x, fixed, draft, threshold, plan)[0]


def accept_draft_probs(
    logits: Tensor, x: Tensor, fixed: Tensor, draft: Tensor, threshold: float, plan: StepPlan
) -> tuple[Tensor, Tensor]:
    """``accept_draft`` and, at every position, the probability the model gave the draft's token."""
    logits = _constrain(logits, plan, plan.no_terminator_before)
    probs = torch.softmax(logits, dim=-1)
    p = probs.gather(-1, draft.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    keep = (x == plan.mask_id) & (draft >= 0) & (p >= threshold)
    return _terminate(torch.where(keep, draft, x), fixed, plan), p


def _plausible(probs: Tensor, draft: Tensor, threshold: float | Tensor) -> Tensor:
    """Where ``draft`` suggests a token (≥ 0) that ``probs`` gives at least ``threshold``."""
    p = probs.gather(-1, draft.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return (draft >= 0) & (p >= threshold)


def _terminate(x: Tensor, fixed: Tensor, plan: StepPlan) -> Tensor:
    """Everything after the first generated EOS/pad becomes pad (fixed tokens neither trigger this nor change).

    Fixed tokens include the prompt's tail at the head of an aligned block, which may well hold an
    end-of-turn token; a broadcast compare stands in for ``isin`` (whose sorting path synchronises).
    """
    is_term = (x.unsqueeze(-1) == plan.terminator_ids).any(-1) & ~fixed
    after_first = (is_term.long().cumsum(-1) - is_term.long()) > 0
    return torch.where(after_first & ~fixed, torch.full_like(x, plan.pad_id), x)
