"""Fit the reply gate's scorer (agent/reply_gate.json) on blind-labelled replies, and measure it.

    python -m recipe.reply_gate_fit collect   # the shipped model's replies with their token probabilities
    python -m recipe.reply_gate_fit fit       # fit on one split, precision/recall on the other

``collect`` replays the listener-eval prompts (``recipe/listener_eval``) through the shipped model as the
agent runs it and keeps, per prompt, the reply, the probability each token was revealed with, the
retrieved draft and one re-decode (the gate's fallbacks); it checks the reply is the one that was
labelled (greedy decoding: the same text). ``fit`` joins them with the blind labels
(``runs/2026-12-07``: garbled or wrong = bad), splits the prompts by a hash of their id (60 % fit,
40 % held out), fits an L2-regularised logistic regression (numpy Newton steps, standardised signals,
folded back to raw weights), picks the threshold on the fit split (the lowest score that still keeps
the fit split's garbled recall ≥ ``--recall``) and reports precision/recall on the held-out split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from agent.config import load_config
from agent.gated_reply import gate_input
from agent.reply_gate import FEATURES, GATE_FILE, GateModel, Lexicon, signals
from recipe.listener_eval.prompts import load_prompts
from recipe.listener_eval.run import agent_prompt

LABEL_RUN = Path(__file__).parent / "listener_eval" / "runs" / "2026-12-07"
OUT = Path("out/reply_gate")
WEIGHTS = Path(__file__).resolve().parents[1] / "agent" / GATE_FILE
BAD = ("garbled", "wrong")
# The direction each signal's weight must have: +1 more of it means worse, -1 better, 0 either.
SIGNS = {f: 1 for f in FEATURES} | {
    "min_logp": -1,
    "mean_logp": -1,
    "has_draft": 0,
    "draft_agreement": -1,
    "draft_exact": -1,
    "recalls_user": -1,
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def labelled(run: Path, system: str = "shipped") -> dict[str, tuple[str, str]]:
    """prompt id -> (reply, label) of ``system`` in a labelled run (sheet + key + labels)."""
    key = json.loads((run / "key.json").read_text())["items"]
    sheet = {r["id"]: r for r in map(json.loads, (run / "sheet.jsonl").read_text().splitlines())}
    out = {}
    for rec in map(json.loads, (run / "labels.jsonl").read_text().splitlines()):
        k = key[rec["id"]]
        if k["system"] == system:
            out[k["prompt_id"]] = (sheet[rec["id"]]["reply"], rec["label"])
    return out


def split_of(prompt_id: str) -> str:
    """A fixed split by the id's hash: the same prompt is always on the same side."""
    return "fit" if int(hashlib.sha1(prompt_id.encode()).hexdigest(), 16) % 5 < 3 else "held_out"


def collect(out: Path, redecode_steps: int) -> None:
    from dataclasses import replace

    from agent.reply import DiffusionReply

    cfg = load_config()
    cfg.lm.threads = 1
    cfg.lm.prefill_while_listening = False
    model = DiffusionReply(cfg.lm)
    model.warmup()
    options = replace(model.options, steps=redecode_steps)
    rows = []
    t0 = time.perf_counter()
    for item in load_prompts():
        prompt = agent_prompt(item, cfg)
        model.reset()
        text = model.reply(prompt)
        r = model.engine.last_result
        messages = model.fit(prompt).messages
        model.reset()
        again = model.engine.generate(messages, options)
        rows.append(
            {
                "prompt_id": item["id"],
                "category": item["category"],
                "messages": [dict(m) for m in messages],
                "reply": text,
                "probs": [round(p, 5) for p in r.confidences],
                "draft": model.last_draft,
                "redecode": again.text,
                "redecode_probs": [round(p, 5) for p in again.confidences],
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "candidates.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    log(f"wrote {path}: {len(rows)} prompts in {time.perf_counter() - t0:.0f} s")


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iters: int = 50) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton steps (the bias is not penalised)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(xb @ w)))
        grad = xb.T @ (p - y) + reg * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def pr(scores: Sequence[float], labels: Sequence[str], threshold: float, positive: tuple[str, ...]) -> dict:
    blocked = [s >= threshold for s in scores]
    pos = [lab in positive for lab in labels]
    tp = sum(b and p for b, p in zip(blocked, pos))
    return {
        "blocked": sum(blocked),
        "positives": sum(pos),
        "precision": round(tp / max(1, sum(blocked)), 3),
        "recall": round(tp / max(1, sum(pos)), 3),
    }


def fit(out: Path, l2: float, recall: float, write: bool) -> dict:
    rows = [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()]
    labels = labelled(LABEL_RUN)
    lex = Lexicon.load()
    data = []
    mismatched = 0
    for r in rows:
        if r["prompt_id"] not in labels:
            continue
        text, label = labels[r["prompt_id"]]
        if text.strip() != r["reply"].strip():
            mismatched += 1  # not the labelled reply: its probabilities belong to another text
            continue
        s = signals(gate_input(r["messages"], r["reply"], r["probs"], r["draft"]), lex)
        data.append((r["prompt_id"], r["category"], label, s))
    log(f"{len(data)} labelled replies with probabilities ({mismatched} regenerated differently, left out)")
    fit_rows = [d for d in data if split_of(d[0]) == "fit"]
    held = [d for d in data if split_of(d[0]) == "held_out"]
    x = np.array([[d[3][f] for f in FEATURES] for d in fit_rows])
    y = np.array([float(d[2] in BAD) for d in fit_rows])
    mu, sd = x.mean(0), x.std(0)
    sd[sd == 0] = 1.0
    # Interpretable weights: a signal whose fitted weight points the wrong way (a collinear pair, a
    # handful of examples) is left out and the rest refitted, until every weight has its meaning's sign.
    use = np.ones(len(FEATURES), bool)
    for _ in range(len(FEATURES)):
        w_used, b_std = fit_logistic(((x - mu) / sd)[:, use], y, l2)
        w_std = np.zeros(len(FEATURES))
        w_std[use] = w_used
        wrong = [i for i, f in enumerate(FEATURES) if use[i] and w_std[i] * SIGNS.get(f, 0) < 0]
        if not wrong:
            break
        use[wrong] = False
    log(f"signals left out for a weight of the wrong sign: {[f for f, u in zip(FEATURES, use) if not u]}")
    w = w_std / sd
    b = b_std - float((w_std * mu / sd).sum())
    gate = GateModel({f: round(float(v), 4) for f, v in zip(FEATURES, w)}, round(b, 4), 0.5)
    fit_scores = [gate.score(d[3]) for d in fit_rows]
    # The threshold: as high as possible while the fit split's garbled replies are still blocked.
    garbled = sorted(s for s, d in zip(fit_scores, fit_rows) if d[2] == "garbled")
    k = int(np.floor((1 - recall) * len(garbled)))
    threshold = round(min(0.5, garbled[k] - 1e-4), 4) if garbled else 0.5
    gate = GateModel(gate.weights, gate.bias, threshold)
    held_scores = [gate.score(d[3]) for d in held]
    report = {
        "split": "sha1(prompt_id) % 5 < 3 -> fit, else held out",
        "fit_n": len(fit_rows),
        "held_out_n": len(held),
        "threshold": threshold,
        "fit": {
            "bad": pr(fit_scores, [d[2] for d in fit_rows], threshold, BAD),
            "garbled": pr(fit_scores, [d[2] for d in fit_rows], threshold, ("garbled",)),
        },
        "held_out": {
            "bad": pr(held_scores, [d[2] for d in held], threshold, BAD),
            "garbled": pr(held_scores, [d[2] for d in held], threshold, ("garbled",)),
            "sensible_blocked": sum(s >= threshold for s, d in zip(held_scores, held) if d[2] == "sensible"),
            "sensible": sum(d[2] == "sensible" for d in held),
            "labels": {
                lab: sum(d[2] == lab for d in held) for lab in ("sensible", "acceptable", "wrong", "garbled")
            },
        },
    }
    missed = [
        (round(s, 3), d[2], d[0]) for s, d in zip(held_scores, held) if s < threshold and d[2] == "garbled"
    ]
    report["held_out"]["garbled_missed"] = missed
    log(json.dumps(report, indent=1))
    if write:
        meta = {
            "fitted": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "labels": str(LABEL_RUN.relative_to(Path(__file__).resolve().parents[1])),
            "l2": l2,
            "garbled_recall_on_fit": recall,
            **{k: v for k, v in report.items() if k not in ("fit",)},
        }
        payload = {"weights": dict(gate.weights), "bias": gate.bias, "threshold": threshold, "meta": meta}
        WEIGHTS.write_text(json.dumps(payload, indent=1) + "\n")
        log(f"wrote {WEIGHTS}")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recipe.reply_gate_fit", description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=("collect", "fit"))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--redecode-steps", type=int, default=16)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument(
        "--recall", type=float, default=1.0, help="garbled recall the threshold keeps on the fit split"
    )
    ap.add_argument("--dry", action="store_true", help="fit and report without writing the weights")
    args = ap.parse_args(argv)
    if args.stage == "collect":
        collect(args.out, args.redecode_steps)
    else:
        fit(args.out, args.l2, args.recall, not args.dry)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
