"""CUDA-graph replay of a block's fixed-step denoising loop.

Two capture modes, so the benchmark can compare them:
  * ``block``: all S steps of a block unrolled into one graph — one ``replay()`` per block, no host work
    between steps (dInfer's "loop unrolling");
  * ``step``:  one denoising step captured once, replayed S times; the step index lives in a device
    tensor that the graph itself increments, so the host only launches S replays.

A graph is keyed by (mode, block length L, steps S, context bucket, sampler settings). The context
length varies from turn to turn, so the graph reads a fixed ``bucket`` of cache slots and a key mask
hides the slots at or beyond the true context length (``ctx_len``, a device tensor). Everything the
graph reads lives in static buffers allocated before capture (block x, fixed flags, ctx_len, the
shifted-logit anchor, the per-step plan tensors); ``run`` copies fresh values in, replays, and returns
a clone of the output (the next replay overwrites it).

Capture follows the usual rules: warm-up on the capture stream (cuBLAS handles, kernel selection),
the SDPA backend pinned to the mask-capable kernels for warm-up and capture alike, one memory pool
shared by every graph with the largest shapes captured first, and the garbage collector frozen while
capturing. The bodies contain no host synchronisation (no ``.item()``, ``nonzero``, host-side
indexing with device values, or data-dependent shapes). Sampling with temperature and the ``random``
rule need a random generator inside the graph, so those stay on the eager path (``can_run`` says no).

On a CPU (or with ``use_graphs=False``) the runner executes the very same bodies eagerly, which is how
the tests check the bucketed, key-masked path without a GPU.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .errors import GenerationError
from .model import Transformer
from .sampling import SamplerConfig, StepPlan, denoise_step, reveal_schedule

DEFAULT_BUCKETS: tuple[int, ...] = (128, 256, 512, 1024, 2048, 4096)
MODES = ("block", "step")
WARMUP_ITERS = 3


def context_buckets(max_len: int, base: Sequence[int] = DEFAULT_BUCKETS) -> tuple[int, ...]:
    """Bucket sizes below ``max_len``, plus ``max_len`` itself so that every context fits one."""
    return tuple(b for b in base if b < max_len) + (max_len,)


def pick_bucket(ctx_len: int, buckets: Sequence[int]) -> int | None:
    """The smallest bucket that holds ``ctx_len`` cached tokens (None: none does)."""
    for b in sorted(buckets):
        if ctx_len <= b:
            return b
    return None


def bucket_key_mask(ctx_len: Tensor | int, bucket: int, block_len: int, device=None) -> Tensor:
    """bool [1, 1, 1, bucket + L]: cache slots < ctx_len and the block's own keys are visible."""
    idx = torch.arange(bucket + block_len, device=device)
    return ((idx < ctx_len) | (idx >= bucket)).view(1, 1, 1, -1)


def _graph_sampler(sampler: SamplerConfig) -> SamplerConfig:
    """The part of a sampler config a graph bakes in (the seed only matters for eager random sampling)."""
    return replace(sampler, seed=0)


@contextlib.contextmanager
def _frozen_gc() -> Iterator[None]:
    """No collection (and no finaliser touching CUDA) may run in the middle of a capture."""
    gc.collect()
    gc.freeze()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.unfreeze()


def _pinned_sdpa() -> contextlib.AbstractContextManager:
    """Same attention kernel for warm-up and capture: the ones that take an arbitrary mask."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


@dataclass
class _Slot:
    """Static buffers (and the graph) of one key."""

    mode: str
    length: int
    steps: int
    bucket: int
    sampler: SamplerConfig
    x_in: Tensor  # [1, L] long
    x_out: Tensor  # [1, L] long (block mode)
    fixed: Tensor  # [1, L] bool
    ctx_len: Tensor  # 0-dim long
    step: Tensor  # 0-dim long (step mode)
    anchor: Tensor  # [1, 1, V] logits of the last cached position
    draft: Tensor  # [1, L] long: the draft's token ids, -1 where none (see sampling.denoise_step)
    draft_threshold: Tensor  # 0-dim float
    block_idx: Tensor  # arange(L)
    key_idx: Tensor  # arange(bucket + L)
    plan: StepPlan  # its tensors are static buffers
    graph: torch.cuda.CUDAGraph | None = None


class BlockGraphRunner:
    def __init__(
        self,
        model: Transformer,
        *,
        mode: str = "block",
        buckets: Sequence[int] | None = None,
        use_graphs: bool | None = None,
    ) -> None:
        if mode not in MODES:
            raise GenerationError(f"unknown graph mode {mode!r}; choose one of {MODES}")
        self.model = model
        self.cfg = model.cfg
        self.mode = mode
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.use_graphs = self.device.type == "cuda" if use_graphs is None else use_graphs
        if self.use_graphs and self.device.type != "cuda":
            raise GenerationError("CUDA graphs need the model on a CUDA device")
        self._buckets = tuple(buckets) if buckets is not None else None
        self._slots: dict[tuple, _Slot] = {}
        self._cache_ptr: int | None = None
        self.pool = torch.cuda.graph_pool_handle() if self.use_graphs else None
        self.stream = torch.cuda.Stream(device=self.device) if self.use_graphs else None

    # -- public API --------------------------------------------------------------------------------
    @property
    def buckets(self) -> tuple[int, ...]:
        return self._buckets if self._buckets is not None else context_buckets(self.model.cache_len)

    def can_run(self, length: int, steps: int, ctx_len: int, sampler: SamplerConfig | None = None) -> bool:
        sampler = sampler or SamplerConfig()
        if sampler.temperature > 0 or sampler.rule == "random":
            return False  # these need a random generator inside the graph
        if not 1 <= steps <= length:
            return False
        self._check_cache()
        return pick_bucket(ctx_len, self.buckets) is not None

    def capture(
        self, pairs: Iterable[tuple[int, int]], sampler: SamplerConfig, buckets: Sequence[int] | None = None
    ) -> int:
        """Capture (block length, steps) pairs for every bucket, largest shapes first (they set the size of
        the shared memory pool that smaller graphs then reuse). Returns how many graphs were captured."""
        self._check_cache()
        sampler = _graph_sampler(sampler)
        keys = sorted(
            (
                (self.mode, length, steps, bucket, sampler)
                for length, steps in pairs
                for bucket in buckets or self.buckets
            ),
            key=lambda k: (k[3], k[1], k[2]),
            reverse=True,
        )
        new = [k for k in keys if k not in self._slots]
        for key in new:
            self._slot(key)
        return len(new)

    @torch.inference_mode()
    def run(
        self,
        x: Tensor,
        fixed: Tensor,
        ctx_len: int,
        steps: int,
        sampler: SamplerConfig,
        plan: StepPlan,
        anchor: Tensor | None,
        draft: Tensor | None = None,
        draft_threshold: float = 0.05,
    ) -> Tensor:
        """Denoise block ``x`` [1, L] in ``steps`` steps against cache[:ctx_len]; returns the new block.
        ``draft`` [1, L] (-1 where none) guides every step, as in the eager loop."""
        length = x.shape[1]
        bucket = pick_bucket(ctx_len, self.buckets)
        if bucket is None:
            raise GenerationError(
                f"context of {ctx_len} tokens exceeds the largest graph bucket {self.buckets[-1]}"
            )
        s = self._slot((self.mode, length, steps, bucket, _graph_sampler(sampler)))
        s.x_in.copy_(x)
        s.fixed.copy_(fixed)
        s.ctx_len.fill_(ctx_len)
        if anchor is None:
            s.anchor.zero_()
        else:
            s.anchor.copy_(anchor.reshape(s.anchor.shape))
        if draft is None:
            s.draft.fill_(-1)
        else:
            s.draft.copy_(draft)
        s.draft_threshold.fill_(draft_threshold)
        s.plan.reveal_counts.copy_(plan.reveal_counts)
        s.plan.logit_bias.copy_(plan.logit_bias)
        s.plan.terminator_ids.copy_(plan.terminator_ids)
        s.plan.no_terminator_before.copy_(plan.no_terminator_before)
        if s.mode == "block":
            self._replay_or_run(s)
            return s.x_out.clone()
        s.step.zero_()
        for _ in range(steps):
            self._replay_or_run(s)
        return s.x_in.clone()

    def reset(self) -> None:
        """Drop every graph (e.g. after the KV cache was reallocated)."""
        self._slots.clear()

    # -- graph bodies (no host synchronisation in here) ----------------------------------------------
    def _logits(self, s: _Slot, x: Tensor) -> Tensor:
        positions = s.ctx_len + s.block_idx
        key_mask = ((s.key_idx < s.ctx_len) | (s.key_idx >= s.bucket)).view(1, 1, 1, -1)
        logits = self.model.forward_block(x, positions, s.bucket, key_mask)
        if self.cfg.shift_logits:
            logits = torch.cat([s.anchor.to(logits.dtype), logits[:, :-1]], dim=1)
        return logits

    def _body(self, s: _Slot) -> None:
        if s.mode == "block":
            x = s.x_in
            for i in range(s.steps):
                x = denoise_step(
                    self._logits(s, x), x, s.fixed, i, s.sampler, s.plan, s.draft, s.draft_threshold
                )
            s.x_out.copy_(x)
        else:
            logits = self._logits(s, s.x_in)
            x = denoise_step(logits, s.x_in, s.fixed, s.step, s.sampler, s.plan, s.draft, s.draft_threshold)
            s.x_in.copy_(x)
            s.step.add_(1)

    # -- internals ---------------------------------------------------------------------------------
    def _replay_or_run(self, s: _Slot) -> None:
        if s.graph is not None:
            s.graph.replay()
        else:
            self._body(s)

    def _check_cache(self) -> None:
        """Graphs hold the KV cache's addresses: a reallocated cache invalidates all of them."""
        cache = self.model.layers[0].attn.cache
        if cache is None:
            raise GenerationError("call model.setup_cache() before using the graph runner")
        ptr = cache.k.data_ptr()
        if self._cache_ptr is not None and ptr != self._cache_ptr:
            self.reset()
        self._cache_ptr = ptr

    @torch.inference_mode()
    def _slot(self, key: tuple) -> _Slot:
        slot = self._slots.get(key)
        if slot is not None:
            return slot
        slot = self._buffers(*key)
        if self.use_graphs:
            self._capture(slot)
        self._slots[key] = slot
        return slot

    def _buffers(self, mode: str, length: int, steps: int, bucket: int, sampler: SamplerConfig) -> _Slot:
        dev, cfg = self.device, self.cfg
        counts = torch.tensor(reveal_schedule(length, steps, sampler.schedule), dtype=torch.long, device=dev)
        bias = torch.zeros(cfg.vocab_size, device=dev)
        bias[cfg.mask_token_id] = float("-inf")
        terms = torch.tensor(sorted({*cfg.eos_token_ids, cfg.pad_token_id}), dtype=torch.long, device=dev)
        plan = StepPlan(
            steps=steps,
            reveal_counts=counts,
            logit_bias=bias,
            terminator_ids=terms,
            no_terminator_before=torch.zeros(length, dtype=torch.bool, device=dev),
            pad_id=cfg.pad_token_id,
            mask_id=cfg.mask_token_id,
            generator=None,
        )
        return _Slot(
            mode=mode,
            length=length,
            steps=steps,
            bucket=bucket,
            sampler=sampler,
            x_in=torch.full((1, length), cfg.mask_token_id, dtype=torch.long, device=dev),
            x_out=torch.zeros((1, length), dtype=torch.long, device=dev),
            fixed=torch.zeros((1, length), dtype=torch.bool, device=dev),
            ctx_len=torch.zeros((), dtype=torch.long, device=dev),
            step=torch.zeros((), dtype=torch.long, device=dev),
            anchor=torch.zeros((1, 1, cfg.vocab_size), dtype=self.dtype, device=dev),
            draft=torch.full((1, length), -1, dtype=torch.long, device=dev),
            draft_threshold=torch.tensor(0.05, device=dev),
            block_idx=torch.arange(length, device=dev),
            key_idx=torch.arange(bucket + length, device=dev),
            plan=plan,
        )

    def _capture(self, s: _Slot) -> None:
        assert self.stream is not None
        torch.cuda.synchronize(self.device)
        with _pinned_sdpa():
            # Warm up on the capture stream itself: lazy cuBLAS/cuDNN handles and kernel choices
            # are made here, not inside the capture.
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                for _ in range(WARMUP_ITERS):
                    s.step.zero_()
                    s.x_in.fill_(self.cfg.mask_token_id)
                    self._body(s)
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
            torch.cuda.synchronize(self.device)
            graph = torch.cuda.CUDAGraph()
            with (
                _frozen_gc(),
                torch.cuda.graph(
                    graph, pool=self.pool, stream=self.stream, capture_error_mode="thread_local"
                ),
            ):
                self._body(s)
        torch.cuda.synchronize(self.device)
        s.graph = graph
