"""Constraints on a reply — the control a diffusion LM offers and an autoregressive one lacks.

* ``fixed``: tokens pinned at any reply positions (a required prefix, a suffix, a template to infill);
* ``banned_ids``: tokens that may never be generated (markdown, emoji, URLs: text a TTS cannot speak);
* ``max_tokens`` / ``min_tokens``: reply length bounds (no EOS before ``min_tokens``);
* ``finish_copies``: a word the reply copied from the prompt only in part is finished (``copies.py``);
* ``whole_word_copies``: a copy head may copy a word's later token only right after its earlier one
  (``model.CopyHead.copy_start_ok``: no "loveur" for "turquoise");
* replies stop at the first EOS; every later position is the pad token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import GenerationError
from .tokenizer import ChatTokenizer


@dataclass(frozen=True)
class Constraints:
    max_tokens: int | None = None
    min_tokens: int = 0
    banned_ids: tuple[int, ...] = ()
    fixed: dict[int, int] = field(default_factory=dict)  # reply position -> token id
    end_at: int | None = None  # if set, the reply ends exactly here (EOS at this position)
    finish_copies: bool = False  # "Marig" → "Marigold" when the prompt has "Marigold" (copies.py)
    whole_word_copies: bool = False  # copies start where a prompt word starts (models with a copy head)

    def merged(self, other: Constraints) -> Constraints:
        return Constraints(
            max_tokens=min(x for x in (self.max_tokens, other.max_tokens, 1 << 30) if x is not None),
            min_tokens=max(self.min_tokens, other.min_tokens),
            banned_ids=tuple(sorted({*self.banned_ids, *other.banned_ids})),
            fixed={**self.fixed, **other.fixed},
            end_at=other.end_at if other.end_at is not None else self.end_at,
            finish_copies=self.finish_copies or other.finish_copies,
            whole_word_copies=self.whole_word_copies or other.whole_word_copies,
        )

    def validate(self, max_tokens: int) -> None:
        for pos in self.fixed:
            if not 0 <= pos < max_tokens:
                raise GenerationError(f"fixed token at reply position {pos} lies outside 0..{max_tokens - 1}")
        if self.end_at is not None and not 0 < self.end_at < max_tokens:
            raise GenerationError(f"end_at={self.end_at} must lie inside the reply (1..{max_tokens - 1})")
        if self.min_tokens >= max_tokens:
            raise GenerationError(f"min_tokens={self.min_tokens} must be below max_tokens={max_tokens}")


def infill(tokenizer: ChatTokenizer, parts: Sequence[str | int]) -> Constraints:
    """A template: strings are pinned text, ints are that many free positions to fill.

    ``infill(tok, ["The capital of France is", 3, "."])`` pins the words and leaves three tokens for
    the model; the reply ends right after the last part. A template that ends with free positions
    leaves the end open (the model decides where to stop within them).
    """
    fixed: dict[int, int] = {}
    pos = 0
    for part in parts:
        if isinstance(part, int):
            if part < 0:
                raise GenerationError("free slot lengths must be ≥ 0")
            pos += part
            continue
        for tid in tokenizer.encode(part):
            fixed[pos] = tid
            pos += 1
    closed = bool(parts) and not isinstance(parts[-1], int)
    return Constraints(fixed=fixed, end_at=pos if closed else None, min_tokens=pos if closed else 0)


def prefix(tokenizer: ChatTokenizer, text: str) -> Constraints:
    """The reply must start with ``text``."""
    return infill(tokenizer, [text, 0])


_MARKDOWN = re.compile(r"[*#`_|~<>\[\]{}\\^]")
_URL = re.compile(r"(https?|www\.|://|\.com|\.org|\.net|\.io|@)", re.IGNORECASE)
_NEWLINE = re.compile(r"[\n\r\t]")


def _is_emoji_or_symbol(text: str) -> bool:
    for ch in text:
        cp = ord(ch)
        if cp >= 0x2190 and not (0x2000 <= cp <= 0x206F):  # arrows, dingbats, emoji, CJK, …
            return True
        if ch == "\ufffd":  # a lone byte of a multi-byte character (emoji pieces in byte-level BPE)
            return True
    return False


UNSPEAKABLE_PRESETS = {
    "markdown": lambda s: bool(_MARKDOWN.search(s)),
    "urls": lambda s: bool(_URL.search(s)),
    "emoji": _is_emoji_or_symbol,
    "newlines": lambda s: bool(_NEWLINE.search(s)),
}


def banned_token_ids(
    tokenizer: ChatTokenizer, presets: Sequence[str] = ("markdown", "urls", "emoji", "newlines")
) -> tuple[int, ...]:
    """Ids of ordinary tokens whose text matches any preset (special tokens are left alone)."""
    unknown = set(presets) - set(UNSPEAKABLE_PRESETS)
    if unknown:
        raise GenerationError(f"unknown ban presets {sorted(unknown)}; known: {sorted(UNSPEAKABLE_PRESETS)}")
    tests = [UNSPEAKABLE_PRESETS[p] for p in presets]
    special = tokenizer._special_ids
    banned = []
    for tid, text in enumerate(tokenizer.token_strings()):
        if tid in special:
            continue
        if any(t(text) for t in tests):
            banned.append(tid)
    return tuple(banned)
