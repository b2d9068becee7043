"""Unit conversions worked out with ``pint`` (BSD): "How many feet are in a mile?", "Convert 10 miles
to kilometers", "What's 100 degrees Fahrenheit in Celsius?", "How many cups in a gallon?".

Only the unit names listed here are read (pint alone would take "kilos" for kiloseconds and "in" for
inches). A conversion between two units of different kinds ("miles to seconds"), or from a word that
sounds like a unit but is none ("how many smoots in a mile"), gets an honest answer, never a number.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from typing import Any

from . import DONT_KNOW, Coverage, SourceAnswer
from .text import sayable_name, without_filler


def _units(table: str) -> dict[str, tuple[str, str, str]]:
    """'pint_name: singular/plural, other spellings' lines → {spoken: (pint name, singular, plural)}."""
    out: dict[str, tuple[str, str, str]] = {}
    for line in table.strip().splitlines():
        name, said = (s.strip() for s in line.split(":"))
        forms = [f.strip() for f in said.split(",")]
        singular, plural = forms[0].split("/")
        for f in [singular, plural, *forms[1:]]:
            out[f] = (name, singular, plural)
    return out


UNITS = _units("""
millimeter: millimeter/millimeters, millimetre, millimetres, mm
centimeter: centimeter/centimeters, centimetre, centimetres, cm
meter: meter/meters, metre, metres
kilometer: kilometer/kilometers, kilometre, kilometres, km
inch: inch/inches
foot: foot/feet
yard: yard/yards
mile: mile/miles
nautical_mile: nautical mile/nautical miles
light_year: light year/light years
milligram: milligram/milligrams, mg
gram: gram/grams, g
kilogram: kilogram/kilograms, kilo, kilos, kg
metric_ton: metric ton/metric tons, tonne, tonnes
ounce: ounce/ounces, oz
pound: pound/pounds, lb, lbs
stone: stone/stone, stones
ton: ton/tons
milliliter: milliliter/milliliters, millilitre, millilitres, ml
liter: liter/liters, litre, litres
teaspoon: teaspoon/teaspoons
tablespoon: tablespoon/tablespoons
fluid_ounce: fluid ounce/fluid ounces
cup: cup/cups
pint: pint/pints
quart: quart/quarts
gallon: gallon/gallons
second: second/seconds
minute: minute/minutes
hour: hour/hours
day: day/days
week: week/weeks
year: year/years
month: month/months
decade: decade/decades
century: century/centuries
millennium: millennium/millennia
square_foot: square foot/square feet
square_meter: square meter/square meters, square metre, square metres
acre: acre/acres
hectare: hectare/hectares
mile_per_hour: mile per hour/miles per hour, mph
kilometer_per_hour: kilometer per hour/kilometers per hour, kilometres per hour, km per hour
byte: byte/bytes
kilobyte: kilobyte/kilobytes
megabyte: megabyte/megabytes
gigabyte: gigabyte/gigabytes
terabyte: terabyte/terabytes
degree_Celsius: degree Celsius/degrees Celsius, celsius, centigrade, degrees centigrade
degree_Fahrenheit: degree Fahrenheit/degrees Fahrenheit, fahrenheit
kelvin: kelvin/kelvin, kelvins
""")
# A month or a year has no fixed length in days; pint uses averages (30.44 days), which is not what
# "how many days in a month" wants. They are left to the honest "I'm not sure".
_NO_EXACT = {("day", "month"), ("week", "month")}

_NUM_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "hundred": 100, "a hundred": 100, "one hundred": 100, "a thousand": 1000,
    "half a": Fraction(1, 2), "a half": Fraction(1, 2), "a quarter": Fraction(1, 4),
}  # fmt: skip
_NUMBER = (
    r"(?P<n>-?\d+(?:\.\d+)?|" + "|".join(sorted(map(re.escape, _NUM_WORDS), key=len, reverse=True)) + ")"
)
_UNIT = r"(?P<{}>(?:[a-z]+ ){{0,2}}?[a-z]+)"
_DEG = r"(?:degrees? )?"

_PATTERNS = [
    # how many feet are (there) in a mile
    re.compile(rf"\bhow many {_UNIT.format('to')} (?:are |is )?(?:there )?in {_NUMBER} {_DEG}{_UNIT.format('frm')}$"),
    re.compile(rf"\bhow many {_UNIT.format('to')} (?:make|makes|are in|in) (?:up )?{_NUMBER} {_DEG}{_UNIT.format('frm')}$"),
    # how many pounds is 10 kilograms
    re.compile(rf"\bhow many {_UNIT.format('to')} (?:is|are|equals|make|makes) {_NUMBER} {_DEG}{_UNIT.format('frm')}$"),
    # (convert|what is|how much is) 10 miles (in|to|into|as) kilometers
    re.compile(rf"(?:^|\b(?:convert|is|what's|whats|how much is|how many) ){_NUMBER} {_DEG}{_UNIT.format('frm')} (?:in|to|into|as|in terms of) {_DEG}{_UNIT.format('to')}$"),
    # 10 miles is how many kilometers
    re.compile(rf"(?:^|\b){_NUMBER} {_DEG}{_UNIT.format('frm')} (?:is|are|equals|makes) how many {_UNIT.format('to')}$"),
]  # fmt: skip


@functools.cache
def registry() -> Any:
    """pint's unit registry (loaded once, ~0.4 s)."""
    import pint

    return pint.UnitRegistry()


def _value(n: str) -> Fraction:
    return Fraction(_NUM_WORDS[n]) if n in _NUM_WORDS else Fraction(n)


def spoken(x: float) -> str:
    """A converted amount as it is said: 5280, 1.61, 0.0254, 37.8 (three significant digits, and whole
    numbers as they are)."""
    if abs(x - round(x)) < 1e-9 * max(1.0, abs(x)):
        return f"{round(x):d}"
    if abs(x) >= 100:
        return f"{x:.1f}".rstrip("0").rstrip(".")
    return f"{x:.3g}" if abs(x) >= 1e-4 else f"{x:.2e}"


def _amount(n: Fraction, unit: tuple[str, str, str]) -> str:
    words = unit[1] if n == 1 else unit[2]
    if n == 1:
        vowel = words[0] in "aeiou" or words.startswith("hour")
        return f"{'an' if vowel else 'a'} {words}" if not words.startswith("degree") else f"1 {words}"
    return f"{spoken(float(n))} {words}"


def look_up(text: str, previous: str | None = None) -> SourceAnswer | None:
    t = without_filler(text)
    t = re.sub(r"\s+(?:please|again|exactly|roughly|about)$", "", t)
    for rx in _PATTERNS:
        m = rx.search(t)
        if m is None:
            continue
        frm, to = m["frm"].strip(), m["to"].strip()
        # A conversion asks for two units; a word that is no unit in either place makes it no such question
        # ("how many people in a family"), in one place an unknown unit ("how many smoots in a mile").
        f, u = UNITS.get(frm) or UNITS.get(f"degree {frm}"), UNITS.get(to) or UNITS.get(f"degree {to}")
        if f is None and u is None:
            return None
        if f is not None and u is not None and (u[0], f[0]) in _NO_EXACT:
            sentence = f"I don't know: a month has no fixed number of {u[2]}."
            return SourceAnswer("conversion", Coverage.UNKNOWN, sentence, DONT_KNOW, "pint")
        if f is None or u is None:
            unknown = frm if f is None else to
            sentence = (
                f"I don't know the unit {unknown}." if sayable_name(unknown) else "I don't know that unit."
            )
            return SourceAnswer("conversion", Coverage.UNKNOWN, sentence, DONT_KNOW, "pint")
        n = _value(m["n"])
        return _convert(n, f, u)
    return None


def _convert(n: Fraction, frm: tuple[str, str, str], to: tuple[str, str, str]) -> SourceAnswer:
    import pint

    ureg = registry()
    try:
        result = ureg.Quantity(float(n), frm[0]).to(to[0]).magnitude
    except pint.DimensionalityError:
        if "ounce" in (frm[0], to[0]):  # "ounces in a cup": fluid ounces
            fl = UNITS["fluid ounce"]
            return _convert(n, fl if frm[0] == "ounce" else frm, fl if to[0] == "ounce" else to)
        sentence = f"I don't know how: {frm[2]} and {to[2]} measure different things."
        return SourceAnswer("conversion", Coverage.UNKNOWN, sentence, DONT_KNOW, "pint")
    value = spoken(result)
    target = to[1] if value == "1" else to[2]
    exact = abs(float(spoken(result)) - result) <= 1e-9 * max(1.0, abs(result))
    if n == 1 and exact and not frm[0].startswith("degree"):
        sentence = f"There {'is' if value == '1' else 'are'} {value} {target} in {_amount(n, frm)}."
    else:
        sentence = f"{_amount(n, frm)[:1].upper()}{_amount(n, frm)[1:]} is {'' if exact else 'about '}{value} {target}."
    return SourceAnswer("conversion", Coverage.ANSWER, sentence, (value,), "pint", frm[0])
