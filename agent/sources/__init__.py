"""Offline sources of facts: the agent looks the answer up, the reply model only says it.

A reply model of a few million weights cannot know that Rome is the capital of Italy (it said "The
capital is Italy."), but it can say a sentence it is given. So a request that an offline source can
answer is matched here (sans-I/O: the request text and the previous user message in, a typed result
out) and the source's sentence goes into the turn's context (``agent.prompt.Context.grounding``) and
becomes the reply's draft; ``agent.reply`` checks that the spoken reply says the fact and otherwise
speaks the source's sentence.

Three outcomes, for the reply gate and the trace:

* ``Coverage.ANSWER``: a source covers the question and knows the answer ("The capital of Italy is Rome.");
* ``Coverage.UNKNOWN``: the question is of a kind a source covers, but the source has no answer
  ("What's the capital of Atlantis?" → "I don't know the capital of Atlantis."): honest, never invented;
* ``Coverage.NOT_COVERED`` (``look_up`` returns None): no source covers this kind of question.

Sources (all offline, from packages): ``countries`` (countryinfo: capitals, where a country is, its
currency), ``units`` (pint: unit conversions), ``words`` (WordNet: definitions), ``fun`` (jokes, fun facts and riddles written for this
project, plus pyjokes' one-liners).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Literal


class Coverage(Enum):
    ANSWER = "answer"  # a source knows the answer
    UNKNOWN = "unknown"  # a covered kind of question whose answer no source has: say so
    NOT_COVERED = "not_covered"  # no source covers this kind of question


@dataclass(frozen=True)
class SourceAnswer:
    """What a source says to one request."""

    kind: str  # "capital", "region", "currency", "conversion", "joke", "fun_fact", "riddle"
    coverage: Coverage  # ANSWER or UNKNOWN (a request no source covers has no SourceAnswer)
    sentence: str  # what to say: "The capital of Italy is Rome." / "I don't know the capital of Atlantis."
    must_say: tuple[str, ...]  # what a reply must contain to say this fact ("Rome",); () for UNKNOWN
    source: str  # where it came from: "countryinfo", "pint", "quickturn", "pyjokes"
    subject: str = ""  # what it was about ("Italy"): a follow-up ("And of Spain?") asks the same of another

    @property
    def known(self) -> bool:
        return self.coverage is Coverage.ANSWER

    def said_by(self, reply: str) -> bool:
        """Whether ``reply`` says this fact: it holds every ``must_say`` string (case and spaces aside)."""
        text = " ".join(reply.lower().split())
        return all(" ".join(s.lower().split()) in text for s in self.must_say)


DONT_KNOW = ("don't know",)  # what an honest "I don't know ..." reply must say


_WORD = re.compile(r"[a-z0-9']+(?:[.,][0-9]+)*")
# Words a reply may add to the source's sentence without adding a claim.
_GLUE = frozenset(("the", "a", "an", "is", "it's", "its", "that", "this", "well", "so", "sure", "oh", "yes",
                   "and", "of", "in", "there", "are"))  # fmt: skip


@dataclass(frozen=True)
class GroundedReply:
    """What was spoken for a grounded turn, and why: the model's phrasing when it says the source's fact
    and nothing else, otherwise the source's own sentence."""

    answer: SourceAnswer
    model_text: str
    spoken: str
    by: Literal["model", "source"]


def phrases(answer: SourceAnswer, reply: str, question: str) -> bool:
    """Whether ``reply`` says ``answer``'s fact and claims nothing more: it holds every ``must_say``
    string and each of its words is in the source's sentence, the question, or a few glue words
    ("The capital is Rome." phrases "The capital of Italy is Rome."; "The capital is Bka." does not)."""
    if not reply.strip() or not answer.said_by(reply):
        return False
    allowed = set(_WORD.findall(answer.sentence.lower())) | set(_WORD.findall(question.lower())) | _GLUE
    return all(w in allowed for w in _WORD.findall(reply.lower()))


def grounded_reply(answer: SourceAnswer, model_text: str, question: str) -> GroundedReply:
    """The reply to speak for a grounded turn (sans-I/O: the model's text in, the decision out)."""
    if phrases(answer, model_text, question):
        return GroundedReply(answer, model_text, model_text.strip(), "model")
    return GroundedReply(answer, model_text, answer.sentence, "source")


def coverage_of(answer: SourceAnswer | None) -> Coverage:
    return Coverage.NOT_COVERED if answer is None else answer.coverage


def look_up(text: str, previous: str | None = None, seed: int = 0) -> SourceAnswer | None:
    """The source answer to the request ``text`` (``previous``: the user's message before it, for
    follow-ups such as "And of Portugal?"), or None when no source covers this kind of question.
    ``seed`` picks among equally good answers (which joke), so the caller decides how they vary."""
    from . import countries, fun, units, words

    for source in (countries.look_up, units.look_up, words.look_up):
        found = source(text, previous)
        if found is not None:
            return found
    return fun.look_up(text, previous, seed)


def warm_up() -> None:
    """Load every source's data now (countryinfo's files, pint's registry), not in the first turn."""
    from . import countries, fun, units, words

    countries.table()
    words.define("cat")  # WordNet's index files (~1 s)
    fun.pyjokes_neutral()
    for warm in ("how many feet are in a mile", "what is 20 degrees celsius in fahrenheit"):
        units.look_up(warm)  # pint's registry, and its first conversions' set-up (offset units too)
