"""The gated reply model: nothing the gate judges garbled or wrong is ever spoken.

``GatedReply`` wraps the diffusion reply model (I/O: it runs the engine); the judging is
``agent.reply_gate``'s. A reply is generated whole (replies are ≤ 48 tokens, nearly always one block),
judged, and only then handed on as one piece, so the pipeline's TTS never starts on text the gate has
not passed. A failed candidate is replaced by the next one of a fixed chain:

  1. ``model``     the model's reply;
  2. ``draft``     the retrieved draft as written (filled for this conversation), if it fits the
                   message (``_draft_fits``) and passes;
  3. ``redecode``  one more decode (more steps, by default without the draft), only while the turn is
                   within ``gate.redecode_within_ms``, if it passes;
  4. ``recall``    for a question about the user, what they told the agent, said back ("You told me
                   your wife's name is Priya."; ``reply_gate.recall_reply``);
  5. ``honest``    a short true reply that fits the request ("I'm not sure about that one.").

A request an offline source answered (``agent.sources``) is not judged: its reply is the source's
sentence, or the model's phrasing already checked to say that fact and nothing else (``source``).

``last_gate`` holds the decision (which candidate, why, every verdict) for the turn's ``ReplyGated``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from .config import GateSection, LMSection
from .events import ReplyGated
from .prompt import PromptFit
from .reply import DiffusionReply, Messages, ReplyModel, ReplyPiece, ReplyStats
from .reply_batch import BatchedReply, SessionReply
from .reply_gate import (
    GateInput,
    GateModel,
    Lexicon,
    Verdict,
    honest_reply,
    new_names,
    recall_reply,
    request_kind,
    signals,
    words_of,
)
from .sources import GroundedReply

CANDIDATES = ("source", "model", "draft", "redecode", "recall", "honest")
# Messages where any retrieved reply of their kind fits (a greeting for a greeting): the draft as written
# needs no agreement from the model there.
_ANY_DRAFT_OF_ITS_KIND = frozenset({"greeting", "how_are_you", "farewell", "thanks"})


@dataclass(frozen=True)
class Tried:
    candidate: str
    text: str
    verdict: Verdict


@dataclass
class GateDecision:
    candidate: str  # which one was spoken (one of ``CANDIDATES``)
    text: str
    reason: str  # why: "passed", or what failed the ones before it
    tried: list[Tried] = field(default_factory=list)
    gate_ms: float = 0.0  # judging alone (all candidates)
    total_ms: float = 0.0  # LM + gate + fallbacks: the reply's whole cost before TTS

    @property
    def verdict(self) -> Verdict:
        """The verdict of the spoken candidate (the honest reply is passed as written)."""
        for t in self.tried:
            if t.candidate == self.candidate:
                return t.verdict
        return self.tried[0].verdict


def told_by_user(messages: Messages) -> list[str]:
    """What the user said about themselves before this message: the context's memory sentences ("The
    user's name is Sam.") first, then their earlier messages, oldest first (the latest wins a tie)."""
    msgs = list(messages)
    context = msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else ""
    memory = [s for s in re.split(r"(?<=[.!?])\s+", context) if s.startswith("The user")]
    return memory + [m["content"] for m in msgs[1 if context else 0 : -1] if m["role"] == "user"]


def gate_input(messages: Messages, reply: str, probs: Sequence[float] | None, draft: str | None) -> GateInput:
    """The gate's plain inputs from a prompt ``[system?, *history, user]``."""
    msgs = list(messages)
    context = msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else ""
    user = msgs[-1]["content"] if msgs else ""
    start = 1 if context else 0
    history = [m["content"] for m in msgs[start:-1]]
    return GateInput(reply, user, context, history, probs, draft)


class GatedReply(ReplyModel):
    """``inner``: the ``DiffusionReply``, or one session's view of a batched one (``SessionReply``: it
    has the same ``last_draft``, ``last_grounding`` and ``last_confidences``; no re-decode there)."""

    def __init__(
        self,
        inner: DiffusionReply | SessionReply,
        cfg: GateSection,
        gate: GateModel | None = None,
        lexicon: Lexicon | None = None,
        batched: BatchedReply | None = None,
    ) -> None:
        self.inner = inner
        self.gate_cfg = cfg
        self.gate = gate or GateModel.load(cfg.weights_path or None)
        self.lexicon = lexicon or Lexicon.load()
        self.batched = batched  # set: ``inner`` is its default view, and sessions get views of their own
        self.name = inner.name
        self.last_gate: GateDecision | None = None
        self._stats = ReplyStats(self.name)

    def behind_batch(self, batched: BatchedReply) -> GatedReply:
        """This gate in front of ``batched`` (``quickturn serve``); the scorer and lexicon are shared."""
        return GatedReply(batched.default_view, self.gate_cfg, self.gate, self.lexicon, batched)

    def for_session(self, key: object) -> ReplyModel:
        """One session's view of the batched model, behind the same gate; unbatched: this model."""
        if self.batched is None:
            return self
        view = self.batched.for_session(key)
        assert isinstance(view, SessionReply)
        return GatedReply(view, self.gate_cfg, self.gate, self.lexicon)

    # -- the ReplyModel interface, passed through ------------------------------------------------
    def fit(self, messages: Messages) -> PromptFit:
        return self.inner.fit(messages)

    def warmup(self) -> None:
        self.inner.warmup()
        if self.gate_cfg.redecode and isinstance(
            self.inner, DiffusionReply
        ):  # the re-decode's step count runs once before it is timed
            self.inner.engine.warmup(
                steps=(self.gate_cfg.redecode_steps,),
                block_lens=(min(self.inner.cfg.block_len, self.inner.cfg.max_tokens),),
                sampler=self.inner.options.sampler,
                rounds=1,
            )

    def prefill(self, messages: Messages) -> None:
        self.inner.prefill(messages)

    def reconfigure(self, cfg: LMSection) -> None:
        self.inner.reconfigure(cfg)
        self.name = self.inner.name

    def reset(self) -> None:
        self.inner.reset()

    def release(self) -> None:
        self.inner.release()

    def prepare_text(self, text: str) -> None:
        self.inner.prepare_text(text)

    @property
    def drafts_state(self) -> str:
        return f"{self.inner.drafts_state}, reply gate on"

    @property
    def last_stats(self) -> ReplyStats:
        return self._stats

    @property
    def last_grounding(self) -> GroundedReply | None:  # type: ignore[override]
        return self.inner.last_grounding

    # -- the gate --------------------------------------------------------------------------------
    def judge(
        self, messages: Messages, text: str, probs: Sequence[float] | None, draft: str | None
    ) -> Verdict:
        s = signals(gate_input(messages, text, probs, draft), self.lexicon)
        return self.gate.judge(s, self.gate_cfg.threshold or None)

    def _draft_fits(self, messages: Messages, draft: str, model_text: str, model_verdict: Verdict) -> bool:
        """The draft as written only where it likely answers this message: the model's own reply kept
        enough of it (a draft retrieved for another question is mostly vetoed by the model), or the
        message is a greeting, goodbye or thanks (where any retrieved reply of its kind fits).
        Measured on the listener-eval prompts: docs/notes/reply-gate.md. Never a draft that puts a name of
        its own where the model said the user's word ("Hello Will!" / "Hello Sam!" to "My name is Sam.")."""
        if draft_in_users_words(draft, model_text, messages) or names_over_users(draft, messages):
            return False
        if model_verdict.signals.get("draft_agreement", 0.0) >= self.gate_cfg.draft_min_agreement:
            return True
        return request_kind(messages[-1]["content"] if messages else "") in _ANY_DRAFT_OF_ITS_KIND

    def stream(self, messages: Messages, cancel: threading.Event | None = None) -> Iterator[ReplyPiece]:
        t0 = time.perf_counter()
        self.last_gate = None
        messages = self.inner.fit(messages).messages
        pieces = [p.text.strip() for p in self.inner.stream(messages, cancel)]
        if cancel is not None and cancel.is_set():
            return
        stats = self.inner.last_stats
        grounding = self.inner.last_grounding
        if grounding is not None:  # a source's fact, already checked: spoken as decided
            total = round((time.perf_counter() - t0) * 1e3, 2)
            verdict = Verdict(True, 0.0, {}, ("grounded",))
            tried = [Tried("source", grounding.spoken, verdict)]
            self.last_gate = GateDecision("source", grounding.spoken, f"grounded ({grounding.by})",
                                          tried, 0.0, total)  # fmt: skip
            self._stats = replace(stats, lm_ms=total)
            yield ReplyPiece(grounding.spoken, True)
            return
        draft = self.inner.last_draft
        decision = self._choose(
            messages, " ".join(p for p in pieces if p).strip(), self.inner.last_confidences, draft, t0
        )
        redecoded = (
            self.inner.engine.last_result.forwards if decision.tried[-1].candidate == "redecode" else 0
        )
        forwards = stats.forwards + redecoded
        self._stats = replace(stats, lm_ms=decision.total_ms, forwards=forwards, tokens=stats.tokens)
        self.last_gate = decision
        yield ReplyPiece(decision.text, True)

    def _choose(
        self, messages: Messages, text: str, probs: Sequence[float], draft: str | None, t0: float
    ) -> GateDecision:
        gate_s = 0.0
        tried: list[Tried] = []

        def attempt(candidate: str, reply: str, reply_probs: Sequence[float] | None) -> bool:
            nonlocal gate_s
            tg = time.perf_counter()
            verdict = self.judge(messages, reply, reply_probs, draft)
            gate_s += time.perf_counter() - tg
            tried.append(Tried(candidate, reply, verdict))
            return verdict.passed

        def decided(candidate: str, reply: str) -> GateDecision:
            failed = [
                f"{t.candidate}: {'+'.join(t.verdict.reasons) or 'score'}"
                for t in tried
                if not t.verdict.passed
            ]
            reason = "passed" if not failed else "; ".join(failed)
            total = (time.perf_counter() - t0) * 1e3
            return GateDecision(candidate, reply, reason, tried, round(gate_s * 1e3, 3), round(total, 2))

        if attempt("model", text, probs):
            return decided("model", text)
        cfg = self.gate_cfg
        if (
            draft
            and draft.strip() != text
            and self._draft_fits(messages, draft.strip(), text, tried[0].verdict)
            and attempt("draft", draft.strip(), None)
        ):
            return decided("draft", draft.strip())
        in_their_words = draft_in_users_words(draft or "", text, messages)
        if in_their_words and attempt("draft", in_their_words, None):
            return decided("draft", in_their_words)  # "Hello Will! ..." said with the user's own name
        # (a session of a batched model has no engine of its own to re-decode on)
        if (
            cfg.redecode
            and isinstance(self.inner, DiffusionReply)
            and (time.perf_counter() - t0) * 1e3 < cfg.redecode_within_ms
        ):
            options = replace(self.inner.options, steps=cfg.redecode_steps)
            again_draft = self.inner.draft_ids(messages) if cfg.redecode_drafts else None
            again = self.inner.engine.generate(messages, options, draft=again_draft)
            if again.text != text and attempt("redecode", again.text, again.confidences):
                return decided("redecode", again.text)
        user = messages[-1]["content"] if messages else ""
        recalled = recall_reply(user, told_by_user(messages))
        if recalled is not None:  # the user's own words: spoken as they are, like the honest line
            tried.append(Tried("recall", recalled, Verdict(True, 0.0, {}, ("asks_about_user",))))
            return decided("recall", recalled)
        honest = honest_reply(user)
        tried.append(Tried("honest", honest, Verdict(True, 0.0, {}, (request_kind(user),))))
        return decided("honest", honest)


def draft_in_users_words(draft: str, reply: str, messages: Messages) -> str | None:
    """The model's reply, when it is the draft with only the draft's made-up names replaced by words of
    the user's message ("Hello Will! I'll remember that." → "Hello Sam! I'll remember that." after "My
    name is Sam."): the draft's wording, the user's facts. None otherwise."""
    if not draft or not messages or not new_names(draft, messages):
        return None
    user = {w.lower() for w in words_of(messages[-1]["content"])}
    a, b = words_of(draft), words_of(reply)
    if len(a) != len(b) or a == b:
        return None
    if all(x == y or y.lower() in user for x, y in zip(a, b)):
        return reply
    return None


def names_over_users(draft: str, messages: Messages) -> bool:
    """The draft names someone nobody mentioned while a name the user just said is missing from it
    ("Hello Will!" to "My name is Sam."; "The capital of Italy is Rome." to a question about Italy is fine)."""
    if not messages or not new_names(draft, messages[:-1] or messages):
        return False
    said = {
        w
        for w in words_of(messages[-1]["content"])[1:]
        if w[:1].isupper() and w != "I" and not w.startswith("I'")
    }
    return bool(said - set(words_of(draft)))


def with_gate(reply: ReplyModel, cfg: GateSection) -> ReplyModel:
    """``reply`` behind the gate when ``cfg.enabled`` (the diffusion model only: baselines are profiled
    as they are), else the bare model — so a profiling sweep over ``gate.enabled`` shares one model."""
    base = reply.inner if isinstance(reply, GatedReply) else reply
    if cfg.enabled and isinstance(base, DiffusionReply):
        if isinstance(reply, GatedReply) and reply.gate_cfg == cfg:
            return reply
        return GatedReply(base, cfg)
    return base


def gate_event(decision: GateDecision, turn: int, t: float) -> ReplyGated:
    """The turn's typed record of the gate's decision."""
    first = decision.tried[0].verdict
    return ReplyGated(
        turn,
        t,
        candidate=decision.candidate,
        reason=decision.reason,
        score=first.score,
        verdict="passed" if first.passed else "blocked",
        signals={k: round(v, 4) for k, v in first.signals.items() if v},
        tried=[
            {"candidate": x.candidate, "text": x.text, "score": x.verdict.score, "passed": x.verdict.passed}
            for x in decision.tried
        ],
        gate_ms=decision.gate_ms,
        text=decision.text,
    )
