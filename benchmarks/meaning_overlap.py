"""How often retrieval by meaning finds the final transcript already encoded from a partial one.

    python -m benchmarks.meaning_overlap [--input demo]

Runs the demo clips through the real pipeline (simulated real time) and counts, for the reply
thread's lookups, encoder cache hits (the words were encoded while the user spoke: no cost in the
turn) and misses (an encoder pass, ~30 ms on one thread, inside the turn).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from agent.config import load_config
from agent.embedded.meaning import shared_encoder
from agent.pipeline import Services
from agent.simulate import ScriptItem, ScriptRunner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--input", default="demo")
    args = ap.parse_args()
    folder = Path(args.input)
    manifest = json.loads((folder / "manifest.json").read_text())
    items = [
        ScriptItem(folder / e["file"], e["text"], "respond", 0.0)
        for e in manifest
        if "barge_in_after_ms" not in e and "backchannel_after_ms" not in e
    ]
    cfg = load_config(overrides=["lm.draft_retrieval=meaning"])
    services = Services.load(cfg)
    enc = shared_encoder()
    turn_hits = turn_misses = 0
    orig = enc.encode

    def counted(text: str):
        nonlocal turn_hits, turn_misses
        import threading

        if threading.current_thread().name.startswith("reply"):
            if enc.cached(text):
                turn_hits += 1
            else:
                turn_misses += 1
        return orig(text)

    enc.encode = counted  # type: ignore[method-assign]
    runner = ScriptRunner(cfg, services)
    asyncio.run(runner.run(items))
    print(
        f"{len(items)} turns; reply-thread lookups: {turn_hits} already encoded from a partial, {turn_misses} encoded in the turn"
    )
    print(f"all encoder calls: {enc.hits} cache hits, {enc.misses} passes")


if __name__ == "__main__":
    main()
