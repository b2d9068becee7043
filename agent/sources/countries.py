"""Countries from the ``countryinfo`` package (MIT, offline JSON): capitals, where a country is, currency.

Questions covered: "What's the capital of Italy?", "Italy's capital?", "Which city is the capital of
Peru?"; "Where is Kenya?", "Which continent is Peru in?"; "What currency does Japan use?", "What is the
currency of Japan?". A follow-up asks the previous question of another country: "What's the capital of
Spain?" then "And of Portugal?" / "What about Portugal?". A country the table does not hold ("the
capital of Atlantis") gets an honest "I don't know", never a guess.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from . import DONT_KNOW, Coverage, SourceAnswer
from .text import normalise, sayable_name, without_filler

# Names people say that the package spells differently or lacks (checked against countryinfo 1.0.1).
_EXTRA_NAMES = {
    "america": "united states", "the us": "united states", "the usa": "united states", "us": "united states",
    "usa": "united states", "the states": "united states", "the united states of america": "united states",
    "britain": "united kingdom", "the uk": "united kingdom", "uk": "united kingdom",
    "holland": "netherlands", "czechia": "czech republic", "burma": "myanmar",
    "vatican": "vatican city state", "the vatican": "vatican city state", "vatican city": "vatican city state",
    "north macedonia": "republic of macedonia", "macedonia": "republic of macedonia",
    "eswatini": "swaziland", "timor leste": "east timor", "cote d'ivoire": "ivory coast",
    "bahamas": "the bahamas", "gambia": "the gambia", "congo": "republic of the congo",
    "the democratic republic of the congo": "democratic republic of the congo", "drc": "democratic republic of the congo",
}  # fmt: skip
# Capitals the package lacks or states in a form that reads badly aloud.
# Also where the package's data is out of date (countryinfo 1.0.1, checked 2026-12-07): Kazakhstan's
# capital is Astana again since 2022, Burundi's is Gitega since 2019, Sri Lanka's official capital is
# Sri Jayawardenepura Kotte (Colombo is the commercial one).
_CAPITAL_FIX = {
    "wales": "Cardiff", "united states": "Washington, D.C.", "vatican city state": "Vatican City",
    "kazakhstan": "Astana", "burundi": "Gitega", "sri lanka": "Sri Jayawardenepura Kotte",
}  # fmt: skip
_NO_THE = {"the bahamas", "the gambia"}  # the package's own name already has "the"
_THE_WORDS = ("republic", "united", "islands", "kingdom", "states")
_THE_NAMES = {"netherlands", "philippines", "maldives", "seychelles", "comoros", "bahamas", "gambia"}

# Common currencies by ISO code, as they are said. A country whose currency is not here gets "I don't know".
_CURRENCIES = {
    "EUR": "the euro", "USD": "the US dollar", "GBP": "the pound sterling", "JPY": "the yen",
    "CNY": "the renminbi, or yuan", "INR": "the Indian rupee", "CAD": "the Canadian dollar",
    "AUD": "the Australian dollar", "NZD": "the New Zealand dollar", "CHF": "the Swiss franc",
    "SEK": "the Swedish krona", "NOK": "the Norwegian krone", "DKK": "the Danish krone",
    "ISK": "the Icelandic krona", "PLN": "the zloty", "CZK": "the Czech koruna", "HUF": "the forint",
    "RON": "the Romanian leu", "BGN": "the Bulgarian lev", "RUB": "the ruble", "UAH": "the hryvnia",
    "TRY": "the Turkish lira", "ILS": "the Israeli shekel", "EGP": "the Egyptian pound",
    "ZAR": "the rand", "NGN": "the naira", "KES": "the Kenyan shilling", "MAD": "the Moroccan dirham",
    "BRL": "the Brazilian real", "MXN": "the Mexican peso", "ARS": "the Argentine peso",
    "CLP": "the Chilean peso", "COP": "the Colombian peso", "PEN": "the sol", "KRW": "the South Korean won",
    "THB": "the baht", "VND": "the dong", "IDR": "the rupiah", "PHP": "the Philippine peso",
    "MYR": "the ringgit", "SGD": "the Singapore dollar", "PKR": "the Pakistani rupee",
    "SAR": "the Saudi riyal", "AED": "the UAE dirham", "HKD": "the Hong Kong dollar", "TWD": "the New Taiwan dollar",
}  # fmt: skip


@dataclass(frozen=True)
class Country:
    name: str  # "Italy", "the Netherlands": as said in a sentence
    capital: str | None
    region: str | None  # "Southern Europe" (the package's subregion, else its region)
    currency: str | None  # "the euro", or None when not in the table above


@functools.cache
def table() -> dict[str, Country]:
    """Every name a country is said by (lower case) → its entry. Loaded once (~30 ms)."""
    from countryinfo import CountryInfo

    countries: dict[str, Country] = {}
    names: dict[str, str] = {}
    for key, info in CountryInfo.all().items():
        plain = str(info.get("name") or key)
        the = key not in _NO_THE and (key in _THE_NAMES or any(w in key.split() for w in _THE_WORDS))
        capital = _CAPITAL_FIX.get(key) or info.get("capital") or None
        region = info.get("subregion") or info.get("region") or None
        codes = [c for c in info.get("currencies") or () if c in _CURRENCIES]
        countries[key] = Country(
            f"the {plain}" if the else plain, capital, region, _CURRENCIES[codes[0]] if codes else None
        )
        names[key] = key
        names.setdefault(f"the {key}", key)
        for alt in info.get("altSpellings") or ():
            a = normalise(str(alt))
            if len(a) > 3 and a.replace(" ", "").replace("'", "").isalpha() and a.isascii():  # no codes
                names.setdefault(a, key)
    for said, key in _EXTRA_NAMES.items():
        names[said] = key
    countries["england"] = Country("England", "London", "Northern Europe", "the pound sterling")
    names["england"] = "england"
    return {said: countries[key] for said, key in names.items() if key in countries}


# The place asked about: up to four words, then the end or a polite tail.
_PLACE = r"(?P<place>[a-z][a-z' .-]*?)"
_TAIL = r"(?:\s+(?:please|again|now|then|today))*$"
_ASK = {
    "capital": [
        re.compile(rf"\bcapital(?: city)? (?:of|for|in) {_PLACE}{_TAIL}"),
        re.compile(rf"(?:\b(?:what is|what's|whats|tell me|know)\s+|^){_PLACE}'s capital(?: city)?{_TAIL}"),
        re.compile(rf"\bwhat(?: is|'s) {_PLACE} capital{_TAIL}"),
    ],
    "region": [
        re.compile(rf"\b(?:which|what) (?:continent|part of the world|region) is {_PLACE} (?:in|on|part of){_TAIL}"),
        re.compile(rf"^where(?: is|'s) {_PLACE}(?: located)?{_TAIL}"),
        re.compile(rf"\bwhere in the world is {_PLACE}{_TAIL}"),
    ],
    "currency": [
        re.compile(rf"\b(?:currency|money) (?:of|in|for) {_PLACE}{_TAIL}"),
        re.compile(rf"\b(?:currency|money) (?:do|does) (?:they )?(?:use|have) in {_PLACE}{_TAIL}"),
        re.compile(rf"\b(?:currency|money) (?:do|does) {_PLACE} (?:use|have){_TAIL}"),
        re.compile(rf"(?:\b(?:what is|what's|whats|tell me|know)\s+|^){_PLACE}'s currency{_TAIL}"),
    ],
}  # fmt: skip
# "I live in the capital of France." tells, it does not ask.
_STATEMENT = re.compile(r"\b(?:i|we|my|our|i'm|i've|we're|he|she|they)\b")
# "And of Portugal?", "What about Portugal?", "How about for Peru?", "And Spain?"
_FOLLOW_UP = re.compile(
    rf"^(?:and|what about|how about|and what about|and how about|same for|what of|now)\s+(?P<of>(?:of|for|in)\s+)?{_PLACE}{_TAIL}"
)


def _sentence(kind: str, c: Country) -> tuple[str, tuple[str, ...]] | None:
    if kind == "capital" and c.capital:
        return f"The capital of {c.name} is {c.capital.rstrip('.')}.", (c.capital.rstrip("."),)
    if kind == "region" and c.region:
        return f"{c.name[:1].upper()}{c.name[1:]} is in {c.region}.", (c.region,)
    if kind == "currency" and c.currency:
        return f"The currency of {c.name} is {c.currency}.", (c.currency.removeprefix("the "),)
    return None


_DONT_KNOW = {
    "capital": "I don't know the capital of {place}.",
    "region": "I don't know where {place} is.",
    "currency": "I don't know the currency of {place}.",
}


_DONT_KNOW_THAT = {
    "capital": "I don't know that country's capital.",
    "region": "I don't know where that is.",
    "currency": "I don't know that country's currency.",
}


def _answer(kind: str, place: str, strict: bool) -> SourceAnswer | None:
    """The answer about ``place``; with ``strict`` an unknown place is no answer at all (a follow-up
    "What about you?" is not about a country), otherwise an honest "I don't know"."""
    place = place.strip(" .-'")
    place = re.sub(r"^(?:the country(?: of)?|country|the name of|name of) ", "", place)
    c = table().get(place)
    if c is None:
        if strict or not place or len(place.split()) > 4:
            return None
        said = " ".join(w[:1].upper() + w[1:] if w not in ("of", "the", "and") else w for w in place.split())
        # Only a name is said back; words the pattern caught by mistake are not ("the Name of Germany").
        sentence = _DONT_KNOW[kind].format(place=said) if sayable_name(place) else _DONT_KNOW_THAT[kind]
        return SourceAnswer(kind, Coverage.UNKNOWN, sentence, DONT_KNOW, "countryinfo", said)
    found = _sentence(kind, c)
    if found is None:
        sentence = _DONT_KNOW[kind].format(place=c.name)
        return SourceAnswer(kind, Coverage.UNKNOWN, sentence, DONT_KNOW, "countryinfo", c.name)
    sentence, must = found
    return SourceAnswer(kind, Coverage.ANSWER, sentence, must, "countryinfo", c.name)


def _asked(text: str) -> tuple[str, str, bool] | None:
    """(kind, place, strict) of a direct question."""
    t = without_filler(text)
    for kind, patterns in _ASK.items():
        for rx in patterns:
            m = rx.search(t)
            if m and not _STATEMENT.search(t[: m.start()]):
                # "Where is my phone?" is not a question about a country: "where" must name one.
                return (
                    kind,
                    m["place"],
                    kind == "region" and "where" in rx.pattern and "in the world" not in t,
                )
    return None


def look_up(text: str, previous: str | None = None) -> SourceAnswer | None:
    asked = _asked(text)
    if asked is not None:
        return _answer(*asked)
    if previous:
        before = _asked(previous)
        m = _FOLLOW_UP.match(without_filler(text)) or _FOLLOW_UP.match(normalise(text))
        if before is not None and m is not None:
            # "And of Atlantis?" asks about a place, so it may be unknown; "What about you?" is not covered.
            return _answer(before[0], m["place"], strict=not m["of"])
    return None
