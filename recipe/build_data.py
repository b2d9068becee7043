"""Build the embedded reply model's data: train/held-out chats, pre-training pairs, stats, tokenizer.

    python -m recipe.build_data --config configs/embedded_data.toml

Reproducible: everything is drawn from one seed, the teacher's replies come from the committed cache
(``teacher_gen`` fills it), and files are written in a fixed order. See ``docs/data-card.md``.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.calculator import arithmetic_fact
from recipe import sources
from recipe.config import DataConfig, load_config
from recipe.filters import first_sentences, normalise_prompt, spoken_problems, word_count
from recipe.intents import (
    NAME_A,
    OWN_NAME_MORE_Q,
    PART_A,
    PART_MORE_Q,
    UNKNOWN_FACT_A,
    USER_FACTS,
    USER_NAME_MORE_Q,
    Ctx,
    Example,
    Intent,
    TableIntent,
    UserFactIntent,
    add_history,
    all_intents,
    asr_variant,
    filler_turns,
    format_fact,
    random_ctx,
    spoken_arith_slots,
)
from recipe.lexicon import ASSISTANT_NAMES, PET_NAMES, USER_NAMES, open_names
from recipe.teacher_gen import STYLE_SHOTS, load_cache

# Held-out quota per kind (scaled to ``heldout.size``): context-use kinds first, then the rest.
HELDOUT_QUOTA: dict[str, int] = {
    "time": 40, "weekday": 25, "date": 30, "name": 30, "user_fact": 40, "user_fact_tell": 10, "repeat": 12,
    "arithmetic": 15, "negative": 30, "user_fact_unknown": 15, "greeting": 15, "how_are_you": 12,
    "thanks": 10, "goodbye": 10, "compliment": 8, "criticism": 6, "apology": 6, "acknowledge": 6,
    "smalltalk": 40, "cannot": 25, "help": 6, "fact": 30, "joke": 10, "fortune": 5, "chatterbot": 40,
    "teacher": 60,
}  # fmt: skip
COPY_SET_FILE = "train_copy.jsonl"
LONG_SET_FILE = "train_long.jsonl.gz"  # gzip: ~10 MB as plain text
NAME_SET_FILE = "train_names.jsonl"
PART_SET_FILE = "train_parts.jsonl"
SUM_SET_FILE = "train_sums.jsonl"
MEMORY_SET_FILE = "train_memory.jsonl"
# Chit-chat whose exchanges may stand as earlier turns of any conversation (no time, name or fact).
FILLER_KINDS = frozenset(
    {"teacher", "chatterbot", "smalltalk", "greeting", "how_are_you", "thanks", "compliment", "joke",
     "fact", "cannot", "acknowledge"}
)  # fmt: skip
CONTEXT_KINDS = ("time", "weekday", "date", "name", "user_fact", "user_fact_tell", "repeat")

# First-person life stories the teacher invents ("my husband", "I went to the beach"): a voice
# assistant has none, and they would teach the small model to make things up about itself.
_PERSONA_RE = re.compile(
    r"\b(my (wife|husband|boyfriend|girlfriend|mom|mum|dad|mother|father|sister|brother|son|daughter|kids?|"
    r"family|friends?|cat|dog|pet|job|boss|house|home|car|team|parents|grandma|grandpa|school|class|wedding|"
    r"childhood|cousin|uncle|aunt|grandmother|grandfather|sketchbook|life)|"
    r"i (went|was|had|grew up|live|lived|work|worked|played|visited|saw|watched|ate|met|used to|love to cook)|"
    r"i'm (a|an) (student|teacher|mom|dad|nurse|doctor|professional)|i'm not a robot|i'm (a )?human|i'm a person|"
    r"i've got|i've been|when i was|yesterday|last (night|week|year)|tomorrow|tonight)\b",
    re.I,
)
_ADDRESS_RE = re.compile(r"\b(smollm|hugging ?face|as an ai|language model|assistant:|user:)\b", re.I)


@dataclass
class TeacherStats:
    prompts: int = 0
    samples: int = 0
    kept: int = 0
    reasons: Counter | None = None


# --------------------------------------------------------------------------------------------------


def _chat(ctx: Ctx, user: str, reply: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": ctx.system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": reply},
    ]


def chatterbot_items(cfg: DataConfig) -> list[tuple[str, str]]:
    """Clean (question, answer) pairs from chatterbot-corpus."""
    files = cfg.chatterbot.files or sources.DEFAULT_CHATTERBOT_FILES
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for _cat, q, a in sources.chatterbot_pairs(tuple(files)):
        q2 = sources.clean_turn(q, max_words=25, max_non_word_share=0.0)
        # Questions must be full sentences ("frank herbert" is not one); answers must read as the
        # assistant's own clean speech (no bot persona lore, quotes, colons, sloppy lower-case "i").
        if not q2 or word_count(q2) < 3 or not re.match(r"^[A-Za-z]", q2):
            continue
        if re.search(
            r"chat ?bot|chatterbot|\bbot\b|robot|software|android|immortal|\bdie\b|mask|programmed|processor|\bbrain\b",
            a,
            re.I,
        ) or re.search(r"[\":;]|--|\bi\b", a):
            continue
        a = a[:1].upper() + a[1:]
        if a and a[-1] not in ".!?":
            a += "."
        if spoken_problems(a, max_non_words=0) or _ADDRESS_RE.search(a) or sources.clean_turn(a) is None:
            continue
        if normalise_prompt(a) == normalise_prompt(q2):  # some corpus "answers" repeat the question
            continue
        if (q2.lower(), a) not in seen:
            seen.add((q2.lower(), a))
            out.append((q2, a))
    if cfg.chatterbot.max_pairs:
        out = out[: cfg.chatterbot.max_pairs]
    return out


def fortune_items(cfg: DataConfig, rng: random.Random) -> list[str]:
    if not cfg.fortunes.enabled:
        return []
    jokes = [j for _f, e in sources.fortunes() if (j := sources.short_joke(e, max_words=25))]
    jokes = [j for j in dict.fromkeys(jokes) if not spoken_problems(j, max_words=25)]
    rng.shuffle(jokes)
    return jokes[: cfg.fortunes.max_items]


def teacher_items(cfg: DataConfig) -> tuple[list[tuple[str, str, str]], TeacherStats]:
    """(origin, prompt, best reply) from the teacher cache after hard filtering; plus counts."""
    stats = TeacherStats(reasons=Counter())
    path = cfg.data_dir / cfg.teacher.cache_file
    if not cfg.teacher.enabled or not path.is_file():
        return [], stats
    from recipe.similarity import relevance

    shot_grams = {g for _u, a in STYLE_SHOTS for g in _grams(a, 4)}
    candidates: list[tuple[int, str, str]] = []  # (record index, prompt, cleaned reply)
    records = list(load_cache(path).values())  # one record per prompt (a rerun may repeat a prompt)
    records.sort(key=lambda r: r["prompt"])  # cache order depends on the run; the build must not
    for i, rec in enumerate(records):
        stats.prompts += 1
        # Prompts cached under an older, looser prompt filter are dropped, not trained on.
        if rec["origin"] == "chitchat" and sources.standalone_prompt(rec["prompt"]) != rec["prompt"]:
            stats.reasons["prompt filtered"] += len(rec["samples"])
            stats.samples += len(rec["samples"])
            continue
        context_bits = [
            m
            for m in re.findall(r"Your name is (\w+)|The time is ([^.]+)\.|Today is ([^,]+),", rec["system"])
            for m in m
            if m
        ]
        for raw in rec["samples"]:
            stats.samples += 1
            reply = first_sentences(sources.tidy(raw), max_sentences=2, max_words=30)
            why = None
            if not reply:
                why = "unfinished"
            elif problems := spoken_problems(reply, max_non_words=1):
                why = problems[0].split(" (")[0].split(" [")[0]
            elif _PERSONA_RE.search(reply):
                why = "invented persona"
            elif _ADDRESS_RE.search(reply) or any(b.lower() in reply.lower() for b in context_bits):
                why = "echoes context"
            elif _grams(reply, 4) & shot_grams:
                why = "copies a style example"
            if why:
                stats.reasons[why] += 1
            else:
                candidates.append((i, rec["prompt"], reply))
    scores = relevance([p for _i, p, _r in candidates], [r for _i, _p, r in candidates]) if candidates else []
    # Factual questions: a 135M model is often confidently wrong ("stars are made of ice"). Keep an
    # answer only when the other sample says much the same (self-consistency), which wrong guesses
    # rarely do.
    agreement: dict[int, float] = {}
    if candidates:
        from recipe.similarity import embed

        vecs = embed([r for _i, _p, r in candidates])
        by_rec: dict[int, list[int]] = {}
        for k, (i, _p, _r) in enumerate(candidates):
            by_rec.setdefault(i, []).append(k)
        for i, ks in by_rec.items():
            pairs = [float(vecs[a] @ vecs[b]) for x, a in enumerate(ks) for b in ks[x + 1 :]]
            agreement[i] = max(pairs) if pairs else 0.0
    best: dict[int, tuple[float, str]] = {}
    for (i, _p, reply), s in zip(candidates, scores):
        if s < cfg.teacher.min_relevance:
            stats.reasons["low relevance"] += 1
            continue
        if records[i]["origin"] == "question" and agreement.get(i, 0.0) < cfg.teacher.min_agreement:
            stats.reasons["samples disagree (question)"] += 1
            continue
        if i not in best or s > best[i][0]:
            best[i] = (s, reply)
    items = [(records[i]["origin"], records[i]["prompt"], best[i][1]) for i in sorted(best)]
    stats.kept = len(items)
    return items, stats


def _grams(text: str, n: int) -> set[tuple[str, ...]]:
    toks = re.findall(r"[a-z']+", text.lower())
    return {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}


# --------------------------------------------------------------------------------------------------


def _scaled_quota(cfg: DataConfig, kinds_available: set[str]) -> dict[str, int]:
    quota = {k: v for k, v in HELDOUT_QUOTA.items() if k in kinds_available}
    total = sum(quota.values()) or 1
    return (
        {k: max(1, round(v * cfg.heldout.size / total)) for k, v in quota.items()} if cfg.heldout.size else {}
    )


def build(cfg: DataConfig, log=print) -> dict:  # noqa: ANN001 - log: a print-like callable
    """Run the whole build; returns the stats dict (also written to stats.json)."""
    t0 = time.time()
    rng = random.Random(cfg.seed)
    fortunes = fortune_items(cfg, random.Random(cfg.seed + 1))
    intents = all_intents(fortunes, random.Random(cfg.seed + 2), cfg.templates.heldout_phrasing_share)
    cb = chatterbot_items(cfg) if cfg.chatterbot.enabled else []
    teach, tstats = teacher_items(cfg)
    log(
        f"sources: {len(intents)} intents, {len(fortunes)} fortunes, {len(cb)} chatterbot pairs, {len(teach)} teacher replies"
    )

    kinds = (
        {it.kind for it in intents} | ({"chatterbot"} if cb else set()) | ({"teacher"} if teach else set())
    )
    quota = _scaled_quota(cfg, kinds)

    # ---- held-out: template kinds sampled from held-out phrasings; corpus items split by prompt ----
    heldout: list[Example] = []
    by_kind: dict[str, list[Intent]] = {}
    for it in intents:
        has_held = bool(it.held_phrasings) or (isinstance(it, TableIntent) and it.held_rows)
        has_held = has_held or bool(getattr(it, "held", None))
        if has_held:
            by_kind.setdefault(it.kind, []).append(it)
    hrng = random.Random(cfg.seed + 3)
    for kind, n in quota.items():
        if kind in ("chatterbot", "teacher"):
            continue
        pool = by_kind.get(kind, [])
        if not pool:
            continue
        seen: set[str] = set()
        tries = 0
        while sum(1 for e in heldout if e.kind == kind) < n and tries < 50 * n:
            tries += 1
            ctx = random_ctx(hrng)
            ex = add_history(
                hrng.choice(pool).sample(hrng, True, ctx), hrng, ctx, cfg.templates.history_share
            )
            # Context items differ by their context as much as by wording: key on the whole chat.
            key = normalise_prompt(ex.user_text)
            if kind in CONTEXT_KINDS or kind == "user_fact_unknown":
                key = _render(ex.messages[:-1])
            if key not in seen and _clean_reply(ex.reply):
                seen.add(key)
                heldout.append(ex)

    crng = random.Random(cfg.seed + 4)
    cb_questions = list(dict.fromkeys(q.lower() for q, _a in cb))
    crng.shuffle(cb_questions)
    # Corpus items: at most ~15% of each source goes to held-out, so train keeps most of it.
    cb_held = set(cb_questions[: min(quota.get("chatterbot", 0), round(0.15 * len(cb_questions)))])
    t_prompts = [p for _o, p, _r in teach]
    crng.shuffle(t_prompts)
    t_held = set(t_prompts[: min(quota.get("teacher", 0), round(0.15 * len(t_prompts)))])
    for q, a in cb:
        if q.lower() in cb_held and not any(e.source == "chatterbot" and e.user_text == q for e in heldout):
            heldout.append(Example(_chat(random_ctx(crng), q, a), "chatterbot", "chatterbot"))
    for _origin, p, r in teach:
        if p in t_held:
            ctx = random_ctx(crng)
            heldout.append(
                Example(_chat(ctx, p, r), "teacher", "teacher", expect_none=[ctx.slots["time"], ctx.name])
            )
    held_keys = {normalise_prompt(e.user_text) for e in heldout}

    # ---- train ----
    train: list[Example] = []
    weights = cfg.templates.weights
    group_sizes = Counter(it.group for it in intents)
    intent_w = [weights.get(it.group, 1.0) / group_sizes[it.group] for it in intents]
    n_tmpl = cfg.templates.examples
    dropped_overlap = 0
    rejected_templates = 0
    for _ in range(n_tmpl):
        it = rng.choices(intents, weights=intent_w)[0]
        ctx = random_ctx(rng)
        ex = add_history(it.sample(rng, False, ctx), rng, ctx, cfg.templates.history_share)
        if normalise_prompt(ex.user_text) in held_keys:
            dropped_overlap += 1
            continue
        if not _clean_reply(ex.reply):  # a template bug, not noise: counted so it shows in stats
            rejected_templates += 1
            continue
        train.append(ex)
    for _rep in range(cfg.chatterbot.repeat):
        for q, a in cb:
            if normalise_prompt(q) not in held_keys:
                train.append(
                    Example(_chat(random_ctx(rng), _maybe_asr(rng, q), a), "chatterbot", "chatterbot")
                )
    for _rep in range(cfg.teacher.repeat):
        for _origin, p, r in teach:
            if normalise_prompt(p) not in held_keys:
                train.append(Example(_chat(random_ctx(rng), p, r), "teacher", "teacher"))
    train = [e for e in train if normalise_prompt(e.user_text) not in held_keys]
    rng.shuffle(train)
    heldout.sort(key=lambda e: (e.kind, e.user_text))

    # ---- pre-training pairs (chitchat) ----
    pretrain: list[dict[str, str]] = []
    if cfg.chitchat.pretrain:
        for pair in sources.chitchat_pairs(max_words=cfg.chitchat.max_words):
            if normalise_prompt(pair.prev) not in held_keys:
                pretrain.append({"prev": pair.prev, "reply": pair.reply})
        if cfg.chitchat.max_pairs:
            pretrain = pretrain[: cfg.chitchat.max_pairs]

    # ---- write ----
    d = cfg.data_dir
    d.mkdir(parents=True, exist_ok=True)
    _write_jsonl(d / "train.jsonl", [e.as_json() for e in train])
    _write_jsonl(d / "heldout.jsonl", [e.as_json() for e in heldout])
    if pretrain:
        _write_jsonl(d / cfg.chitchat.pretrain_file, pretrain)

    copy_set = build_copy_set(cfg, intents)
    _write_jsonl(d / COPY_SET_FILE, [e.as_json() for e in copy_set])
    long_set = build_long_set(cfg, train)
    _write_jsonl(d / LONG_SET_FILE, [e.as_json() for e in long_set])
    name_set = build_name_set(cfg, intents)
    _write_jsonl(d / NAME_SET_FILE, [e.as_json() for e in name_set])
    part_set = build_part_set(cfg, intents)
    _write_jsonl(d / PART_SET_FILE, [e.as_json() for e in part_set])
    sum_set = build_sum_set(cfg, intents)
    _write_jsonl(d / SUM_SET_FILE, [e.as_json() for e in sum_set])
    memory_set = build_memory_set(cfg, intents)
    _write_jsonl(d / MEMORY_SET_FILE, [e.as_json() for e in memory_set])

    stats = _stats(train, heldout, pretrain, tstats, len(cb), len(fortunes), dropped_overlap)
    stats["long_set"] = {
        "examples": len(long_set),
        "earlier_exchanges": dict(sorted(Counter((len(e.messages) - 3) // 2 for e in long_set).items())),
    }
    stats["copy_set"] = {
        "examples": len(copy_set),
        "kinds": dict(sorted(Counter(e.kind for e in copy_set).items())),
    }
    stats["train"]["template_examples_rejected_by_filters"] = rejected_templates
    if cfg.tokenizer.enabled:
        stats["tokenizer"] = build_tokenizer(cfg, train, pretrain)
    # No timings in stats.json: every output file is byte-identical across rebuilds.
    (d / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    log(
        f"wrote {len(train)} train, {len(heldout)} held-out, {len(pretrain)} pretrain pairs to {d} "
        f"in {time.time() - t0:.0f} s"
    )
    return stats


def build_copy_set(cfg: DataConfig, intents: Sequence[Intent]) -> list[Example]:
    """Name questions whose names come from ~9,000 dictionary names (``lexicon.open_names``), most of
    several tokens: the assistant's own name, and the user's or their pet's told earlier in the chat.
    The main set's ~60 names are few enough to learn by heart; these teach copying a whole span."""
    if not cfg.copy_set.examples:
        return []
    rng = random.Random(cfg.seed + 5)
    names = open_names()
    name_intents = [it for it in intents if it.kind == "name"]
    fact_intents = [
        copy.copy(it) for it in intents if isinstance(it, UserFactIntent) and it.mode in ("tell", "ask")
    ]
    for it in fact_intents:
        it.open_names = names
    out: list[Example] = []
    while len(out) < cfg.copy_set.examples:
        ctx = random_ctx(rng, names)
        if rng.random() < 0.5:
            ex = add_history(
                rng.choice(name_intents).sample(rng, False, ctx), rng, ctx, cfg.templates.history_share
            )
        else:
            ex = rng.choice(fact_intents).sample(rng, False, ctx)
        if _clean_reply(ex.reply):
            out.append(_names_capitalised(ex))
    return out


def build_long_set(cfg: DataConfig, train: Sequence[Example]) -> list[Example]:
    """Train examples as the agent meets them late in a conversation: 3–6 earlier exchanges in all
    (the agent keeps 6), the extra ones other train examples' chit-chat. The main set has at most
    two, and the model read its own history as the question ("Hi, how are you today?" after a few
    turns got the date)."""
    n = cfg.long_history.examples
    if not n:
        return []
    rng = random.Random(cfg.seed + 6)
    fillers = [e.messages[-2:] for e in train if e.kind in FILLER_KINDS]
    out: list[Example] = []
    for _ in range(n):
        ex = copy.deepcopy(rng.choice(train))
        system, *rest = ex.messages
        own = (len(rest) - 2) // 2
        k = rng.randint(max(0, 3 - own), max(0, 6 - own))
        ex.messages = [system, *(m for _ in range(k) for m in rng.choice(fillers)), *rest]
        out.append(ex)
    return out


def build_name_set(cfg: DataConfig, intents: Sequence[Intent]) -> list[Example]:
    """Whose name is asked: the assistant's in phrasings the main set never uses (intents.OWN_NAME_MORE_Q),
    and, as contrast, the user's in phrasings that differ from those only in who is named ("What do
    you call me?"). Stage 3 answered the held-out "What do I call you?" as a question about the user
    (docs/model-card.md, point 10). Names from the whole word list, as in the copy set. The user tells
    their name only in the main set's training phrasings ("The name's …" is held out there)."""
    if not cfg.name_set.examples:
        return []
    rng = random.Random(cfg.seed + 7)
    names = open_names()
    own = Intent("name", "name", OWN_NAME_MORE_Q, NAME_A, expect=("name",))
    own.train_phrasings = OWN_NAME_MORE_Q  # no held-out share: the main set's held-out items test these
    told = next(f for f in USER_FACTS if f.key == "name")
    teller = next(it for it in intents if isinstance(it, UserFactIntent) and it.mode == "tell")
    tells = teller.train["name"][0]  # the main set's training phrasings only
    out: list[Example] = []
    while len(out) < cfg.name_set.examples:
        ctx = random_ctx(rng, names)
        if rng.random() < 0.6:
            ex = add_history(own.sample(rng, False, ctx), rng, ctx, cfg.templates.history_share)
        else:
            user = rng.choice([n for n in rng.sample(names, 2) if n != ctx.name])
            msgs = [{"role": "system", "content": ctx.system}]
            msgs += [
                {"role": "user", "content": asr_variant(rng, rng.choice(tells).format(v=user))},
                {"role": "assistant", "content": rng.choice(told.ack).format(v=user)},
            ]
            msgs += filler_turns(rng, ctx, rng.choice((0, 0, 1, 2)))
            msgs += [
                {"role": "user", "content": asr_variant(rng, rng.choice(USER_NAME_MORE_Q), ctx)},
                {"role": "assistant", "content": rng.choice(told.answer).format(v=user)},
            ]
            ex = Example(msgs, "templates", "user_fact")
            ex.expect_any = [user]
        if _clean_reply(ex.reply):
            out.append(_names_capitalised(ex))
    return out


def build_part_set(cfg: DataConfig, intents: Sequence[Intent]) -> list[Example]:
    """Which part of the day it is, asked in phrasings the main set never uses (intents.PART_MORE_Q),
    answered from the injected time; and, as contrast, the main set's part-of-day greetings ("Good
    evening.") answered as greetings. Stage 4 answered the held-out "Is it the evening yet?" with the
    weekday or "Good evening! How was your day?" (docs/model-card.md, point 12)."""
    if not cfg.part_set.examples:
        return []
    rng = random.Random(cfg.seed + 8)
    ask = Intent("time", "time", PART_MORE_Q, PART_A, expect=("time",))
    ask.train_phrasings = PART_MORE_Q  # no held-out share: the main set's held-out items test these
    part_of_day = re.compile(r"morning|afternoon|evening", re.I)
    greetings = [
        it for it in intents if it.kind == "greeting" and any(map(part_of_day.search, it.train_phrasings))
    ]
    out: list[Example] = []
    while len(out) < cfg.part_set.examples:
        ctx = random_ctx(rng)
        if rng.random() < 0.7 or not greetings:
            ex = add_history(ask.sample(rng, False, ctx), rng, ctx, cfg.templates.history_share)
        else:
            ex = rng.choice(greetings).sample(rng, False, ctx)
        if _clean_reply(ex.reply):
            out.append(ex)
    return out


def build_sum_set(cfg: DataConfig, intents: Sequence[Intent]) -> list[Example]:
    """Sums asked with the numbers in words, as Whisper often writes them ("what's two plus two"),
    in the main set's training phrasings of sums; the agent's worked-out sentence in the context is
    in digits ("2 plus 2 is 4."), as are the replies. The main set asks in digits only, and the
    model answered "What's two plus two?" with "People in two speak Japanese." (model card, point 20)."""
    if not cfg.sum_set.examples:
        return []
    rng = random.Random(cfg.seed + 9)
    (main,) = [it for it in intents if it.kind == "arithmetic"]
    phrasings = tuple(p.replace("{a}", "{a_said}").replace("{b}", "{b_said}") for p in main.train_phrasings)
    ask = Intent(
        "arithmetic",
        "arithmetic",
        phrasings,
        main.replies,
        expect=("result",),
        extra_slots=spoken_arith_slots,
    )
    ask.train_phrasings = phrasings  # the held-out sums (in digits) keep testing the main set's phrasings
    out: list[Example] = []
    while len(out) < cfg.sum_set.examples:
        ctx = random_ctx(rng)
        ex = add_history(ask.sample(rng, False, ctx), rng, ctx, cfg.templates.history_share)
        if arithmetic_fact(ex.user_text) is not None and _clean_reply(ex.reply):
            out.append(ex)
    return out


def build_memory_set(cfg: DataConfig, intents: Sequence[Intent]) -> list[Example]:
    """Facts asked back after one to three different facts were told, half of them never told. In
    the main set a question about a fact follows that very fact ("ask") or one other fact
    ("unknown"), so "copy whatever the user told" is right for every known fact, and stage 6 did
    just that: 4 of 35 *training* "never told" items right. Here the told facts are distractors as
    often as answers: the reply must match the question's kind of fact to a told one. Training
    phrasings only (the main set's split)."""
    if not cfg.memory_set.examples:
        return []
    rng = random.Random(cfg.seed + 10)
    (asker,) = [it for it in intents if isinstance(it, UserFactIntent) and it.mode == "ask"]
    out: list[Example] = []
    while len(out) < cfg.memory_set.examples:
        ctx = random_ctx(rng)
        told = rng.sample(USER_FACTS, rng.choice((1, 2, 2, 3)))
        values = {f.key: f.values(rng) for f in told}
        msgs: list[dict[str, str]] = [{"role": "system", "content": ctx.system}]
        for f in told:
            tell = format_fact(rng.choice(asker.train[f.key][0]), values[f.key])
            msgs += [
                {"role": "user", "content": asr_variant(rng, tell)},
                {"role": "assistant", "content": format_fact(rng.choice(f.ack), values[f.key])},
            ]
            msgs += filler_turns(rng, ctx, rng.choice((0, 0, 1)))
        known = rng.random() < 0.5
        if known:
            fact = rng.choice(told)
            vals = values[fact.key]
        else:
            fact = rng.choice([f for f in USER_FACTS if f not in told])
            vals = fact.values(rng)
        question = format_fact(rng.choice(asker.train[fact.key][1]), vals)
        reply = format_fact(rng.choice(fact.answer), vals) if known else rng.choice(UNKNOWN_FACT_A)
        msgs += [
            {"role": "user", "content": asr_variant(rng, question)},
            {"role": "assistant", "content": reply},
        ]
        told_values = [values[f.key]["v"] for f in told]
        if known:
            ex = Example(msgs, "templates", "user_fact", expect_any=[vals["v"]])
            ex.expect_none = [v for v in told_values if v != vals["v"]]
        else:
            ex = Example(msgs, "templates", "user_fact_unknown", expect_none=[vals["v"], *told_values])
        if _clean_reply(ex.reply):
            out.append(ex)
    return out


def _names_capitalised(ex: Example) -> Example:
    """Whisper writes names capitalised even where it drops other capitals; a lower-cased name in the
    prompt would also be a different token sequence from the reply's, which a copy cannot produce."""
    for name in ex.expect_any or []:
        pattern = re.compile(rf"\b{re.escape(name.lower())}\b")
        for m in ex.messages:
            if m["role"] == "user":
                m["content"] = pattern.sub(name, m["content"])
    return ex


def _maybe_asr(rng: random.Random, text: str) -> str:
    return re.sub(r"[.,!?;]", "", text).lower() if rng.random() < 0.3 else text


_ALLOWED_NAMES = frozenset(ASSISTANT_NAMES + USER_NAMES + PET_NAMES)


def _clean_reply(reply: str) -> bool:
    """Templated replies obey the full spoken-style rules (names copied from context allowed)."""
    return not spoken_problems(reply, max_non_words=0, allowed_words=_ALLOWED_NAMES)


def _write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    """Compact JSON lines; a ``.gz`` name writes gzip (mtime 0, so the bytes are reproducible)."""
    data = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows).encode(
        "utf-8"
    )
    if path.suffix == ".gz":
        with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            gz.write(data)
    else:
        path.write_bytes(data)


def _length_stats(values: Sequence[int]) -> dict:
    if not values:
        return {}
    s = sorted(values)
    return {
        "mean": round(statistics.fmean(s), 2),
        "min": s[0],
        "median": s[len(s) // 2],
        "p95": s[int(0.95 * (len(s) - 1))],
        "max": s[-1],
    }


def _stats(train, heldout, pretrain, tstats: TeacherStats, n_cb: int, n_fortunes: int, dropped: int) -> dict:  # noqa: ANN001
    def count(exs: list[Example], attr: str) -> dict[str, int]:
        return dict(sorted(Counter(getattr(e, attr) for e in exs).items()))

    return {
        "train": {
            "examples": len(train),
            "by_source": count(train, "source"),
            "by_kind": count(train, "kind"),
            "reply_words": _length_stats([word_count(e.reply) for e in train]),
            "user_words": _length_stats([word_count(e.user_text) for e in train]),
            "turns": _length_stats([len(e.messages) for e in train]),
            "distinct_replies": len({e.reply for e in train}),
            "distinct_user_texts": len({normalise_prompt(e.user_text) for e in train}),
            "template_examples_dropped_for_heldout_overlap": dropped,
        },
        "heldout": {
            "examples": len(heldout),
            "by_source": count(heldout, "source"),
            "by_kind": count(heldout, "kind"),
            "with_expect_any": sum(1 for e in heldout if e.expect_any),
            "with_expect_none": sum(1 for e in heldout if e.expect_none),
            "context_use": sum(1 for e in heldout if e.expect_any and e.kind in CONTEXT_KINDS),
        },
        "pretrain": {
            "pairs": len(pretrain),
            "reply_words": _length_stats([word_count(p["reply"]) for p in pretrain]),
        },
        "sources": {
            "chatterbot_pairs_kept": n_cb,
            "fortunes_kept": n_fortunes,
            "teacher": {
                "prompts": tstats.prompts,
                "samples": tstats.samples,
                "prompts_kept": tstats.kept,
                "prompt_keep_rate": round(tstats.kept / tstats.prompts, 3) if tstats.prompts else None,
                "sample_rejections": dict(sorted((tstats.reasons or Counter()).items())),
            },
        },
    }


def _render(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages)


def build_tokenizer(cfg: DataConfig, train: list[Example], pretrain: list[dict[str, str]]) -> dict:
    """Prune SmolLM2's BPE to ``vocab_size`` on our text; write tokenizer.json and vocab_map.json.
    With ``keep_existing`` an existing tokenizer.json (and its vocab_map.json) is kept as it is."""
    from tokenizers import Tokenizer

    from dlm_core.smollm2 import tokenizer_json_path
    from dlm_core.vocab import SPECIAL_TOKENS, prune_bpe_tokenizer

    d = cfg.data_dir
    if cfg.tokenizer.keep_existing and (d / "tokenizer.json").is_file() and (d / "vocab_map.json").is_file():
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    else:
        texts = [_render(e.agent_messages) for e in train] + [f"{p['prev']}\n{p['reply']}" for p in pretrain]
        pruned = prune_bpe_tokenizer(tokenizer_json_path(), texts, cfg.tokenizer.vocab_size, SPECIAL_TOKENS)
        pruned.tokenizer.save(str(d / "tokenizer.json"))
        (d / "vocab_map.json").write_text(
            json.dumps({"kept_old_ids": pruned.kept_old_ids}) + "\n", encoding="utf-8"
        )
        tok = pruned.tokenizer
    reply_lens = [len(tok.encode(e.reply).ids) for e in train]
    words = sum(word_count(e.reply) for e in train)
    prompt_lens = [len(tok.encode(_render(e.messages[:-1])).ids) for e in train[:5000]]
    return {
        "vocab_size": tok.get_vocab_size(),
        "special_tokens": {t: tok.token_to_id(t) for t in SPECIAL_TOKENS},
        "reply_tokens": _length_stats(reply_lens),
        "reply_tokens_per_word": round(sum(reply_lens) / max(1, words), 3),
        "share_replies_le_32_tokens": round(sum(n <= 32 for n in reply_lens) / len(reply_lens), 4),
        "share_replies_le_48_tokens": round(sum(n <= 48 for n in reply_lens) / len(reply_lens), 4),
        "prompt_tokens_first_5000": _length_stats(prompt_lens),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=Path("configs/embedded_data.toml"))
    args = ap.parse_args(argv)
    build(load_config(args.config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
