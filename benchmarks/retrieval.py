"""Draft retrieval on held-out paraphrases: words (TF-IDF) vs meaning (MiniLM), side by side.

    python -m benchmarks.retrieval [--min-meaning 0.5 0.6 0.7] [--show]

A hit is a draft that holds one of the item's ``expect_any`` strings; on ``expect_none`` items any
draft is wrong. Also times the sentence encoder on one thread (one request, as a turn encodes it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime
from pathlib import Path

import torch

from agent.embedded.drafts import DraftIndex
from agent.prompt import Conversation
from agent.reply import DRAFTS_FILE, EMBEDDED_MODEL

ITEMS = Path(__file__).with_name("paraphrases.json")
NOW = datetime(2026, 12, 7, 14, 5)  # a Monday
PREVIOUS = "It's a sunny day."


def prompt_for(item: dict):
    conv = Conversation()
    for told in item["told"] or ["Hi."]:
        conv.add_user(told)
        conv.add_assistant(PREVIOUS)
    return conv.prompt_for(item["ask"], NOW)


def score(
    index: DraftIndex, items: list[dict], min_words: float = 0.5, show: bool = False
) -> dict[str, float]:
    hits = wrong = none_ok = 0
    n_pos = sum(1 for it in items if not it.get("expect_none"))
    for it in items:
        prompt = prompt_for(it)
        draft = index.draft(prompt, prompt.context, min_words)
        if it.get("expect_none"):
            ok = draft is None
            none_ok += ok
        else:
            ok = draft is not None and any(e.lower() in draft.lower() for e in it["expect_any"])
            hits += ok
            wrong += draft is not None and not ok
        if show and not ok:
            print(f"    miss [{index.retrieval}] {it['ask']!r} -> {draft!r}")
    n_neg = len(items) - n_pos
    return {
        "hit": hits / n_pos,
        "wrong_draft": wrong / n_pos,
        "no_draft_on_negatives": none_ok / max(1, n_neg),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--min-meaning", type=float, nargs="+", default=[0.5, 0.6, 0.7])
    ap.add_argument("--show", action="store_true", help="print every miss")
    args = ap.parse_args()
    torch.set_num_threads(1)  # as in the pipeline
    items = json.loads(ITEMS.read_text())["items"]
    words = DraftIndex.load(EMBEDDED_MODEL / DRAFTS_FILE)
    stored = {" ".join(p.split()) for p in words.prompts}
    leaked = [it["ask"] for it in items if " ".join(it["ask"].lower().strip("?.!").split()) in stored]
    assert not leaked, f"held-out paraphrases that are stored prompts: {leaked}"
    n_pos = sum(1 for it in items if not it.get("expect_none"))
    print(f"{len(items)} held-out items ({n_pos} with a stored answer, {len(items) - n_pos} without)")
    print("| retrieval | threshold | hit | wrong draft | no draft where none fits |")
    print("|---|---|---|---|---|")
    r = score(words, items, show=args.show)
    print(
        f"| words (TF-IDF) | 0.5 | {r['hit']:.0%} | {r['wrong_draft']:.0%} | {r['no_draft_on_negatives']:.0%} |"
    )
    t0 = time.perf_counter()
    meaning = DraftIndex.load(EMBEDDED_MODEL / DRAFTS_FILE, retrieval="meaning")
    load_s = time.perf_counter() - t0
    for mode in ("meaning", "both"):
        meaning.retrieval = mode
        for m in args.min_meaning:
            meaning.min_meaning = m
            r = score(meaning, items, show=args.show)
            label = "meaning (MiniLM)" if mode == "meaning" else "meaning, then words"
            print(
                f"| {label} | {m} | {r['hit']:.0%} | {r['wrong_draft']:.0%} | {r['no_draft_on_negatives']:.0%} |"
            )
    enc = meaning.encoder
    assert enc is not None
    times = []
    for it in items:
        t = time.perf_counter()
        enc.encode_batch([it["ask"]])
        times.append((time.perf_counter() - t) * 1e3)
    lookups = []
    for it in items:
        enc.encode(it["ask"])  # cached, as after the partial transcript
        t = time.perf_counter()
        meaning.meaning_scores(it["ask"])
        lookups.append((time.perf_counter() - t) * 1e3)
    tf = []
    for it in items:
        t = time.perf_counter()
        words.scores(it["ask"])
        tf.append((time.perf_counter() - t) * 1e3)
    print(f"\nmeaning index load (encoder + stored vectors): {load_s:.2f} s")
    print(f"encode one request, 1 thread: p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms")
    print(f"meaning lookup with the request already encoded: p50 {statistics.median(lookups):.2f} ms")
    print(f"words (TF-IDF) lookup: p50 {statistics.median(tf):.2f} ms")


if __name__ == "__main__":
    main()
