"""The listener evaluation's table: blind labels joined with the key, per category and system.

    python -m recipe.listener_eval.report --labels out/listener_eval/labels.jsonl
    python -m recipe.listener_eval.report --labels L --md out/listener_eval/report.md --card

For each category (and all together) and each system: how many replies were labelled, and the share
labelled sensible / acceptable / wrong / garbled (``RUBRIC.md``); and, over the prompts with a
``known_answer`` (alternatives split by "|"), the share of replies that say one of them as a word
(a plural "peanuts" counts for "peanut") — checked on every reply, labelled or not.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from recipe.listener_eval.prompts import CATEGORIES, PROMPTS, load_prompts

LABELS = ("sensible", "acceptable", "wrong", "garbled")
OUT = Path("out/listener_eval")
CARD = Path(__file__).resolve().parents[2] / "docs" / "model-card.md"
CARD_START, CARD_END = "<!-- listener:start -->", "<!-- listener:end -->"
ALL = "all"


class LabelError(ValueError):
    """The labels do not fit the key (unknown or repeated id, a label outside the rubric's four)."""


@dataclass
class Row:
    category: str
    system: str
    replies: int  # replies of this system in this category (labelled or not)
    labelled: int
    shares: dict[str, float]  # label -> share of the labelled replies
    known: int  # replies to prompts with a known answer
    known_right: int  # ... that say it

    @property
    def accuracy(self) -> float | None:
        return self.known_right / self.known if self.known else None


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_labels(path: Path, key: dict[str, dict]) -> dict[str, str]:
    """Opaque id -> label, every line checked against the key and the rubric."""
    out: dict[str, str] = {}
    for n, rec in enumerate(read_jsonl(path), 1):
        rid, label = rec.get("id"), rec.get("label")
        if rid not in key:
            raise LabelError(f"{path}:{n}: id {rid!r} is not in the key (a label for another sheet?)")
        if rid in out:
            raise LabelError(f"{path}:{n}: id {rid!r} labelled twice")
        if label not in LABELS:
            raise LabelError(f"{path}:{n}: label {label!r} is not one of {LABELS}")
        out[rid] = label
    return out


def says_answer(reply: str, known_answer: str) -> bool:
    """One of the "|"-separated answers appears in the reply as a word (any case, plural allowed)."""
    return any(
        re.search(rf"(?<!\w){re.escape(a.strip())}(?:e?s)?(?!\w)", reply, re.IGNORECASE)
        for a in known_answer.split("|")
        if a.strip()
    )


def tabulate(
    prompts: Sequence[dict], key: dict[str, dict], replies: dict[str, str], labels: dict[str, str]
) -> list[Row]:
    """Rows per category (in ``CATEGORIES`` order, then "all") and system (in the key's order).

    ``key``: opaque id -> {"system", "prompt_id"}; ``replies``: opaque id -> reply text."""
    by_prompt = {p["id"]: p for p in prompts}
    systems = list(dict.fromkeys(v["system"] for v in key.values()))
    rows = []
    for cat in (*CATEGORIES, ALL):
        for system in systems:
            ids = [
                rid
                for rid, v in key.items()
                if v["system"] == system and (cat == ALL or by_prompt[v["prompt_id"]]["category"] == cat)
            ]
            if not ids:
                continue
            got = [labels[rid] for rid in ids if rid in labels]
            known = [rid for rid in ids if by_prompt[key[rid]["prompt_id"]].get("known_answer")]
            right = sum(
                says_answer(replies[rid], by_prompt[key[rid]["prompt_id"]]["known_answer"]) for rid in known
            )
            shares = {lab: got.count(lab) / len(got) if got else 0.0 for lab in LABELS}
            rows.append(Row(cat, system, len(ids), len(got), shares, len(known), right))
    return rows


def markdown(rows: Sequence[Row]) -> str:
    out = [
        "| category | system | labelled | sensible | acceptable | wrong | garbled | known answer said |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [f"{r.shares[lab]:.0%}" if r.labelled else "—" for lab in LABELS]
        acc = f"{r.accuracy:.0%} ({r.known_right}/{r.known})" if r.accuracy is not None else "—"
        cat = f"**{r.category}**" if r.category == ALL else r.category
        out.append(f"| {cat} | {r.system} | {r.labelled}/{r.replies} | {' | '.join(cells)} | {acc} |")
    return "\n".join(out)


def write_card(text: str, card: Path = CARD) -> None:
    """The table between the listener markers of the model card (added at the end when missing)."""
    body = card.read_text() if card.is_file() else "# Model card\n"
    if CARD_START not in body:
        body = body.rstrip("\n") + f"\n\n{CARD_START}\n{CARD_END}\n"
    head, rest = body.split(CARD_START, 1)
    _, tail = rest.split(CARD_END, 1)
    card.write_text(f"{head}{CARD_START}\n{text}\n{CARD_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m recipe.listener_eval.report", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--labels", type=Path, default=OUT / "labels.jsonl")
    ap.add_argument("--key", type=Path, default=OUT / "key.json")
    ap.add_argument("--sheet", type=Path, default=OUT / "sheet.jsonl")
    ap.add_argument("--prompts", type=Path, default=PROMPTS)
    ap.add_argument("--md", type=Path, help="also write the table here")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--card", action="store_true", help="write the table into docs/model-card.md")
    args = ap.parse_args(argv)
    key = json.loads(args.key.read_text())["items"]
    replies = {row["id"]: row["reply"] for row in read_jsonl(args.sheet)}
    missing = set(key) - set(replies)
    if missing:
        raise LabelError(f"{args.sheet} lacks {len(missing)} ids of {args.key}: not the same run")
    labels = read_labels(args.labels, key)
    rows = tabulate(load_prompts(args.prompts), key, replies, labels)
    text = markdown(rows)
    print(text)
    if args.md:
        args.md.write_text(text + "\n")
    if args.json:
        args.json.write_text(
            json.dumps([asdict(r) | {"accuracy": r.accuracy} for r in rows], indent=1) + "\n"
        )
    if args.card:
        write_card(
            f"Labelled blind ({len(labels)} of {len(key)} replies), {time.strftime('%Y-%m-%d')}: "
            f"`python -m recipe.listener_eval.report`; rubric `recipe/listener_eval/RUBRIC.md`.\n\n{text}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
