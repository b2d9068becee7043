"""Durations as people say them, both ways: "ten minutes", "1 hour 30", "an hour and a half",
"90 seconds", "1h30m", "2:30" → seconds, and seconds → "one hour and thirty minutes".

The model copies the user's words into a timer's ``duration`` argument; reading them is exact code,
not the model's arithmetic.
"""

from __future__ import annotations

import re

from ..calculator import NUMBER_WORDS, number_from_words, number_in_words

MAX_DURATION_S = 24 * 3600.0


class DurationError(ValueError):
    """Words that are not a duration; the message says what was wrong, in words the agent can say."""


_UNIT_S = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
}
_NEXT_SMALLER = {3600.0: 60.0, 60.0: 1.0}  # "1 hour 30" → 30 minutes; "2 minutes 10" → 10 seconds
_FRACTIONS = [  # spoken fractions → digits, before tokenising ("half an hour" → "0.5 hour")
    (r"\b(?:one |a )?half (?:of )?an? ", "0.5 "),
    (r"\b(?:a |one )?quarter (?:of )?an? ", "0.25 "),
    (r"\bthree quarters (?:of )?an? ", "0.75 "),
    (r"\band a half\b", " +0.5 "),
    (r"\band a quarter\b", " +0.25 "),
]
_TOKEN = re.compile(r"\+?\d+(?:\.\d+)?(?::\d{2}){0,2}|[a-z]+")


def _tokens(text: str) -> list[str]:
    text = text.lower().replace("-", " ").replace(",", " ")
    text = re.sub(r"(?<=\d)(?=[a-z])|(?<=[a-z])(?=\d)", " ", text)  # 1h30m → 1 h 30 m
    for pattern, repl in _FRACTIONS:
        text = re.sub(pattern, repl, text)
    return _TOKEN.findall(text)


def _clock(token: str, next_token: str) -> float:
    """'2:30' → 2 min 30 s ('2:30 hours' → 2 h 30 min); '1:30:00' → 1 h 30 min."""
    parts = [int(p) for p in token.split(":")]
    if len(parts) == 3:
        return parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    big = 3600.0 if _UNIT_S.get(next_token) == 3600.0 else 60.0
    return parts[0] * big + parts[1] * big / 60


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ``DurationError`` for words that hold no duration (or > 24 h)."""
    toks = _tokens(text)
    total, pending, last_unit = 0.0, None, 0.0
    found = False
    i = 0
    while i < len(toks):
        tok = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if ":" in tok:
            total += _clock(tok, nxt)
            found = True
            i += 2 if nxt in _UNIT_S else 1
            continue
        if tok.startswith("+"):  # "and a half": of the number before, or of the unit just said
            if pending is not None:
                pending += float(tok)
            elif last_unit:
                total += float(tok) * last_unit
            i += 1
            continue
        value: float | None = None
        if tok[0].isdigit():
            value, i = float(tok), i + 1
        elif tok in NUMBER_WORDS:
            j = i
            while j < len(toks) and (
                toks[j] in NUMBER_WORDS
                or (toks[j] == "and" and j > i and toks[j - 1] in ("hundred", "thousand")
                    and j + 1 < len(toks) and toks[j + 1] in NUMBER_WORDS)
            ):  # fmt: skip
                j += 1
            words_value = number_from_words(toks[i:j])
            if words_value is None:
                raise DurationError(f"I couldn't read {' '.join(toks[i:j])!r} as one number.")
            value, i = float(words_value), j
        elif tok in ("a", "an") and nxt in _UNIT_S:
            value, i = 1.0, i + 1
        elif tok in _UNIT_S and tok not in ("s", "m", "h") or (tok in _UNIT_S and pending is not None):
            if pending is None:
                raise DurationError(f"How many {tok}? Say for example 'ten {tok}'.")
            total += pending * _UNIT_S[tok]
            last_unit, pending, found = _UNIT_S[tok], None, True
            i += 1
            continue
        else:  # filler: "for", "in", "timer", "and", "about", a stray "s"
            i += 1
            continue
        if pending is not None:
            raise DurationError("I heard two numbers in a row; say for example 'ten minutes'.")
        pending = value
    if pending is not None:
        smaller = _NEXT_SMALLER.get(last_unit)
        if smaller is None:
            raise DurationError("Minutes or seconds? Say for example 'ten minutes'.")
        total += pending * smaller
        found = True
    if not found:
        raise DurationError(f"I couldn't hear how long in {text.strip()!r}; say for example 'ten minutes'.")
    if total <= 0:
        raise DurationError("A timer needs a length of more than zero.")
    if total > MAX_DURATION_S:
        raise DurationError("Timers can run for at most twenty-four hours.")
    return total


def _count(n: int, unit: str) -> str:
    words = number_in_words(n) if n < 1000 else str(n)
    return f"{words} {unit}{'' if n == 1 else 's'}"


def spoken_duration(seconds: float) -> str:
    """Seconds → words, at a precision a listener wants: '90' → 'one minute and thirty seconds',
    '3725' → 'one hour and two minutes' (seconds dropped beyond ten minutes)."""
    s = max(0, round(seconds))
    if s >= 600:
        s = round(s / 60) * 60
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        _count(n, unit)
        for n, unit in ((hours, "hour"), (minutes, "minute"), (secs, "second"))
        if n
    ]  # fmt: skip
    if not parts:
        return "less than a second"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
