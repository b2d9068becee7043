"""Jokes, fun facts and riddles: a curated set written for this project (MIT, with the code; see
docs/data-card.md), plus the one-liners of ``pyjokes`` (BSD-3-Clause, "neutral" category), which are
about programming, for "Tell me a programming joke".

Covered: "Tell me a joke", "Make me laugh", "Say something funny"; "Tell me a fun fact", "Tell me
something interesting (about space)"; "Tell me a riddle"; and "Another one" / "Tell me another" /
"One more" after any of them. A fun fact about a topic the set has none for gets an honest answer.
"""

from __future__ import annotations

import functools
import re

from . import DONT_KNOW, Coverage, SourceAnswer
from .text import sayable_topic, without_filler

JOKES = (
    "Why did the scarecrow win an award? Because he was outstanding in his field.",
    "Why don't skeletons fight each other? They don't have the guts.",
    "What do you call a fake noodle? An impasta.",
    "Why did the bicycle fall over? It was two tired.",
    "What do you call a bear with no teeth? A gummy bear.",
    "Why can't you give Elsa a balloon? Because she will let it go.",
    "What did the ocean say to the beach? Nothing, it just waved.",
    "Why did the math book look sad? It had too many problems.",
    "What do you call a sleeping dinosaur? A dino snore.",
    "Why do cows wear bells? Because their horns don't work.",
    "What kind of tree fits in your hand? A palm tree.",
    "Why did the golfer bring two pairs of pants? In case he got a hole in one.",
    "What do you call cheese that isn't yours? Nacho cheese.",
    "How does a penguin build its house? Igloos it together.",
    "Why was the broom late? It over swept.",
    "What did one wall say to the other? I'll meet you at the corner.",
    "Why did the cookie go to the doctor? It was feeling crummy.",
    "What do you call a fish without eyes? A fsh.",
    "Why are ghosts bad at lying? You can see right through them.",
    "What do you call a dog that does magic? A labracadabrador.",
)
RIDDLES = (
    "What has keys but can't open locks? A piano.",
    "What gets wetter the more it dries? A towel.",
    "What has hands but can't clap? A clock.",
    "What has to be broken before you can use it? An egg.",
    "What goes up but never comes down? Your age.",
    "What has a neck but no head? A bottle.",
    "What can you catch but not throw? A cold.",
    "What has one eye but can't see? A needle.",
    "What is full of holes but still holds water? A sponge.",
    "The more you take, the more you leave behind. What are they? Footsteps.",
    "What belongs to you, but other people use it more than you do? Your name.",
    "What runs but never walks? A river.",
)
# Fun facts by topic; every one is a well-established fact, short enough to say in one breath.
FACTS: dict[str, tuple[str, ...]] = {
    "space": (
        "A day on Venus is longer than its year.",
        "The Sun holds more than 99 percent of all the mass in our solar system.",
        "Light from the Sun takes about eight minutes to reach Earth.",
        "Footprints left on the Moon can last for millions of years, because there is no wind to blow them away.",
        "Jupiter is so big that all the other planets could fit inside it.",
        "Neutron stars are so dense that a teaspoon of one would weigh about a billion tons.",
    ),
    "animals": (
        "Octopuses have three hearts and blue blood.",
        "A group of flamingos is called a flamboyance.",
        "Cows have best friends and get stressed when they are apart.",
        "Sea otters hold hands while they sleep so they don't drift apart.",
        "A snail can sleep for up to three years.",
        "Honeybees can recognise human faces.",
    ),
    "ocean": (
        "More than 80 percent of the ocean has never been mapped in detail.",
        "The blue whale is the largest animal that has ever lived.",
        "The ocean makes more than half of the oxygen we breathe, thanks to tiny plankton.",
    ),
    "body": (
        "Your nose can tell apart more than a trillion different smells.",
        "The human body has about 206 bones, and more than half of them are in the hands and feet.",
        "Your heart beats about 100,000 times a day.",
    ),
    "food": (
        "Honey never spoils; edible honey has been found in ancient Egyptian tombs.",
        "Bananas are berries, but strawberries are not.",
        "Carrots were purple before orange ones became popular.",
    ),
    "history": (
        "Cleopatra lived closer in time to the Moon landing than to the building of the Great Pyramid.",
        "Oxford University is older than the Aztec Empire.",
        "The shortest war in history, between Britain and Zanzibar, lasted less than an hour.",
    ),
}
_TOPIC_WORDS = {
    "space": "space planets planet stars star universe moon sun astronomy solar system galaxy",
    "animals": "animals animal nature wildlife creatures pets birds insects",
    "ocean": "ocean oceans sea seas water marine",
    "body": "body human humans people brain health",
    "food": "food foods cooking fruit vegetables eating",
    "history": "history past ancient historical",
}
_TOPIC = {w: topic for topic, words in _TOPIC_WORDS.items() for w in words.split()}
_ALL_FACTS = tuple(f for facts in FACTS.values() for f in facts)

_JOKE = re.compile(
    r"\b(?:tell|know|got|have|hear) (?:me |us )?(?:a |any |another |one more |some )?(?:[a-z]+ )?jokes?\b"
    r"|\b(?:any|some|another) (?:[a-z]+ )?jokes?\b|\bmake me laugh\b|\bsomething funny\b"
    r"|^(?:a |another )?(?:[a-z]+ )?jokes?(?: please)?$"
)
# pyjokes' one-liners are about programming: told when that is what is asked for.
_NERDY = re.compile(r"\b(?:programming|programmer|computer|coding|nerdy|geeky|geek|tech) jokes?\b")
_RIDDLE = re.compile(r"\briddles?\b|\bbrain ?teaser")
_FACT = re.compile(r"\b(?:fun|interesting|cool|random) facts?\b|\bsomething (?:interesting|cool|amazing|fascinating)\b|\bteach me something\b|\btell me something i don't know\b")  # fmt: skip
_ABOUT = re.compile(r"\b(?:about|on|from) (?:the )?(?P<topic>[a-z ]+?)$")
_ANOTHER = re.compile(r"^(?:(?:tell me |give me |do |say )?(?:another|one more)(?: one)?|again|more|(?:another|one more|a different) (?:one|joke|riddle|fact))(?: please)?$")  # fmt: skip


@functools.cache
def pyjokes_neutral() -> tuple[str, ...]:
    """pyjokes' neutral one-liners that are short enough to say (its jokes are about programming)."""
    import pyjokes

    return tuple(j for j in pyjokes.get_jokes(language="en", category="neutral") if len(j) <= 110)


def _kind(text: str) -> tuple[str, str | None] | None:
    t = without_filler(text)
    if _RIDDLE.search(t):
        return "riddle", None
    if _JOKE.search(t):
        return "joke", None
    if _FACT.search(t):
        m = _ABOUT.search(t)
        return "fun_fact", m["topic"].strip() if m else None
    return None


def _pick(items: tuple[str, ...], seed: int) -> str:
    return items[seed % len(items)]


def look_up(text: str, previous: str | None = None, seed: int = 0) -> SourceAnswer | None:
    kind = _kind(text)
    if kind is None and previous and _ANOTHER.match(without_filler(text)):
        kind = _kind(previous)
        seed += 1  # another one: not the same as the one just told (same seed, next item)
    if kind is None:
        return None
    what, topic = kind
    if what == "riddle":
        s = _pick(RIDDLES, seed)
        return SourceAnswer("riddle", Coverage.ANSWER, s, (s.rsplit("?", 1)[-1].strip(" ."),), "quickturn")
    if what == "joke":
        pool = (
            pyjokes_neutral()
            if _NERDY.search(without_filler(text)) or _NERDY.search(previous or "")
            else JOKES
        )
        s = _pick(pool, seed)
        return SourceAnswer("joke", Coverage.ANSWER, s, (s,), "quickturn" if s in JOKES else "pyjokes")
    if topic is None:
        s = _pick(_ALL_FACTS, seed)
        return SourceAnswer("fun_fact", Coverage.ANSWER, s, (s,), "quickturn")
    key = next((_TOPIC[w] for w in topic.split() if w in _TOPIC), None)
    if key is None:
        return SourceAnswer(
            "fun_fact",
            Coverage.UNKNOWN,
            f"I don't know a fun fact about {topic}."
            if sayable_topic(topic)
            else "I don't know a fun fact about that.",
            DONT_KNOW,
            "quickturn",
            topic,
        )
    s = _pick(FACTS[key], seed)
    return SourceAnswer("fun_fact", Coverage.ANSWER, s, (s,), "quickturn", key)
