"""Replies to the listener prompts from each system, and a blind labelling sheet of them.

    python -m recipe.listener_eval.run                       # shipped model + SmolLM2 teacher
    python -m recipe.listener_eval.run --model previous=/tmp/prev/agent/embedded/model
    python -m recipe.listener_eval.run --n 5 --no-teacher    # a quick look

Each prompt (``prompts.jsonl``) is replayed the way the agent meets it: its earlier turns go through an
``agent.prompt.Conversation`` (the history window and the user's remembered facts, as in a session), and
the last user message gets the agent's system context (name, date and time, memory, worked-out sum).

Writes, under ``--out`` (default ``out/listener_eval``):
  replies.jsonl  one line per (prompt, system): the reply, its time, the system's label
  sheet.jsonl    every (conversation, reply) pair in a seeded random order under an opaque id, with no
                 system name: what the labeller reads (``RUBRIC.md``); sheet.md is the same, for reading
  key.json       opaque id -> system and prompt id; keep it away from the labeller
``report.py`` joins the labels with the key.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.config import QuickturnConfig, load_config
from agent.prompt import Conversation, Prompt
from agent.reply import EMBEDDED_MODEL
from recipe.listener_eval.prompts import PROMPTS, load_prompts

OUT = Path("out/listener_eval")
# A Thursday afternoon: fixed, so a rerun asks the same questions (a prompt may set its own "now").
DEFAULT_NOW = datetime(2026, 5, 14, 16, 20)
TEACHER = "teacher"


@dataclass(frozen=True)
class Reply:
    prompt_id: str
    system: str
    text: str
    ms: float
    raw: str | None = None  # the teacher's sample before it was cut to whole sentences
    candidate: str | None = None  # the reply gate's spoken candidate (None: no gate)


def agent_prompt(item: dict, cfg: QuickturnConfig, now: datetime = DEFAULT_NOW) -> Prompt:
    """The messages the agent hands its reply model for this prompt's last user turn."""
    conv = Conversation(cfg.agent.name, cfg.agent.history_turns)
    *earlier, last = item["messages"]
    for m in earlier:
        (conv.add_user if m["role"] == "user" else conv.add_assistant)(m["content"])
    when = datetime.fromisoformat(item["now"]) if item.get("now") else now
    return conv.prompt_for(last["content"], when)


def run_diffusion(
    label: str, path: Path, items: list[dict], cfg: QuickturnConfig, log: Callable[[str], None]
) -> list[Reply]:
    """The reply model as the agent runs it (``DiffusionReply``, the config's ``[lm]`` settings, behind
    the reply gate unless ``gate.enabled=false``; the spoken candidate is kept, not shown the labeller)."""
    from agent.gated_reply import with_gate
    from agent.reply import DiffusionReply

    cfg.lm.model_path = str(path)
    cfg.lm.prefill_while_listening = False
    model = with_gate(DiffusionReply(cfg.lm), cfg.gate)
    model.warmup()
    log(f"{label}: {model.name}, {model.drafts_state}, S={cfg.lm.steps}, {cfg.lm.threads} thread(s)")
    out = []
    for i, item in enumerate(items):
        model.reset()  # each conversation stands alone
        t0 = time.perf_counter()
        text = model.reply(agent_prompt(item, cfg))
        ms = (time.perf_counter() - t0) * 1e3
        gate = getattr(model, "last_gate", None)
        out.append(Reply(item["id"], label, text, ms, candidate=gate.candidate if gate else None))
        if (i + 1) % 50 == 0:
            log(f"{label}: {i + 1}/{len(items)}")
    return out


def run_teacher(
    items: list[dict], cfg: QuickturnConfig, log: Callable[[str], None], batch_size: int = 8
) -> list[Reply] | None:
    """SmolLM2-135M-Instruct with the recipe's settings (``dlm_core.smollm2.teacher_reply``: sampled,
    spoken-style instruction), its sample cut to whole sentences as the recipe cuts it
    (``first_sentences``); a sample with no whole sentence is kept as it came (the labeller sees the cut).
    None when the teacher is not installed."""
    from dlm_core.smollm2 import TeacherUnavailableError, load_teacher, teacher_reply
    from recipe.filters import first_sentences

    try:
        teacher = load_teacher(threads=cfg.lm.threads or None)
    except TeacherUnavailableError as exc:
        log(f"teacher skipped: {exc}")
        return None
    log(f"{TEACHER}: SmolLM2-135M-Instruct, batches of {batch_size}")
    out = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        t0 = time.perf_counter()
        samples = teacher_reply(teacher, [list(agent_prompt(it, cfg)) for it in chunk], seed=start)
        ms = (time.perf_counter() - t0) * 1e3 / len(chunk)  # a batch's time, shared
        for it, sample in zip(chunk, samples):
            raw = sample[0].strip() if sample else ""
            out.append(Reply(it["id"], TEACHER, first_sentences(raw) or raw, ms, raw))
    return out


def blind_sheet(
    items: Sequence[dict], replies: Sequence[Reply], cfg: QuickturnConfig, seed: int
) -> tuple[list[dict], dict]:
    """The shuffled sheet (no system names) and its key (opaque id -> system, prompt id)."""
    by_id = {it["id"]: it for it in items}
    rng = random.Random(seed)
    order = list(replies)
    rng.shuffle(order)
    sheet, key = [], {}
    for r in order:
        opaque = f"r{rng.getrandbits(32):08x}"
        while opaque in key:
            opaque = f"r{rng.getrandbits(32):08x}"
        prompt = agent_prompt(by_id[r.prompt_id], cfg)
        sheet.append(
            {
                "id": opaque,
                "context": prompt[0]["content"],
                "conversation": [dict(m) for m in prompt[1:]],
                "reply": r.text,
            }
        )
        key[opaque] = {"system": r.system, "prompt_id": r.prompt_id}
    return sheet, {"seed": seed, "items": key}


def sheet_markdown(sheet: Sequence[dict]) -> str:
    lines = ["# Listener evaluation sheet", "", "Label every reply by `RUBRIC.md`; write `labels.jsonl`.", ""]
    for n, row in enumerate(sheet, 1):
        lines += [f"## {n}. `{row['id']}`", "", f"*context:* {row['context']}", ""]
        lines += [f"- **{m['role']}:** {m['content']}" for m in row["conversation"]]
        lines += ["", f"> **reply:** {row['reply'] or '(nothing)'}", ""]
    return "\n".join(lines)


def write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m recipe.listener_eval.run", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--prompts", type=Path, default=PROMPTS)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="a diffusion model folder to answer (repeatable; default: shipped=the embedded model)",
    )
    ap.add_argument("--no-teacher", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the agent's default is 1)")
    ap.add_argument("--seed", type=int, default=0, help="the sheet's shuffle")
    ap.add_argument("--n", type=int, default=0, help="only the first N prompts (0 = all)")
    ap.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="a config override"
    )
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    items = load_prompts(args.prompts)
    if args.n:
        items = items[: args.n]
    models = [("shipped", EMBEDDED_MODEL)] if not args.model else []
    for spec in args.model:
        label, sep, folder = spec.partition("=")
        if not sep or not label or label == TEACHER:
            ap.error(f"--model wants LABEL=DIR with a label other than {TEACHER!r}, got {spec!r}")
        models.append((label, Path(folder)))

    def config() -> QuickturnConfig:
        cfg = load_config(overrides=args.set)  # the agent's shipped defaults
        cfg.lm.threads = args.threads
        return cfg

    replies: list[Reply] = []
    timings: dict[str, float] = {}
    for label, folder in models:
        t0 = time.perf_counter()
        replies += run_diffusion(label, folder, items, config(), log)
        timings[label] = time.perf_counter() - t0
    if not args.no_teacher:
        t0 = time.perf_counter()
        got = run_teacher(items, config(), log)
        if got is not None:
            replies += got
            timings[TEACHER] = time.perf_counter() - t0

    args.out.mkdir(parents=True, exist_ok=True)
    cats = {it["id"]: it["category"] for it in items}
    write_jsonl(
        args.out / "replies.jsonl",
        [
            {"prompt_id": r.prompt_id, "category": cats[r.prompt_id], "system": r.system, "reply": r.text}
            | {"ms": round(r.ms, 1)}
            | ({"raw": r.raw} if r.raw is not None and r.raw != r.text else {})
            | ({"candidate": r.candidate} if r.candidate is not None else {})
            for r in replies
        ],
    )
    sheet, key = blind_sheet(items, replies, config(), args.seed)
    key["systems"] = {label: str(folder) for label, folder in models} | (
        {TEACHER: "SmolLM2-135M-Instruct (dlm_core.smollm2.teacher_reply, first_sentences)"}
        if TEACHER in timings
        else {}
    )
    write_jsonl(args.out / "sheet.jsonl", sheet)
    (args.out / "sheet.md").write_text(sheet_markdown(sheet))
    (args.out / "key.json").write_text(json.dumps(key, indent=1) + "\n")
    for label, s in timings.items():
        log(f"{label}: {len(items)} replies in {s:.0f} s")
    log(f"wrote {args.out}/replies.jsonl, sheet.jsonl, sheet.md ({len(sheet)} rows) and key.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
