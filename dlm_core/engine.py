"""The generation engine: load → warm up → generate / stream a reply in a fixed number of steps.

A reply is written block by block. Each block of L positions starts fully masked (plus any pinned
template tokens) and is denoised in exactly S steps, each one forward pass of the block against the
cached conversation. A finished block is appended to the cache (one more forward) before the next
block starts, and the stream yields it at once so speech synthesis can begin on block 1.

KV-cache policy across turns:
  * causal / block-causal models (our own, Fast-dLLM v2, SDAR): the cache is exact. A new prompt
    reuses the longest common token prefix with what is cached (rounded down to a whole attention
    block) and prefills only the rest.
  * full-attention models (LLaDA, Dream): every cached key depends on every later token, so the
    conversation is prefilled afresh at each turn (exact at the turn's start); within a turn the
    blocks use the prefix cache as Fast-dLLM's PrefixCache does (an approximation they measured as
    near-lossless). ``refresh_each_block=True`` re-prefills at every block boundary as well.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from .constraints import Constraints
from .errors import GenerationError
from .families import Messages
from .loader import LoadedModel, load_model
from .sampling import SamplerConfig, StepPlan, build_plan, denoise_step


@dataclass
class BlockResult:
    index: int
    token_ids: list[int]
    text: str
    finished: bool  # this block ended the reply (EOS, or the length limit)
    denoise_ms: float
    steps: int


@dataclass
class GenerationResult:
    text: str
    token_ids: list[int]
    blocks: list[BlockResult] = field(default_factory=list)
    prompt_tokens: int = 0
    prefill_tokens: int = 0  # how many prompt tokens had to be computed (the rest came from cache)
    prefill_ms: float = 0.0
    total_ms: float = 0.0

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
        refresh_each_block: bool = False,
        use_cuda_graphs: bool = True,
    ) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.cfg = loaded.config
        self.device = next(self.model.parameters()).device
        self.max_context = min(max_context, self.cfg.max_position_embeddings)
        self.block_len = default_block_len or self.cfg.gen_block_size
        self.refresh_each_block = refresh_each_block
        self.model.setup_cache(self.max_context)
        self._cached: list[int] = []  # token ids whose keys/values are in the cache, in order
        self._anchor: Tensor | None = None  # logits of the last cached position (shifted models)
        self._plans: dict[tuple, StepPlan] = {}
        self._lock = threading.Lock()
        self.graphs = None
        if use_cuda_graphs and self.device.type == "cuda":
            from .graphs import BlockGraphRunner

            self.graphs = BlockGraphRunner(self)

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
    def warmup(self, steps: Sequence[int] = (8,), block_lens: Sequence[int] | None = None, rounds: int = 2) -> None:
        """Run every (S, L) once or twice (and capture CUDA graphs) so the first real turn is not slower."""
        messages = [{"role": "user", "content": "Hello there."}]
        for block_len in block_lens or (self.block_len,):
            for s in steps:
                for _ in range(rounds):
                    self.generate(messages, max_tokens=block_len, steps=s, block_len=block_len)
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

    def generate(self, messages: Messages, **kwargs) -> GenerationResult:
        """The whole reply at once (same arguments as ``stream``)."""
        for _ in self.stream(messages, **kwargs):
            pass
        return self._result

    def stream(
        self,
        messages: Messages,
        *,
        max_tokens: int = 48,
        steps: int = 8,
        sampler: SamplerConfig | None = None,
        constraints: Constraints | None = None,
        block_len: int | None = None,
    ) -> Iterator[BlockResult]:
        """Yield each finished block of the reply; ``last_result`` holds the totals afterwards.

        The engine is locked while the generator runs: a consumer that stops early must ``close()`` it
        (``contextlib.closing``) so the next request is not blocked until garbage collection.
        """
        sampler = sampler or SamplerConfig()
        constraints = constraints or Constraints()
        block_len = block_len or self.block_len
        if constraints.max_tokens is not None:
            max_tokens = min(max_tokens, constraints.max_tokens)
        if max_tokens < 1:
            raise GenerationError(f"max_tokens must be ≥ 1, got {max_tokens}")
        if steps > block_len:
            raise GenerationError(
                f"steps ({steps}) cannot exceed the block length ({block_len}): each step reveals ≥ 1 token"
            )
        constraints.validate(max_tokens)
        prompt = self.tokenizer.encode_chat(messages, add_generation_prompt=True)
        if len(prompt) + max_tokens > self.max_context:
            raise GenerationError(
                f"prompt of {len(prompt)} tokens + reply of {max_tokens} exceeds the context of "
                f"{self.max_context} tokens; shorten the history or raise max_context"
            )
        with self._lock, torch.inference_mode():
            t0 = time.perf_counter()
            prefilled = self._prefill(prompt, fresh=self.cfg.attention == "full")
            prefill_ms = (time.perf_counter() - t0) * 1e3
            result = GenerationResult(text="", token_ids=[], prompt_tokens=len(prompt),
                                      prefill_tokens=prefilled, prefill_ms=prefill_ms)
            self._result = result
            reply_pos = 0
            index = 0
            while reply_pos < max_tokens:
                length = min(block_len, max_tokens - reply_pos)
                block_steps = min(steps, length)
                tb = time.perf_counter()
                ids = self._denoise_block(reply_pos, length, block_steps, max_tokens, sampler, constraints)
                kept, ended = self._cut_at_terminator(ids)
                reply_pos += length
                finished = ended or reply_pos >= max_tokens
                if not finished:  # commit the block so the next one can attend to it
                    self._append(ids)
                block = BlockResult(
                    index=index,
                    token_ids=kept,
                    text=self.tokenizer.decode(kept),
                    finished=finished,
                    denoise_ms=(time.perf_counter() - tb) * 1e3,
                    steps=block_steps,
                )
                result.blocks.append(block)
                result.token_ids.extend(kept)
                index += 1
                yield block
                if finished:
                    break
            result.text = self.tokenizer.decode(result.token_ids).strip()
            result.total_ms = (time.perf_counter() - t0) * 1e3

    @property
    def last_result(self) -> GenerationResult:
        return self._result

    # -- internals ---------------------------------------------------------------------------------
    def _reusable_prefix(self, ids: list[int]) -> int:
        common = 0
        for a, b in zip(self._cached, ids):
            if a != b:
                break
            common += 1
        if self.cfg.attention == "full":
            return common if common == len(ids) == len(self._cached) else 0
        b = self.cfg.block_size
        if common == len(self._cached) and len(self._cached) % b == 0:
            return common
        return (common // b) * b

    def _prefill(self, ids: list[int], fresh: bool = False) -> int:
        keep = 0 if fresh else self._reusable_prefix(ids)
        if keep == len(ids) and keep > 0:  # identical: recompute the last token for its logits
            keep = ((len(ids) - 1) // self.cfg.block_size) * self.cfg.block_size
        new = ids[keep:]
        self._cached = self._cached[:keep]
        if new:
            tokens = torch.tensor([new], device=self.device)
            self._anchor = self.model.forward_context(tokens, start=keep)[:, -1:]
            self._cached.extend(new)
        return len(new)

    def _append(self, ids: list[int]) -> None:
        if self.cfg.attention == "full" and self.refresh_each_block:
            self._prefill(self._cached + ids, fresh=True)
            return
        tokens = torch.tensor([ids], device=self.device)
        self._anchor = self.model.forward_context(tokens, start=len(self._cached))[:, -1:]
        self._cached.extend(ids)

    def _plan(self, length: int, steps: int, sampler: SamplerConfig, banned: tuple[int, ...], min_len: int) -> StepPlan:
        key = (length, steps, sampler, banned, min_len)
        plan = self._plans.get(key)
        if plan is None:
            banned_t = torch.tensor(banned, dtype=torch.long, device=self.device) if banned else None
            plan = build_plan(
                sampler, block_len=length, steps=steps, vocab_size=self.cfg.vocab_size,
                mask_id=self.cfg.mask_token_id, pad_id=self.cfg.pad_token_id, eos_ids=self.cfg.eos_token_ids,
                banned_ids=banned_t, min_len_in_block=min_len, device=self.device,
            )
            if len(self._plans) > 64:
                self._plans.clear()
            self._plans[key] = plan
        elif plan.generator is not None:
            plan.generator.manual_seed(sampler.seed)  # same seed → same reply
        return plan

    def _initial_block(self, start: int, length: int, max_tokens: int, c: Constraints) -> tuple[Tensor, Tensor, int]:
        """Masked block with pinned tokens; returns (x, fixed, min length inside this block)."""
        x = torch.full((1, length), self.cfg.mask_token_id, dtype=torch.long)
        fixed = torch.zeros((1, length), dtype=torch.bool)
        for pos, tid in c.fixed.items():
            if start <= pos < start + length:
                x[0, pos - start] = tid
                fixed[0, pos - start] = True
        if c.end_at is not None and start <= c.end_at < start + length:
            eos = self.cfg.eos_token_ids[0] if self.cfg.eos_token_ids else self.cfg.pad_token_id
            x[0, c.end_at - start] = eos
            fixed[0, c.end_at - start] = True
            x[0, c.end_at - start + 1 :] = self.cfg.pad_token_id
            fixed[0, c.end_at - start + 1 :] = True
        last_fixed = max((p for p in c.fixed if start <= p < start + length), default=-1)
        min_len = max(c.min_tokens - start, last_fixed - start + 1, 0)
        return x.to(self.device), fixed.to(self.device), min(min_len, length)

    def _denoise_block(
        self, start: int, length: int, steps: int, max_tokens: int, sampler: SamplerConfig, c: Constraints
    ) -> list[int]:
        x, fixed, min_len = self._initial_block(start, length, max_tokens, c)
        plan = self._plan(length, steps, sampler, c.banned_ids, min_len)
        ctx_len = len(self._cached)
        if self.graphs is not None and self.graphs.can_run(length, steps, ctx_len):
            x = self.graphs.run(x, fixed, ctx_len, steps, sampler, plan, self._anchor)
        else:
            positions = torch.arange(ctx_len, ctx_len + length, device=self.device)
            for s in range(steps):
                x = denoise_step(self._block_logits(x, positions, ctx_len), x, fixed, s, sampler, plan)
        return x[0].tolist()

    def _block_logits(self, x: Tensor, positions: Tensor, ctx_len: int, key_mask: Tensor | None = None) -> Tensor:
        logits = self.model.forward_block(x, positions, ctx_len, key_mask)
        if self.cfg.shift_logits:  # position i is predicted by the output at i-1
            logits = torch.cat([self._anchor.to(logits.dtype), logits[:, :-1]], dim=1)
        return logits

    def _cut_at_terminator(self, ids: list[int]) -> tuple[list[int], bool]:
        terms = {*self.cfg.eos_token_ids, self.cfg.pad_token_id}
        for i, tid in enumerate(ids):
            if tid in terms:
                return ids[:i], True
        return ids, False
