"""Spoken arithmetic the agent works out itself.

A reply model of a few million weights cannot add, but it copies context well. So when the user asks
"what's 12 times 3?", the agent finds the sum in the transcript, computes it and injects the answer as
one more context sentence ("12 times 3 is 36."); the model only has to say it. Transcripts write
numbers as digits or as words ("forty-three plus seventy seven"), both are read. Only one binary
operation is answered: a chain ("2 plus 3 times 4") gets no sentence rather than a wrong one, and "/"
or "-" between digits with no space ("9/11", "1939-1945") is a date or a range, not a sum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
NUMBER_WORDS = frozenset(_UNITS) | frozenset(_TENS) | frozenset(_SCALES)  # words a number may be said in
# Spoken and written operators → the word the context sentence uses (the training replies' words).
_OPERATORS = {
    "plus": "plus", "+": "plus",
    "minus": "minus", "-": "minus", "−": "minus",
    "times": "times", "x": "times", "*": "times", "×": "times", "multiplied by": "times",
    "divided by": "divided by", "/": "divided by", "÷": "divided by", "over": "divided by",
}  # fmt: skip
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z]+|[+\-−*×/÷]")


def _tokens(text: str) -> list[str]:
    text = text.lower()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 → 1000
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)  # forty-three → forty three (not a minus)
    # Unspaced between digits they are ranges, dates and phone numbers (1939-1945, 9/11, 555-1234).
    text = re.sub(r"(?<=\d)[-−/](?=\d)", " to ", text)
    return _TOKEN.findall(text)


def _is_number_word(tokens: list[str], i: int) -> bool:
    w = tokens[i]
    if w in _UNITS or w in _TENS or w in _SCALES:
        return True
    # "a hundred"; "one hundred and five" (the "and" only inside a number)
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    if w == "a":
        return nxt in _SCALES
    if w == "and" and i > 0:
        return tokens[i - 1] in _SCALES and (nxt in _UNITS or nxt in _TENS)
    return False


def _words_value(words: list[str]) -> int | None:
    """'one hundred and five' → 105; None for sequences that are not one number ('five six')."""
    total, current, last = 0, 0, ""
    for w in words:
        if w in ("a", "and"):
            continue
        if w in _UNITS:
            if last in _UNITS or last in _TENS and (current % 10 or _UNITS[w] >= 10):
                return None  # 'five six', 'twenty twelve': two numbers, not one
            current += _UNITS[w]
        elif w in _TENS:
            if current % 100:
                return None
            current += _TENS[w]
        elif w == "hundred":
            current = (current or 1) * 100
        else:
            total += (current or 1) * _SCALES[w]
            current = 0
        last = w
    return total + current


def number_from_words(words: list[str]) -> int | None:
    """'one hundred and five' (as separate lowercase words) → 105; None when not one number (the
    timers' durations read numbers with it too)."""
    return _words_value(words) if words else None


def _items(text: str) -> list[tuple[str, Fraction | str]]:
    """The transcript as ('num', value), ('op', word) and ('word', text) items."""
    toks = _tokens(text)
    items: list[tuple[str, Fraction | str]] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t[0].isdigit():
            items.append(("num", Fraction(t)))
            i += 1
        elif _is_number_word(toks, i):
            j = i
            while j < len(toks) and _is_number_word(toks, j):
                j += 1
            value = _words_value(toks[i:j])
            items.append(("num", Fraction(value)) if value is not None else ("word", " ".join(toks[i:j])))
            i = j
        elif i + 1 < len(toks) and f"{t} {toks[i + 1]}" in _OPERATORS:
            items.append(("op", _OPERATORS[f"{t} {toks[i + 1]}"]))
            i += 2
        elif t in _OPERATORS:
            items.append(("op", _OPERATORS[t]))
            i += 1
        else:
            items.append(("word", t))
            i += 1
    return items


def number_in_words(n: int) -> str:
    """0 ≤ n < 1000 as a transcript may spell it: 7 → 'seven', 43 → 'forty-three', 144 → 'one
    hundred forty-four' (the inverse of what ``arithmetic_fact`` reads)."""
    if not 0 <= n < 1000:
        raise ValueError(f"number_in_words covers 0-999, got {n}")
    units = {v: w for w, v in _UNITS.items()}
    tens = {v: w for w, v in _TENS.items()}
    hundreds, rest = divmod(n, 100)
    words = [f"{units[hundreds]} hundred"] if hundreds else []
    if rest or not words:
        if rest < 20:
            words.append(units[rest])
        else:
            ten, unit = divmod(rest, 10)
            words.append(tens[ten * 10] + (f"-{units[unit]}" if unit else ""))
    return " ".join(words)


def spoken_number(value: Fraction) -> str:
    """Digits as the training replies write them: '36', '2.5', '0.33', 'minus 4'."""
    if value < 0:
        return f"minus {spoken_number(-value)}"
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def _apply(a: Fraction, op: str, b: Fraction) -> Fraction | None:
    if op == "plus":
        return a + b
    if op == "minus":
        return a - b
    if op == "times":
        return a * b
    return a / b if b else None


@dataclass(frozen=True)
class WorkedSum:
    """A sum the agent worked out: '12 times 3' and '36', said as '12 times 3 is 36.'"""

    expr: str  # "12 times 3" (digits, the operator as a word)
    result: str  # "36", "0.33", "minus 4"
    about: bool = False  # rounded: "1 divided by 3 is about 0.33."

    @property
    def sentence(self) -> str:
        return f"{self.expr} is {'about ' if self.about else ''}{self.result}."


def worked_sum(text: str) -> WorkedSum | None:
    """'What is 12 times 3?' → WorkedSum('12 times 3', '36'); None when the text asks no single sum."""
    items = _items(text)
    found: WorkedSum | None = None
    for i in range(len(items) - 2):
        (ka, a), (ko, op), (kb, b) = items[i : i + 3]
        if ka != "num" or ko != "op" or kb != "num":
            continue
        before = items[i - 1][0] if i else ""
        after = items[i + 3][0] if i + 3 < len(items) else ""
        if before == "op" or after == "op" or found is not None:
            return None  # a chain or two sums: order of operations is a guess, so say nothing
        assert isinstance(a, Fraction) and isinstance(b, Fraction) and isinstance(op, str)
        result = _apply(a, op, b)
        if result is None:
            return None
        expr = f"{spoken_number(a)} {op} {spoken_number(b)}"
        found = WorkedSum(expr, spoken_number(result), about=round(result, 2) != result)
    return found


def arithmetic_fact(text: str) -> str | None:
    """'What is 12 times 3?' → '12 times 3 is 36.'; None when the text asks no single sum."""
    found = worked_sum(text)
    return found.sentence if found else None
