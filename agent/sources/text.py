"""Request text as the matchers read it: lower case, no punctuation, no opening filler or wake word."""

from __future__ import annotations

import functools
import re
from pathlib import Path

_FILLER = re.compile(
    r"^(?:(?:hey|hi|ok|okay|so|um|uh|well|and|but|please|quick question|tell me|"
    r"do you know|can you tell me|could you tell me|i wonder|i want to know|i'd like to know)\b[\s,]*)+"
)
_PUNCT = re.compile(r"[^\w\s'.-]|(?<!\d)\.|\.(?!\d)")  # keep 2.5 and "guinea-bissau", drop the rest


def normalise(text: str) -> str:
    """'Hey, what's the capital of Italy?' → "what's the capital of italy"."""
    t = text.lower().replace("’", "'")
    t = _PUNCT.sub(" ", t)
    t = " ".join(t.split())
    return t


def without_filler(text: str) -> str:
    """The normalised text without an opening "hey", "okay so", "can you tell me" ..."""
    return _FILLER.sub("", normalise(text)).strip()


DICTIONARY = Path("/usr/share/dict/words")  # wamerican (a Debian package the set-up installs)


@functools.cache
def common_words() -> frozenset[str]:
    """Lower-case dictionary words ("name", "week", "is"): not names. Proper nouns ("Atlantis") are
    capitalised there, so they are not in this set. Empty when the word list is missing."""
    try:
        lines = DICTIONARY.read_text(encoding="utf-8", errors="ignore").split()
    except OSError:
        return frozenset()
    return frozenset(w.removesuffix("'s") for w in lines if w[:1].islower())


def sayable_name(words: str) -> bool:
    """Whether an "I don't know the capital of {words}." may say ``words`` back: a name (up to three
    words, joined by "of"/"the"/"and"), never ordinary words the matcher caught ("the name of
    Germany", "octopus is", "leap year") — a reply that repeats those sounds broken."""
    parts = [w for w in words.lower().split() if w not in ("of", "the", "and")]
    common = common_words()
    return 0 < len(parts) <= 3 and all(w.isalpha() and w not in common for w in parts)


_GLUE = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "and",
        "or",
        "but",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "my",
        "your",
        "his",
        "her",
        "their",
        "our",
        "me",
        "you",
        "him",
        "them",
        "us",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "how",
        "why",
        "when",
        "where",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
    ]
)


def sayable_topic(words: str) -> bool:
    """Whether a topic may be said back ("quantum physics", "octopuses"): a plain noun phrase of up to
    three words with no glue words left over from a misheard request ("octopus is")."""
    parts = words.lower().split()
    return 0 < len(parts) <= 3 and all(w.isalpha() and w not in _GLUE for w in parts)
