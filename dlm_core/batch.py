"""Batched denoising across independent replies: several sessions' blocks in one forward pass.

A voice server answers many speakers on one model. Replies decoded one after another queue behind each
other; a diffusion LM denoises a whole block per forward, and the blocks of several replies fit in one.

* Each session keeps its own cached conversation in a row of a slot pool (keys/values, copy keys and
  token ids, the anchor logits), so the prefill done while its user speaks still pays off. Rows are
  bounded (``sessions``); the least recently used session not replying gives its row up.
* A batched step gathers the active rows' caches up to the longest context, pads each block to the
  longest block and hides what is not the row's own (another row's longer context, padded block
  positions) with a per-row key mask: every row attends to exactly the keys it would alone.
* Everything after the forward stays per request — its constraints, draft, reveal rule and step count,
  early exit, stop event — through the same functions ``DiffusionEngine`` uses, so each reply gets the
  tokens it would get decoded alone (``tests/dlm_core/test_batch.py``).
* Rows join and leave at step boundaries (continuous batching): a request arriving mid-block starts at
  the next step; a stopped one leaves at the next step and the others go on undisturbed.

``BatchedEngine`` is the core without threads (``submit`` then ``step`` until done, decisions in
``SlotPool`` and ``BatchQueue``, plain state machines); ``BatchWorker`` runs it on one thread and
streams each caller its blocks. Steps run eagerly on every device: CUDA graphs (one per batch size and
context bucket) are not captured for batches.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
import time
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch
from torch import Tensor, nn

from .copies import PromptWords
from .engine import BlockResult, DecodeOptions, DiffusionEngine, GenerationResult, carry_probs
from .errors import GenerationError
from .sampling import StepPlan, accept_draft_probs, denoise_step_probs, reveal_first_probs


# -- sans-I/O decisions ---------------------------------------------------------------------------------
class SlotPool:
    """Which session's conversation sits in which cache row; the least recently used unpinned session
    gives its row up when a new one needs a row. A pinned session (one replying) keeps its row."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise GenerationError(f"a slot pool needs ≥ 1 row, got {size}")
        self.size = size
        self._rows: collections.OrderedDict[Hashable, int] = collections.OrderedDict()  # LRU first
        self._free = list(range(size - 1, -1, -1))
        self._pinned: set[Hashable] = set()
        self._forget_on_unpin: set[Hashable] = set()

    def row_of(self, session: Hashable) -> int | None:
        return self._rows.get(session)

    def acquire(self, session: Hashable) -> tuple[int, Hashable | None] | None:
        """A row for ``session`` (its own when it has one), marked most recently used:
        (row, the session evicted to free it or None); None when every row is pinned."""
        row = self._rows.get(session)
        if row is not None:
            self._rows.move_to_end(session)
            return row, None
        evicted: Hashable | None = None
        if self._free:
            row = self._free.pop()
        else:
            victim = next((s for s in self._rows if s not in self._pinned), None)
            if victim is None:
                return None
            row, evicted = self._rows.pop(victim), victim
        self._rows[session] = row
        return row, evicted

    def pin(self, session: Hashable) -> None:
        if session not in self._rows:
            raise KeyError(f"session {session!r} has no row to pin")
        self._pinned.add(session)

    def unpin(self, session: Hashable) -> int | None:
        """Unpin; returns the row freed if the session was forgotten while pinned."""
        self._pinned.discard(session)
        if session in self._forget_on_unpin:
            self._forget_on_unpin.discard(session)
            return self.forget(session)
        return None

    def pinned(self, session: Hashable) -> bool:
        return session in self._pinned

    def forget(self, session: Hashable) -> int | None:
        """Free the session's row (after its reply, if it is replying); returns the row freed now."""
        if session in self._pinned:
            self._forget_on_unpin.add(session)
            return None
        row = self._rows.pop(session, None)
        if row is not None:
            self._free.append(row)
        return row


class Waiting(Protocol):
    session: Hashable

    def cancelled(self) -> bool: ...


class BatchQueue:
    """Requests waiting for a place in the batch: first come, first served; a request whose session
    is still replying waits without holding up the requests behind it; a cancelled one is dropped."""

    def __init__(self, max_batch: int) -> None:
        if max_batch < 1:
            raise GenerationError(f"max_batch must be ≥ 1, got {max_batch}")
        self.max_batch = max_batch
        self._waiting: collections.deque[Waiting] = collections.deque()

    def __len__(self) -> int:
        return len(self._waiting)

    def push(self, request: Waiting) -> None:
        self._waiting.append(request)

    def drain(self) -> list[Waiting]:
        """Every waiting request, cancelled or not (the queue is left empty)."""
        out, self._waiting = list(self._waiting), collections.deque()
        return out

    def take(self, active: int, busy: set[Hashable]) -> tuple[list[Waiting], list[Waiting]]:
        """(requests to start now, cancelled requests dropped), given ``active`` rows running and the
        sessions in ``busy`` replying."""
        start: list[Waiting] = []
        dropped: list[Waiting] = []
        kept: collections.deque[Waiting] = collections.deque()
        sessions = set(busy)
        for req in self._waiting:
            if req.cancelled():
                dropped.append(req)
            elif active + len(start) < self.max_batch and req.session not in sessions:
                start.append(req)
                sessions.add(req.session)
            else:
                kept.append(req)
        self._waiting = kept
        return start, dropped


# -- requests -------------------------------------------------------------------------------------------
@dataclass(eq=False)
class BatchRequest:
    """One reply to decode in a batch. ``result`` fills in as blocks finish."""

    session: Hashable
    prompt: list[int]
    options: DecodeOptions  # resolved (``DiffusionEngine.resolve``)
    draft: list[int]
    stop: threading.Event | None = None
    result: GenerationResult | None = None
    done: bool = False
    closed: threading.Event = field(default_factory=threading.Event)  # the consumer went away
    sink: queue.SimpleQueue | None = None  # BatchWorker: where its blocks go

    def cancelled(self) -> bool:
        return self.closed.is_set() or (self.stop is not None and self.stop.is_set())


END = object()  # a request's last event: no more blocks


@dataclass(eq=False)
class _Row:
    """An active request's decoding state (mirrors ``DiffusionEngine._stream`` / ``_denoise_block``)."""

    req: BatchRequest
    row: int
    state: _Context
    copies: PromptWords | None
    lead: list[int]
    t0: float
    seq: int = 0  # admission order
    reply_pos: int = 0
    index: int = 0
    # the block in progress
    length: int = 0
    n_reply: int = 0
    x: Tensor | None = None
    fixed: Tensor | None = None
    min_len: int = 0
    free: int = 1
    plan: StepPlan | None = None
    n_steps: int = 0
    s: int = 0  # eager step within the denoising loop
    spent: int = 0  # forwards before the loop (the draft check)
    drafting: bool = False
    suggestion: Tensor | None = None
    guide: Tensor | None = None
    probs: Tensor | None = None  # each position's probability when it was revealed (the engine's too)
    settled_at: int | None = None
    t_block: float = 0.0


@dataclass
class _Context:
    """What one cache row holds: token ids in order, and the last position's logits."""

    cached: list[int] = field(default_factory=list)
    anchor: Tensor | None = None


class _KVView(nn.Module):
    """Stands in for a layer's ``KVCache`` during one call: a row of the pool, or gathered rows."""

    def __init__(self, k: Tensor, v: Tensor) -> None:
        super().__init__()
        self.k = k
        self.v = v


# -- the batched engine ---------------------------------------------------------------------------------
class BatchedEngine:
    """Many sessions' replies on one ``DiffusionEngine``'s model: ``submit`` requests, ``step`` until
    they are done. Shares the engine's lock (a step and an unbatched call never overlap) and its model;
    the sessions' caches are its own, so the engine's cached conversation is left as it was."""

    def __init__(
        self,
        engine: DiffusionEngine,
        *,
        max_batch: int = 16,
        sessions: int = 32,
        first_blocks_first: bool = True,
    ) -> None:
        if max_batch > sessions:
            raise GenerationError(f"max_batch ({max_batch}) cannot exceed the cached sessions ({sessions})")
        self.engine = engine
        self.model = engine.model
        self.cfg = engine.cfg
        self.device = engine.device
        self.max_batch = max_batch
        self.first_blocks_first = first_blocks_first
        self.pool = SlotPool(sessions)
        self.queue = BatchQueue(sessions)  # every session with a row may be active; a step takes max_batch
        self._contexts = [_Context() for _ in range(sessions)]
        cache = self.model.layers[0].attn.cache
        dtype = cache.k.dtype if cache is not None else self.model.embed_tokens.weight.dtype
        shape = (sessions, self.cfg.num_kv_heads, engine.max_context, self.cfg.head_dim)
        self._kv = [
            (
                torch.zeros(shape, dtype=dtype, device=self.device),
                torch.zeros(shape, dtype=dtype, device=self.device),
            )
            for _ in self.model.layers
        ]
        self._copy: tuple[Tensor, Tensor] | None = None
        if self.model.copy_head is not None:
            self._copy = (
                torch.zeros(
                    sessions, engine.max_context, self.cfg.copy_head_dim, dtype=dtype, device=self.device
                ),
                torch.zeros(sessions, engine.max_context, dtype=torch.long, device=self.device),
            )
        self.active: list[_Row] = []
        self._admitted = 0
        self.forwards = 0  # batched forwards run (for benchmarks)
        self.rows_forwarded = 0  # rows in them

    # -- requests ----------------------------------------------------------------------------------
    def request(
        self,
        session: Hashable,
        prompt: Sequence[int],
        options: DecodeOptions | None = None,
        *,
        draft: Sequence[int] | None = None,
        stop: threading.Event | None = None,
    ) -> BatchRequest:
        """A checked request (``GenerationError`` at once for a bad one), not submitted yet."""
        ids, opts, draft_ids = self.engine.resolve(prompt, options, draft)
        return BatchRequest(session, ids, opts, draft_ids, stop)

    def submit(self, request: BatchRequest) -> None:
        self.queue.push(request)

    @property
    def busy(self) -> bool:
        return bool(self.active) or len(self.queue) > 0

    def prefill(self, session: Hashable, ids: Sequence[int]) -> int:
        """Cache a session's conversation ahead of its reply (skipped while it replies); returns the
        tokens computed."""
        if self.pool.pinned(session):
            return 0
        with self.engine._lock, torch.inference_mode():
            got = self.pool.acquire(session)
            if got is None:
                return 0
            row, evicted = got
            if evicted is not None:
                self._contexts[row] = _Context()
            return self._prefill(row, [int(t) for t in ids], fresh=False)

    def forget(self, session: Hashable) -> None:
        """Drop a session's cached conversation (its connection closed)."""
        row = self.pool.forget(session)
        if row is not None:
            self._contexts[row] = _Context()

    def step(self) -> list[tuple[BatchRequest, object]]:
        """Start waiting requests, then run one denoising forward for every active row. Returns the
        events: (request, ``BlockResult``) per finished block, (request, ``END``) per finished request."""
        events: list[tuple[BatchRequest, object]] = []
        with self.engine._lock, torch.inference_mode():
            try:
                self._step(events)
            except Exception as exc:  # a failed forward: every active reply ends with the error
                events += self.fail_all(exc, waiting=False)
        return events

    def _step(self, events: list[tuple[BatchRequest, object]]) -> None:
        busy = {r.req.session for r in self.active}
        start, dropped = self.queue.take(len(self.active), busy)
        for req in dropped:
            events += self._end(req, stopped=True)
        for req in start:
            assert isinstance(req, BatchRequest)
            try:
                events += self._admit(req)
            except Exception as exc:  # this request's prefill failed (a bad token id): it alone ends
                events += self._reject(req, exc)
        for r in list(self.active):
            if r.req.cancelled():
                events += self._leave(r, stopped=True)
        groups: dict[bool, list[_Row]] = {}
        for r in self.rows_to_step(self.active):  # the copy head's whole-word rule: one flag per forward
            groups.setdefault(r.req.options.constraints.whole_word_copies, []).append(r)
        for whole_words, rows in groups.items():
            self.engine._whole_word_copies(whole_words)
            for r, logits in zip(rows, self._forward(rows)):
                events += self._after_forward(r, logits)

    def _reject(self, req: BatchRequest, exc: Exception) -> list[tuple[BatchRequest, object]]:
        self.active = [r for r in self.active if r.req is not req]
        row = self.pool.row_of(req.session)
        if row is not None:
            self._contexts[row] = _Context()  # possibly half written
        freed = self.pool.unpin(req.session)
        if freed is not None:
            self._contexts[freed] = _Context()
        req.done = True
        return [(req, exc)]

    def rows_to_step(self, active: Sequence[_Row]) -> list[_Row]:
        """Which rows this step runs: at most ``max_batch``, oldest request first, and first blocks
        first — while any reply still waits for its first block (what its user waits to hear), only
        such rows step; later blocks follow behind audio that is already playing. On a CPU a step costs
        about its rows' worth of compute, so a small cap keeps most of batching's gain while the
        earliest replies finish first instead of all finishing together at the end."""
        rows = sorted(active, key=lambda r: r.seq)
        if self.first_blocks_first:
            rows = [r for r in rows if r.index == 0] or rows
        return rows[: self.max_batch]

    def fail_all(self, exc: BaseException, waiting: bool = True) -> list[tuple[BatchRequest, object]]:
        """Every active request (and, with ``waiting``, every queued one) ends with ``exc``; the active
        rows' caches are dropped (a failed step may have half written them)."""
        events: list[tuple[BatchRequest, object]] = []
        for r in self.active:
            self._contexts[r.row] = _Context()
            self.pool.unpin(r.req.session)
            r.req.done = True
            events.append((r.req, exc))
        self.active = []
        for req in self.queue.drain() if waiting else []:
            assert isinstance(req, BatchRequest)
            req.done = True
            events.append((req, exc))
        return events

    # -- internals ---------------------------------------------------------------------------------
    def _admit(self, req: BatchRequest) -> list[tuple[BatchRequest, object]]:
        got = self.pool.acquire(req.session)
        if got is None:  # cannot happen while max_batch ≤ sessions; kept safe anyway
            self.queue.push(req)
            return []
        row, evicted = got
        if evicted is not None:
            self._contexts[row] = _Context()
        self.pool.pin(req.session)
        t0 = time.perf_counter()
        prefilled = self._prefill(row, req.prompt, fresh=self.cfg.attention == "full")
        state = self._contexts[row]
        req.result = GenerationResult(
            text="",
            token_ids=[],
            prompt_tokens=len(req.prompt),
            prefill_tokens=prefilled,
            prefill_ms=(time.perf_counter() - t0) * 1e3,
        )
        c = req.options.constraints
        copies = PromptWords.of(req.prompt, self.engine.token_texts) if c.finish_copies else None
        r = _Row(req, row, state, copies, lead=req.prompt[len(state.cached) :], t0=t0, seq=self._admitted)
        self._admitted += 1
        self.active.append(r)
        return self._start_block(r)

    def _end(self, req: BatchRequest, stopped: bool) -> list[tuple[BatchRequest, object]]:
        if req.result is None:
            req.result = GenerationResult(text="", token_ids=[], prompt_tokens=len(req.prompt))
        req.result.stopped = req.result.stopped or stopped
        req.done = True
        return [(req, END)]

    def _leave(self, r: _Row, stopped: bool) -> list[tuple[BatchRequest, object]]:
        self.active.remove(r)
        freed = self.pool.unpin(r.req.session)
        if freed is not None:
            self._contexts[freed] = _Context()
        assert r.req.result is not None
        if not stopped:
            r.req.result.text = self.engine.tokenizer.decode(r.req.result.token_ids).strip()
        r.req.result.total_ms = (time.perf_counter() - r.t0) * 1e3
        return self._end(r.req, stopped)

    @contextlib.contextmanager
    def _bound(self, rows: int | Tensor, ctx: int = 0) -> Iterator[None]:
        """Point the model's caches at one row of the pool (``rows`` an int: a view, written in place
        by a context forward, read up to ``ctx`` by a block step) or at copies of several rows' first
        ``ctx`` positions (a tensor of rows: read by a block step)."""
        model = self.model
        saved = [layer.attn.cache for layer in model.layers], model.copy_keys, model.copy_ids
        try:
            for layer, (k, v) in zip(model.layers, self._kv):
                if isinstance(rows, int):
                    view = _KVView(k[rows : rows + 1], v[rows : rows + 1])
                else:
                    view = _KVView(k[rows, :, :ctx], v[rows, :, :ctx])
                layer.attn.cache = view  # type: ignore[assignment]
            if self._copy is not None:
                keys, ids = self._copy
                if isinstance(rows, int):
                    model.copy_keys, model.copy_ids = keys[rows : rows + 1], ids[rows : rows + 1]
                else:
                    model.copy_keys, model.copy_ids = keys[rows, :ctx], ids[rows, :ctx]
            yield
        finally:
            for layer, cache in zip(model.layers, saved[0]):
                layer.attn.cache = cache
            model.copy_keys, model.copy_ids = saved[1], saved[2]

    def _context_forward(self, row: int, ids: list[int], start: int) -> None:
        """Append ``ids[start:]`` to the row's cache (``ids``: the row's whole sequence)."""
        state = self._contexts[row]
        tokens = torch.tensor([ids[start:]], device=self.device)
        user = self.engine._user_turns(ids, start)
        with self._bound(row):
            state.anchor = self.model.forward_context(tokens, start=start, user=user)[:, -1:]
        state.cached = state.cached[:start] + ids[start:]

    def _prefill(self, row: int, ids: list[int], fresh: bool) -> int:
        """``DiffusionEngine._prefill`` for one row."""
        state = self._contexts[row]
        ids = ids[: self.engine._cacheable(len(ids))]
        keep = 0 if fresh else self.engine._reusable_prefix(ids, state.cached)
        if keep == len(ids) and keep > 0:  # identical: recompute the last block for its logits
            keep = ((len(ids) - 1) // self.cfg.block_size) * self.cfg.block_size
        state.cached = state.cached[:keep]
        if len(ids) > keep:
            self._context_forward(row, ids, keep)
        elif not state.cached:
            state.anchor = None
        return len(ids) - keep

    def _plan(self, r: _Row, steps: int) -> StepPlan:
        opts = r.req.options
        plan = self.engine._plan(
            r.length, steps, opts.sampler, opts.constraints.banned_ids, r.min_len, max(1, r.free)
        )
        if plan.generator is not None:  # the engine's plans are shared: a seeded generator of its own
            gen = torch.Generator(device=self.device).manual_seed(opts.sampler.seed)
            plan = replace(plan, generator=gen)
        return plan

    def _start_block(self, r: _Row) -> list[tuple[BatchRequest, object]]:
        """``DiffusionEngine._denoise_block`` up to its first forward."""
        opts, c = r.req.options, r.req.options.constraints
        block_len = opts.block_len or self.engine.block_len
        max_tokens = opts.max_tokens
        r.t_block = time.perf_counter()
        r.length = block_len if self.cfg.aligned_blocks else min(block_len, max_tokens - r.reply_pos)
        r.n_reply = min(r.length - len(r.lead), max_tokens - r.reply_pos)
        block_draft = r.req.draft[r.reply_pos : r.reply_pos + r.n_reply]
        x, fixed, r.min_len, fixed_host = self.engine._initial_block(r.lead, r.reply_pos, r.length, c)
        anchor = r.state.anchor
        ar_first = self.cfg.ar_block_start and not r.lead and not fixed_host[0] and anchor is not None
        r.free = fixed_host.count(False) - int(ar_first)
        r.n_steps = min(opts.steps, r.free)
        r.plan = self._plan(r, max(1, r.n_steps))
        r.probs = torch.where(x == self.cfg.mask_token_id, torch.nan, 1.0)
        if ar_first:
            assert anchor is not None
            first, p = reveal_first_probs(anchor, x, fixed, opts.sampler, r.plan)
            x = self._reveal(r, first, torch.nn.functional.pad(p, (0, x.shape[1] - 1)), x)
        r.x, r.fixed, r.s, r.spent, r.guide = x, fixed, 0, 0, None
        r.settled_at = len(r.lead) + r.n_reply if opts.early_exit else None
        r.drafting = bool(block_draft) and r.n_steps > 1
        if r.drafting:
            suggestion = torch.full_like(x, -1)
            n = min(len(block_draft), r.length - len(r.lead))
            suggestion[0, len(r.lead) : len(r.lead) + n] = torch.tensor(block_draft[:n], device=self.device)
            r.suggestion = suggestion
        elif r.n_steps == 0:  # nothing to denoise (every position pinned)
            return self._finish_block(r, 0)
        return []

    def _forward(self, rows: list[_Row]) -> list[Tensor]:
        """One forward for these rows' blocks; each row's logits [1, L_row, V] as it would get alone."""
        n = len(rows)
        ctx = [len(r.state.cached) for r in rows]
        lens = [r.length for r in rows]
        ctx_max, width = max(ctx), max(lens)
        tokens = torch.full((n, width), self.cfg.mask_token_id, dtype=torch.long, device=self.device)
        for i, r in enumerate(rows):
            assert r.x is not None
            tokens[i, : lens[i]] = r.x[0]
        ctx_t = torch.tensor(ctx, device=self.device)[:, None]
        lens_t = torch.tensor(lens, device=self.device)[:, None]
        top = self.model.rotary.cos.shape[0] - 1  # padded positions may run past the table: masked anyway
        positions = (ctx_t + torch.arange(width, device=self.device)[None]).clamp(max=top)
        if n == 1:  # alone: the unbatched computation (no mask, a view of the row instead of a copy)
            with self._bound(rows[0].row, ctx_max):
                logits = self.model.forward_block(tokens, positions[0], ctx_max)
        else:  # each row sees its own context and block, nothing of the others' longer ones
            keys = torch.arange(ctx_max + width, device=self.device)[None]
            visible = (keys < ctx_t) | ((keys >= ctx_max) & (keys - ctx_max < lens_t))
            rows_t = torch.tensor([r.row for r in rows], device=self.device)
            with self._bound(rows_t, ctx_max):
                logits = self.model.forward_block(tokens, positions, ctx_max, visible.view(n, 1, 1, -1))
        self.forwards += 1
        self.rows_forwarded += n
        out = []
        for i, r in enumerate(rows):
            row = logits[i : i + 1, : lens[i]]
            if self.cfg.shift_logits:  # position i is predicted by the output at i-1
                anchor = r.state.anchor
                head = row[:, :1] if anchor is None else anchor.to(row.dtype)
                row = torch.cat([head, row[:, :-1]], dim=1)
            out.append(row)
        return out

    def _after_forward(self, r: _Row, logits: Tensor) -> list[tuple[BatchRequest, object]]:
        opts = r.req.options
        assert r.x is not None and r.fixed is not None and r.plan is not None
        n_lead = len(r.lead)
        if r.drafting:  # the first step checks the draft instead of revealing from scratch
            assert r.suggestion is not None
            step = accept_draft_probs(logits, r.x, r.fixed, r.suggestion, opts.draft_threshold, r.plan)
            r.x = self._reveal(r, *step, r.x)
            r.guide = r.suggestion if opts.draft_guidance else None
            r.drafting = False
            if r.settled_at is not None and self.engine._settled(r.x, n_lead, r.settled_at):
                return self._finish_block(r, 1)  # the model accepted the whole draft reply
            r.n_steps -= 1
            r.plan = self._plan(r, r.n_steps)
            r.spent = 1
            return []
        step = denoise_step_probs(
            logits, r.x, r.fixed, r.s, opts.sampler, r.plan, r.guide, opts.draft_threshold
        )
        r.x = self._reveal(r, *step, r.x)
        r.s += 1
        if r.s >= r.n_steps:
            return self._finish_block(r, r.n_steps + r.spent)
        if r.settled_at is not None and self.engine._settled(r.x, n_lead, r.settled_at):
            return self._finish_block(r, r.s + r.spent)
        return []

    def _reveal(self, r: _Row, new_x: Tensor, p: Tensor, old_x: Tensor) -> Tensor:
        """Keep the probability of every position this step revealed (``_denoise_block``'s ``reveal``)."""
        mask_id = self.cfg.mask_token_id
        r.probs = torch.where((old_x == mask_id) & (new_x != mask_id), p, r.probs)
        return new_x

    def _finish_block(self, r: _Row, steps: int) -> list[tuple[BatchRequest, object]]:
        """``DiffusionEngine._stream`` after ``_denoise_block``: cut, commit, yield."""
        if r.req.cancelled():
            return self._leave(r, stopped=True)
        assert r.x is not None and r.req.result is not None
        ids = r.x[0].tolist()
        n_lead = len(r.lead)
        kept, ended = self.engine._cut_at_terminator(ids[n_lead : n_lead + r.n_reply])
        probs = r.probs[0].tolist() if r.probs is not None else [float("nan")] * len(ids)
        kept_probs = probs[n_lead : n_lead + len(kept)]
        r.reply_pos += r.n_reply
        finished = ended or r.reply_pos >= r.req.options.max_tokens
        if r.copies is not None:  # the cache keeps the block as denoised; the text gets the whole words
            finished_ids = r.copies.finish(kept, self.engine.token_texts, open_end=not finished)
            if finished_ids != kept:
                kept_probs = carry_probs(kept, kept_probs, finished_ids)
            kept = finished_ids
        if not finished:  # commit the block so the next one can attend to it
            cached = r.state.cached
            self._context_forward(r.row, cached + ids, len(cached))
        r.lead = []
        block = BlockResult(
            index=r.index,
            token_ids=kept,
            text=self.engine.tokenizer.decode(kept),
            finished=finished,
            denoise_ms=(time.perf_counter() - r.t_block) * 1e3,
            steps=steps,
            confidences=kept_probs,
        )
        r.req.result.blocks.append(block)
        r.req.result.token_ids.extend(kept)
        r.req.result.confidences.extend(kept_probs)
        r.index += 1
        events: list[tuple[BatchRequest, object]] = [(r.req, block)]
        if finished:
            return events + self._leave(r, stopped=False)
        return events + self._start_block(r)


# -- the thread adapter ---------------------------------------------------------------------------------
class BatchStream(Iterator[BlockResult]):
    """One caller's reply: its blocks as the worker finishes them. ``close()`` (or ``with``) cancels it
    without disturbing the other replies in the batch; ``result`` holds the totals."""

    def __init__(self, request: BatchRequest) -> None:
        self.request = request
        self._finished = False

    @property
    def result(self) -> GenerationResult:
        r = self.request.result
        return r if r is not None else GenerationResult(text="", token_ids=[])

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> BlockResult:
        if self._finished:
            raise StopIteration
        assert self.request.sink is not None
        item = self.request.sink.get()  # blocks until the worker has this reply's next block
        if item is END:
            self._finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        assert isinstance(item, BlockResult)
        return item

    def close(self) -> None:
        if not self._finished:
            self.request.closed.set()
            self._finished = True

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BatchWorker:
    """Runs a ``BatchedEngine`` on one thread: whatever waits when a step ends joins the next one (no
    timed batching window), and each caller streams its own blocks."""

    def __init__(self, batched: BatchedEngine) -> None:
        self.batched = batched
        self._cond = threading.Condition()
        self._inbox: list[BatchRequest] = []
        self._prefills: dict[Hashable, list[int]] = {}  # latest history per session
        self._forgets: list[Hashable] = []
        self._closed = False
        self.last_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dlm-batch", daemon=True)  # on first use

    def _wake(self) -> None:
        """Under ``_cond``: start the thread if this is the first job, and tell it there is work."""
        if not self._thread.is_alive() and not self._closed:
            self._thread.start()
        self._cond.notify()

    def stream(
        self,
        session: Hashable,
        prompt: Sequence[int],
        options: DecodeOptions | None = None,
        *,
        draft: Sequence[int] | None = None,
        stop: threading.Event | None = None,
    ) -> BatchStream:
        req = self.batched.request(session, prompt, options, draft=draft, stop=stop)  # errors here, at once
        req.sink = queue.SimpleQueue()
        with self._cond:
            if self._closed:
                raise GenerationError("the batch worker is closed")
            self._inbox.append(req)
            self._wake()
        return BatchStream(req)

    def prefill(self, session: Hashable, ids: Sequence[int]) -> None:
        with self._cond:
            self._prefills[session] = [int(t) for t in ids]
            self._wake()

    def forget(self, session: Hashable) -> None:
        with self._cond:
            self._prefills.pop(session, None)
            self._forgets.append(session)
            self._wake()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            started = self._thread.is_alive()
            self._cond.notify()
        if started:
            self._thread.join()

    def _run(self) -> None:
        batched = self.batched
        while True:
            with self._cond:
                while not (self._closed or self._inbox or self._prefills or self._forgets or batched.busy):
                    self._cond.wait()
                if self._closed:
                    break
                inbox, self._inbox = self._inbox, []
                forgets, self._forgets = self._forgets, []
                # One prefill per step at most: it delays every active row's next step.
                prefill = self._prefills.popitem() if self._prefills else None
            for session in forgets:
                batched.forget(session)
            for req in inbox:
                batched.submit(req)
            if prefill is not None:
                try:
                    batched.prefill(*prefill)
                except Exception as exc:  # a failed prefill only costs speed: the reply prefills again
                    self.last_error = exc
            try:
                events = batched.step()
            except Exception as exc:
                self.last_error = exc
                events = batched.fail_all(exc)
            for req, item in events:
                assert req.sink is not None
                req.sink.put(item)
        closed = GenerationError("the batch worker is closed")
        with self._cond:
            for req in self._inbox:
                batched.submit(req)
            self._inbox = []
        for req, _ in batched.fail_all(closed):
            assert req.sink is not None
            req.sink.put(closed)
