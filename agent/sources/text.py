"""Request text as the matchers read it: lower case, no punctuation, no opening filler or wake word."""

from __future__ import annotations

import re

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
