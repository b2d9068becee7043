"""The reply model alone: B replies decoded one after another vs together in one batch.

    python -m benchmarks.lm_batch --batch 1 2 4 8 16 --repeat 3 --json out/bench/lm_batch.json

Each of B prompts (the agent's system prompt plus a different question) is decoded with the agent's
decoder options (S = 8, ≤ 48 tokens, drafts off, early exit off so every reply costs the same
steps): ``sequential`` runs ``DiffusionEngine.generate`` for each in turn, ``batched`` submits all to a
``BatchedEngine`` and steps until done. Both start from an empty cache (prefill included). Reported:
wall time for all B (median of ``--repeat``, the two variants interleaved), time to the last reply's
first block, and the batched forward's cost per row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from dlm_core import DecodeOptions, DiffusionEngine
from dlm_core.batch import END, BatchedEngine

MODEL = Path(__file__).resolve().parents[1] / "agent" / "embedded" / "model"
SYSTEM = "You are Quickturn, a friendly voice assistant. Keep replies short. It is 2:05 PM on Tuesday."
QUESTIONS = [
    "What time is it?", "What's your name?", "Tell me a joke.", "What day is it today?",
    "How are you?", "What's the weather like tomorrow?", "What is 12 times 3?", "Thanks, goodbye!",
]  # fmt: skip


def prompts(engine: DiffusionEngine, n: int) -> list[list[int]]:
    return [
        engine.tokenizer.encode_chat(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{QUESTIONS[i % 8]} ({i})"}],
            add_generation_prompt=True,
        )
        for i in range(n)
    ]


def sequential(engine: DiffusionEngine, ps: list[list[int]], opts: DecodeOptions) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = 0.0
    for p in ps:
        engine.reset()
        for block in engine.stream_ids(p, opts):
            if block.index == 0:
                first = time.perf_counter() - t0
    return (time.perf_counter() - t0) * 1e3, first * 1e3


def batched(b: BatchedEngine, ps: list[list[int]], opts: DecodeOptions, tag: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    for s, p in enumerate(ps):
        b.submit(b.request((tag, s), p, opts))
    firsts: dict[object, float] = {}
    while b.busy:
        for req, item in b.step():
            if item is not END and req.session not in firsts:
                firsts[req.session] = time.perf_counter() - t0
    return (time.perf_counter() - t0) * 1e3, max(firsts.values()) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.lm_batch", description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the agent's default: 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    engine = DiffusionEngine.from_pretrained(
        MODEL, device=args.device, max_context=512, use_cuda_graphs=False
    )
    opts = DecodeOptions(max_tokens=48, steps=8, early_exit=False)
    b = BatchedEngine(engine, max_batch=max(args.batch), sessions=max(args.batch), first_blocks_first=False)
    engine.generate_ids(prompts(engine, 1)[0], opts)  # warm-up
    rows = []
    for n in args.batch:
        ps = prompts(engine, n)
        seq, bat = [], []
        for r in range(args.repeat):
            seq.append(sequential(engine, ps, opts))
            forwards0, rows0 = b.forwards, b.rows_forwarded
            bat.append(batched(b, ps, opts, f"{n}-{r}"))
        row = {
            "batch": n,
            "sequential_ms": statistics.median(x[0] for x in seq),
            "batched_ms": statistics.median(x[0] for x in bat),
            "sequential_last_first_block_ms": statistics.median(x[1] for x in seq),
            "batched_last_first_block_ms": statistics.median(x[1] for x in bat),
            "rows_per_forward": (b.rows_forwarded - rows0) / max(1, b.forwards - forwards0),
        }
        rows.append(row)
        print(f"B={n:2d}: all replies sequential {row['sequential_ms']:7.0f} ms, batched {row['batched_ms']:7.0f} ms "
              f"(x{row['sequential_ms'] / row['batched_ms']:.2f}); last first block {row['sequential_last_first_block_ms']:6.0f}"
              f" vs {row['batched_last_first_block_ms']:6.0f} ms", flush=True)  # fmt: skip
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.processor()
            or platform.machine(), "cpus": os.cpu_count(), "load_avg": os.getloadavg(), "device": args.device,
            "threads": args.threads, "command": " ".join(["python -m benchmarks.lm_batch", *(argv or sys.argv[1:])])}  # fmt: skip
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
