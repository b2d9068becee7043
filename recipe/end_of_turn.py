"""Train the end-of-turn table (agent/end_of_turn.json): complete user turns vs. their truncations.

Positives are whole user messages from the embedded model's training files and the chit-chat corpus;
negatives are the same messages cut after a random word ("Set a timer for" / "Tell me"). A prefix
that is itself a whole message elsewhere ("What time is it" of "What time is it in Tokyo") is not
used as a negative. The held-out
files (heldout.jsonl, teacher_eval.jsonl) are never read. Logistic regression, L2, full batch.

    python -m recipe.end_of_turn                # writes agent/end_of_turn.json
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

import torch

from agent.end_of_turn import MODEL_FILE, EndOfTurnModel, features, words_of

ROOT = Path(__file__).resolve().parent.parent
TRAIN_GLOB = "train*.jsonl"
HELD_OUT = ("heldout.jsonl", "teacher_eval.jsonl")


def user_turns(data_dir: Path) -> list[str]:
    texts: set[str] = set()
    for path in sorted(data_dir.glob(TRAIN_GLOB)):
        if path.name in HELD_OUT:
            continue
        for line in path.read_text().splitlines():
            for m in json.loads(line).get("messages", []):
                if m["role"] == "user":
                    texts.add(m["content"].strip())
    try:
        from recipe import sources
    except ImportError:  # before the recipe moved out of agent/
        from agent.embedded import sources  # type: ignore[no-redef]
    # Every turn of the chit-chat conversations and the chatterbot prompts: how people really end
    # a turn ("Thanks, goodbye!"), beside the templates' requests.
    for conv in sources.chitchat_turns():
        texts.update(c for t in conv if (c := sources.clean_turn(t, max_words=25)))
    texts.update(prompt for prompt, _, _ in sources.chatterbot_pairs())
    return sorted(t for t in texts if len(words_of(t)) >= 1)


def examples(texts: list[str], seed: int) -> list[tuple[list[str], float]]:
    rng = random.Random(seed)
    whole = {tuple(words_of(t)) for t in texts}
    out: list[tuple[list[str], float]] = []
    for text in texts:
        words = words_of(text)
        out.append((words, 1.0))
        if len(words) >= 2:  # two cuts a turn: as many unfinished as finished examples, about
            for k in rng.sample(range(1, len(words)), min(2, len(words) - 1)):
                # A cut that someone says as a whole turn ("What time is it" of "... in Tokyo")
                # is not an unfinished one.
                if tuple(words[:k]) not in whole:
                    out.append((words[:k], 0.0))
    return out


def train(data: list[tuple[list[str], float]], min_count: int, l2: float, epochs: int) -> EndOfTurnModel:
    counts = Counter(f for words, _ in data for f in features(words))
    vocab = {f: i for i, f in enumerate(sorted(f for f, n in counts.items() if n >= min_count))}
    ids, offsets = [], []
    for words, _ in data:
        offsets.append(len(ids))
        ids.extend(vocab[f] for f in features(words) if f in vocab)
    ids_t, offsets_t = torch.tensor(ids), torch.tensor(offsets)
    y = torch.tensor([label for _, label in data])
    torch.manual_seed(0)
    bag = torch.nn.EmbeddingBag(len(vocab), 1, mode="sum")
    torch.nn.init.zeros_(bag.weight)
    bias = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([bag.weight, bias], max_iter=epochs, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = bag(ids_t, offsets_t).squeeze(1) + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        loss = loss + l2 * bag.weight.pow(2).sum() / len(data)
        loss.backward()
        return loss

    opt.step(closure)
    w = bag.weight.detach().squeeze(1).tolist()
    weights = {f: round(w[i], 4) for f, i in vocab.items() if abs(w[i]) >= 1e-3}
    return EndOfTurnModel(weights, round(float(bias.item()), 4))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="training jsonl folder (default: the recipe's)")
    ap.add_argument("--out", type=Path, default=ROOT / "agent" / MODEL_FILE)
    ap.add_argument("--min-count", type=int, default=3)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    data_dir = args.data or next(
        d for d in (ROOT / "recipe" / "data", ROOT / "agent" / "embedded" / "data") if d.is_dir()
    )
    texts = user_turns(data_dir)
    data = examples(texts, args.seed)
    model = train(data, args.min_count, args.l2, args.iterations)
    correct = sum((model.probability(" ".join(w)) >= 0.5) == (y == 1.0) for w, y in data)
    args.out.write_text(
        json.dumps({"bias": model.bias, "weights": dict(sorted(model.weights.items()))}, indent=0) + "\n"
    )
    print(
        f"{len(texts)} turns, {len(data)} examples, {len(model.weights)} features; "
        f"training accuracy {correct / len(data):.1%} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
