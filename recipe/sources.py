"""Readers for the third-party text sources: chitchat-dataset, chatterbot-corpus, Debian fortunes.

Each reader returns plain Python data, cleaned to the spoken style; licences are listed in
``docs/data-card.md``. Packages are located with ``importlib.util.find_spec`` (no import side effects).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from recipe.filters import (
    has_markdown,
    has_odd_chars,
    has_repeated_ngram,
    has_url,
    non_words,
    word_count,
    words,
)

FORTUNES_DIR = Path("/usr/share/games/fortunes")


class SourceMissingError(FileNotFoundError):
    """A data source (pip package or Debian package) is not installed."""


def package_dir(name: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SourceMissingError(f"Python package {name} not found: pip install {pip_name}")
    return Path(next(iter(spec.submodule_search_locations)))


def tidy(text: str) -> str:
    """Collapse whitespace, straighten typographic quotes, drop spaces before punctuation."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = " ".join(text.split())
    return re.sub(r"\s+([,.!?;:])", r"\1", text)


# Chat-speak and filler that never belongs in an assistant's spoken reply.
_CHATSPEAK_RE = re.compile(
    r"\b(lol|lmao|rofl|omg|haha\w*|hahah\w*|hehe\w*|xd|idk|tbh|brb|ikr|imo|ttyl|ya|u|ur|thx|pls|plz|gonna|wanna)\b",
    re.I,
)
_OFFENSIVE_RE = re.compile(
    r"\b(fuck\w*|shit\w*|damn\w*|bitch\w*|ass|asshole|sex\w*|porn\w*|crap|hell|dick|piss\w*|kill\w*|drunk|"
    r"drugs?|gun|guns|nazi\w*|suicid\w*|rape\w*|racis\w*|religio\w*|god|jesus|church|mormon\w*|lds|"
    r"mission|missionary|byu|bible|pray\w*|scriptures?|temple|served|utah|provo)\b",
    re.I,
)


_EMOTICON_RE = re.compile(r"\s*(?<!\w)[:;=]-?[()DPpOo/|]+(?!\w)")


def clean_turn(text: str, *, max_words: int = 40, max_non_word_share: float = 0.1) -> str | None:
    """A chat turn cleaned to plain English, or None when it cannot be made clean."""
    text = tidy(_EMOTICON_RE.sub("", text))
    if not text or has_url(text) or has_markdown(text) or has_odd_chars(text):
        return None
    if re.search(r"(.)\1\1", text):  # "sooo", "!!!", "...": chat emphasis
        return None
    n = word_count(text)
    ws = words(text)
    if n < 1 or n > max_words or not ws:
        return None
    if len(non_words(text)) > max_non_word_share * len(ws):
        return None
    if _OFFENSIVE_RE.search(text):
        return None
    return text


@dataclass(frozen=True)
class ChatTurnPair:
    prev: str
    reply: str


def chitchat_turns() -> Iterator[list[str]]:
    """Conversations of chitchat-dataset as lists of turns (consecutive messages of one speaker joined)."""
    path = package_dir("chitchat_dataset", "chitchat-dataset==0.9.0") / "dataset.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in sorted(data):  # sorted: deterministic regardless of JSON order
        conv = data[key]["messages"]
        yield [" ".join(u["text"] for u in message) for message in conv]


def chitchat_pairs(max_words: int = 40) -> list[ChatTurnPair]:
    """(previous turn, reply) pairs where both sides are clean English: pre-training text."""
    pairs = []
    for conv in chitchat_turns():
        cleaned = [clean_turn(t, max_words=max_words) for t in conv]
        for a, b in zip(cleaned, cleaned[1:]):
            if a and b and word_count(b) >= 2:
                pairs.append(ChatTurnPair(a, b))
    return pairs


# A teacher prompt must make sense with no earlier turns: no dangling references, no chat filler.
_DANGLING_START_RE = re.compile(
    r"^(and|but|or|so|because|that|this|it|its|it's|he|she|they|them|those|these|yes|yeah|yep|no|nope|"
    r"ok|okay|oh|ah|wow|cool|nice|same|true|right|haha|me too|lol|well|also|then|what about|how about|"
    r"thanks|thank you|sure|exactly|agreed|definitely|sounds|i agree|i know|ikr|"
    # answers to a question the teacher never saw, and hedges that need a previous turn
    r"i would|i'd|i think|i mean|i thought|i will|i'll|i guess|i feel like|i haven't|i didn't|i got|"
    r"i personally|i also|do you not|what do you get|are you considered)\b",
    re.I,
)
# Campus-chat topics of this corpus (its chats come from one university's students) and hypotheticals.
_OFF_TOPIC_RE = re.compile(
    r"\b(seminary|sophomore|freshman|freshmen|upperclassm[ae]n|major|chats?|would|points?|account|score|"
    r"message|dead|security|no idea)\b|\d",
    re.I,
)
_SMALLTALK_START_RE = re.compile(
    r"^(i|i'm|im|i've|i'd|i'll|my|do you|did you|have you|are you|were you|can you|would you|what's your|"
    r"what is your|what are your|what do you|what did you|how do you|how are you|how was your|where do you|"
    r"where are you|who is your|which|what kind|what type|if you could|tell me)\b",
    re.I,
)
# Words that point back into an earlier conversation the teacher cannot see.
_REFERENCE_RE = re.compile(
    r"\b(it|that|this|there|them|he|she|they|him|her|his|those|these|too|either|also)\b", re.I
)


def standalone_prompt(text: str, min_words: int = 4, max_words: int = 16) -> str | None:
    """``text`` cleaned if it works as a stand-alone small-talk prompt (no earlier turn needed), else None."""
    c = clean_turn(text, max_words=max_words, max_non_word_share=0.0)
    if not c or word_count(c) < min_words or _DANGLING_START_RE.search(c) or _CHATSPEAK_RE.search(c):
        return None
    if not _SMALLTALK_START_RE.search(c) or _REFERENCE_RE.search(c) or _OFF_TOPIC_RE.search(c):
        return None
    if has_repeated_ngram(c, 2) or c.count("?") > 1 or len(re.findall(r"[.!?]", c)) > 1:
        return None
    if re.search(r"\s[A-Z][a-z]|\b[A-Z]{2,}\b", c):  # private names mid-sentence; shouting
        return None
    return c


def chitchat_prompts(min_words: int = 4, max_words: int = 16) -> list[str]:
    """Stand-alone small-talk user prompts (statements about oneself or questions to the other)."""
    seen: set[str] = set()
    out = []
    for conv in chitchat_turns():
        for t in conv:
            c = standalone_prompt(t, min_words, max_words)
            if c and (key := c.lower().rstrip(".!?")) not in seen:
                seen.add(key)
                out.append(c)
    return out


# chatterbot-corpus English categories that read like an assistant's small talk (others: code, trivia
# answers without sentences, multi-turn scripts).
DEFAULT_CHATTERBOT_FILES = (
    "computers",
    "conversations",
    "food",
    "greetings",
    "literature",
    "science",
    "sports",
    "tech_support",
    "history",
)


def chatterbot_pairs(files: tuple[str, ...] = DEFAULT_CHATTERBOT_FILES) -> list[tuple[str, str, str]]:
    """(category, question, answer) pairs from the English chatterbot corpus, cleaned but unfiltered."""
    import yaml

    root = package_dir("chatterbot_corpus", "chatterbot-corpus==1.3.3") / "data" / "english"
    out = []
    for name in files:
        path = root / f"{name}.yml"
        if not path.is_file():
            raise SourceMissingError(f"chatterbot-corpus has no english/{name}.yml")
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for conv in doc.get("conversations", []):
            conv = [tidy(str(t)) for t in conv]
            # The first line is the user's; with several answers listed, each is an alternative reply.
            if len(conv) >= 2:
                if name in ("conversations", "health"):
                    out.extend((name, conv[i], conv[i + 1]) for i in range(0, len(conv) - 1, 2))
                else:
                    out.extend((name, conv[0], a) for a in conv[1:])
    return out


# Fortune files that hold short, family-friendly humour (others: offensive, political, long quotes).
DEFAULT_FORTUNE_FILES = ("fortunes", "humorists", "kids", "food", "pets", "miscellaneous", "riddles", "work")


def fortunes(files: tuple[str, ...] = DEFAULT_FORTUNE_FILES) -> list[tuple[str, str]]:
    """(file, text) for every fortune in the given Debian fortune files (entries separated by '%')."""
    if not FORTUNES_DIR.is_dir():
        raise SourceMissingError(f"{FORTUNES_DIR} missing: apt-get install fortunes")
    out = []
    for name in files:
        path = FORTUNES_DIR / name
        if not path.is_file():
            raise SourceMissingError(f"fortune file {path} missing")
        for entry in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            out.append((name, entry.strip("\n%")))
    return out


def short_joke(entry: str, max_words: int = 30) -> str | None:
    """A fortune reduced to a clean one- or two-sentence spoken joke, or None."""
    if re.search(r"^\s*(--|\w+:)|\t|\n\s*\n|\n\s+--", entry, re.M):
        return None  # attributions, dialogue scripts, verse, multi-paragraph
    text = tidy(entry.replace("\n", " "))
    if clean_turn(text, max_words=max_words, max_non_word_share=0.0) is None:
        return None
    if word_count(text) < 6 or text[-1] not in ".!?" or len(re.findall(r"[.!?]+(\s|$)", text)) > 2:
        return None
    if '"' in text or "(" in text or text.endswith("?") or "--" in text or ":" in text or ";" in text:
        return None
    if re.search(r"\d|\b[A-Z]{2,}\b", text) or _GLOOMY_RE.search(text):
        return None
    return text


# Fortune-cookie lines about harm or insults read badly from a friendly assistant.
_GLOOMY_RE = re.compile(
    r"\b(die|dies|died|dying|dead|death|kill\w*|murder\w*|hostage|bus|hate\w*|stupid|idiot|fool\w*|ugly|fat|"
    r"rat|fluke|sin|sins|devil|hell|war|gun\w*|bomb\w*|crime\w*|prison|jail|disaster\w*|misery|miserable|"
    r"tyrant|wife|wives|husband|women|woman|men|girl\w*|boy\w*|sex\w*|drunk\w*|drink\w*|whisky|beer|wine|"
    r"money|taxes|lawyer\w*|politic\w*|religion|church|nothing|never|no one|nobody|worst|pain\w*)\b",
    re.I,
)
