"""Does the shipped reply model say a source's fact when the fact is in its context and its draft?

    python -m benchmarks.grounded_phrasing [--show]

With ``lm.phrase_grounded=true`` the model decodes each grounded request (the source's sentence in
the system message and as the draft) and its reply is spoken only if it says the fact and nothing
else (``agent.sources.phrases``). Counts how often that was the case, on the questions of
benchmarks/grounding.py that a source answers or honestly cannot.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from agent.config import load_config
from agent.prompt import Conversation
from agent.reply import DiffusionReply
from benchmarks.grounding import ANSWERED, FRESH, UNKNOWN

NOW = datetime(2026, 12, 7, 14, 5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--show", action="store_true")
    args = ap.parse_args()
    model = DiffusionReply(load_config(overrides=["lm.phrase_grounded=true"]).lm)
    model.warmup()
    by_model = total = 0
    for q, prev, *_ in [*ANSWERED, *FRESH, *UNKNOWN]:
        conv = Conversation()
        if prev:
            conv.add_user(prev)
            conv.add_assistant("Okay.")
        model.reply(conv.prompt_for(q, NOW))
        g = model.last_grounding
        if g is None:
            continue
        total += 1
        by_model += g.by == "model"
        if args.show:
            print(f"{g.by:6} {q!r}: model said {g.model_text!r}")
    print(
        f"the model's own reply said the fact (and nothing else) in {by_model} of {total} grounded requests"
    )


if __name__ == "__main__":
    main()
