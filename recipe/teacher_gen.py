"""Fill the teacher cache: sample SmolLM2 replies for open small-talk prompts and general questions.

The cache (``recipe/data/teacher_cache.jsonl``) is append-only and keyed by prompt text, so a
run can be stopped at any time and resumed; ``build_data`` only reads it (filtering and ranking the raw
samples there), which keeps the data build reproducible without re-running the teacher.

    nice -n 10 python -m recipe.teacher_gen --config configs/embedded_data.toml
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from agent.prompt import context_sentences
from recipe.config import DataConfig, load_config
from recipe.lexicon import ASSISTANT_NAMES, TEACHER_QUESTIONS
from recipe.sources import chitchat_prompts

# Few-shot turns that show the teacher the length and tone we want (3 drawn per prompt, varied so
# that no single example leaks into many replies).
STYLE_SHOTS: tuple[tuple[str, str], ...] = (
    ("I'm hungry.", "Maybe grab a snack. What are you in the mood for?"),
    (
        "what's your favorite food",
        "I don't eat, but pizza seems to make a lot of people happy. What's yours?",
    ),
    ("I went hiking yesterday", "That sounds lovely! Where did you go?"),
    ("how does a rainbow form", "Sunlight bends inside raindrops and splits into its colors."),
    ("I just finished my exams", "Congratulations! That must feel like a weight off your shoulders."),
    ("do you like movies", "I can't watch them, but I love hearing about them. What have you seen lately?"),
    ("my car broke down today", "Oh no, that's a rough day. I hope the repair is quick and cheap."),
    ("why do we yawn", "Nobody is completely sure, but it may help cool the brain and keep us alert."),
    ("I'm learning to play guitar", "That's great! Start slowly and practice a little every day."),
    (
        "what should I cook tonight",
        "How about a simple pasta with garlic and vegetables? It's quick and tasty.",
    ),
    ("I can't sleep", "Try dimming the lights and putting your phone away for a while."),
    ("do you have any hobbies", "I spend my time chatting with people like you, and I enjoy it."),
    ("my friend is moving away", "That's hard. You can still keep in touch with calls and visits."),
    ("what is a good book to read", "Many people love The Hobbit. It's a fun adventure and easy to start."),
    ("I got a new puppy", "How exciting! Puppies are a lot of work, but they're so much fun."),
    ("how can I be more productive", "Pick one important task, put your phone away, and work on it first."),
)


def _context(rng: random.Random) -> str:
    now = datetime(2024, 1, 1) + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
    return context_sentences(rng.choice(ASSISTANT_NAMES), now)


def teacher_prompts(cfg: DataConfig) -> list[tuple[str, str]]:
    """(origin, prompt) in a fixed seeded order: questions interleaved with chitchat prompts."""
    rng = random.Random(cfg.seed + 101)
    chat = chitchat_prompts()
    rng.shuffle(chat)
    chat = chat[: cfg.teacher.max_chitchat_prompts]
    questions = list(TEACHER_QUESTIONS)
    rng.shuffle(questions)
    out: list[tuple[str, str]] = [("chitchat", p) for p in chat]
    # Spread the questions evenly so a partial run has both kinds.
    step = max(1, len(out) // max(1, len(questions)))
    for i, q in enumerate(questions):
        out.insert(min(len(out), i * (step + 1)), ("question", q))
    return out


class TeacherCacheError(ValueError):
    """The teacher cache has a malformed line (other than a half-written last one)."""


def read_cache(path: Path) -> list[dict]:
    """Cache records in file order. A run killed mid-write can leave a truncated LAST line: it is
    ignored (that prompt is simply redone); a bad line anywhere else is an error."""
    if not path.is_file():
        return []
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    out = []
    for n, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines):
                break
            raise TeacherCacheError(f"{path}:{n}: {e}") from e
        if not {"prompt", "origin", "system", "samples"} <= set(rec):
            raise TeacherCacheError(f"{path}:{n}: missing keys in {sorted(rec)}")
        out.append(rec)
    return out


def load_cache(path: Path) -> dict[str, dict]:
    return {rec["prompt"]: rec for rec in read_cache(path)}


def run(cfg: DataConfig, limit: int | None = None, batch_size: int = 8, threads: int = 1) -> None:
    from dlm_core.smollm2 import load_teacher, teacher_reply

    t = cfg.teacher
    cache_path = cfg.data_dir / t.cache_file
    done = load_cache(cache_path)
    todo = [(o, p) for o, p in teacher_prompts(cfg) if p not in done]
    if limit is not None:
        todo = todo[:limit]
    print(f"teacher: {len(done)} cached, {len(todo)} to do", flush=True)
    if not todo:
        return
    teacher = load_teacher(threads=threads)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    n_done = 0
    with cache_path.open("a", encoding="utf-8") as f:
        for b in range(0, len(todo), batch_size):
            chunk = todo[b : b + batch_size]
            batch, metas = [], []
            for origin, prompt in chunk:
                rng = random.Random(f"{cfg.seed}:{prompt}")  # per-prompt: independent of batch layout
                system = _context(rng)
                shots = rng.sample(STYLE_SHOTS, 3)
                msgs = [{"role": "system", "content": system}]
                for u, a in shots:
                    msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
                msgs.append({"role": "user", "content": prompt})
                batch.append(msgs)
                metas.append((origin, prompt, system, [u for u, _ in shots]))
            samples = teacher_reply(
                teacher,
                batch,
                num_samples=t.samples_per_prompt,
                temperature=t.temperature,
                top_p=t.top_p,
                repetition_penalty=t.repetition_penalty,
                no_repeat_ngram_size=t.no_repeat_ngram_size,
                max_new_tokens=t.max_new_tokens,
                seed=cfg.seed + b,
            )
            for (origin, prompt, system, shot_users), outs in zip(metas, samples):
                rec = {
                    "prompt": prompt,
                    "origin": origin,
                    "system": system,
                    "shots": shot_users,
                    "samples": outs,
                }
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            n_done += len(chunk)
            el = time.time() - start
            print(
                f"{n_done}/{len(todo)} prompts, {el:.0f} s, "
                f"{el / (n_done * t.samples_per_prompt):.2f} s/sample",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=Path("configs/embedded_data.toml"))
    ap.add_argument("--limit", type=int, default=None, help="at most this many new prompts")
    ap.add_argument("--batch-size", type=int, default=8)
    # 1 thread: with another process on the second core, 2 OpenMP threads ran ~10x SLOWER (measured).
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    run(load_config(args.config), limit=args.limit, batch_size=args.batch_size, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
