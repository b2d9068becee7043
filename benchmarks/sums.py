"""How often the reply states the sum the agent worked out: random sums of the training kinds (add and
subtract up to 99, multiply and divide within the 12×12 table) in three phrasings, through the agent's
own prompt (``Conversation``) and default decoding, counted by the result's digit count. ``--words``
asks with both numbers in words ("what's forty-three plus seven"), as Whisper often writes them.

    python -m benchmarks.sums [--n 90] [--model DIR] [--words]
"""

from __future__ import annotations

import argparse
import random
from datetime import datetime

from agent.calculator import number_in_words
from agent.config import LMSection
from agent.prompt import Conversation
from agent.reply import DiffusionReply
from recipe.intents import arith_slots

PHRASINGS = ("What is {a} {op} {b}?", "what's {a} {op} {b}", "{a} {op} {b}?")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sums", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=90)
    ap.add_argument("--model", default="", help="model folder (default: the embedded model)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--words", action="store_true", help="both numbers in words, not digits")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    model = DiffusionReply(LMSection(model_path=args.model))
    model.warmup()
    now = datetime(2026, 11, 27, 15, 0)
    right: dict[int, list[int]] = {}
    for _ in range(args.n):
        slots = arith_slots(rng, None)  # type: ignore[arg-type]  # the slot maker ignores the context
        said = dict(slots)
        if args.words:
            said |= {k: number_in_words(int(slots[k])) for k in ("a", "b")}
        user = rng.choice(PHRASINGS).format(**said)
        model.engine.reset()
        reply = model.reply(Conversation("Quinn").prompt_for(user, now))
        ok = slots["result"] in reply.replace(".", " ").split()
        tally = right.setdefault(len(slots["result"]), [0, 0])
        tally[0] += ok
        tally[1] += 1
        if not ok:
            print(f"  wrong: {user!r} -> {reply!r}")
    total = sum(r for r, _ in right.values())
    print(f"{total}/{args.n} right; by digits of the result: "
          + ", ".join(f"{d}: {r}/{n}" for d, (r, n) in sorted(right.items())))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
