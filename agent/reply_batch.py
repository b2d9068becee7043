"""One reply model for many sessions at once: their blocks denoised together (``dlm_core.batch``).

``quickturn serve`` wraps its ``DiffusionReply`` in a ``BatchedReply`` (``[server] batch_replies``);
each connection's pipeline gets a ``SessionReply`` view (``ReplyModel.for_session``) that keeps its
own cached conversation in the batch engine, so prefill while the user speaks still pays off. Without
batching, replies take the engine one at a time, and a reply holds it while its first block's clauses
are synthesized; with it, every waiting reply joins the next denoising step and first blocks go first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from dlm_core.batch import BatchedEngine, BatchWorker

from .config import LMSection
from .prompt import Prompt, PromptFit
from .reply import DiffusionReply, Messages, ReplyModel, ReplyPiece, ReplyStats
from .sources import GroundedReply, grounded_reply


class BatchedReply(ReplyModel):
    """A ``DiffusionReply``'s model and options shared by sessions that reply at the same time."""

    def __init__(self, inner: DiffusionReply, *, max_batch: int = 16, sessions: int = 32) -> None:
        self.inner = inner
        self.name = inner.name
        self.worker = BatchWorker(BatchedEngine(inner.engine, max_batch=max_batch, sessions=sessions))
        self._default = SessionReply(self, object())  # for callers without a session of their own

    @property
    def default_view(self) -> SessionReply:
        return self._default

    def for_session(self, key: object) -> ReplyModel:
        return SessionReply(self, key)

    def fit(self, messages: Messages) -> PromptFit:
        return self.inner.fit(messages)

    def stream(self, messages: Messages, cancel: threading.Event | None = None) -> Iterator[ReplyPiece]:
        return self._default.stream(messages, cancel)

    def prefill(self, messages: Messages) -> None:
        self._default.prefill(messages)

    def warmup(self) -> None:
        self.inner.warmup()
        self.warm_batch()

    def warm_batch(self) -> None:
        """One reply through the batch thread, so the first real one does not pay its first step."""
        session = SessionReply(self, object())
        for _ in session.stream([{"role": "user", "content": "Hello there."}]):
            pass
        session.release()

    def reconfigure(self, cfg: LMSection) -> None:
        self.inner.reconfigure(cfg)

    def reset(self) -> None:
        self._default.release()

    def close(self) -> None:
        """Stop the batch thread (replies still running end with an error)."""
        self.worker.close()

    @property
    def last_stats(self) -> ReplyStats:
        return self._default.last_stats


class SessionReply(ReplyModel):
    """One session's view of a ``BatchedReply``: its replies, its cached conversation, its stats."""

    def __init__(self, parent: BatchedReply, key: object) -> None:
        self.parent = parent
        self.key = key
        self.name = parent.name
        self._stats = ReplyStats(self.name)
        # What the reply gate reads of the last reply (``DiffusionReply`` has the same three).
        self.last_draft: str | None = None
        self.last_grounding: GroundedReply | None = None
        self.last_confidences: list[float] = []

    @property
    def drafts_state(self) -> str:
        return self.parent.inner.drafts_state

    def fit(self, messages: Messages) -> PromptFit:
        return self.parent.inner.fit(messages)

    def stream(self, messages: Messages, cancel: threading.Event | None = None) -> Iterator[ReplyPiece]:
        """``DiffusionReply.stream`` through the batch: a request an offline source answers is said as
        the source says it, or (``lm.phrase_grounded``) in the model's words when they say that fact."""
        context = messages.context if isinstance(messages, Prompt) else None
        self.last_grounding = None
        answer = context.grounding if context is not None else None
        if answer is not None and not self.parent.inner.cfg.phrase_grounded:
            self._stats = ReplyStats(self.name)  # no LM pass
            self.last_draft, self.last_confidences = answer.sentence, []
            self.last_grounding = GroundedReply(answer, "", answer.sentence, "source")
            yield ReplyPiece(answer.sentence, True)
            return
        if answer is None:
            yield from self._decode(messages, cancel)
            return
        pieces = [p.text.strip() for p in self._decode(messages, cancel)]
        if cancel is not None and cancel.is_set():
            return
        self.last_grounding = grounded_reply(
            answer, " ".join(p for p in pieces if p), messages[-1]["content"]
        )
        yield ReplyPiece(self.last_grounding.spoken, True)

    def _decode(self, messages: Messages, cancel: threading.Event | None) -> Iterator[ReplyPiece]:
        inner = self.parent.inner
        t0 = time.perf_counter()
        messages = self.fit(messages).messages  # a prompt that does not fit must never fail the turn
        # draft_text returns this call's draft (the shared model's ``last_draft`` is any session's)
        self.last_draft = inner.draft_text(messages)
        draft = inner.draft_tokens(self.last_draft)
        self.last_confidences = []
        prompt = inner.engine.tokenizer.encode_chat(messages, add_generation_prompt=True)
        blocks = self.parent.worker.stream(self.key, prompt, inner.options, draft=draft, stop=cancel)
        try:
            for block in blocks:
                r = blocks.result
                self.last_confidences = r.confidences
                self._stats = ReplyStats(
                    self.name,
                    steps=inner.cfg.steps,
                    tokens=len(r.token_ids),
                    forwards=r.forwards,
                    lm_ms=(time.perf_counter() - t0) * 1e3,  # up to this block, waiting and prefill included
                    prefill_ms=r.prefill_ms,
                )
                yield ReplyPiece(block.text, block.finished)
                if cancel is not None and cancel.is_set():
                    break
        finally:
            blocks.close()  # a consumer that stops early leaves the batch at the next step

    def prepare_text(self, text: str) -> None:
        self.parent.inner.prepare_text(text)

    def prefill(self, messages: Messages) -> None:
        tok = self.parent.inner.engine.tokenizer
        self.parent.worker.prefill(self.key, tok.encode_chat(self.fit(messages).messages))

    def reset(self) -> None:
        self.release()

    def release(self) -> None:
        self.parent.worker.forget(self.key)

    @property
    def last_stats(self) -> ReplyStats:
        return self._stats
