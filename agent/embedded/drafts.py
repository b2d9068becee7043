"""Retrieved drafts for draft-conditioned denoising.

For a new user message, find the most similar training prompt (TF-IDF over words and word pairs) and
offer its reply as a draft. Context values in the stored replies (the assistant's name, the time, the
part of the day, the weekday, the date, a sum's result) are kept as placeholders and filled from the
current prompt's context, so "It's 6:53 PM." retrieved from another evening becomes "It's 2:05 PM."
now. One piece of history is a context value too: the assistant's previous reply, so "Say that
again." retrieves "Of course. {previous}" and the draft repeats what was really said. So is what the user
told the agent about themselves (``agent.memory``: "The user's favorite food is tacos."): a question
about it keeps two replies, "Your favorite food is {user_food}." and the training data's answer for a
fact never told ("I don't think you've told me that yet."), and the draft is the first one this
conversation's context can fill. The reply model then keeps only the draft tokens it finds plausible for
this conversation (``DiffusionEngine.stream(draft=...)``).

The values come typed (``agent.prompt.Context``), as the agent wrote the context from them. This module
loads and looks up the index; ``recipe/drafts.py`` builds it from the training data (``make train``).

Retrieval is by words (TF-IDF, above) or by meaning (``retrieval="meaning"``: MiniLM sentence vectors,
``agent.embedded.meaning``), which finds paraphrases that share few words with any stored prompt ("Do
you still know who I am?" → "what's my name"). Measured in docs/notes/grounding.md.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from agent.calculator import NUMBER_WORDS
from agent.memory import facts_in

if TYPE_CHECKING:
    import torch

    from agent.embedded.meaning import SentenceEncoder
    from agent.prompt import Context

Retrieval = Literal["words", "meaning", "both"]

_WORD = re.compile(r"[a-z0-9']+")

_NUMBER = "<num>"
# "one" is more often a word than a number ("one more time", "which one").
_SPOKEN_NUMBERS = NUMBER_WORDS - {"one"}


def terms(text: str) -> list[str]:
    """Words and word pairs. A number is one term whatever its value or spelling ("forty three",
    "43"), so "what's two plus two" finds the sums the index holds in digits."""
    words: list[str] = []
    for w in _WORD.findall(text.lower()):
        if w[0].isdigit() or w in _SPOKEN_NUMBERS:
            if words and words[-1] == _NUMBER:
                continue  # "forty three", "5 45" (a time): one number
            w = _NUMBER
        words.append(w)
    return words + [f"{a}_{b}" for a, b in zip(words, words[1:])]


def previous_reply(messages: Sequence[dict[str, str]]) -> str | None:
    """The assistant's reply just before the last user message, if there is one."""
    if len(messages) >= 3 and messages[-2]["role"] == "assistant":
        return messages[-2]["content"].strip() or None
    return None


def fill(template: str, values: dict[str, str] | None) -> str | None:
    if "{" not in template:
        return template
    if values is None:
        return None
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return None


@dataclass
class DraftIndex:
    prompts: list[str]
    replies: list[str | list[str]]  # a template, or templates to try in order (the first that fills wins)
    retrieval: Retrieval = "words"
    min_meaning: float = (
        0.6  # cosine of sentence vectors below which no draft is offered (retrieval="meaning")
    )

    def __post_init__(self) -> None:
        self.encoder: SentenceEncoder | None = None
        self.vectors: torch.Tensor | None = None
        self.folder: Path | None = None  # where the index was loaded from (its stored vectors lie beside it)
        df: Counter[str] = Counter()
        docs = [Counter(terms(p)) for p in self.prompts]
        for d in docs:
            df.update(d.keys())
        n = len(docs)
        self.idf = {t: math.log((1 + n) / (1 + c)) + 1 for t, c in df.items()}
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, d in enumerate(docs):
            vec = {t: c * self.idf[t] for t, c in d.items()}
            norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
            for t, v in vec.items():
                self.postings[t].append((i, v / norm))

    @classmethod
    def load(
        cls,
        path: str | Path,
        retrieval: Retrieval = "words",
        min_meaning: float = 0.6,
        encode_in_turn: bool = True,
    ) -> DraftIndex:
        with gzip.open(path, "rt") as f:
            pairs = json.load(f)
        index = cls([p for p, _ in pairs], [r for _, r in pairs])
        index.folder = Path(path).parent
        index.configure(retrieval, min_meaning, encode_in_turn)
        return index

    def configure(self, retrieval: Retrieval, min_meaning: float, encode_in_turn: bool) -> None:
        """How drafts are found (a run-time setting: profiling sweeps switch it on a loaded model)."""
        if retrieval not in ("words", "meaning", "both"):
            raise ValueError(f"draft retrieval {retrieval!r}: use words, meaning or both")
        self.retrieval, self.min_meaning, self.encode_in_turn = retrieval, min_meaning, encode_in_turn
        if retrieval != "words" and self.vectors is None:
            from agent.embedded.meaning import prompt_vectors, shared_encoder

            self.encoder = shared_encoder()
            if self.folder is None:
                raise ValueError(
                    "retrieval by meaning needs an index loaded from its folder (DraftIndex.load)"
                )
            self.vectors = prompt_vectors(self.prompts, self.folder, self.encoder)

    def meaning_scores(self, prompt: str, top: int = 16) -> dict[int, float]:
        """Cosine of the prompt's sentence vector to the ``top`` closest stored prompts'."""
        if self.encoder is None or self.vectors is None:
            raise ValueError("this draft index was loaded without sentence vectors (retrieval='words')")
        sims = self.vectors @ self.encoder.encode(prompt)
        values, ids = sims.topk(min(top, len(self.prompts)))
        return {int(i): float(v) for v, i in zip(values, ids)}

    def prepare(self, prompt: str) -> None:
        """Encode ``prompt`` now (a partial transcript while the user speaks), so that the same text's
        retrieval at the end of the turn costs no encoder pass."""
        if self.retrieval != "words" and self.encoder is not None and prompt.strip():
            self.encoder.encode(prompt)

    def scores(self, prompt: str) -> dict[int, float]:
        """Cosine similarity of the prompt to every stored prompt that shares a term with it."""
        q = Counter(t for t in terms(prompt) if t in self.idf)
        vec = {t: c * self.idf[t] for t, c in q.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        scores: dict[int, float] = defaultdict(float)
        for t, v in vec.items():
            for i, w in self.postings[t]:
                scores[i] += v / norm * w
        return scores

    def draft(
        self, messages: Sequence[dict[str, str]], context: Context | None, min_similarity: float = 0.5
    ) -> str | None:
        """A draft reply for the conversation's last user message, or None when nothing is close.
        ``context`` holds the values the system message was written from; without it only replies
        that need no value (and no previous reply) are drafts."""
        asked = messages[-1]["content"]
        ranked: list[int] = []
        retrieval = self.retrieval
        if (
            retrieval != "words"
            and not self.encode_in_turn
            and not (self.encoder and self.encoder.cached(asked))
        ):
            retrieval = (
                "words"  # the words were not encoded while the user spoke: no encoder pass in the turn
            )
        if retrieval != "words":  # closest in meaning first
            by_meaning = self.meaning_scores(asked)
            ranked = sorted(
                (i for i, s in by_meaning.items() if s >= self.min_meaning), key=lambda i: -by_meaning[i]
            )
        if retrieval != "meaning":  # then (or only) the closest in words
            scores = self.scores(asked)
            ranked += sorted(
                (i for i, s in scores.items() if s >= min_similarity and i not in ranked),
                key=lambda i: -scores[i],
            )
        # The closest prompt; a question about a remembered fact only if it asks about the same thing.
        i = next(
            (i for i in ranked if isinstance(self.replies[i], str) or _asks_the_same(self.prompts[i], asked)),
            -1,
        )
        if i < 0:
            return None
        values = context.values() if context is not None else None
        previous = previous_reply(messages)
        if values is not None and previous is not None:
            values = {**values, "previous": previous}
        templates = self.replies[i]
        for template in [templates] if isinstance(templates, str) else templates:
            draft = fill(template, values)
            if draft is not None:
                return draft
        return None


# Words that frame a question without saying what it is about.
_FRAME_WORDS = frozenset((
    "what", "what's", "whats", "which", "who", "where", "is", "are", "am", "was", "my", "i", "i'm", "me",
    "you", "do", "did", "does", "can", "could", "would", "please", "tell", "say", "said", "remember",
    "know", "again", "the", "a", "an", "it", "that", "this", "to", "of",
))  # fmt: skip

_ABOUT_THE_USER = frozenset({"my", "i", "me", "i'm", "im"})


def _asks_the_same(stored: str, asked: str) -> bool:
    """A question about a remembered fact is a draft only when the new question has all its content
    words ("do you remember my favorite color" must not answer "do you remember my favorite food"), at
    least one of them, is about the user ("what's my name", not "what's your name") and states no fact."""
    if facts_in(asked):  # "Yellow is my favorite color." tells a fact: it does not ask for one
        return False
    asked_words = set(_WORD.findall(asked.lower()))
    about = set(_WORD.findall(stored)) - _FRAME_WORDS
    return bool(about) and about <= asked_words and bool(asked_words & _ABOUT_THE_USER)
