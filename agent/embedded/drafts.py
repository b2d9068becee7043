"""Retrieved drafts for draft-conditioned denoising.

For a new user message, find the most similar training prompt (TF-IDF over words and word pairs) and
offer its reply as a draft. Context values in the stored replies (the assistant's name, the time, the
weekday, the date) are kept as placeholders and filled from the current prompt's context, so "It's
6:53 PM." retrieved from another evening becomes "It's 2:05 PM." now. The reply model then keeps only
the draft tokens it finds plausible for this conversation (``DiffusionEngine.stream(draft=...)``).

    python -m agent.embedded.drafts --train agent/embedded/data/train.jsonl --out agent/embedded/model/drafts.json.gz
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

_WORD = re.compile(r"[a-z0-9']+")
_CONTEXT = re.compile(
    r"Your name is (?P<name>[^.]+)\. Today is (?P<weekday>\w+), (?P<month>\w+) (?P<day>\d+), (?P<year>\d+)\. "
    r"The time is (?P<time>\d+:\d\d [AP]M)\."
)
FIELDS = ("time", "name", "weekday", "month", "day", "year")


def terms(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return words + [f"{a}_{b}" for a, b in zip(words, words[1:])]


def context_values(system: str) -> dict[str, str] | None:
    m = _CONTEXT.search(system)
    return m.groupdict() if m else None


def to_template(reply: str, values: dict[str, str]) -> str:
    """Replace this example's context values by placeholders (longest first, whole words only)."""
    out = reply.replace("{", "(").replace("}", ")")
    for key in sorted(FIELDS, key=lambda k: -len(values[k])):
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
    replies: list[str]

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
        with gzip.open(path, "wt") as f:
            json.dump(list(zip(self.prompts, self.replies)), f)
        return path

    def best(self, prompt: str) -> tuple[int, float]:
        q = Counter(t for t in terms(prompt) if t in self.idf)
        if not q:
            return -1, 0.0
        vec = {t: c * self.idf[t] for t, c in q.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        scores: dict[int, float] = defaultdict(float)
        for t, v in vec.items():
            for i, w in self.postings[t]:
                scores[i] += v / norm * w
        i = max(scores, key=scores.__getitem__)
        return i, scores[i]

    def draft(self, messages: list[dict[str, str]], min_similarity: float = 0.5) -> str | None:
        """A draft reply for the conversation's last user message, or None when nothing is close."""
        i, sim = self.best(messages[-1]["content"])
        if i < 0 or sim < min_similarity:
            return None
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        return fill(self.replies[i], context_values(system))


def build(train_jsonl: str | Path) -> DraftIndex:
    """Single-exchange training examples → (user message, reply template); one reply per prompt."""
    seen: dict[str, str] = {}
    for line in Path(train_jsonl).read_text().splitlines():
        ex = json.loads(line)
        msgs = ex["messages"]
        if len(msgs) != 3 or msgs[0]["role"] != "system":
            continue  # multi-turn answers depend on history the draft cannot see
        values = context_values(msgs[0]["content"])
        if values is None:
            continue
        key = " ".join(_WORD.findall(msgs[1]["content"].lower()))
        if key and key not in seen:
            seen[key] = to_template(msgs[2]["content"], values)
    return DraftIndex(list(seen), list(seen.values()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", default="agent/embedded/data/train.jsonl")
    ap.add_argument("--out", default="agent/embedded/model/drafts.json.gz")
    args = ap.parse_args(argv)
    index = build(args.train)
    path = index.save(args.out)
    print(f"{len(index.prompts)} prompts → {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
