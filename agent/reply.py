"""Reply models behind one small interface, so any engine config (or a baseline) drops in.

* ``DiffusionReply``  the dlm_core engine: S parallel denoising steps per block (the default);
* ``ARBaselineReply`` the same weights decoded autoregressively, one token per forward (profiling);
* ``TeacherReply``    SmolLM2-135M-Instruct through transformers, when installed (profiling reference).

Messages may come as an ``agent.prompt.Prompt``: the list with the typed context it was written from,
which the diffusion model's draft index fills its templates from. All are synchronous; the pipeline calls them from a worker thread, never on the event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from dlm_core import (
    Constraints,
    DecodeOptions,
    DiffusionEngine,
    ModelLoadError,
    SamplerConfig,
    banned_token_ids,
)

from .config import LMSection
from .prompt import Prompt, PromptFit, fit_prompt
from .sources import GroundedReply, SourceAnswer, grounded_reply
from .sources import warm_up as warm_sources

# The shipped model folder, found through the installed package (a wheel has it as well as a checkout).
EMBEDDED_MODEL = Path(str(resources.files("agent.embedded").joinpath("model")))
DRAFTS_FILE = "drafts.json.gz"  # the draft index beside the weights (agent/embedded/drafts.py)

Messages = Sequence[dict[str, str]]


@dataclass
class ReplyPiece:
    text: str
    last: bool  # the model has finished; ``last_stats`` is final


@dataclass
class ReplyStats:
    model: str
    steps: int = 0
    tokens: int = 0
    forwards: int = 0
    lm_ms: float = 0.0
    prefill_ms: float = 0.0


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"lm.device={name!r} but no CUDA GPU is available (use lm.device=cpu)")
    return name


def default_model_path() -> Path:
    if not (EMBEDDED_MODEL / "config.json").is_file():
        raise ModelLoadError(
            f"the embedded reply model is missing at {EMBEDDED_MODEL} (the package ships it: reinstall "
            "quickturn; in a checkout `make train` rebuilds it), or set lm.model_path to a local dLLM folder"
        )
    return EMBEDDED_MODEL


class ReplyModel:
    name = "reply"

    def stream(self, messages: Messages, cancel: threading.Event | None = None) -> Iterator[ReplyPiece]:
        """Yield the reply in pieces (one per finished block); stop early when ``cancel`` is set."""
        raise NotImplementedError

    def fit(self, messages: Messages) -> PromptFit:
        """The prompt cut to the model's context (``agent.prompt.fit_prompt``); unchanged if it fits."""
        return PromptFit([dict(m) for m in messages], 0)

    def reply(self, messages: Messages) -> str:
        return " ".join(p.text.strip() for p in self.stream(messages)).strip()

    # The latest grounded turn's decision (agent.sources): what the model said, what was spoken and why.
    last_grounding: GroundedReply | None = None

    def warmup(self) -> None:
        """Run once on a dummy prompt so the first real turn is as fast as the tenth."""

    def prefill(self, messages: Messages) -> None:
        """Optionally cache the conversation so far while the user is still speaking."""

    def prepare_text(self, text: str) -> None:
        """Optionally work on what the user has said so far (a partial transcript) while they speak."""

    def reconfigure(self, cfg: LMSection) -> None:
        """Apply run-time settings (steps, sampler, limits) without reloading weights (profiling sweeps)."""

    def reset(self) -> None:
        """Forget any cached conversation, so a new session starts from the same state."""

    def for_session(self, key: object) -> ReplyModel:
        """The model as one session (one conversation) uses it. Shared models that keep a cache per
        session (``agent.reply_batch.BatchedReply``) return a view of their own; others are their own."""
        return self

    def release(self) -> None:
        """A session view's conversation ended: free what it holds (nothing for a plain model)."""

    @property
    def last_stats(self) -> ReplyStats:
        raise NotImplementedError


# LMSection fields that shape the loaded engine: changing one needs a new model, not ``reconfigure``.
LOAD_FIELDS = ("model_path", "family", "device", "max_context", "block_len", "cuda_graphs")


class DiffusionReply(ReplyModel):
    def __init__(self, cfg: LMSection) -> None:
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        device = resolve_device(cfg.device)
        path = Path(cfg.model_path) if cfg.model_path else default_model_path()
        self.engine = DiffusionEngine.from_pretrained(
            path,
            device=device,
            family=cfg.family or None,
            max_context=cfg.max_context,
            default_block_len=cfg.block_len,
            use_cuda_graphs=cfg.cuda_graphs,
        )
        self.name = f"dlm:{path.name}"
        self.drafts = None
        if (path / DRAFTS_FILE).is_file():
            from .embedded.drafts import DraftIndex
            from .embedded.meaning import EncoderMissing

            try:
                self.drafts = DraftIndex.load(path / DRAFTS_FILE)
                self.drafts.configure(
                    cfg.draft_retrieval,  # type: ignore[arg-type]
                    cfg.draft_min_meaning,
                    cfg.draft_encode_in_turn,
                )
            except EncoderMissing as exc:
                raise ModelLoadError(str(exc)) from exc
            except ValueError as exc:
                raise ModelLoadError(f"lm.draft_retrieval: {exc}") from exc
        elif cfg.drafts and path.resolve() == EMBEDDED_MODEL.resolve():
            # The shipped weights were tuned with their draft index: without it replies are worse, never
            # silently so (another model folder may simply have none).
            raise ModelLoadError(
                f"the shipped model folder {path} has no {DRAFTS_FILE} (a broken install or checkout): "
                "reinstall quickturn (in a checkout: git checkout agent/embedded/model), "
                "or run without drafts with --set lm.drafts=false"
            )
        self._warmed: set[int] = set()
        self.last_draft: str | None = None  # the draft text the last reply was conditioned on
        self._apply_runtime(cfg)
        self._stats = ReplyStats(self.name)

    @property
    def drafts_state(self) -> str:
        """For the user: whether replies are draft-conditioned, and if not why."""
        if self.drafts is None:
            return f"no draft index ({DRAFTS_FILE} not in the model folder)"
        return "drafts on" if self.cfg.drafts else "drafts off (lm.drafts=false)"

    def _apply_runtime(self, cfg: LMSection) -> None:
        """The engine's decoding options from the ``[lm]`` section (block_len is a load field: the
        engine's default already)."""
        banned = banned_token_ids(self.engine.tokenizer, cfg.ban) if cfg.ban else ()
        self.options = DecodeOptions(
            max_tokens=cfg.max_tokens,
            steps=cfg.steps,
            sampler=SamplerConfig(
                rule=cfg.sampler,
                confidence=cfg.confidence,
                threshold=cfg.threshold,
                temperature=cfg.temperature,
                seed=cfg.seed,
            ),
            constraints=Constraints(
                banned_ids=banned,
                min_tokens=cfg.min_tokens,
                finish_copies=cfg.finish_copies,
                whole_word_copies=cfg.whole_word_copies,
            ),
            draft_threshold=cfg.draft_threshold,
            draft_guidance=cfg.draft_guidance,
            early_exit=cfg.early_exit,
        )

    def reconfigure(self, cfg: LMSection) -> None:
        changed = [k for k in LOAD_FIELDS if getattr(cfg, k) != getattr(self.cfg, k)]
        if changed:
            raise ValueError(f"lm.{', lm.'.join(changed)} changed: these need a new model, not reconfigure()")
        if cfg.threads and cfg.threads != self.cfg.threads:
            torch.set_num_threads(cfg.threads)
        if self.drafts is not None:  # how drafts are found is a run-time setting (a profiling sweep)
            self.drafts.configure(cfg.draft_retrieval, cfg.draft_min_meaning, cfg.draft_encode_in_turn)  # type: ignore[arg-type]
        self.cfg = cfg
        self._apply_runtime(cfg)
        if cfg.steps not in self._warmed:  # a new step count: compile/capture it before it is timed
            self.warmup()

    def reset(self) -> None:
        self.engine.reset()

    def fit(self, messages: Messages) -> PromptFit:
        tok = self.engine.tokenizer
        return fit_prompt(
            messages, self.engine.prompt_budget(self.cfg.max_tokens), lambda m: len(tok.encode_chat(m)),
            tok.encode, tok.decode,
        )  # fmt: skip

    def stream(self, messages: Messages, cancel: threading.Event | None = None) -> Iterator[ReplyPiece]:
        context = messages.context if isinstance(messages, Prompt) else None
        self.last_grounding = None
        if context is not None and context.grounding is not None:
            yield from self._grounded(messages, context.grounding, cancel)
            return
        yield from self._stream(messages, cancel)

    def _grounded(
        self, messages: Messages, answer: SourceAnswer, cancel: threading.Event | None
    ) -> Iterator[ReplyPiece]:
        """A request an offline source answers: the source's sentence is the draft, the whole reply is
        decoded (one short block as a rule), and it is spoken only if it says the fact and nothing
        else (``agent.sources.grounded_reply``); otherwise the source's sentence is."""
        if not self.cfg.phrase_grounded:
            self._stats = ReplyStats(self.name)  # no LM pass
            self.last_grounding = GroundedReply(answer, "", answer.sentence, "source")
            yield ReplyPiece(answer.sentence, True)
            return
        pieces = [p.text.strip() for p in self._stream(messages, cancel)]
        if cancel is not None and cancel.is_set():
            return
        choice = grounded_reply(answer, " ".join(p for p in pieces if p), messages[-1]["content"])
        self.last_grounding = choice
        yield ReplyPiece(choice.spoken, True)

    def _stream(self, messages: Messages, cancel: threading.Event | None = None) -> Iterator[ReplyPiece]:
        t0 = time.perf_counter()
        messages = self.fit(messages).messages  # a prompt that does not fit must never fail the turn
        draft = self.draft_ids(messages)
        # ``cancel``: a discarded speculative reply frees the cores within one step
        gen = self.engine.stream(messages, self.options, draft=draft, stop=cancel)
        try:
            for block in gen:
                r = self.engine.last_result
                self._stats = ReplyStats(
                    self.name,
                    steps=self.cfg.steps,
                    tokens=len(r.token_ids),
                    forwards=r.forwards,
                    lm_ms=(time.perf_counter() - t0) * 1e3,  # up to this block, prefill included
                    prefill_ms=r.prefill_ms,
                )
                yield ReplyPiece(block.text, block.finished)
                if cancel is not None and cancel.is_set():
                    break
        finally:
            gen.close()  # releases the engine lock even when the consumer stops early

    @property
    def last_confidences(self) -> list[float]:
        """Each token's probability when it was revealed, for the last reply (the reply gate reads it)."""
        return self.engine.last_result.confidences

    def draft_ids(self, messages: Messages) -> list[int] | None:
        """Token ids of a retrieved draft reply (with its end token), or None. Templates that need a
        context value are filled only from a ``Prompt``'s context."""
        return self.draft_tokens(self.draft_text(messages))

    def draft_tokens(self, text: str | None) -> list[int] | None:
        """A draft reply as the engine takes it: its tokens and the end token (None stays None)."""
        if text is None:
            return None
        return self.engine.tokenizer.encode(text) + list(self.engine.cfg.eos_token_ids[:1])

    def draft_text(self, messages: Messages) -> str | None:
        """The retrieved draft reply, filled for this conversation, or None (also kept as
        ``last_draft``: the reply gate falls back to it as written)."""
        self.last_draft = None
        context = messages.context if isinstance(messages, Prompt) else None
        if context is not None and context.grounding is not None:  # the source's answer is the draft
            self.last_draft = context.grounding.sentence
            return self.last_draft
        if not self.cfg.drafts or self.drafts is None:
            return None
        self.last_draft = self.drafts.draft(messages, context, self.cfg.draft_min_similarity)
        return self.last_draft

    def warmup(self) -> None:
        """Run (and on CUDA capture) every block shape a reply can take with this sampler."""
        full = min(self.cfg.block_len, self.cfg.max_tokens)
        tail = self.cfg.max_tokens % self.cfg.block_len if self.cfg.max_tokens > self.cfg.block_len else 0
        lens = tuple(n for n in (full, tail) if n >= self.cfg.steps)
        self.engine.warmup(steps=(self.cfg.steps,), block_lens=lens, sampler=self.options.sampler)
        _ = self.engine.token_texts  # built once here, not in the first turn (finish_copies reads it)
        warm_sources()  # countryinfo's files and pint's registry (~0.4 s), not in the first grounded turn
        self._warmed.add(self.cfg.steps)

    def prefill(self, messages: Messages) -> None:
        self.engine.prefill(self.fit(messages).messages)

    def prepare_text(self, text: str) -> None:
        """Encode the partial transcript for draft retrieval by meaning (cached: free at the turn's end
        when the final transcript is the same words)."""
        if self.drafts is not None and self.cfg.drafts:
            self.drafts.prepare(text)

    @property
    def last_stats(self) -> ReplyStats:
        return self._stats


class ARBaselineReply(ReplyModel):
    """The diffusion model's own weights decoded left to right: the autoregressive baseline."""

    def __init__(self, cfg: LMSection) -> None:
        from dlm_core.ar import ar_generate

        self._ar_generate = ar_generate
        self.cfg = cfg
        self.inner = DiffusionReply(cfg)
        self.name = f"ar:{Path(cfg.model_path).name if cfg.model_path else EMBEDDED_MODEL.name}"
        self._stats = ReplyStats(self.name)

    def fit(self, messages: Messages) -> PromptFit:
        return self.inner.fit(messages)

    def stream(self, messages: Messages, cancel: threading.Event | None = None) -> Iterator[ReplyPiece]:
        engine = self.inner.engine
        prompt = engine.tokenizer.encode_chat(self.fit(messages).messages)
        t0 = time.perf_counter()
        ids = self._ar_generate(engine.model, prompt, self.cfg.max_tokens, engine.cfg.eos_token_ids)
        engine.reset()  # the AR run overwrote the KV cache the diffusion engine keeps track of
        ms = (time.perf_counter() - t0) * 1e3
        self._stats = ReplyStats(
            self.name,
            steps=len(ids),
            tokens=len(ids),
            forwards=len(ids) + 1,
            lm_ms=ms,
        )
        yield ReplyPiece(engine.tokenizer.decode(ids).strip(), True)

    def warmup(self) -> None:
        for _ in range(2):
            self.reply([{"role": "user", "content": "Hello there."}])

    def reconfigure(self, cfg: LMSection) -> None:
        changed = [k for k in LOAD_FIELDS if getattr(cfg, k) != getattr(self.cfg, k)]
        if changed:
            raise ValueError(f"lm.{', lm.'.join(changed)} changed: these need a new model, not reconfigure()")
        self.cfg = cfg  # only max_tokens matters to greedy decoding

    @property
    def last_stats(self) -> ReplyStats:
        return self._stats


class TeacherReply(ReplyModel):
    """SmolLM2-135M-Instruct (autoregressive, transformers), the embedded model's teacher."""

    def __init__(self, cfg: LMSection) -> None:
        from dlm_core.smollm2 import load_teacher, teacher_reply

        self.cfg = cfg
        self._teacher = load_teacher(threads=cfg.threads or None)
        self._teacher_reply = teacher_reply
        self.name = "teacher:smollm2-135m-instruct"
        self._stats = ReplyStats(self.name)

    def stream(self, messages: Messages, cancel: threading.Event | None = None) -> Iterator[ReplyPiece]:
        t0 = time.perf_counter()
        # teacher_reply takes a batch of chats and returns samples per chat: one chat, one sample.
        texts = self._teacher_reply(
            self._teacher, [list(messages)], max_new_tokens=self.cfg.max_tokens, seed=self.cfg.seed
        )
        text = texts[0][0].strip() if texts and texts[0] else ""
        n = len(self._teacher.tokenizer.encode(text, add_special_tokens=False))
        self._stats = ReplyStats(
            self.name, steps=n, tokens=n, forwards=n + 1, lm_ms=(time.perf_counter() - t0) * 1e3
        )
        yield ReplyPiece(text, True)

    def reconfigure(self, cfg: LMSection) -> None:
        self.cfg = cfg  # max_tokens and seed are read at each call

    def warmup(self) -> None:
        self.reply([{"role": "user", "content": "Hello there."}])

    @property
    def last_stats(self) -> ReplyStats:
        return self._stats


def build_reply_model(cfg: LMSection, kind: str = "diffusion") -> ReplyModel:
    if kind == "diffusion":
        return DiffusionReply(cfg)
    if kind == "ar":
        return ARBaselineReply(cfg)
    if kind == "teacher":
        return TeacherReply(cfg)
    raise ValueError(f"unknown reply model kind {kind!r} (diffusion | ar | teacher)")
