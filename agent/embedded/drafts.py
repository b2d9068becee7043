"""Retrieved drafts for draft-conditioned denoising.

For a new user message, find the most similar training prompt (TF-IDF over words and word pairs) and
offer its reply as a draft. Context values in the stored replies (the assistant's name, the time, the
part of the day, the weekday, the date, a sum's result) are kept as placeholders and filled from the
current prompt's context, so "It's 6:53 PM." retrieved from another evening becomes "It's 2:05 PM."
now. One piece of history is a context value too: the assistant's previous reply, so "Say that
again." retrieves "Of course. {previous}" and the draft repeats what was really said. So is what the user
told the agent about themselves (``agent.memory``: "The user's favorite food is tacos."): a question
about it keeps two replies, "Your favorite food is {user_food}." and the training data's answer for a
fact never told ("I don't think you've told me that yet."), and the draft is the first one this
conversation's context can fill. The reply model then keeps only the draft tokens it finds plausible for
this conversation (``DiffusionEngine.stream(draft=...)``).

    python -m agent.embedded.drafts --train agent/embedded/data/train.jsonl agent/embedded/data/train_parts.jsonl \
        agent/embedded/data/train_sums.jsonl --out agent/embedded/model/drafts.json.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from agent.calculator import NUMBER_WORDS, SUM_SENTENCE
from agent.memory import VALUE_FIELDS, facts_in, values_in
from dlm_core.train.data import DataError, read_chat_jsonl

_WORD = re.compile(r"[a-z0-9']+")
_CONTEXT = re.compile(
    r"Your name is (?P<name>[^.]+)\. Today is (?P<weekday>\w+), (?P<month>\w+) (?P<day>\d+), (?P<year>\d+)\. "
    r"The time is (?P<time>\d+:\d\d [AP]M)\."
)
# The part of the day, as agent.prompt writes it ("It is the evening.", "It is nighttime.").
_PART = re.compile(r"It is (?P<part>the morning|the afternoon|the evening|nighttime)\.")
# Ties in length go to the earlier field: a sum's "14" on the 14th is the result, not the day.
FIELDS = (
    "expr",
    "result",
    "time",
    "part",
    "name",
    "weekday",
    "month",
    "day",
    "year",
    "previous",
    *VALUE_FIELDS,
)


_NUMBER = "<num>"
# "one" is more often a word than a number ("one more time", "which one").
_SPOKEN_NUMBERS = NUMBER_WORDS - {"one"}


def terms(text: str) -> list[str]:
    """Words and word pairs. A number is one term whatever its value or spelling ("forty three",
    "43"), so "what's two plus two" finds the sums the index holds in digits."""
    words: list[str] = []
    for w in _WORD.findall(text.lower()):
        if w[0].isdigit() or w in _SPOKEN_NUMBERS:
            if words and words[-1] == _NUMBER:
                continue  # "forty three", "5 45" (a time): one number
            w = _NUMBER
        words.append(w)
    return words + [f"{a}_{b}" for a, b in zip(words, words[1:])]


def context_values(system: str) -> dict[str, str] | None:
    m = _CONTEXT.search(system)
    if m is None:
        return None
    values = m.groupdict()
    for extra in (_PART, SUM_SENTENCE):  # the part of the day; the sum the agent worked out, if any
        found = extra.search(system, m.end())
        if found:
            values |= found.groupdict()
    return values | values_in(system[m.end() :])


def previous_reply(messages: list[dict[str, str]]) -> str | None:
    """The assistant's reply just before the last user message, if there is one."""
    if len(messages) >= 3 and messages[-2]["role"] == "assistant":
        return messages[-2]["content"].strip() or None
    return None


def to_template(reply: str, values: dict[str, str]) -> str:
    """Replace this example's context values by placeholders (longest first, whole words only)."""
    out = reply.replace("{", "(").replace("}", ")")
    for key in sorted((k for k in FIELDS if values.get(k)), key=lambda k: -len(values[k])):
        if key == "previous":  # a whole sentence: its ends are punctuation, not word boundaries
            out = out.replace(values[key], "{previous}")
        else:
            out = re.sub(rf"\b{re.escape(values[key])}\b", "{" + key + "}", out)
    return out


def fill(template: str, values: dict[str, str] | None) -> str | None:
    if "{" not in template:
        return template
    if values is None:
        return None
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return None


@dataclass
class DraftIndex:
    prompts: list[str]
    replies: list[str | list[str]]  # a template, or templates to try in order (the first that fills wins)

    def __post_init__(self) -> None:
        df: Counter[str] = Counter()
        docs = [Counter(terms(p)) for p in self.prompts]
        for d in docs:
            df.update(d.keys())
        n = len(docs)
        self.idf = {t: math.log((1 + n) / (1 + c)) + 1 for t, c in df.items()}
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, d in enumerate(docs):
            vec = {t: c * self.idf[t] for t, c in d.items()}
            norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
            for t, v in vec.items():
                self.postings[t].append((i, v / norm))

    @classmethod
    def load(cls, path: str | Path) -> DraftIndex:
        with gzip.open(path, "rt") as f:
            pairs = json.load(f)
        return cls([p for p, _ in pairs], [r for _, r in pairs])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(list(zip(self.prompts, self.replies))).encode()
        path.write_bytes(gzip.compress(data, mtime=0))  # no timestamp: rebuilds are byte-identical
        return path

    def scores(self, prompt: str) -> dict[int, float]:
        """Cosine similarity of the prompt to every stored prompt that shares a term with it."""
        q = Counter(t for t in terms(prompt) if t in self.idf)
        vec = {t: c * self.idf[t] for t, c in q.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        scores: dict[int, float] = defaultdict(float)
        for t, v in vec.items():
            for i, w in self.postings[t]:
                scores[i] += v / norm * w
        return scores

    def best(self, prompt: str) -> tuple[int, float]:
        scores = self.scores(prompt)
        if not scores:
            return -1, 0.0
        i = max(scores, key=scores.__getitem__)
        return i, scores[i]

    def draft(self, messages: list[dict[str, str]], min_similarity: float = 0.5) -> str | None:
        """A draft reply for the conversation's last user message, or None when nothing is close."""
        asked = messages[-1]["content"]
        scores = self.scores(asked)
        # The closest prompt; a question about a remembered fact only if it asks about the same thing.
        ranked = sorted((i for i, sim in scores.items() if sim >= min_similarity), key=lambda i: -scores[i])
        i = next(
            (i for i in ranked if isinstance(self.replies[i], str) or _asks_the_same(self.prompts[i], asked)),
            -1,
        )
        if i < 0:
            return None
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        values = context_values(system)
        previous = previous_reply(messages)
        if values is not None and previous is not None:
            values = {**values, "previous": previous}
        templates = self.replies[i]
        for template in [templates] if isinstance(templates, str) else templates:
            draft = fill(template, values)
            if draft is not None:
                return draft
        return None


# Words that frame a question without saying what it is about.
_FRAME_WORDS = frozenset((
    "what", "what's", "whats", "which", "who", "where", "is", "are", "am", "was", "my", "i", "i'm", "me",
    "you", "do", "did", "does", "can", "could", "would", "please", "tell", "say", "said", "remember",
    "know", "again", "the", "a", "an", "it", "that", "this", "to", "of",
))  # fmt: skip

_ABOUT_THE_USER = frozenset({"my", "i", "me", "i'm", "im"})


def _asks_the_same(stored: str, asked: str) -> bool:
    """A question about a remembered fact is a draft only when the new question has all its content
    words ("do you remember my favorite color" must not answer "do you remember my favorite food"), at
    least one of them, is about the user ("what's my name", not "what's your name") and states no fact."""
    if facts_in(asked):  # "Yellow is my favorite color." tells a fact: it does not ask for one
        return False
    asked_words = set(_WORD.findall(asked.lower()))
    about = set(_WORD.findall(stored)) - _FRAME_WORDS
    return bool(about) and about <= asked_words and bool(asked_words & _ABOUT_THE_USER)


def _key(user_message: str) -> str:
    return " ".join(_WORD.findall(user_message.lower()))


def _chats_of_kinds(path: str | Path, kinds: tuple[str, ...]) -> list[list[dict[str, str]]]:
    try:
        return read_chat_jsonl(path, kinds=kinds)
    except DataError:
        if not Path(path).is_file():
            raise
        return []  # a file with none of these kinds (the part-of-day set) adds none


def _memory_templates(*train_jsonl: str | Path) -> dict[str, list[str]]:
    """Questions about a remembered fact → [the first reply template that names it, the first "never
    told" reply]; only questions seen answered both ways (so the fact they ask for is known)."""
    told: dict[str, str] = {}
    untold: dict[str, str] = {}
    for kind, found in (("user_fact", told), ("user_fact_unknown", untold)):
        for msgs in (m for path in train_jsonl for m in _chats_of_kinds(path, (kind,))):
            values = context_values(msgs[0]["content"]) if msgs[0]["role"] == "system" else None
            if values is None or msgs[-1]["role"] != "assistant":
                continue
            template = to_template(msgs[-1]["content"], values)
            # A told fact the memory missed ("i'm will": a name in lower case) gives no template.
            if (kind == "user_fact") == ("{user_" in template) and "{previous}" not in template:
                found.setdefault(_key(msgs[-2]["content"]), template)
    return {k: [told[k], untold[k]] for k in told if k in untold}


def build(*train_jsonl: str | Path) -> DraftIndex:
    """Training examples (from one or more files, the first seen winning) → (user message, reply
    template); one reply per prompt.

    Single exchanges, multi-turn ones whose reply repeats the previous reply after a lead-in, and
    questions about a remembered fact (``_memory_templates``); other multi-turn answers depend on
    history the draft cannot see. A prompt seen both as a single exchange and as a repeat keeps the
    repeating template: it is the one that needs history, and it falls back to no draft without any."""
    seen: dict[str, str | list[str]] = {}
    memory = _memory_templates(*train_jsonl)
    for msgs in (m for path in train_jsonl for m in read_chat_jsonl(path)):
        if len(msgs) < 3 or msgs[0]["role"] != "system" or msgs[-1]["role"] != "assistant":
            continue
        values = context_values(msgs[0]["content"])
        if values is None:
            continue
        previous = previous_reply(msgs[:-1])
        if previous is not None:
            values = {**values, "previous": previous}
        template = to_template(msgs[-1]["content"], values)
        # A repeat has its lead-in ("Of course. {previous}"); a reply that merely equals the one
        # before it ("say something nice" asked twice) is a coincidence, not a repeat.
        repeats = "{previous}" in template and template != "{previous}"
        if len(msgs) > 3 and not repeats:
            continue
        key = _key(msgs[-2]["content"])
        if key and (key not in seen or repeats and "{previous}" not in seen[key]):
            seen[key] = template
    seen |= memory
    return DraftIndex(list(seen), list(seen.values()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--train",
        nargs="+",
        default=[f"agent/embedded/data/{name}.jsonl" for name in ("train", "train_parts", "train_sums")],
        help="training sets whose single exchanges (and repeats) become drafts; the first seen prompt wins",
    )
    ap.add_argument("--out", default="agent/embedded/model/drafts.json.gz")
    args = ap.parse_args(argv)
    index = build(*args.train)
    path = index.save(args.out)
    print(f"{len(index.prompts)} prompts → {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
