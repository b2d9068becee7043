"""Barge-in with echo cancellation on, the way a room does it.

The agent answers a question; its voice comes back into the simulated microphone through an echo
path (delay, attenuation, a reverberant tail) or through none at all (headphones, a virtual mic).
Each try either speaks over the reply (it must interrupt, and its words must be transcribed) or
stays silent (the agent must not interrupt itself on its own echo). Real models, real time.

    python -m benchmarks.barge_in_echo --tries 10 --json out/bench/barge_in_echo.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from agent.config import load_config
from agent.events import BargeIn, LatencyReport
from agent.pipeline import Services
from agent.report import meta
from agent.simulate import EchoPath, ScriptItem, ScriptRunner
from agent.wer import word_error_rate

DEMO = Path(__file__).resolve().parent.parent / "demo"
QUESTION = ("11_space.wav", "Tell me something interesting about space.")
INTERRUPTION = ("12_barge_in.wav", "Wait, stop. Tell me a funny joke instead.")
PATHS: dict[str, EchoPath | None] = {
    "no echo path": None,
    "echo 20 ms": EchoPath(20, 0.3, 250),
    "echo 80 ms": EchoPath(80, 0.3, 300),
    "echo 150 ms": EchoPath(150, 0.3, 400),
}


async def one_try(cfg, services, echo: EchoPath | None, speak_over: bool, after_ms: float) -> dict:
    runner = ScriptRunner(cfg, services, echo=echo, echo_cancellation=True)
    items = [ScriptItem(DEMO / QUESTION[0], QUESTION[1])]
    if speak_over:
        items.append(ScriptItem(DEMO / INTERRUPTION[0], INTERRUPTION[1], "barge_in", after_ms))
    await runner.run(items)
    barge = [e for e in runner.events if isinstance(e, BargeIn)]
    reports = [e for e in runner.events if isinstance(e, LatencyReport)]
    first_turn = reports[0].turn if reports else 1
    out = {"barge_ins": len(barge), "bypassed": runner.pipeline.aec.bypassed}
    if speak_over:
        nxt = [r for r in reports if r.turn > first_turn]
        heard = nxt[0].transcript if nxt else ""
        out |= {
            "interrupted": bool(barge) and barge[0].turn == first_turn,
            "transcript": heard,
            "wer": round(word_error_rate(INTERRUPTION[1], heard), 3) if heard else 1.0,
            "self_interruptions": max(0, len(barge) - 1),
        }
    else:
        out["self_interruptions"] = len(barge)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tries", type=int, default=5, help="tries per echo path and case")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    cfg = load_config(overrides=["lm.min_tokens=24"])  # replies of a few seconds, long enough to talk over
    services = Services.load(cfg)
    results: dict[str, dict] = {}
    for name, echo in PATHS.items():
        over = [
            asyncio.run(one_try(cfg, services, echo, True, 600.0 + 300.0 * (k % 4)))
            for k in range(args.tries)
        ]
        quiet = [asyncio.run(one_try(cfg, services, echo, False, 0.0)) for _ in range(args.tries)]
        heard = [t for t in over if t["interrupted"] and t["wer"] <= 0.25]
        results[name] = {
            "speak_over": over,
            "silent": quiet,
            "barge_in_heard": f"{len(heard)}/{len(over)}",
            "self_interruptions": sum(t["self_interruptions"] for t in over + quiet),
        }
        print(
            f"{name:14s} barge-in detected and transcribed {len(heard)}/{len(over)}; "
            f"self-interruptions {results[name]['self_interruptions']} in {len(over) + len(quiet)} tries",
            flush=True,
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"meta": meta(cfg, {"tries": args.tries}), "results": results}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
