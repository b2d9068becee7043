"""The listener evaluation's prompts: load, check, and keep them apart from the model's own data.

``prompts.jsonl`` is written by hand (one conversation a line, ending with the user's turn). A prompt
whose user text also appears in the training or held-out data would score memory, not replies, so
``overlaps`` compares every user message, case and punctuation ignored, with every user message (and
teacher prompt) in ``recipe/data``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from recipe.filters import normalise_prompt

HERE = Path(__file__).resolve().parent
PROMPTS = HERE / "prompts.jsonl"
DATA = HERE.parent / "data"
DEMO_MANIFEST = HERE.parents[1] / "demo" / "manifest.json"

CATEGORIES = (
    "greeting_farewell",
    "small_talk",
    "feelings",
    "knowledge",
    "cannot_do",
    "self_and_user",
    "follow_up",
    "noisy_asr",
)
ROLES = ("user", "assistant")


class PromptFileError(ValueError):
    """``prompts.jsonl`` breaks the schema (the message names the line and the problem)."""


def load_prompts(path: Path = PROMPTS) -> list[dict]:
    """The prompts, each checked: known category, user/assistant turns alternating from and to the user."""
    items: list[dict] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptFileError(f"{path}:{n}: not JSON: {exc}") from exc
        where = f"{path}:{n} ({item.get('id', 'no id')})"
        if not isinstance(item.get("id"), str) or not item["id"]:
            raise PromptFileError(f"{where}: missing id")
        if item["id"] in seen:
            raise PromptFileError(f"{where}: id used twice")
        seen.add(item["id"])
        if item.get("category") not in CATEGORIES:
            raise PromptFileError(f"{where}: category {item.get('category')!r} is not one of {CATEGORIES}")
        msgs = item.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise PromptFileError(f"{where}: no messages")
        for i, m in enumerate(msgs):
            if m.get("role") != ROLES[i % 2] or not str(m.get("content", "")).strip():
                raise PromptFileError(f"{where}: message {i} must be a non-empty {ROLES[i % 2]} turn")
        if msgs[-1]["role"] != "user":
            raise PromptFileError(f"{where}: the last message must be the user's")
        for key in ("known_answer", "note"):
            if key in item and not (isinstance(item[key], str) and item[key].strip()):
                raise PromptFileError(f"{where}: {key} must be a non-empty string when given")
        items.append(item)
    return items


def user_texts(item: dict) -> list[str]:
    return [m["content"] for m in item["messages"] if m["role"] == "user"]


def _records(path: Path) -> Iterator[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def data_user_texts(data: Path = DATA, demo: Path | None = DEMO_MANIFEST) -> set[str]:
    """Every user message of the recipe's data sets (``*.jsonl``, ``*.jsonl.gz``), the teacher cache's
    prompts and few-shot questions, and the demo's spoken lines, normalised (``normalise_prompt``)."""
    out: set[str] = set()
    for path in sorted([*data.glob("*.jsonl"), *data.glob("*.jsonl.gz")]):
        for rec in _records(path):
            out.update(m["content"] for m in rec.get("messages", ()) if m.get("role") == "user")
            if "prompt" in rec:  # teacher_cache.jsonl: a question and its few-shot questions
                out.add(rec["prompt"])
                out.update(rec.get("shots", ()))
    if demo is not None and demo.is_file():
        out.update(clip["text"] for clip in json.loads(demo.read_text()) if clip.get("text"))
    return {normalise_prompt(t) for t in out}


def overlaps(items: Iterable[dict], seen: set[str]) -> dict[str, list[str]]:
    """Prompt id -> its user texts that the data already holds (after normalising)."""
    out: dict[str, list[str]] = {}
    for item in items:
        hits = [t for t in user_texts(item) if normalise_prompt(t) in seen]
        if hits:
            out[item["id"]] = hits
    return out
