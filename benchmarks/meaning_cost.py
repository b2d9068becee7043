"""What retrieval by meaning adds to a turn when the request was not encoded while the user spoke.

    python -m benchmarks.meaning_cost [--rounds 3]

Time to the reply's first block (the LM's part of V2V) on one torch thread: drafts by words; by
meaning for a request already encoded from a partial transcript (the cache hit); by meaning for one
the encoder has not seen (the encoder pass inside the turn). Variants interleave request by request,
so machine load hits them alike. Drafts differ between words and meaning, and with them the steps a
block takes, so part of a difference is the draft's, not the encoder's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime
from pathlib import Path

from agent.config import load_config
from agent.prompt import Conversation
from agent.reply import DiffusionReply

NOW = datetime(2026, 12, 7, 14, 5)


def first_block_ms(model: DiffusionReply, text: str, encoded: bool = False) -> float:
    prompt = Conversation().prompt_for(text, NOW)
    model.engine.reset()  # no cached prompt from the previous request
    if encoded and model.drafts is not None:
        model.drafts.prepare(text)  # as from a partial transcript, before the turn
    t0 = time.perf_counter()
    for _ in model.stream(prompt):
        return (time.perf_counter() - t0) * 1e3
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    items = json.loads(Path(__file__).with_name("paraphrases.json").read_text())["items"]
    asks = [it["ask"] for it in items]
    words = DiffusionReply(load_config(overrides=["lm.draft_retrieval=words"]).lm)
    meaning = DiffusionReply(load_config(overrides=["lm.draft_retrieval=meaning"]).lm)
    words.warmup()
    meaning.warmup()
    enc = meaning.drafts.encoder if meaning.drafts is not None else None
    assert enc is not None
    out: dict[str, list[float]] = {
        "words": [],
        "meaning, encoded from a partial": [],
        "meaning, encoded in the turn": [],
    }
    for r in range(args.rounds):
        for i, ask in enumerate(asks):
            text = f"{ask} {r}{i}"  # never seen by the encoder's cache
            out["words"].append(first_block_ms(words, text))
            out["meaning, encoded from a partial"].append(first_block_ms(meaning, text, encoded=True))
            out["meaning, encoded in the turn"].append(first_block_ms(meaning, text + " again"))
    print("| drafts | first block p50 (ms) | p90 (ms) | n |")
    print("|---|---:|---:|---:|")
    for k, v in out.items():
        q = statistics.quantiles(v, n=10)
        print(f"| {k} | {statistics.median(v):.1f} | {q[8]:.1f} | {len(v)} |")


if __name__ == "__main__":
    main()
