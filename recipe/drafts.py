"""Build the draft index (``agent/embedded/drafts.py`` loads it) from the training sets.

    python -m recipe.drafts --train recipe/data/train.jsonl recipe/data/train_parts.jsonl \
        recipe/data/train_sums.jsonl --out agent/embedded/model/drafts.json.gz

Each example's reply becomes a template: the values of its context (``agent.prompt.Context``: the
assistant's name, the time, a sum's result, a remembered fact…) and the previous reply are replaced by
placeholders. A training example stores only the sentences: its context comes from
``recipe.context.context_of``, the way the agent works it out.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from collections.abc import Sequence
from pathlib import Path

from agent.embedded.drafts import DraftIndex, previous_reply
from agent.memory import VALUE_FIELDS
from dlm_core.train.data import DataError, read_chat_jsonl
from recipe.context import context_of

_WORD = re.compile(r"[a-z0-9']+")
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


def to_template(reply: str, values: dict[str, str]) -> str:
    """Replace this example's context values by placeholders (longest first, whole words only)."""
    out = reply.replace("{", "(").replace("}", ")")
    for key in sorted((k for k in FIELDS if values.get(k)), key=lambda k: -len(values[k])):
        if key == "previous":  # a whole sentence: its ends are punctuation, not word boundaries
            out = out.replace(values[key], "{previous}")
        else:
            out = re.sub(rf"\b{re.escape(values[key])}\b", "{" + key + "}", out)
    return out


def _values(chat: Sequence[dict[str, str]]) -> dict[str, str] | None:
    """The context values of a chat ending with the user's message, and its previous reply."""
    context = context_of(chat)
    if context is None:
        return None
    previous = previous_reply(chat)
    return context.values() | ({"previous": previous} if previous is not None else {})


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
            context = context_of(msgs[:-1])
            if context is None or msgs[-1]["role"] != "assistant":
                continue
            template = to_template(msgs[-1]["content"], context.values())
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
        values = _values(msgs[:-1])
        if values is None:
            continue
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


def save(index: DraftIndex, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(list(zip(index.prompts, index.replies))).encode()
    path.write_bytes(gzip.compress(data, mtime=0))  # no timestamp: rebuilds are byte-identical
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--train",
        nargs="+",
        default=[f"recipe/data/{name}.jsonl" for name in ("train", "train_parts", "train_sums")],
        help="training sets whose single exchanges (and repeats) become drafts; the first seen prompt wins",
    )
    ap.add_argument("--out", default="agent/embedded/model/drafts.json.gz")
    args = ap.parse_args(argv)
    index = build(*args.train)
    path = save(index, args.out)
    print(f"{len(index.prompts)} prompts → {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
