"""Finish words the reply copied from the prompt only in part.

A copy head copies one token per position, and in a few parallel denoising steps the reply's length
is a guess: a name the user gave, "Marigold" (tokens "␣Mar" "ig" "old"), can come out as "Marig", and
a result "120" as "12". When a reply word is, token for token, the start of a longer prompt word,
is no whole prompt word itself, and there is exactly one way to finish it, the missing tokens are
appended. Matching is on token ids, so an ordinary word that merely starts a prompt word as text
("love" vs "lovely", one token each) is never touched. The opposite slip is cut back: a word that is
a whole prompt word, token for token, followed by a repeat of its own ending ("Lupineine"), and a
whole prompt word said twice or more in a row ("I'm Skye Skye", two positions copying the same word
in one parallel step) is said once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

Word = tuple[int, ...]


def word_spans(ids: Sequence[int], texts: Sequence[str]) -> list[tuple[int, int]]:
    """[start, end) of each word: a token that starts one (" Mar", "12", or a bare space before a
    digit) followed by tokens that continue it (letters or digits with no leading space)."""

    def text(tid: int) -> str:
        return texts[tid] if 0 <= tid < len(texts) else ""

    spans: list[tuple[int, int]] = []
    start: int | None = None
    for i, tid in enumerate(ids):
        t = text(tid)
        continues = t[:1].isalnum()
        if continues and start is not None:
            continue
        if start is not None:
            spans.append((start, i))
            start = None
        if continues or (t[:1] == " " and (t[1:2].isalnum() or t == " ")):
            start = i
    if start is not None:
        spans.append((start, len(ids)))
    # A bare space is a word only with something after it.
    return [(s, e) for s, e in spans if e - s > 1 or text(ids[s]).strip()]


@dataclass
class PromptWords:
    """The prompt's words, and every way to finish each of their token prefixes."""

    whole: set[Word] = field(default_factory=set)
    endings: dict[Word, set[Word]] = field(default_factory=lambda: defaultdict(set))

    @classmethod
    def of(cls, prompt: Sequence[int], texts: Sequence[str]) -> PromptWords:
        words = cls()
        for s, e in word_spans(prompt, texts):
            w = tuple(prompt[s:e])
            words.whole.add(w)
            for k in range(1, len(w)):
                if texts[w[0]].strip() or k > 1:  # a bare space alone starts every spaced number
                    words.endings[w[:k]].add(w[k:])
        return words

    def finish(self, reply: Sequence[int], texts: Sequence[str], open_end: bool = False) -> list[int]:
        """``reply`` with cut copies finished, run-on copies cut back and doubled copies said once.
        ``open_end``: the reply goes on in a later block, so its last word may not be over yet and is
        left alone."""
        out = list(reply)
        for s, e in reversed(word_spans(reply, texts)):
            if open_end and e == len(reply):
                continue
            w = tuple(reply[s:e])
            if w in self.whole:
                continue
            ways = self.endings.get(w)
            if ways is not None and len(ways) == 1:
                out[e:e] = next(iter(ways))
            elif (whole := self.run_on(w, texts)) is not None:
                del out[s + len(whole) : e]
        spans = word_spans(out, texts)
        for (s1, e1), (s2, e2) in reversed(list(zip(spans, spans[1:]))):
            said_again = e1 == s2 and out[s1:e1] == out[s2:e2] and tuple(out[s1:e1]) in self.whole
            if said_again and not (open_end and e2 == len(out)):
                del out[s2:e2]
        return out

    def run_on(self, word: Word, texts: Sequence[str]) -> Word | None:
        """The whole prompt word that ``word`` starts with, token for token, when the rest of ``word``
        only repeats that word's ending ("Lupine" + "ine", "Juniper" + "per", "Willow" + "owow"): in
        parallel denoising two positions can copy the same last piece. None otherwise."""
        for k in range(len(word) - 1, 0, -1):
            head = word[:k]
            if head not in self.whole:
                continue
            rest = "".join(texts[t] for t in word[k:])
            stem = "".join(texts[t] for t in head).strip()
            if any(_repeats(rest, stem[-n:]) for n in range(1, min(len(rest), len(stem)) + 1)):
                return head
        return None


def _repeats(text: str, piece: str) -> bool:
    """``text`` is ``piece`` one or more times."""
    return len(text) % len(piece) == 0 and piece * (len(text) // len(piece)) == text
