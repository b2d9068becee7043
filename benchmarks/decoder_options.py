"""Time the agent's reply decoder with and without some of its options, side by side: every k-th
held-out prompt through ``DiffusionReply`` (drafts, bans, copy repairs: the agent's defaults), each
variant on its own engine, the variants interleaved prompt by prompt so that the machine's drift hits
them alike. Reports p50 / mean per variant, their ratio to the first, and how many replies differ.

    python -m benchmarks.decoder_options --variant lm.whole_word_copies=false [--every 2] [--threads 2]

Each ``--variant`` is a comma-separated list of ``[lm]`` overrides (as the CLI's ``--set``); the
agent's defaults always run first as the reference.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from agent.config import QuickturnConfig, apply_overrides
from agent.reply import DiffusionReply
from recipe.evaluate import load_heldout, prompt


def load_variant(overrides: list[str], model: str, threads: int) -> DiffusionReply:
    lm = apply_overrides(QuickturnConfig(), overrides).lm
    if model:
        lm.model_path = model
    lm.threads = threads  # DiffusionReply sets torch's thread count from this
    lm.prefill_while_listening = False
    reply = DiffusionReply(lm)
    reply.warmup()
    return reply


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.decoder_options", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--variant", action="append", default=[], metavar="lm.KEY=VALUE[,…]", required=True)
    ap.add_argument("--model", default="", help="model folder (default: the embedded model)")
    ap.add_argument("--every", type=int, default=2, help="use every k-th held-out prompt")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    names = ["defaults", *args.variant]
    variants = [load_variant([], args.model, args.threads)]
    variants += [load_variant(v.split(","), args.model, args.threads) for v in args.variant]
    items = load_heldout()[:: args.every]
    times: list[list[float]] = [[] for _ in variants]
    replies: list[list[str]] = [[] for _ in variants]
    for n, item in enumerate(items):
        order = range(len(variants)) if n % 2 == 0 else reversed(range(len(variants)))  # no fixed position
        for i in order:
            variants[i].engine.reset()  # each prompt stands alone, as in the evaluation
            t0 = time.perf_counter()
            replies[i].append(variants[i].reply(prompt(item)))  # with its typed context
            times[i].append((time.perf_counter() - t0) * 1e3)
    ref_p50 = statistics.median(times[0])
    print(f"{len(items)} held-out prompts, {torch.get_num_threads()} torch threads\n")
    print("| variant | p50 ms | mean ms | p50 ratio | replies changed |\n|---|---:|---:|---:|---:|")
    for name, ts, rs in zip(names, times, replies):
        changed = sum(a != b for a, b in zip(rs, replies[0]))
        p50 = statistics.median(ts)
        print(f"| {name} | {p50:.1f} | {statistics.mean(ts):.1f} | {p50 / ref_p50:.3f} | {changed} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
