"""Evaluate the embedded reply model on the held-out prompts, next to its teacher.

    python -m recipe.evaluate                        # default model, S = 8, writes the card table
    python -m recipe.evaluate --model DIR --steps 4 8 --json out/eval.json --no-card
    python -m recipe.evaluate --drafts on --no-teacher --no-card --set lm.draft_threshold=0.1

Metrics (per system, on ``recipe/data/heldout.jsonl``):
  elbo_ppl     exp(masked-diffusion ELBO loss) on the held-out replies (diffusion models only; an upper
               bound on per-token perplexity)
  relevance    mean cosine(prompt, reply) with MiniLM sentence embeddings
  repetition   share of replies with a repeated word 3-gram
  non_words    share of reply words missing from the English word list (Debian wamerican)
  context_use  accuracy on prompts whose answer is in the injected context or history: the reply holds
               the expected time / weekday / name / fact, and (for the negative items) does not blurt
               out the time, weekday or name when nobody asked
  words        mean reply length in words; in_range = share of replies with 4–30 words
  latency      reply generation ms (p50 / p95) on this machine
  unseen_names share of name questions answered with the whole name when the name is in no training
               pool (``lexicon.unseen_names``: "Juniper", "Marigold"; the assistant's own name and the
               user's, told two turns earlier) — copying, not recall (diffusion models only)
  clock        share of ``clock_items`` (three plain time questions at three minutes of every hour of a
               day, 216 in all) answered with the exact time, "12:05" not "2:05" (diffusion models only)
The teacher (autoregressive SmolLM2-135M-Instruct, sampled, with its best settings from the data build)
is scored the same way; its replies are cached in ``teacher_eval.jsonl`` (the teacher does not change).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from agent.prompt import Context, Prompt, spoken_time
from agent.reply import EMBEDDED_MODEL
from dlm_core.train.data import read_chat_jsonl, tokenize_examples
from dlm_core.train.objective import masked_elbo, output_bias_for
from recipe.context import context_of
from recipe.filters import dictionary, has_repeated_ngram, words

DATA = Path(__file__).resolve().parent / "data"
MODEL = EMBEDDED_MODEL  # the shipped model (the runtime's default)
CARD = Path(__file__).resolve().parents[1] / "docs" / "model-card.md"
TEACHER_CACHE = DATA / "teacher_eval.jsonl"
CARD_START, CARD_END = "<!-- eval:start -->", "<!-- eval:end -->"


@dataclass
class Scores:
    system: str
    n: int
    relevance: float
    repetition: float
    non_words: float
    context_use: float
    context_positive: float
    context_negative: float
    words: float
    in_range: float
    latency_p50_ms: float
    latency_p95_ms: float
    elbo_ppl: float | None = None
    unseen_names: float | None = None
    clock: float | None = None  # share of clock_items() answered with the exact time
    samples: list[dict] = field(default_factory=list)


def load_heldout(path: Path = DATA / "heldout.jsonl") -> list[dict]:
    """The held-out items, each with the typed context (``"context"``) the agent would write for it."""
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{**it, "context": context_of(it["messages"][:-1])} for it in items]


def prompt(item: dict) -> Prompt:
    """An item's messages up to its question, as the agent hands them to the reply model."""
    return Prompt(item["messages"][:-1], item.get("context"))


# Exchanges that make a conversation's earlier turns: chit-chat, never a time, a name or a fact.
FILLER_KINDS = ("smalltalk", "greeting", "how_are_you", "thanks", "compliment", "joke", "fact", "chatterbot")


def with_history(items: list[dict], fill: int, turns: int) -> list[dict]:
    """The held-out items as the agent meets them late in a conversation: ``fill`` earlier exchanges
    (other held-out chit-chat, with their reference replies) before each item's own history, then
    only the last ``turns`` exchanges kept, as ``agent.prompt.Conversation(max_turns=turns)`` does."""
    fillers = [it["messages"][-2:] for it in items if it.get("kind") in FILLER_KINDS]
    out = []
    for i, it in enumerate(items):
        system, *rest = it["messages"]
        history, ask = rest[:-2], rest[-2:]
        before = [m for j in range(fill) for m in fillers[(7 * i + 13 * j) % len(fillers)]]
        history = (before + history)[-2 * turns :] if turns else []
        out.append({**it, "messages": [system, *history, *ask]})  # its context (memory too) stays
    return out


def unseen_name_items(now: datetime = datetime(2026, 11, 26, 14, 5)) -> list[dict]:
    """Two questions per unseen name: the assistant's own (from the context) and the user's (from history).
    Each item's messages end with the question (no reference reply)."""
    from recipe.lexicon import unseen_names

    items = []
    for name in unseen_names():
        own = Context(name, now)
        said = f"My name is {name}."
        told = Context.for_turn("Quinn", now, [said], "What's my name?")
        history = [
            {"role": "user", "content": said},
            {"role": "assistant", "content": f"Nice to meet you, {name}."},
            {"role": "user", "content": "What's my name?"},
        ]
        ask_own = [_system(own), {"role": "user", "content": "What's your name?"}]
        items.append({"messages": ask_own, "context": own, "expect_any": [name]})
        items.append({"messages": [_system(told), *history], "context": told, "expect_any": [name]})
    return items


def _system(context: Context) -> dict[str, str]:
    return {"role": "system", "content": context.system}


def context_correct(item: dict, reply: str) -> bool | None:
    """None for items without context expectations. Both checks lean strict: an expected value counts
    only as whole words (a glued copy, "Tobyby" for "Toby", is not the name), a forbidden one anywhere
    (a glued "loveBlue" still blurts "blue"). A negative item (``expect_none``: nobody asked for the
    context) also fails when the reply states the context's weekday — the data lists only the time and
    the name there, and "How are you today?" answered "It's Tuesday today." is the blurt this is for."""
    if "expect_any" not in item and "expect_none" not in item:
        return None
    low = reply.lower()
    ok = True
    if item.get("expect_any"):
        ok &= any(_says_word(reply, s) for s in item["expect_any"])
    if item.get("expect_none"):
        forbidden = list(item["expect_none"])
        if item.get("context") is not None:
            forbidden.append(item["context"].now.strftime("%A"))
        ok &= not any(s.lower() in low for s in forbidden)
    return ok


def _says_word(reply: str, value: str) -> bool:
    """``value`` as whole words of ``reply``, any case."""
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", reply, re.IGNORECASE) is not None


def score(
    system: str, items: list[dict], replies: list[str], latencies: list[float], elbo: float | None = None
) -> Scores:
    from recipe.similarity import relevance

    prompts = [it["messages"][-2]["content"] for it in items]
    rel = relevance(prompts, [r if r else "." for r in replies])
    vocab = dictionary()
    all_words = [w for r in replies for w in words(r)]
    bad = sum(1 for w in all_words if w.lower().strip("'") not in vocab and not w.isdigit())
    ctx = [(it, context_correct(it, r)) for it, r in zip(items, replies)]
    pos = [ok for it, ok in ctx if ok is not None and it.get("expect_any")]
    neg = [ok for it, ok in ctx if ok is not None and not it.get("expect_any")]
    both = [ok for _, ok in ctx if ok is not None]
    lengths = [len(words(r)) for r in replies]
    lat = sorted(latencies)
    return Scores(
        system=system,
        n=len(items),
        relevance=statistics.fmean(rel),
        repetition=sum(has_repeated_ngram(r) for r in replies) / len(replies),
        non_words=bad / max(1, len(all_words)),
        context_use=sum(both) / max(1, len(both)),
        context_positive=sum(pos) / max(1, len(pos)),
        context_negative=sum(neg) / max(1, len(neg)),
        words=statistics.fmean(lengths),
        in_range=sum(4 <= n <= 30 for n in lengths) / len(lengths),
        latency_p50_ms=lat[len(lat) // 2] if lat else float("nan"),
        latency_p95_ms=lat[min(len(lat) - 1, math.ceil(0.95 * len(lat)) - 1)] if lat else float("nan"),
        elbo_ppl=math.exp(elbo) if elbo is not None else None,
        samples=[
            {"prompt": p, "reply": r, "kind": it.get("kind")} for p, r, it in zip(prompts, replies, items)
        ],
    )


def run_model(
    path: Path,
    items: list[dict],
    steps: int,
    max_tokens: int,
    threads: int,
    drafts: bool,
    block_len: int = 0,
    overrides: list[str] | None = None,
) -> Scores:
    """The model exactly as the agent runs it (``DiffusionReply``: bans, sampler, optional drafts);
    ``overrides`` ("lm.key=value", as the CLI's ``--set``) change other ``[lm]`` settings."""
    from agent.config import QuickturnConfig, apply_overrides
    from agent.reply import DiffusionReply

    lm = apply_overrides(QuickturnConfig(), overrides or []).lm
    lm.model_path, lm.steps, lm.max_tokens, lm.threads, lm.drafts = (
        str(path),
        steps,
        max_tokens,
        threads,
        drafts,
    )
    lm.prefill_while_listening = False
    if block_len:
        lm.block_len = block_len
    model = DiffusionReply(lm)
    model.warmup()
    engine = model.engine
    replies, latencies = [], []
    for it in items:
        engine.reset()  # each prompt stands alone: no prefix reuse flatters the latency
        t0 = time.perf_counter()
        replies.append(model.reply(prompt(it)))
        latencies.append((time.perf_counter() - t0) * 1e3)
    cfg = engine.cfg
    examples, _ = tokenize_examples(
        read_chat_jsonl(DATA / "heldout.jsonl"),
        engine.tokenizer,
        eos_id=cfg.eos_token_ids[0],
        max_context=512,
        block_len=cfg.gen_block_size,
        max_reply_tokens=256,
    )
    elbo = masked_elbo(
        engine.model,
        examples,
        block_len=cfg.gen_block_size,
        mask_id=cfg.mask_token_id,
        pad_id=cfg.pad_token_id,
        output_bias=output_bias_for(cfg),  # scored over the output vocabulary, as in training
    )
    label = f"{path.name} S={steps}" + (f" L={block_len}" if block_len else "")
    label += " + drafts" if drafts and model.drafts is not None else ""
    scores = score(label, items, replies, latencies, elbo)
    scores.unseen_names = _probe_share(model, unseen_name_items())
    scores.clock = _probe_share(model, clock_items())
    return scores


def _probe_share(model, items: list[dict]) -> float:
    """Share of probe items (each prompt on its own) whose reply passes ``context_correct``."""
    right = 0
    for it in items:
        model.engine.reset()
        right += bool(context_correct(it, model.reply(Prompt(it["messages"], it["context"]))))
    return right / len(items)


def run_teacher(items: list[dict], batch_size: int = 16, latency_items: int = 20) -> Scores:
    """SmolLM2-135M-Instruct replies (cached: the teacher never changes); latency from fresh single replies."""
    cache = {}
    if TEACHER_CACHE.is_file():
        for line in TEACHER_CACHE.read_text().splitlines():
            rec = json.loads(line)
            cache[json.dumps(rec["messages"])] = rec
    todo = [it for it in items if json.dumps(it["messages"][:-1]) not in cache]
    picks = items[:: max(1, len(items) // latency_items)][:latency_items] if latency_items else []
    teacher = None
    if todo or picks:
        from dlm_core.smollm2 import load_teacher

        teacher = load_teacher()  # once, for both the missing replies and the timing
    if todo:
        from dlm_core.smollm2 import teacher_reply
        from recipe.filters import first_sentences

        with TEACHER_CACHE.open("a") as f:
            for i in range(0, len(todo), batch_size):
                chunk = todo[i : i + batch_size]
                outs = teacher_reply(teacher, [it["messages"][:-1] for it in chunk], seed=i)
                for it, out in zip(chunk, outs):
                    rec = {"messages": it["messages"][:-1], "reply": first_sentences(out[0])}
                    cache[json.dumps(rec["messages"])] = rec
                    f.write(json.dumps(rec) + "\n")
    recs = [cache[json.dumps(it["messages"][:-1])] for it in items]
    latencies = teacher_latencies(teacher, picks) if picks else []
    return score("teacher SmolLM2-135M (AR)", items, [r["reply"] for r in recs], latencies)


def teacher_latencies(teacher, items: list[dict]) -> list[float]:
    """Single-reply wall times, measured now: the cached replies were generated in batches (and maybe on a
    busy machine), so batch timings say nothing about how long one reply takes."""
    import torch

    from dlm_core.smollm2 import teacher_reply

    torch.set_num_threads(2)
    teacher_reply(teacher, [items[0]["messages"][:-1]], seed=0)  # warm-up
    out = []
    for i, it in enumerate(items):
        t0 = time.perf_counter()
        teacher_reply(teacher, [it["messages"][:-1]], seed=i)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


CLOCK_QUESTIONS = ("What time is it?", "what's the time", "Do you know the time?")


def clock_items(day: datetime = datetime(2026, 11, 26)) -> list[dict]:
    """The plainest context question at every hour of a day, three minutes each ("12:05" has to come
    out as "12:05", not "2:05"): 216 items that the held-out set's 39 time questions sample thinly."""
    items = []
    for hour in range(24):
        for minute in (5, 17, 42):
            context = Context("Quinn", day.replace(hour=hour, minute=minute))
            said = spoken_time(context.now).split()[0]  # "2:05" (AM/PM may be left out)
            for q in CLOCK_QUESTIONS:
                messages = [_system(context), {"role": "user", "content": q}]
                items.append({"messages": messages, "context": context, "expect_any": [said]})
    return items


def table(rows: list[Scores], teacher: Scores | None) -> str:
    head = (
        "| system | n | relevance | rel. vs teacher | repetition | non-words | context use (pos / neg) "
        "| words (4–30) | ELBO ppl ≤ | latency p50 / p95 ms | unseen names | clock times |"
    )
    out = [head, "|" + "---|" * 12]
    for s in [*rows, *([teacher] if teacher else [])]:
        rel_ratio = f"{s.relevance / teacher.relevance:.0%}" if teacher else "—"
        out.append(
            f"| {s.system} | {s.n} | {s.relevance:.3f} | {rel_ratio} | {s.repetition:.1%} | {s.non_words:.1%} "
            f"| {s.context_use:.1%} ({s.context_positive:.0%} / {s.context_negative:.0%}) "
            f"| {s.words:.1f} ({s.in_range:.0%}) | {f'{s.elbo_ppl:.1f}' if s.elbo_ppl else '—'} "
            f"| {s.latency_p50_ms:.0f} / {s.latency_p95_ms:.0f} "
            f"| {f'{s.unseen_names:.0%}' if s.unseen_names is not None else '—'} "
            f"| {f'{s.clock:.0%}' if s.clock is not None else '—'} |"
        )
    return "\n".join(out)


def write_card(text: str, card: Path = CARD) -> None:
    body = card.read_text() if card.is_file() else f"# Model card\n\n{CARD_START}\n{CARD_END}\n"
    if CARD_START not in body:
        body += f"\n{CARD_START}\n{CARD_END}\n"
    head, rest = body.split(CARD_START, 1)
    _, tail = rest.split(CARD_END, 1)
    card.write_text(f"{head}{CARD_START}\n{text}\n{CARD_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recipe.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--steps", type=int, nargs="+", default=[8])
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument(
        "--block-len", type=int, default=0, help="denoising block length (0 = the agent's default)"
    )
    ap.add_argument("--n", type=int, default=0, help="evaluate only the first N held-out items (0 = all)")
    ap.add_argument(
        "--history",
        type=int,
        nargs=2,
        metavar=("FILL", "TURNS"),
        help="late in a conversation: FILL earlier chit-chat exchanges before each item, then only the "
        "last TURNS exchanges kept (the agent's history_turns)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--drafts",
        choices=("off", "on", "both"),
        default="both",
        help="draft-conditioned denoising from retrieved replies (default: score both)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="lm.KEY=VALUE",
        help="another reply setting, as in configs/ (e.g. lm.draft_threshold=0.1); repeatable",
    )
    ap.add_argument("--no-teacher", action="store_true")
    ap.add_argument("--no-card", action="store_true", help="do not write the table into docs/model-card.md")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args(argv)
    items = load_heldout()
    if args.n:
        items = items[: args.n]
    if args.history:
        items = with_history(items, *args.history)
    rows = [
        run_model(Path(args.model), items, s, args.max_tokens, args.threads, drafts, args.block_len, args.set)
        for s in args.steps
        for drafts in ((False, True) if args.drafts == "both" else (args.drafts == "on",))
    ]
    teacher = None if args.no_teacher else run_teacher(items)
    text = table(rows, teacher)
    print(text)
    for s in rows:
        print(f"\n{s.system} samples:")
        for smp in s.samples[:: max(1, len(s.samples) // 12)][:12]:
            print(f"  [{smp['kind']}] {smp['prompt']!r} -> {smp['reply']!r}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {"rows": [asdict(r) for r in rows], "teacher": asdict(teacher) if teacher else None}, indent=2
            )
        )
    if not args.no_card:
        stamp = time.strftime("%Y-%m-%d")
        write_card(
            f"Measured {stamp} with `python -m recipe.evaluate "
            f"{' '.join(sys.argv[1:] if argv is None else argv)}`.\n\n{text}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
