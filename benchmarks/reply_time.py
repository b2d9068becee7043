"""Time one agent-style reply ("what time is it", S = 8, threshold rule, ≤ 48 tokens) for several model
folders side by side, interleaved in rounds, on 1 and 2 torch threads.

    python -m benchmarks.reply_time agent/embedded/model OLD_MODEL_DIR --full-head

``--full-head`` adds a variant of the first model that multiplies the whole head (every vocabulary
row) instead of only its output vocabulary's rows, to measure that shortcut.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime

import torch

from agent.prompt import context_sentences
from dlm_core.engine import DecodeOptions, DiffusionEngine
from dlm_core.sampling import SamplerConfig

CONVERSATION = [
    {"role": "system", "content": context_sentences("Quinn", datetime(2026, 11, 26, 14, 5))},
    {"role": "user", "content": "what time is it"},
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.reply_time", description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="model folders")
    ap.add_argument("--full-head", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=15, help="timed replies per engine, round and thread count")
    args = ap.parse_args(argv)
    engines = {path: DiffusionEngine.from_pretrained(path, max_context=512) for path in args.models}
    if args.full_head:
        full = DiffusionEngine.from_pretrained(args.models[0], max_context=512)
        full.model._reply_logits = full.model.head  # type: ignore[method-assign]
        engines[f"{args.models[0]} (whole head)"] = full
    options = DecodeOptions(max_tokens=48, steps=8, sampler=SamplerConfig(rule="threshold", threshold=0.9))
    times: dict[tuple[str, int], list[float]] = {}
    replies: dict[str, str] = {}
    for _ in range(args.rounds):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for name, engine in engines.items():
                for _ in range(2):  # warm-up
                    engine.reset()
                    engine.generate(CONVERSATION, options)
                for _ in range(args.runs):
                    engine.reset()  # no prefix reuse: prefill + denoising, as a fresh reply
                    t0 = time.perf_counter()
                    replies[name] = engine.generate(CONVERSATION, options).text
                    times.setdefault((name, threads), []).append((time.perf_counter() - t0) * 1e3)
    print("| model | torch threads | reply p50 ms | reply |\n|---|---:|---:|---|")
    for (name, threads), ts in sorted(times.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
        print(f"| {name} | {threads} | {statistics.median(ts):.1f} | {replies[name]!r} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
