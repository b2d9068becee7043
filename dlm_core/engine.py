"""The generation engine: load → warm up → generate / stream a reply in a fixed number of steps.

A reply is written block by block. Each block of L positions starts fully masked (plus any pinned
template tokens) and is denoised in S steps, each one forward pass of the block against the cached
conversation. A finished block is appended to the cache (one more forward) before the next block
starts, and the stream yields it at once so speech synthesis can begin on block 1. S is an upper bound:
a block whose reply is fully revealed before its last step ends there (``early_exit``), with the same
tokens it would have had after S.

Block alignment (block-causal families with attention blocks of b > 1 tokens: Fast-dLLM v2, SDAR).
Their attention blocks sit on absolute multiples of b, so the engine follows the reference generators
(``Fast_dLLM_QwenForCausalLM.generate``, ``JetAstra/SDAR:generate.py``):
  * only the prompt's whole blocks are cached; its tail (P mod b tokens) becomes the fixed head of the
    first denoising block, which is masked up to b positions — the first reply block therefore holds
    b − (P mod b) reply tokens, and every later block b;
  * every denoising block is exactly b long (``block_len`` must equal b); a finished block, tail
    included, is appended to the cache as one whole attention block;
  * Fast-dLLM v2 (``ar_block_start``): when a block starts right after cached context, its first token
    is decoded autoregressively from the last cached position's logits before denoising begins, as the
    reference does after each block (``next_token = logits[:, -1:].argmax(-1)``);
  * shifted-logit families predict position i from the output at i-1: inside a block from the block's
    own outputs, at position 0 from the cached context's last logits (the "anchor").
A reply cut short by ``max_tokens`` still denoises its whole last block (the extra positions are
dropped), because the block's attention pattern is fixed at b.

KV-cache policy across turns:
  * causal / block-causal models (our own, Fast-dLLM v2, SDAR): the cache is exact. A new prompt
    reuses the longest common token prefix with what is cached (rounded down to a whole attention
    block) and prefills only the rest.
  * full-attention models (LLaDA, Dream): every cached key depends on every later token, so the
    conversation is prefilled afresh at each turn (exact at the turn's start); within a turn the
    blocks use the prefix cache as Fast-dLLM's PrefixCache does (an approximation they measured as
    near-lossless).

On CUDA the S-step loop of a block runs through ``graphs.BlockGraphRunner`` (captured CUDA graphs) when
it can; sampling with temperature and the ``random`` rule stay eager.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import torch
from torch import Tensor

from .constraints import Constraints
from .copies import PromptWords
from .errors import GenerationError
from .families import Messages
from .loader import LoadedModel, load_model
from .sampling import (
    SamplerConfig,
    StepPlan,
    accept_draft_probs,
    build_plan,
    denoise_step_probs,
    reveal_first_probs,
)


@dataclass(frozen=True)
class DecodeOptions:
    """How a reply is decoded: one object for ``generate`` / ``stream`` (and their ``_ids`` forms).

    The per-call inputs stay separate: ``draft`` (a suggested reply for this prompt) and ``stop`` (an
    event that ends this reply early).

    ``early_exit``: S is an upper bound, not a quota. Revealed tokens are never remasked, so once every
    position of a block up to its first end token is revealed (or every position, when it has none) its
    reply text is final: the remaining steps would only fill positions that are cut off. The block then
    ends there, with the same tokens it would have had after S steps (eager steps only; a captured CUDA
    graph runs its S steps whole). ``early_exit=False`` always spends S.

    ``draft_threshold`` / ``draft_guidance``: with a draft, the first of each block's S steps keeps every
    draft token the model finds plausible (p ≥ ``draft_threshold``) and the remaining steps fill the
    rest, each still taking the draft's token at a position it reveals when that token has become
    plausible: draft-conditioned denoising, at no extra forward passes. ``draft_guidance=False`` keeps
    the draft to the first step only.
    """

    max_tokens: int = 48  # reply length limit (``constraints.max_tokens`` may lower it)
    steps: int = 8  # S: denoising forwards per block, at most
    block_len: int | None = None  # L: positions per denoising block; None = the engine's default
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    constraints: Constraints = field(default_factory=Constraints)
    draft_threshold: float = 0.05
    draft_guidance: bool = True
    early_exit: bool = True

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise GenerationError(f"max_tokens must be ≥ 1, got {self.max_tokens}")
        if self.steps < 1:
            raise GenerationError(f"steps must be ≥ 1, got {self.steps}")
        if self.block_len is not None and self.block_len < 1:
            raise GenerationError(f"block_len must be ≥ 1, got {self.block_len}")
        if not 0.0 < self.draft_threshold <= 1.0:
            raise GenerationError(f"draft_threshold must be in (0, 1], got {self.draft_threshold}")


@dataclass
class BlockResult:
    index: int
    token_ids: list[int]
    text: str
    finished: bool  # this block ended the reply (EOS, or the length limit)
    denoise_ms: float
    steps: int  # denoising forwards spent on this block
    # Per kept token: the probability the model gave it when it was revealed (1.0 for a pinned token or
    # one a copy was finished with; NaN where a captured CUDA graph revealed it). A reply gate reads it.
    confidences: list[float] = field(default_factory=list)


@dataclass
class GenerationResult:
    text: str
    token_ids: list[int]
    blocks: list[BlockResult] = field(default_factory=list)
    prompt_tokens: int = 0
    prefill_tokens: int = 0  # how many prompt tokens had to be computed (the rest came from cache)
    prefill_ms: float = 0.0
    total_ms: float = 0.0
    stopped: bool = False  # the caller's ``stop`` event ended it before the reply was done
    confidences: list[float] = field(default_factory=list)  # per token of ``token_ids`` (BlockResult's)

    @property
    def forwards(self) -> int:
        return sum(b.steps for b in self.blocks)

    @property
    def tokens_per_forward(self) -> float:
        return len(self.token_ids) / max(1, self.forwards)


class DiffusionEngine:
    def __init__(
        self,
        loaded: LoadedModel,
        *,
        max_context: int = 1024,
        default_block_len: int | None = None,
        use_cuda_graphs: bool = True,
        graph_mode: str = "block",
    ) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.cfg = loaded.config
        self.device = next(self.model.parameters()).device
        self.max_context = min(max_context, self.cfg.max_position_embeddings)
        self.block_len = default_block_len or self.cfg.gen_block_size
        if self.cfg.aligned_blocks:
            self._check_block_len(self.block_len)
        self.model.setup_cache(self.max_context)
        self._cached: list[int] = []  # token ids whose keys/values are in the cache, in order
        self._anchor: Tensor | None = None  # logits of the last cached position (shifted models)
        self._plans: dict[tuple, StepPlan] = {}
        # A copy head restricts its own generator and may copy any context token, so nothing is banned here.
        allowed = set(self.cfg.output_token_ids)
        self._outside_output_vocab = (
            tuple(i for i in range(self.cfg.vocab_size) if i not in allowed)
            if allowed and not self.cfg.copy_head_dim
            else ()
        )
        self._terminators = frozenset({*self.cfg.eos_token_ids, self.cfg.pad_token_id})
        if self.model.copy_head is not None:  # before any graph capture: the rule is part of the step
            self.model.copy_head.set_word_pieces(self.token_texts, self.device)
        self._lock = threading.Lock()
        self.graphs = None
        if use_cuda_graphs and self.device.type == "cuda":
            from .graphs import BlockGraphRunner

            self.graphs = BlockGraphRunner(self.model, mode=graph_mode)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        family: str | None = None,
        **kwargs,
    ) -> DiffusionEngine:
        if dtype is None:
            dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
        return cls(load_model(path, device=device, dtype=dtype, family=family), **kwargs)

    # -- public API --------------------------------------------------------------------------------
    def warmup(
        self,
        steps: Sequence[int] = (8,),
        block_lens: Sequence[int] | None = None,
        rounds: int = 2,
        sampler: SamplerConfig | None = None,
    ) -> None:
        """Capture CUDA graphs for every (S, L, context bucket) and run every (S, L) once or twice, so
        the first real turn is not slower than the rest."""
        sampler = sampler or SamplerConfig()
        block_lens = tuple(block_lens or (self.block_len,))
        if self.graphs is not None:
            with torch.inference_mode():
                self.graphs.capture([(b, s) for b in block_lens for s in steps if s <= b], sampler)
        messages = [{"role": "user", "content": "Hello there."}]
        for block_len in block_lens:
            for s in steps:
                for _ in range(rounds):
                    options = DecodeOptions(
                        max_tokens=block_len, steps=s, block_len=block_len, sampler=sampler
                    )
                    self.generate(messages, options)
        self.reset()

    def reset(self) -> None:
        """Forget the cached conversation (the cache memory itself stays allocated)."""
        with self._lock:
            self._cached = []
            self._anchor = None

    def prefill(self, messages: Messages, add_generation_prompt: bool = False) -> int:
        """Cache a conversation ahead of time (e.g. history while the user is still speaking)."""
        ids = self.tokenizer.encode_chat(messages, add_generation_prompt=add_generation_prompt)
        with self._lock, torch.inference_mode():
            return self._prefill(ids)

    def generate(
        self,
        messages: Messages,
        options: DecodeOptions | None = None,
        *,
        draft: Sequence[int] | None = None,
        stop: threading.Event | None = None,
    ) -> GenerationResult:
        """The whole reply at once (same arguments as ``stream``)."""
        for _ in self.stream(messages, options, draft=draft, stop=stop):
            pass
        return self._result

    def stream(
        self,
        messages: Messages,
        options: DecodeOptions | None = None,
        *,
        draft: Sequence[int] | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[BlockResult]:
        """Yield each finished block of the reply; ``last_result`` holds the totals afterwards.

        ``options``: how to decode (``DecodeOptions()`` when None).

        ``draft``: token ids of a suggested reply (retrieved or from a teacher); how it is used is set
        by ``options.draft_threshold`` and ``options.draft_guidance``.

        ``stop``: checked before every denoising step (eagerly run steps; a captured CUDA graph runs its
        block whole); once set, the block in progress is dropped and the generator ends, with
        ``last_result.stopped`` set. A voice agent sets it when a speculative reply is discarded, so the
        cores are free again within a step.

        Bad arguments raise ``GenerationError`` at once (not at the first ``next``). The engine is locked
        while the generator runs: a consumer that stops early must ``close()`` it
        (``contextlib.closing``) so the next request is not blocked until garbage collection.
        """
        prompt = self.tokenizer.encode_chat(messages, add_generation_prompt=True)
        return self.stream_ids(prompt, options, draft=draft, stop=stop)

    def generate_ids(
        self,
        prompt: Sequence[int],
        options: DecodeOptions | None = None,
        *,
        draft: Sequence[int] | None = None,
        stop: threading.Event | None = None,
    ) -> GenerationResult:
        """Like ``generate`` for an already tokenised prompt (benchmarks, raw continuation)."""
        for _ in self.stream_ids(prompt, options, draft=draft, stop=stop):
            pass
        return self._result

    def stream_ids(
        self,
        prompt: Sequence[int],
        options: DecodeOptions | None = None,
        *,
        draft: Sequence[int] | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[BlockResult]:
        """Like ``stream`` for an already tokenised prompt (chat template applied by the caller)."""
        prompt, resolved, draft_ids = self.resolve(prompt, options, draft)
        return self._stream(prompt, resolved, draft_ids, stop)

    def resolve(
        self, prompt: Sequence[int], options: DecodeOptions | None, draft: Sequence[int] | None = None
    ) -> tuple[list[int], DecodeOptions, list[int]]:
        """Check a request and resolve its options (block length set, max_tokens within the
        constraints'): (prompt ids, options, draft ids). Raises ``GenerationError`` for a bad one."""
        options = options if options is not None else DecodeOptions()
        block_len = options.block_len or self.block_len
        if self.cfg.aligned_blocks:
            self._check_block_len(block_len)
        max_tokens = options.max_tokens
        if options.constraints.max_tokens is not None:
            max_tokens = min(max_tokens, options.constraints.max_tokens)
        if max_tokens < 1:
            raise GenerationError(f"max_tokens must be ≥ 1, got {max_tokens}")
        if options.steps > block_len:
            raise GenerationError(
                f"steps ({options.steps}) cannot exceed the block length ({block_len}): each step reveals "
                "≥ 1 token"
            )
        options.constraints.validate(max_tokens)
        prompt = [int(t) for t in prompt]
        if not prompt:
            raise GenerationError("the prompt is empty")
        needed = self._context_needed(len(prompt), max_tokens)
        if needed > self.max_context:
            raise GenerationError(
                f"prompt of {len(prompt)} tokens + reply of {max_tokens} needs {needed} context positions but "
                f"the context holds {self.max_context}; shorten the history or raise max_context"
            )
        draft_ids = [int(t) for t in draft] if draft else []
        return prompt, replace(options, max_tokens=max_tokens, block_len=block_len), draft_ids

    def block_log_probs(self, prompt: Sequence[int], block: Sequence[int]) -> Tensor:
        """Log-probabilities [L, V] (fp32, host) of one denoising forward of ``block`` after ``prompt``.

        ``block`` holds token ids with ``mask_token_id`` where a position is unknown; nothing is
        banned (a copy head's mixture is used as is), so constrained scoring sees every candidate.
        The prompt is prefilled as for a reply (its cached prefix reused). This is the primitive for
        slot scoring (``tools.ToolCaller``): one forward, a fixed cost whatever the candidates.
        """
        if self.cfg.aligned_blocks:
            raise GenerationError(
                f"block_log_probs needs unaligned denoising blocks; the {self.cfg.family!r} model attends "
                f"in aligned blocks of {self.cfg.block_size}"
            )
        prompt = [int(t) for t in prompt]
        if not prompt:
            raise GenerationError("the prompt is empty")
        if len(prompt) + len(block) > self.max_context:
            raise GenerationError(
                f"prompt of {len(prompt)} tokens + block of {len(block)} needs {len(prompt) + len(block)} "
                f"context positions but the context holds {self.max_context}"
            )
        with self._lock, torch.inference_mode():
            self._prefill(prompt, fresh=self.cfg.attention == "full")
            ctx_len = len(self._cached)
            x = torch.tensor([list(block)], dtype=torch.long, device=self.device)
            positions = torch.arange(ctx_len, ctx_len + x.shape[1], device=self.device)
            self._whole_word_copies(False)
            logits = self._block_logits(x, positions, ctx_len)[0].float()
            if self.model.copy_head is None:  # raw logits: normalise (a copy head returns log-probs)
                logits = torch.log_softmax(logits, dim=-1)
            return logits.cpu()

    @cached_property
    def token_texts(self) -> list[str]:
        """Each id's text, for finding words (computed on first use: one decode per vocabulary entry)."""
        return self.tokenizer.token_strings()

    @property
    def last_result(self) -> GenerationResult:
        return self._result

    # -- internals ---------------------------------------------------------------------------------
    def _stream(
        self, prompt: list[int], opts: DecodeOptions, draft: list[int], stop: threading.Event | None
    ) -> Iterator[BlockResult]:
        """``opts`` as resolved by ``stream_ids``: its block length set, its max_tokens within the
        constraints'."""
        max_tokens, block_len, constraints = (
            opts.max_tokens,
            opts.block_len or self.block_len,
            opts.constraints,
        )
        with self._lock, torch.inference_mode():
            t0 = time.perf_counter()
            prefilled = self._prefill(prompt, fresh=self.cfg.attention == "full")
            prefill_ms = (time.perf_counter() - t0) * 1e3
            result = GenerationResult(
                text="",
                token_ids=[],
                prompt_tokens=len(prompt),
                prefill_tokens=prefilled,
                prefill_ms=prefill_ms,
            )
            self._result = result
            lead = prompt[len(self._cached) :]  # prompt tail heading the first block (aligned families)
            copies = PromptWords.of(prompt, self.token_texts) if constraints.finish_copies else None
            self._whole_word_copies(constraints.whole_word_copies)
            reply_pos = 0
            index = 0
            while reply_pos < max_tokens:
                length = block_len if self.cfg.aligned_blocks else min(block_len, max_tokens - reply_pos)
                n_reply = min(length - len(lead), max_tokens - reply_pos)
                tb = time.perf_counter()
                block_draft = draft[reply_pos : reply_pos + n_reply]
                ids, n_steps, probs = self._denoise_block(
                    lead,
                    reply_pos,
                    length,
                    opts,
                    block_draft,
                    stop,
                    settled_at=len(lead) + n_reply if opts.early_exit else None,
                )
                if stop is not None and stop.is_set():
                    result.stopped = True
                    break
                kept, ended = self._cut_at_terminator(ids[len(lead) : len(lead) + n_reply])
                kept_probs = probs[len(lead) : len(lead) + len(kept)]
                reply_pos += n_reply
                finished = ended or reply_pos >= max_tokens
                if copies is not None:  # the cache keeps the block as denoised; the text gets the whole words
                    finished_ids = copies.finish(kept, self.token_texts, open_end=not finished)
                    if finished_ids != kept:
                        kept_probs = carry_probs(kept, kept_probs, finished_ids)
                    kept = finished_ids
                if not finished:  # commit the block so the next one can attend to it
                    self._append(ids)
                lead = []
                block = BlockResult(
                    index=index,
                    token_ids=kept,
                    text=self.tokenizer.decode(kept),
                    finished=finished,
                    denoise_ms=(time.perf_counter() - tb) * 1e3,
                    steps=n_steps,
                    confidences=kept_probs,
                )
                result.blocks.append(block)
                result.token_ids.extend(kept)
                result.confidences.extend(kept_probs)
                index += 1
                yield block
                if finished:
                    break
            result.text = self.tokenizer.decode(result.token_ids).strip()
            result.total_ms = (time.perf_counter() - t0) * 1e3

    def _check_block_len(self, block_len: int) -> None:
        b = self.cfg.block_size
        if block_len != b:
            raise GenerationError(
                f"the {self.cfg.family!r} model attends in aligned blocks of {b} tokens, so its denoising "
                f"blocks must be exactly {b} long; got block_len={block_len}"
            )

    def prompt_budget(self, max_tokens: int) -> int:
        """The most prompt tokens a reply of up to ``max_tokens`` can follow in this context."""
        budget = self.max_context - max_tokens
        while budget > 0 and self._context_needed(budget, max_tokens) > self.max_context:
            budget -= 1  # aligned families round up to whole blocks: at most a block's worth of steps
        return max(0, budget)

    def _context_needed(self, prompt_len: int, max_tokens: int) -> int:
        if not self.cfg.aligned_blocks:
            return prompt_len + max_tokens
        b = self.cfg.block_size
        return -(-(prompt_len + max_tokens) // b) * b  # whole aligned blocks

    def _cacheable(self, n: int) -> int:
        """How many of n prompt tokens may be cached: all, or only whole blocks for aligned families."""
        if not self.cfg.aligned_blocks:
            return n
        return n - n % self.cfg.block_size

    def _reusable_prefix(self, ids: list[int], cached: list[int] | None = None) -> int:
        """How many of ``ids`` may stay in a cache holding ``cached`` (default: this engine's)."""
        cached = self._cached if cached is None else cached
        common = 0
        for a, b in zip(cached, ids):
            if a != b:
                break
            common += 1
        if self.cfg.attention == "full":
            return common if common == len(ids) == len(cached) else 0
        b = self.cfg.block_size
        if common == len(cached) and len(cached) % b == 0:
            return common
        return (common // b) * b

    def _prefill(self, ids: list[int], fresh: bool = False) -> int:
        ids = ids[: self._cacheable(len(ids))]
        keep = 0 if fresh else self._reusable_prefix(ids)
        if keep == len(ids) and keep > 0:  # identical: recompute the last block for its logits
            keep = ((len(ids) - 1) // self.cfg.block_size) * self.cfg.block_size
        new = ids[keep:]
        self._cached = self._cached[:keep]
        if new:
            tokens = torch.tensor([new], device=self.device)
            user = self._user_turns(ids, keep)
            self._anchor = self.model.forward_context(tokens, start=keep, user=user)[:, -1:]
            self._cached.extend(new)
        elif not self._cached:
            self._anchor = None
        return len(new)

    def _append(self, ids: list[int]) -> None:
        tokens = torch.tensor([ids], device=self.device)
        user = self._user_turns(self._cached + ids, len(self._cached))
        self._anchor = self.model.forward_context(tokens, start=len(self._cached), user=user)[:, -1:]
        self._cached.extend(ids)

    def _whole_word_copies(self, on: bool) -> None:
        """Switch the copy head's whole-word rule for this reply (a device flag: graphs stay valid)."""
        if self.model.copy_head is not None and self.model.copy_head.whole_words is not None:
            self.model.copy_head.whole_words.fill_(on)

    def _user_turns(self, ids: list[int], start: int) -> Tensor | None:
        """Which of ``ids[start:]`` are the user's words (for a model with a user input table), found
        in the whole sequence: a chunk may begin inside a user turn."""
        if self.model.embed_user is None:
            return None
        return self.model.user_turns(torch.tensor([ids], device=self.device))[:, start:]

    def _plan(
        self,
        length: int,
        steps: int,
        sampler: SamplerConfig,
        banned: tuple[int, ...],
        min_len: int,
        free: int,
    ) -> StepPlan:
        key = (length, steps, sampler, banned, min_len, free)
        plan = self._plans.get(key)
        if plan is None:
            banned = tuple(sorted({*banned, *self._outside_output_vocab}))
            banned_t = torch.tensor(banned, dtype=torch.long, device=self.device) if banned else None
            plan = build_plan(
                sampler,
                block_len=length,
                steps=steps,
                vocab_size=self.cfg.vocab_size,
                mask_id=self.cfg.mask_token_id,
                pad_id=self.cfg.pad_token_id,
                eos_ids=self.cfg.eos_token_ids,
                banned_ids=banned_t,
                min_len_in_block=min_len,
                device=self.device,
                free=free,
            )
            if len(self._plans) > 64:
                self._plans.clear()
            self._plans[key] = plan
        elif plan.generator is not None:
            plan.generator.manual_seed(sampler.seed)  # same seed → same reply
        return plan

    def _initial_block(
        self, lead: list[int], start: int, length: int, c: Constraints
    ) -> tuple[Tensor, Tensor, int, list[bool]]:
        """[lead | masks] with pinned tokens: (x, fixed, minimum reply length in block coordinates, fixed
        as a host list).

        Reply position p of this block sits at block index ``len(lead) + p - start``.
        """
        n_lead = len(lead)
        span = range(start, start + length - n_lead)  # reply positions inside this block
        x = torch.full((1, length), self.cfg.mask_token_id, dtype=torch.long)
        fixed = torch.zeros((1, length), dtype=torch.bool)
        if n_lead:
            x[0, :n_lead] = torch.tensor(lead)
            fixed[0, :n_lead] = True
        for pos, tid in c.fixed.items():
            if pos in span:
                x[0, n_lead + pos - start] = tid
                fixed[0, n_lead + pos - start] = True
        if c.end_at is not None and c.end_at in span:
            j = n_lead + c.end_at - start
            x[0, j] = self.cfg.eos_token_ids[0] if self.cfg.eos_token_ids else self.cfg.pad_token_id
            x[0, j + 1 :] = self.cfg.pad_token_id
            fixed[0, j:] = True
        last_fixed = max((p for p in c.fixed if p in span), default=-1)
        min_len = max(c.min_tokens - start, last_fixed - start + 1, 0)
        return x.to(self.device), fixed.to(self.device), min(n_lead + min_len, length), fixed[0].tolist()

    def _denoise_block(
        self,
        lead: list[int],
        start: int,
        length: int,
        opts: DecodeOptions,
        draft: list[int],
        stop: threading.Event | None,
        settled_at: int | None,
    ) -> tuple[list[int], int, list[float]]:
        """Denoise one block; returns its token ids (lead included), the number of forwards spent and
        each position's probability when it was revealed (1.0 where fixed, NaN where a graph ran).

        ``settled_at``: when given, stop as soon as positions [lead, settled_at) are settled (see
        ``_settled``) instead of always spending every step."""
        c, sampler, draft_threshold = opts.constraints, opts.sampler, opts.draft_threshold
        x, fixed, min_len, fixed_host = self._initial_block(lead, start, length, c)
        ar_first = self.cfg.ar_block_start and not lead and not fixed_host[0] and self._anchor is not None
        free = fixed_host.count(False) - int(ar_first)  # positions the denoiser has to fill
        n_steps = min(opts.steps, free)
        plan = self._plan(length, max(1, n_steps), sampler, c.banned_ids, min_len, max(1, free))
        mask_id = self.cfg.mask_token_id
        # The probability each position was revealed with (one where per step: free next to a forward).
        probs = torch.where(x == mask_id, torch.nan, 1.0)

        def reveal(new_x: Tensor, p: Tensor, old_x: Tensor) -> Tensor:
            nonlocal probs
            probs = torch.where((old_x == mask_id) & (new_x != mask_id), p, probs)
            return new_x

        def done(ids: Tensor, spent: int) -> tuple[list[int], int, list[float]]:
            return ids[0].tolist(), spent, probs[0].tolist()

        if ar_first:
            first, p = reveal_first_probs(self._anchor, x, fixed, sampler, plan)
            x = reveal(first, torch.nn.functional.pad(p, (0, x.shape[1] - 1)), x)
        if draft and n_steps > 1:  # the first step checks the draft instead of revealing from scratch
            ctx_len = len(self._cached)
            suggestion = torch.full_like(x, -1)
            n = min(len(draft), length - len(lead))
            suggestion[0, len(lead) : len(lead) + n] = torch.tensor(draft[:n], device=self.device)
            positions = torch.arange(ctx_len, ctx_len + length, device=self.device)
            logits = self._block_logits(x, positions, ctx_len)
            x = reveal(*accept_draft_probs(logits, x, fixed, suggestion, draft_threshold, plan), x)
            guide = suggestion if opts.draft_guidance else None  # and it keeps guiding the remaining steps
            if settled_at is not None and self._settled(x, len(lead), settled_at):
                return done(x, 1)  # the model accepted the whole draft reply
            n_steps -= 1
            plan = self._plan(length, n_steps, sampler, c.banned_ids, min_len, max(1, free))
            spent = 1
        else:
            spent, guide = 0, None
        if n_steps:
            ctx_len = len(self._cached)
            graphs = self.graphs
            if graphs is not None and graphs.can_run(length, n_steps, ctx_len, sampler):
                x = graphs.run(
                    x, fixed, ctx_len, n_steps, sampler, plan, self._anchor, guide, draft_threshold
                )
            else:
                positions = torch.arange(ctx_len, ctx_len + length, device=self.device)
                for s in range(n_steps):
                    if stop is not None and stop.is_set():
                        return done(x, s + spent)
                    logits = self._block_logits(x, positions, ctx_len)
                    step = denoise_step_probs(logits, x, fixed, s, sampler, plan, guide, draft_threshold)
                    x = reveal(*step, x)
                    if settled_at is not None and s + 1 < n_steps and self._settled(x, len(lead), settled_at):
                        return done(x, s + 1 + spent)
        return done(x, n_steps + spent)

    def _settled(self, x: Tensor, start: int, end: int) -> bool:
        """No masked position in [start, end) before the first revealed end token: what the block will
        yield can no longer change. (One host read per step: free on the CPU, where this runs.)"""
        kept, _ = self._cut_at_terminator(x[0, start:end].tolist())
        return self.cfg.mask_token_id not in kept

    def _block_logits(self, x: Tensor, positions: Tensor, ctx_len: int) -> Tensor:
        logits = self.model.forward_block(x, positions, ctx_len)
        if self.cfg.shift_logits:  # position i is predicted by the output at i-1
            head = logits[:, :1] if self._anchor is None else self._anchor.to(logits.dtype)
            logits = torch.cat([head, logits[:, :-1]], dim=1)
        return logits

    def _cut_at_terminator(self, ids: list[int]) -> tuple[list[int], bool]:
        for i, tid in enumerate(ids):
            if tid in self._terminators:
                return ids[:i], True
        return ids, False


def carry_probs(before: list[int], probs: list[float], after: list[int]) -> list[float]:
    """Reveal probabilities for ``after`` (``before`` with copies finished or cut back): a kept token
    keeps its own, a token a copy was finished with gets 1.0 (it was copied from the prompt)."""
    out = [1.0] * len(after)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out[j1:j2] = probs[i1:i2]
    return out
