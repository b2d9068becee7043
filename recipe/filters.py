"""Text checks shared by the data build and the evaluation: spoken-style cleanliness, repetition, non-words.

Every check is a pure function on a string so the same rule can reject a training reply and score a
generated one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

DICT_PATH = Path("/usr/share/dict/american-english")  # Debian wamerican

_WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
_URL_RE = re.compile(r"(https?://|www\.|\b[\w-]+\.(com|org|net|io|gov|edu)\b|@\w)", re.I)
# Markdown / list / code markers that a TTS would read out or that never occur in speech.
_MARKDOWN_RE = re.compile(
    r"(\*\*|__|`|#|^\s*[-*+•]\s|^\s*\d+[.)]\s|\[[^\]]*\]\(|\|.*\||<[^>]+>|\\n|[{}\[\]<>~^=_|\\])", re.M
)
# Anything outside plain printable ASCII: emoji, typographic quotes, other scripts.
_NON_ASCII_RE = re.compile(r"[^\x20-\x7e]")
# Parentheses, quotes, slashes and the like are read out oddly (or not at all) by a TTS.
_ALLOWED_CHARS_RE = re.compile(r"^[A-Za-z0-9 .,!?'\-:;%$]*$")


class DictionaryMissingError(FileNotFoundError):
    """The word list used for the non-word check is absent (install Debian package wamerican)."""


def words(text: str) -> list[str]:
    """Alphabetic word tokens (apostrophes kept inside words: "don't", "it's")."""
    return _WORD_RE.findall(text)


def word_count(text: str) -> int:
    """Spoken-length proxy: whitespace tokens that contain a letter or a digit."""
    return sum(1 for t in text.split() if re.search(r"[A-Za-z0-9]", t))


@lru_cache(maxsize=1)
def dictionary(path: Path = DICT_PATH) -> frozenset[str]:
    """Lower-cased dictionary words, with possessive/contraction forms as listed by wamerican."""
    if not path.is_file():
        raise DictionaryMissingError(f"word list {path} not found: apt-get install wamerican")
    return frozenset(w.strip().lower() for w in path.read_text(encoding="utf-8", errors="replace").split())


_CONTRACTION_TAILS = ("'s", "'re", "'ll", "'ve", "'d", "'m", "n't")


def is_word(token: str, vocab: frozenset[str] | None = None) -> bool:
    """Dictionary membership, accepting contractions/possessives of a known word ("Sam's", "they'll")."""
    vocab = dictionary() if vocab is None else vocab
    t = token.lower()
    if t in vocab:
        return True
    return any(t.endswith(tail) and t[: -len(tail)] in vocab for tail in _CONTRACTION_TAILS)


def non_words(text: str, vocab: frozenset[str] | None = None) -> list[str]:
    """Word tokens missing from the dictionary (the evaluation's non-word measure)."""
    return [w for w in words(text) if not is_word(w, vocab)]


def non_word_share(text: str, vocab: frozenset[str] | None = None) -> float:
    ws = words(text)
    return len(non_words(text, vocab)) / len(ws) if ws else 0.0


def ngrams(tokens: list[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def has_repeated_ngram(text: str, n: int = 3) -> bool:
    """True when any word n-gram (case- and punctuation-insensitive) occurs twice."""
    toks = [w.lower() for w in words(text)]
    seen: set[tuple[str, ...]] = set()
    for g in ngrams(toks, n):
        if g in seen:
            return True
        seen.add(g)
    return False


def has_markdown(text: str) -> bool:
    """Markdown, list bullets, code, tags or table syntax."""
    return bool(_MARKDOWN_RE.search(text))


def has_url(text: str) -> bool:
    return bool(_URL_RE.search(text))


def has_odd_chars(text: str) -> bool:
    """Emoji, non-ASCII or symbols a TTS would read badly."""
    return bool(_NON_ASCII_RE.search(text)) or not _ALLOWED_CHARS_RE.match(text)


def spoken_problems(
    text: str,
    *,
    min_words: int = 4,
    max_words: int = 30,
    max_non_words: int = 0,
    vocab: frozenset[str] | None = None,
    allowed_words: frozenset[str] = frozenset(),
) -> list[str]:
    """Every reason ``text`` is not a clean spoken reply (empty list = clean).

    ``allowed_words`` are tokens the reply may legitimately contain although the dictionary lacks
    them (the assistant's or the user's name copied from context, "AM"/"PM").
    """
    problems = []
    n = word_count(text)
    if n < min_words:
        problems.append(f"too short ({n} words)")
    if n > max_words:
        problems.append(f"too long ({n} words)")
    if has_markdown(text):
        problems.append("markdown")
    if has_url(text):
        problems.append("url")
    if has_odd_chars(text):
        problems.append("odd characters")
    if has_repeated_ngram(text, 3):
        problems.append("repeated 3-gram")
    allowed = {w.lower() for w in allowed_words}
    bad = [w for w in non_words(text, vocab) if w.lower() not in allowed]
    if len(bad) > max_non_words:
        problems.append(f"non-words {bad[:5]}")
    if text and text[-1] not in ".!?":
        problems.append("no final punctuation")
    return problems


def normalise_prompt(text: str) -> str:
    """Key for train/held-out disjointness: lower case, letters/digits only, single spaces."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).replace("'", "").split())


def first_sentences(text: str, max_sentences: int = 2, max_words: int = 30) -> str:
    """Cut a rambling reply after its first complete sentence(s) within ``max_words``.

    Returns "" when not even the first sentence ends with . ! or ? (an unfinished reply).
    """
    parts = re.findall(r"[^.!?]+[.!?]+(?=\s|$)", text.strip())
    out: list[str] = []
    for p in parts[:max_sentences]:
        cand = " ".join([*out, p.strip()])
        if word_count(cand) > max_words:
            break
        out.append(p.strip())
    return " ".join(out)
