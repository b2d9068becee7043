"""Reply text → speakable clauses, first clause short (time to first audio grows with its length).

Pure text functions (no model): ``speakable`` cleans what the TTS should not read aloud, and
``split_clauses`` cuts a reply into clauses that piper can synthesize one at a time.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["speakable", "split_clauses", "clause_boundary"]

# Words that end in "." without ending the sentence (compared lower-case, without the final dot).
_ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf",
        "approx", "no", "vol", "fig", "inc", "ltd", "co", "corp", "dept", "est", "min", "max",
        "a.m", "p.m", "u.s", "u.k", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
        "sept", "oct", "nov", "dec", "mon", "tue", "wed", "thu", "fri", "sat", "sun",
    }
)  # fmt: skip
# Abbreviations that are normally followed by more of the sentence even before a capital letter.
_TITLES = frozenset({"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "e.g", "i.e", "cf"})

# A forced cut never leaves these at the end of the first part ("over the | lazy dog").
_NO_END = frozenset(
    {"the", "a", "an", "of", "to", "my", "your", "his", "her", "its", "our", "their", "this",
     "that", "these", "those", "some", "any", "very", "more", "most", "is", "are", "was", "i",
     "you", "we", "they", "it", "not", "no", "and", "or", "but"}
)  # fmt: skip

# Words a long first clause may be cut before (keeps each part a natural phrase).
_CUT_BEFORE = frozenset(
    {"and", "but", "or", "so", "because", "which", "while", "when", "where", "although", "though",
     "if", "unless", "until", "then", "that", "who", "since", "after", "before", "with", "for",
     "about", "from", "into", "in", "on", "at", "over", "under", "through", "across", "like", "than",
     "by", "to"}
)  # fmt: skip

_URL = re.compile(r"(?:https?://|ftp://|www\.)\S+|\b[\w.+-]+@[\w-]+\.[\w.]+\b", re.IGNORECASE)
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_MD_INLINE = re.compile(r"(\*{1,3}|_{1,3}|~~|`+)(?=\S)(.+?)(?<=\S)\1")
_MD_LINE_PREFIX = re.compile(r"^\s*(?:#{1,6}\s+|>\s*|[-*+•]\s+|\d+[.)]\s+)", re.MULTILINE)
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_STRAY_MARKUP = re.compile(r"[*_`#~|<>\\^{}\[\]]")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_REPEATED_PUNCT = re.compile(r"([,;:])(?:\s*[,;:])+")

# Sentence end: terminal punctuation (plus closing quotes/brackets) followed by whitespace or end.
_SENTENCE_END = re.compile(r"([.!?…]+[\"'”’)\]]*)(?=\s|$)")
# Clause mark inside a sentence: , ; : followed by whitespace (so "2:05" and "1,000" stay whole),
# or a spaced dash / em dash / en dash.
_CLAUSE_MARK = re.compile(r"(?:[,;:](?=\s))|(?:\s+[-–—]+\s+)|(?:[–—])")


def speakable(text: str) -> str:
    """Text the TTS can read: no markdown, emoji, URLs, markup or odd whitespace.

    Why defensive: the LM is constrained not to produce these, but a stray ``**`` or URL read aloud
    is worse than silence.
    """
    if not isinstance(text, str):
        raise TypeError(f"speakable() expects str, got {type(text).__name__}")
    s = unicodedata.normalize("NFKC", text)
    s = _MD_CODE_BLOCK.sub(" ", s)
    s = _MD_LINK.sub(r"\1", s)
    s = _URL.sub(" ", s)
    s = _HTML_TAG.sub(" ", s)
    s = _end_lines(s)
    # Inline emphasis/code may nest ("***x***"): unwrap until stable.
    for _ in range(3):
        s2 = _MD_INLINE.sub(r"\2", s)
        if s2 == s:
            break
        s = s2
    s = s.replace("&", " and ").replace("°", " degrees ")
    s = "".join(ch for ch in s if _keep_char(ch))
    s = _STRAY_MARKUP.sub(" ", s)
    s = " ".join(s.split())
    s = _SPACE_BEFORE_PUNCT.sub(r"\1", s)
    s = _REPEATED_PUNCT.sub(r"\1", s)
    return s.strip(" ,;:")


def _end_lines(s: str) -> str:
    """Join lines; list items, headings and paragraphs end as sentences ("- eggs\n- milk" must
    not run together), soft-wrapped prose lines just join with a space."""
    lines = s.splitlines()
    marked = [bool(_MD_LINE_PREFIX.match(ln)) for ln in lines]
    lines = [_MD_LINE_PREFIX.sub("", ln).strip() for ln in lines]
    out: list[str] = []
    for i, ln in enumerate(lines):
        if not ln:
            continue
        nxt_blank = i + 1 < len(lines) and not lines[i + 1]
        nxt_marked = i + 1 < len(lines) and marked[i + 1]
        last = i == len(lines) - 1
        if (marked[i] or nxt_blank or nxt_marked or last) and ln[-1].isalnum():
            ln += "."
        out.append(ln)
    return " ".join(out)


def _keep_char(ch: str) -> bool:
    """Drop emoji, pictographs and invisible format characters; keep letters, digits, punctuation."""
    cat = unicodedata.category(ch)
    if cat in ("So", "Cs", "Co", "Cn"):  # symbols (emoji), surrogates, private use, unassigned
        return False
    if cat == "Cf":  # zero-width joiners, variation selectors' neighbours, BOM
        return False
    if cat == "Mn" and 0xFE00 <= ord(ch) <= 0xFE0F:  # emoji variation selectors
        return False
    if cat.startswith("Sk") and ord(ch) >= 0x1F3FB:  # skin-tone modifiers
        return False
    return ch.isprintable() or ch.isspace()


def clause_boundary(clause: str) -> str:
    """How a clause ends: "sentence" (. ! ?), "clause" (, ; : dash) or "none" (a forced cut).

    The synthesizer picks the pause after a clause from this.
    """
    s = clause.rstrip(" \"'”’)]")
    if not s:
        return "none"
    if s[-1] in ".!?…":
        return "sentence"
    if s[-1] in ",;:-–—":
        return "clause"
    return "none"


def _word_count(s: str) -> int:
    return len(s.split())


def _is_abbreviation(before: str, after: str) -> bool:
    """Whether the "." ending ``before`` belongs to an abbreviation (so no sentence break)."""
    words = before.split()
    if not words:
        return False
    last = words[-1].lower().lstrip("(\"'“‘")
    if not last.endswith("."):
        return False
    stem = last[:-1]
    if len(stem) == 1 and stem.isalpha():  # initials: "J. K. Rowling"
        return True
    if stem in _TITLES:
        return True
    if stem in _ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.)+[a-z]", stem):
        # "etc." or "p.m." can end a sentence: break only when the next word starts a sentence.
        nxt = after.lstrip()
        return not (nxt[:1].isupper())
    return False


def _split_sentences(text: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end()
        single_dot = m.group(1).startswith(".") and len(m.group(1).rstrip("\"'”’)]")) == 1
        if single_dot and _is_abbreviation(text[start:end], text[end:]):
            continue
        piece = text[start:end].strip()
        if piece:
            sentences.append(piece)
        start = end
    rest = text[start:].strip()
    if rest:
        sentences.append(rest)
    return sentences


def _split_at_marks(sentence: str) -> list[str]:
    """Cut a sentence after each clause mark (the mark stays with the left piece)."""
    pieces: list[str] = []
    start = 0
    for m in _CLAUSE_MARK.finditer(sentence):
        mark = m.group(0).strip()
        if mark[0] in "-–—":  # a dash reads best as a comma pause
            mark = ","
        piece = (sentence[start : m.start()] + mark).strip()
        if piece:
            pieces.append(piece)
        start = m.end()
    rest = sentence[start:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def _merge_short(pieces: list[str], min_words: int) -> list[str]:
    """Join fragments shorter than ``min_words`` to a neighbour ("Well," + "I think so.")."""
    out: list[str] = []
    pending = ""
    for p in pieces:
        cur = f"{pending} {p}".strip() if pending else p
        if _word_count(cur) < min_words:
            pending = cur
            continue
        out.append(cur)
        pending = ""
    if pending:  # a short tail ("…, too.") joins the clause before it
        if out:
            out[-1] = f"{out[-1]} {pending}"
        else:
            out.append(pending)
    return out


def _cut_first(clause: str, max_words: int, min_words: int) -> list[str]:
    """Cut a long first clause in two at a natural point so the first audio comes sooner."""
    words = clause.split()
    if len(words) <= max_words:
        return [clause]
    # Best cut: before a conjunction/preposition, as close to max_words as possible, leaving at
    # least min_words on each side.
    best = None
    for i in range(min(max_words, len(words) - min_words), min_words - 1, -1):
        w = words[i].lower().strip("\"'“‘(")
        if w in _CUT_BEFORE and not _is_numberish(words[i - 1]):
            best = i
            break
    if best is None and len(words) > 2 * max_words:
        # No natural point and a long clause: cut anyway, but not after a function word.
        for i in range(max_words, min_words - 1, -1):
            if words[i - 1].lower() not in _NO_END and not _is_numberish(words[i - 1]):
                best = i
                break
    if best is None:
        return [clause]
    return [" ".join(words[:best]), " ".join(words[best:])]


def _is_numberish(word: str) -> bool:
    return any(ch.isdigit() for ch in word)


def split_clauses(
    text: str,
    *,
    min_words: int = 3,
    first_max_words: int = 7,
    first_min_words: int | None = None,
) -> list[str]:
    """Split reply text into clauses to synthesize one by one.

    - sentence ends (. ! ? …) always split, except after abbreviations ("Mr.", "e.g.") and in
      numbers ("3.5"); commas, semicolons, colons and spaced dashes split when both sides have at
      least ``min_words`` words ("2:05" and "1,000" never split: no space after the mark);
    - the first clause is cut to at most ``first_max_words`` words (before "and", "but", "which" …
      when possible) because its synthesis time is the reply's time to first audio;
    - in the first sentence, marks split where both sides have ``first_min_words`` (default
      ``min_words``): 2 makes "It's Friday today," + "November 27." two clauses, the first one sooner.

    Punctuation stays attached to the clause it ends, so piper keeps its intonation; the input
    should already be ``speakable()``.
    """
    if not isinstance(text, str):
        raise TypeError(f"split_clauses() expects str, got {type(text).__name__}")
    first_min_words = min_words if first_min_words is None else first_min_words
    if min_words < 1 or first_max_words < min_words or not 1 <= first_min_words <= min_words:
        raise ValueError(
            "need 1 <= first_min_words <= min_words <= first_max_words, got "
            f"{first_min_words}, {min_words}, {first_max_words}"
        )
    text = " ".join(text.split())
    if not text:
        return []
    clauses: list[str] = []
    for i, sentence in enumerate(_split_sentences(text)):
        clauses.extend(_merge_short(_split_at_marks(sentence), first_min_words if i == 0 else min_words))
    # Very short sentences ("Sure.") are fine on their own: they are what makes first audio fast.
    if clauses:
        clauses[:1] = _cut_first(clauses[0], first_max_words, min_words)
    return clauses


def heard_text(clauses: Iterable[tuple[str, float]], heard_s: float) -> str:
    """The words of a reply the user heard in ``heard_s`` seconds, from its (clause text, seconds):
    whole clauses, then the same share of the next clause's words as of its audio."""
    words: list[str] = []
    elapsed = 0.0
    for text, duration in clauses:
        if elapsed + duration <= heard_s + 1e-6:
            words.extend(text.split())
            elapsed += duration
            continue
        share = max(0.0, heard_s - elapsed) / duration if duration else 0.0
        clause = text.split()
        words.extend(clause[: int(len(clause) * share)])
        break
    return " ".join(words)
