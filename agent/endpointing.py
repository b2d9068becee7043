"""End-of-turn policy: how much silence ends a turn, given what the user has said so far.

A fixed VAD hangover forces a bad trade: short, and a thinking pause cuts the user off; long, and
every reply waits. The speculative final transcript is ready ~150 ms into the silence, so the
hangover can depend on it: a complete-looking sentence ends after ``hangover_ms``; one that trails
off on a conjunction, preposition or article ("I was thinking about") waits for
``incomplete_hangover_ms``. Pure functions, no I/O: tested directly.
"""

from __future__ import annotations

import re

# Words after which an English utterance is almost never finished.
TRAILING_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "so",
        "because",
        "if",
        "when",
        "while",
        "as",
        "than",
        "then",
        "that",
        "which",
        "who",
        "whom",
        "whose",
        "where",
        "to",
        "of",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "about",
        "from",
        "into",
        "onto",
        "over",
        "under",
        "after",
        "before",
        "between",
        "through",
        "during",
        "without",
        "within",
        "like",
        "my",
        "your",
        "his",
        "her",
        "its",
        "our",
        "their",
        "this",
        "these",
        "those",
        "some",
        "any",
        "is",
        "are",
        "was",
        "were",
        "am",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "i",
        "you",
        "we",
        "they",
        "he",
        "she",
        "it",
        "um",
        "uh",
        "er",
    ]
)
_WORD = re.compile(r"[a-z']+")


def looks_complete(transcript: str) -> bool:
    """True when the words so far read like a finished turn (not trailing off mid-sentence)."""
    text = transcript.strip().lower()
    if not text:
        return False
    if text.endswith(("...", "…", ",", "-", "—", ":")):
        return False
    words = _WORD.findall(text)
    if not words:
        return False
    return words[-1] not in TRAILING_WORDS


def required_silence_ms(transcript: str | None, hangover_ms: int, incomplete_hangover_ms: int) -> int:
    """Silence needed to end the turn. ``None`` = transcript not known yet (be patient)."""
    if transcript is not None and looks_complete(transcript):
        return hangover_ms
    return incomplete_hangover_ms


def is_backchannel(transcript: str, backchannels: list[str] | tuple[str, ...], min_words: int) -> bool:
    """True when an interruption is only acknowledgement ("mm-hm", "yeah okay") or too short."""
    words = [w for w in re.split(r"[^a-z'-]+", transcript.lower()) if w and w != "-"]
    if not words:
        return True
    phrase_set = {b.lower() for b in backchannels}
    joined = " ".join(words)
    if joined in phrase_set:
        return True
    content = [w for w in words if w.strip("-") not in phrase_set]
    return len(content) < min_words


def starts_with_phrase(transcript: str, phrases: list[str] | tuple[str, ...]) -> bool:
    """True when the words begin with one of ``phrases`` ("Wait, stop." starts with "wait")."""
    words = [w for w in re.split(r"[^a-z']+", transcript.lower()) if w]
    for phrase in phrases:
        target = phrase.lower().split()
        if target and words[: len(target)] == target:
            return True
    return False


def sounds_like_echo(heard: str, reply: str, min_share: float = 0.6, min_words: int = 2) -> bool:
    """True when speech over the reply is mostly the reply's own words: its echo, transcribed.

    What echo cancellation leaves of the agent's voice is heard as fragments of what it is saying
    ("Why did the state?" over "Why did the scarecrow win an award?"). A user who interrupts says
    something else; one who repeats the agent's words back is rare, and says more than a fragment.
    """
    words = [w for w in re.split(r"[^a-z0-9']+", heard.lower()) if w]
    if len(words) < min_words:
        return False
    said = {w for w in re.split(r"[^a-z0-9']+", reply.lower()) if w}
    return sum(w in said for w in words) / len(words) >= min_share
