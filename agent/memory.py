"""What the user has told the agent about themselves, kept as plain context sentences.

"My name is Sam." … (ten turns later, long out of the history window) … "What's my name?" The agent
remembers: every user message is read for a few kinds of personal facts (name, favourite colour and food,
where they live, a pet's name, job, hobby), and the latest value of each goes into the injected context
as one sentence — "The user's name is Sam." — the way the time and the date do. The reply model then
reads a fact from the context instead of working it out from whatever phrasing the user chose, and a
question about something never told finds no sentence to copy from.

Only first-person statements with a clear shape count ("my favourite food is …", "I live in …", "I have
a dog called …"). Where the shape alone is ambiguous ("I'm Max" / "I'm tired", "I love pizza" / "I love
you"), the value must look right: a proper name from the English word list, a known job, food or pastime.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

WORD_LIST = Path("/usr/share/dict/american-english")  # Debian's wamerican, installed by the set-up


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Values the ambiguous shapes accept ("I'm a nurse", "I love tacos", "I enjoy hiking").
JOB_WORDS = _words(
    "teacher nurse doctor engineer chef cook writer student lawyer farmer pilot designer programmer developer "
    "carpenter plumber firefighter mechanic baker dentist librarian musician painter scientist accountant "
    "electrician architect artist cashier driver journalist pharmacist photographer police officer professor "
    "researcher salesperson secretary soldier surgeon tailor vet veterinarian waiter waitress manager "
    "consultant analyst barber hairdresser gardener janitor clerk actor actress singer dancer coach barista "
    "nanny cleaner builder translator therapist paramedic bartender receptionist editor"
)
FOOD_WORDS = _words(
    "pizza pasta sushi tacos curry pancakes chocolate soup salad burgers burger noodles steak chicken rice "
    "apples strawberries cheese bread mango lasagna dumplings waffles popcorn spaghetti sandwiches fries "
    "cake cookies pie ramen burritos nachos pho falafel hummus bananas oranges grapes seafood fish shrimp "
    "lobster bacon eggs donuts doughnuts cereal oatmeal yogurt tofu kebab paella risotto"
) | {"ice cream", "fried chicken", "mac and cheese"}
PASTIME_WORDS = _words(
    "chess yoga tennis golf soccer football basketball baseball hockey volleyball rugby cricket music "
    "poetry puzzles karate judo boxing pottery origami sudoku crosswords"
)
PET_WORDS = (
    "guinea pig", "goldfish", "hamster", "parrot", "rabbit", "bunny", "turtle", "tortoise", "puppy", "kitten",
    "lizard", "snake", "ferret", "gerbil", "budgie", "horse", "pony", "mouse", "bird", "fish", "dog", "cat",
)  # fmt: skip
NOT_PASTIMES = _words(
    "anything everything nothing something morning evening wedding meeting building ceiling clothing "
    "feeling darling pudding stuffing"
)
# A value never starts with these.
NOT_VALUES = _words("a an the anything everything nothing something it that this them him her you me")
# Capitalised words that follow "I'm" without being a name.
NOT_NAMES = _words(
    "American English British Canadian Australian Irish Scottish Welsh French German Spanish Italian "
    "Mexican Chinese Japanese Korean Indian Russian Dutch Swedish Norwegian Danish Polish Greek Turkish "
    "Brazilian Catholic Christian Jewish Muslim Buddhist Hindu Democrat Republican"
)

# Slot order in the context: stable, so the same facts always give the same sentences.
SLOTS = ("name", "color", "city", "pet", "job", "food", "hobby")

# Where a value ends: punctuation, the end, or a word that starts the next part of the sentence.
_END = r"(?=\s*(?:[.,!?;]|\b(?:and|but|so|because|now|too|with|for|since|right|though|actually)\b|$))"
_VALUE = r"([a-z][a-z'-]*(?:\s+[a-z][a-z'-]*){0,2}?)"  # one to three words, as few as the end allows
_WORD1 = r"([a-z][a-z'-]*)"
_COLOUR = r"colou?r"
_FAV = r"(?:favou?rite|fav)"
_PET = "(" + "|".join(PET_WORDS) + ")"
_I_AM = r"(?:i'm|i am|im)"


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(r"\b" + pattern, re.IGNORECASE)


# (slot, pattern, how the value is checked): "any" takes what the shape gives; the others check it.
_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("name", _rx(rf"my name(?: is|'s)\s+{_WORD1}{_END}"), "any"),
    ("name", _rx(rf"(?:the name's|the name is)\s+{_WORD1}{_END}"), "any"),
    ("name", _rx(rf"call me\s+{_WORD1}{_END}"), "said name"),  # not "call me later"
    ("name", _rx(rf"(?:{_I_AM}|this is)\s+{_WORD1}{_END}"), "name"),
    ("color", _rx(rf"my {_FAV} {_COLOUR} is\s+{_VALUE}{_END}"), "any"),
    ("color", _rx(rf"{_VALUE} is my {_FAV} {_COLOUR}"), "any"),
    ("color", _rx(rf"i (?:really |just )?(?:like|love|adore) the {_COLOUR}\s+{_VALUE}{_END}"), "any"),
    ("city", _rx(rf"i (?:live|stay) in\s+{_VALUE}{_END}"), "place"),
    ("city", _rx(rf"(?:{_I_AM}|i come) from\s+{_VALUE}{_END}"), "place"),
    ("city", _rx(rf"my home(?:town)? is(?: in)?\s+{_VALUE}{_END}"), "place"),
    ("city", _rx(rf"i (?:just |recently )?(?:moved|relocated) to\s+{_VALUE}{_END}"), "place"),
    ("city", _rx(rf"i grew up in\s+{_VALUE}{_END}"), "place"),
    ("city", _rx(rf"{_I_AM} based in\s+{_VALUE}{_END}"), "place"),
    ("pet", _rx(rf"my {_PET}'s name is\s+{_WORD1}{_END}"), "any"),
    ("pet", _rx(rf"my {_PET} is (?:named|called)\s+{_WORD1}{_END}"), "any"),
    (
        "pet",
        _rx(rf"(?:i|we) (?:also |still )?(?:have|own|got) an? {_PET} (?:named|called)\s+{_WORD1}{_END}"),
        "any",
    ),
    ("job", _rx(rf"(?:i work|i am working|i'm working|im working) as an?\s+{_VALUE}{_END}"), "job"),
    ("job", _rx(rf"i have a job as an?\s+{_VALUE}{_END}"), "job"),
    ("job", _rx(rf"my job is(?: being)?(?: an?)?\s+{_VALUE}{_END}"), "job"),
    ("job", _rx(rf"{_I_AM} an?\s+{_VALUE}{_END}"), "job"),
    ("food", _rx(rf"my {_FAV} (?:food|meal|dish) is\s+{_VALUE}{_END}"), "any"),
    ("food", _rx(rf"{_VALUE} is my {_FAV} (?:food|meal|dish)"), "any"),
    ("food", _rx(rf"i could eat\s+{_VALUE} every day"), "any"),
    ("food", _rx(rf"i (?:really )?(?:love|like|adore) (?:eating )?\s*{_VALUE}{_END}"), "food"),
    ("hobby", _rx(rf"my (?:hobby is|hobbies are|favou?rite hobby is)\s+{_VALUE}{_END}"), "any"),
    ("hobby", _rx(rf"in my (?:free|spare) time i (?:like|love|enjoy)\s+{_VALUE}{_END}"), "any"),
    ("hobby", _rx(rf"i (?:really )?(?:like|love|enjoy)\s+{_VALUE}{_END}"), "pastime"),
)


@functools.cache
def _word_sets() -> tuple[frozenset[str], frozenset[str]]:
    """(proper names, other words) of the English word list; both empty where it is missing, and then
    "I'm Max" is not read as a name (only "my name is Max" is)."""
    if not WORD_LIST.is_file():
        return frozenset(), frozenset()
    words = WORD_LIST.read_text(encoding="utf-8").split()
    proper = frozenset(w for w in words if w[:1].isupper() and w[1:].islower() and w.isalpha())
    common = frozenset(w for w in words if w.islower())
    return proper, common


def _looks_like_name(word: str) -> bool:
    cap = word[:1].upper() + word[1:].lower()
    if cap in NOT_NAMES:
        return False
    proper, common = _word_sets()
    if cap not in proper:
        return False
    # "max", "will": words too; only a capital letter as said ("I'm Max") makes them a name.
    return word[:1].isupper() or word.lower() not in common


def _looks_like_a_place(value: str) -> bool:
    """'Dallas', 'new york', 'Lisbon' — not 'work' ("I'm from work") or 'a house'."""
    proper = _word_sets()[0]
    return any(w[:1].isupper() or w[:1].upper() + w[1:] in proper for w in value.split())


def _value_ok(check: str, value: str) -> bool:
    low = value.lower()
    if low.split()[0] in NOT_VALUES:  # "I could eat a horse every day", "my favorite food is anything"
        return False
    if check == "any":
        return True
    if check == "name":
        return _looks_like_name(value)
    if check == "said name":  # "call me Mike", "call me Idahoan"; not "call me later"
        proper, common = _word_sets()
        return value[:1].isupper() or low.capitalize() in proper or low not in common
    if check == "place":
        return _looks_like_a_place(value)
    if check == "job":
        return low.split()[-1] in JOB_WORDS
    if check == "food":
        return low in FOOD_WORDS
    if check == "pastime":  # "I enjoy hiking", "I like chess"; not "I love everything"
        gerund = low.endswith("ing") and " " not in low and len(low) > 5 and low not in NOT_PASTIMES
        return gerund or low in PASTIME_WORDS
    raise ValueError(check)


def _title(value: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in value.split())


def _article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


# How each fact is said in the context.
SENTENCES = {
    "name": "The user's name is {v}.",
    "color": "The user's favorite color is {v}.",
    "city": "The user lives in {v}.",
    "pet": "The user's {kind} is called {v}.",
    "job": "The user works as {v}.",
    "food": "The user's favorite food is {v}.",
    "hobby": "The user's hobby is {v}.",
}


@dataclass(frozen=True)
class Fact:
    slot: str
    value: str
    detail: str = ""  # the kind of pet

    @property
    def key(self) -> str:
        return f"{self.slot}:{self.detail}" if self.detail else self.slot

    @property
    def spoken(self) -> str:
        """The value as the context says it: 'Sam', 'New York', 'a baker', 'tacos'."""
        if self.slot in ("name", "city", "pet"):  # names: capitalised, as the TTS and the model expect
            return _title(self.value)
        return _article(self.value.lower()) if self.slot == "job" else self.value.lower()

    @property
    def placeholder(self) -> str:
        """The draft index's name for the value ("user_food"); a pet's name is filed under its kind
        ("user_dog"): "what's my dog called" is not answered with the cat's name."""
        return "user_" + (self.detail.replace(" ", "_") if self.slot == "pet" else self.slot)

    def sentence(self) -> str:
        return SENTENCES[self.slot].format(v=self.spoken, kind=self.detail)


def facts_in(text: str) -> list[Fact]:
    """The personal facts one user message states, in slot order; at most one per slot (pets: per kind)."""
    found: dict[str, Fact] = {}
    for slot, pattern, check in _PATTERNS:
        for m in pattern.finditer(text):
            *detail, value = m.groups()
            value = value.strip()
            if not value or not _value_ok(check, value):
                continue
            fact = Fact(slot, value, detail[0].lower() if detail else "")
            found.setdefault(fact.key, fact)
    return sorted(found.values(), key=lambda f: SLOTS.index(f.slot))


@dataclass
class UserMemory:
    """The latest value of each fact the user has stated (a correction replaces the old value)."""

    facts: dict[str, Fact] = field(default_factory=dict)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> UserMemory:
        memory = cls()
        for text in texts:
            memory.observe(text)
        return memory

    def observe(self, text: str) -> list[Fact]:
        new = facts_in(text)
        for fact in new:
            self.facts[fact.key] = fact
        return new

    def ordered(self) -> tuple[Fact, ...]:
        """The facts in context order (slot, then the kind of pet)."""
        return tuple(sorted(self.facts.values(), key=lambda f: (SLOTS.index(f.slot), f.detail)))

    def sentences(self) -> tuple[str, ...]:
        return tuple(f.sentence() for f in self.ordered())

    def clear(self) -> None:
        self.facts.clear()


# Every ``Fact.placeholder`` there is: the placeholders a draft reply template may hold.
VALUE_FIELDS = (
    *(f"user_{slot}" for slot in SENTENCES if slot != "pet"),
    *("user_" + kind.replace(" ", "_") for kind in PET_WORDS),
)
