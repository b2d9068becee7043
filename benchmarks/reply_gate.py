"""What the reply gate costs: the bare model's reply vs the gated reply, per prompt, side by side.

    python -m benchmarks.reply_gate [--n 329] [--rounds 1]

Replays the listener-eval prompts (``recipe/listener_eval``) through one loaded shipped model, 1 torch
thread as in the pipeline; for each prompt, in turn: the bare model (``gate.enabled=false``) and the
gated reply (LM + gate + fallbacks), so both see the same machine load. Prints p50/p90 of each, the
judging alone (``gate_ms``), and how often each candidate was spoken.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter

from agent.config import load_config
from agent.gated_reply import GatedReply
from agent.reply import DiffusionReply
from recipe.listener_eval.prompts import load_prompts
from recipe.listener_eval.run import agent_prompt


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.reply_gate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=0, help="only the first N prompts (0 = all)")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    cfg = load_config()
    cfg.lm.threads = 1
    cfg.lm.prefill_while_listening = False
    bare = DiffusionReply(cfg.lm)
    bare.warmup()
    gated = GatedReply(bare, cfg.gate)
    gated.warmup()
    items = load_prompts()
    items = items[: args.n] if args.n else items
    times: dict[str, list[float]] = {"bare": [], "gated": [], "gate_ms": []}
    used: Counter[str] = Counter()
    for _ in range(args.rounds):
        for item in items:
            prompt = agent_prompt(item, cfg)
            for name, model in (("bare", bare), ("gated", gated)):
                model.reset()
                t0 = time.perf_counter()
                model.reply(prompt)
                times[name].append((time.perf_counter() - t0) * 1e3)
            assert gated.last_gate is not None
            times["gate_ms"].append(gated.last_gate.gate_ms)
            used[gated.last_gate.candidate] += 1
    out = {
        k: {
            "p50": round(statistics.median(v), 2),
            "p90": round(pct(v, 0.9), 2),
            "mean": round(statistics.fmean(v), 2),
        }
        for k, v in times.items()
    }
    out["replies"] = len(times["bare"])
    out["candidates"] = dict(used)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
