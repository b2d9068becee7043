"""The embedded model's data build: a tiny real build (templates + a few chatterbot pairs + fortunes, no
teacher, no pre-training text) checked for schema, style, held-out disjointness, context grounding and
determinism; plus the text filters on cases that must pass and fail."""

from __future__ import annotations

import gzip
import json
import random
import re
from datetime import datetime
from pathlib import Path

import pytest

from recipe.build_data import build, fortune_items
from recipe.config import DataConfigError, load_config
from recipe.context import context_of
from recipe.filters import (
    first_sentences,
    has_markdown,
    has_odd_chars,
    has_repeated_ngram,
    has_url,
    non_word_share,
    non_words,
    normalise_prompt,
    spoken_problems,
    word_count,
)
from recipe.intents import (
    NAME_Q,
    OWN_NAME_MORE_Q,
    PART_MORE_Q,
    PART_Q,
    UNKNOWN_FACT_A,
    USER_FACTS,
    USER_NAME_MORE_Q,
    UserFactIntent,
    all_intents,
)
from recipe.lexicon import ASSISTANT_NAMES, UNSEEN_TEST_NAMES, open_names, unseen_names

TINY = """
seed = {seed}
data_dir = "{data_dir}"

[templates]
examples = 900
heldout_phrasing_share = 0.2

[chatterbot]
enabled = true
max_pairs = 12
repeat = 1

[copy_set]
examples = 300

[long_history]
examples = 200

[name_set]
examples = 150

[part_set]
examples = 100

[sum_set]
examples = 60

[memory_set]
examples = 120

[chitchat]
pretrain = false

[fortunes]
enabled = true
max_items = 10

[teacher]
enabled = false

[heldout]
size = 150

[tokenizer]
enabled = false
"""

URL_OR_MARKDOWN = re.compile(r"https?://|www\.|\*\*|`|^\s*[-*]\s|#", re.M)


def _build(tmp: Path, seed: int = 7) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    cfg_path = tmp / "cfg.toml"
    cfg_path.write_text(TINY.format(seed=seed, data_dir=(tmp / "data").as_posix()), encoding="utf-8")
    build(load_config(cfg_path), log=lambda *_: None)
    return tmp / "data"


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("a"))


@pytest.fixture(scope="module")
def train(built: Path) -> list[dict]:
    return _read(built / "train.jsonl")


@pytest.fixture(scope="module")
def heldout(built: Path) -> list[dict]:
    return _read(built / "heldout.jsonl")


def test_files_and_stats(built: Path, train: list[dict], heldout: list[dict]) -> None:
    stats = json.loads((built / "stats.json").read_text())
    assert stats["train"]["examples"] == len(train) > 800
    assert stats["heldout"]["examples"] == len(heldout) >= 100
    assert set(stats["train"]["by_source"]) == {"templates", "chatterbot"}
    assert not (built / "pretrain.jsonl.gz").exists()  # disabled in this config


def test_schema_of_every_line(train: list[dict], heldout: list[dict]) -> None:
    for row in train + heldout:
        assert set(row) <= {"messages", "source", "kind", "expect_any", "expect_none"}
        assert row["source"] in {"templates", "chatterbot", "teacher"} and row["kind"]
        msgs = row["messages"]
        assert msgs[0]["role"] == "system" and msgs[0]["content"].startswith("Your name is ")
        roles = [m["role"] for m in msgs[1:]]
        assert roles == ["user", "assistant"] * (len(roles) // 2) and len(roles) >= 2
        assert all(isinstance(m["content"], str) and m["content"].strip() for m in msgs)
        for key in ("expect_any", "expect_none"):
            if key in row:
                assert row[key] and all(isinstance(s, str) and s for s in row[key])


def test_replies_are_short_clean_speech(train: list[dict], heldout: list[dict]) -> None:
    for row in train + heldout:
        for m in row["messages"][1:]:
            if m["role"] == "assistant":
                reply = m["content"]
                assert 4 <= word_count(reply) <= 30, reply
                assert not URL_OR_MARKDOWN.search(reply) and not has_odd_chars(reply), reply
                assert not has_repeated_ngram(reply), reply


def test_heldout_prompts_never_in_train(train: list[dict], heldout: list[dict]) -> None:
    train_prompts = {normalise_prompt(r["messages"][-2]["content"]) for r in train}
    held_prompts = {normalise_prompt(r["messages"][-2]["content"]) for r in heldout}
    assert held_prompts and not (train_prompts & held_prompts)


def test_expected_strings_are_grounded_in_context(heldout: list[dict]) -> None:
    context_items = [r for r in heldout if "expect_any" in r]
    assert len(context_items) >= 30
    kinds = {r["kind"] for r in context_items}
    assert {"time", "name", "user_fact", "arithmetic"} <= kinds  # sums: the agent's result is in context
    for r in context_items:
        history = " ".join(m["content"] for m in r["messages"][:-1]).lower()
        reply = r["messages"][-1]["content"].lower()
        # Some expected string is both available to the model and in the reference reply.
        assert any(s.lower() in history and s.lower() in reply for s in r["expect_any"]), r
    for r in (r for r in heldout if r["kind"] == "time"):
        assert f"The time is {r['expect_any'][0]}." in r["messages"][0]["content"]


def test_sums_carry_the_agents_result_in_context(train: list[dict], heldout: list[dict]) -> None:
    """Training sees what serving sees: the agent's worked-out sum ends the context of every sum asked."""
    sums = [r for r in train + heldout if r["kind"] == "arithmetic"]
    assert len(sums) >= 10
    for r in sums:
        result = re.search(r"(\d+)\.$", r["messages"][-1]["content"]).group(1)
        assert r["messages"][0]["content"].endswith(f" is {result}."), r
    for r in (r for r in train if r["kind"] == "time"):
        assert re.search(
            r"It is (the morning|the afternoon|the evening|nighttime)\.", r["messages"][0]["content"]
        )


def test_negatives_present_and_respected(heldout: list[dict], train: list[dict]) -> None:
    negatives = [r for r in heldout if "expect_none" in r]
    assert len(negatives) >= 30
    assert any(r["kind"] == "negative" for r in negatives)
    for r in negatives + [r for r in train if "expect_none" in r]:
        reply = r["messages"][-1]["content"]
        assert not any(s in reply for s in r["expect_none"]), r


def test_context_use_checks_lean_strict(heldout: list[dict]) -> None:
    from agent.prompt import Context
    from recipe.evaluate import context_correct

    context = Context("Ada", datetime(2026, 3, 3, 9, 15))
    item = {
        "messages": [
            {"role": "system", "content": context.system},
            {"role": "user", "content": "How are you today?"},
        ],
        "context": context,
        "expect_none": ["9:15 AM", "Ada"],
    }
    assert context_correct(item, "I'm doing well, thanks for asking!") is True
    assert context_correct(item, "It's Tuesday today, March 3.") is False  # the weekday nobody asked for
    assert context_correct(item, "It's 9:15 AM.") is False
    assert context_correct(item, "Hi Adaa!") is False  # a glued blurt is still a blurt
    asked = {**item, "expect_none": [], "expect_any": ["Toby"]}
    assert context_correct(asked, "Your turtle is toby.") is True
    assert context_correct(asked, "Your turtle is Tobyby.") is False  # a glued copy is not the name
    # No reference reply of the data build states its context's weekday unasked.
    for r in (r for r in heldout if "expect_none" in r):
        weekday = context_of(r["messages"][:-1]).now.strftime("%A")
        assert weekday.lower() not in r["messages"][-1]["content"].lower(), r


def test_user_fact_questions_answered_from_history(train: list[dict]) -> None:
    asks = [r for r in train if r["kind"] == "user_fact"]
    assert asks
    for r in asks:
        told = r["messages"][1]["content"].lower()
        assert any(s.lower() in told for s in r["expect_any"])
        assert len(r["messages"]) >= 5


def test_same_seed_same_files(tmp_path: Path, built: Path) -> None:
    again = _build(tmp_path / "b")
    for name in (
        "train.jsonl",
        "heldout.jsonl",
        "train_copy.jsonl",
        "train_long.jsonl.gz",
        "train_names.jsonl",
        "train_parts.jsonl",
        "train_sums.jsonl",
        "stats.json",
    ):
        assert (again / name).read_bytes() == (built / name).read_bytes()
    other = _build(tmp_path / "c", seed=8)
    assert (other / "train.jsonl").read_bytes() != (built / "train.jsonl").read_bytes()


def test_copy_set_asks_for_names_from_the_whole_word_list(built: Path, heldout: list[dict]) -> None:
    rows = _read(built / "train_copy.jsonl")
    assert len(rows) == 300
    assert {r["kind"] for r in rows} == {"name", "user_fact", "user_fact_tell"}
    names = [r["expect_any"][0] for r in rows]
    assert len(set(names)) > 250  # drawn from thousands, not the ~60 of the main set
    assert not set(names) & set(ASSISTANT_NAMES) - set(open_names())
    assert not set(names) & (UNSEEN_TEST_NAMES | set(unseen_names()))
    for r, name in zip(rows, names):
        # The exact (capitalised) name is in the prompt, so the reply's name is a copy of its tokens.
        prompt = " ".join(m["content"] for m in r["messages"][:-1])
        assert re.search(rf"\b{name}\b", prompt), r
        assert name in r["messages"][-1]["content"], r
    held = {json.dumps(h["messages"][:-1]) for h in heldout}
    assert not any(json.dumps(r["messages"][:-1]) in held for r in rows)


def test_name_set_asks_whose_name_in_new_phrasings(
    built: Path, train: list[dict], heldout: list[dict]
) -> None:
    rows = _read(built / "train_names.jsonl")
    assert len(rows) == 150
    assert not set(OWN_NAME_MORE_Q) & set(NAME_Q)  # neither side of the main set's phrasing split
    user_asks = {q.lower().rstrip("?.!") for q in USER_NAME_MORE_Q}
    seen = {"name": 0, "user_fact": 0}
    for r in rows:
        msgs, name = r["messages"], r["expect_any"][0]
        seen[r["kind"]] += 1
        question = re.sub(r"[.,!?]", "", msgs[-2]["content"]).lower()
        assert name in msgs[-1]["content"], r
        if r["kind"] == "name":  # the assistant's own name, from the context
            assert f"Your name is {name}." in msgs[0]["content"]
            assert any(q.lower().rstrip("?.!").replace(",", "") in question for q in OWN_NAME_MORE_Q), r
        else:  # the user's, told earlier in the chat (the context may remember it); the assistant has another
            assert (
                re.search(rf"\b{name}\b", msgs[1]["content"])
                and f"Your name is {name}." not in msgs[0]["content"]
            ), r
            assert any(q.replace(",", "") in question for q in user_asks), r
    assert seen["name"] > 60 and seen["user_fact"] > 30
    held = {json.dumps(h["messages"][:-1]) for h in heldout}
    assert not any(json.dumps(r["messages"][:-1]) in held for r in rows)
    # The user tells their name only in the main set's training phrasings: the held-out ones
    # ("The name's …") stay unseen, as the held-out set's user_fact_tell items assume.
    cfg = load_config(built.parent / "cfg.toml")
    fortunes = fortune_items(cfg, random.Random(cfg.seed + 1))
    intents = all_intents(fortunes, random.Random(cfg.seed + 2), cfg.templates.heldout_phrasing_share)
    teller = next(it for it in intents if isinstance(it, UserFactIntent) and it.mode == "tell")
    held_tells, train_tells = teller.held["name"][0], teller.train["name"][0]
    assert held_tells and not set(held_tells) & set(train_tells)

    def phrasing(text: str) -> set[str]:
        plain = re.sub(r"[.,!?;]", "", text).lower()
        return {
            t
            for t in held_tells + train_tells
            if re.fullmatch(re.escape(re.sub(r"[.,!?;]", "", t).lower()).replace(r"\{v\}", r"\S+"), plain)
        }

    told = [phrasing(r["messages"][1]["content"]) for r in rows if r["kind"] == "user_fact"]
    assert all(p and p <= set(train_tells) for p in told), [p for p in told if not p <= set(train_tells)]


def test_part_set_asks_the_part_of_day_in_new_phrasings(built: Path, heldout: list[dict]) -> None:
    rows = _read(built / "train_parts.jsonl")
    assert len(rows) == 100
    assert not set(PART_MORE_Q) & set(PART_Q)  # neither side of the main set's phrasing split
    asks = [r for r in rows if r["kind"] == "time"]
    greetings = [r for r in rows if r["kind"] == "greeting"]
    assert len(asks) > 50 and len(greetings) > 10
    for r in asks:  # answered from the injected time
        time = r["expect_any"][0]
        assert f"The time is {time}." in r["messages"][0]["content"] and time in r["messages"][-1]["content"]
    for r in greetings:  # "Good evening." is a greeting, not a question about the time
        assert re.search(r"morning|afternoon|evening", r["messages"][-2]["content"], re.I), r
        assert not re.search(r"\d:\d\d", r["messages"][-1]["content"]), r
    held = {json.dumps(h["messages"][:-1]) for h in heldout}
    assert not any(json.dumps(r["messages"][:-1]) in held for r in rows)


def test_sum_set_asks_sums_in_words_answered_from_the_worked_out_sum(
    built: Path, heldout: list[dict]
) -> None:
    from agent.calculator import arithmetic_fact

    rows = _read(built / "train_sums.jsonl")
    assert len(rows) == 60 and {r["kind"] for r in rows} == {"arithmetic"}
    spelled = 0
    for r in rows:
        user, reply = r["messages"][-2]["content"], r["messages"][-1]["content"]
        fact = arithmetic_fact(user)
        assert fact is not None and r["messages"][0]["content"].endswith(" " + fact), r  # what serving sees
        result = fact.removesuffix(".").rsplit(" is ", 1)[1]
        assert r["expect_any"] == [result] and re.search(rf"\b{result}\.$", reply), r
        spelled += not re.search(r"\d", user)
    assert spelled > 30  # mostly both numbers in words; some with one side in digits
    held = {json.dumps(h["messages"][:-1]) for h in heldout}
    assert not any(json.dumps(r["messages"][:-1]) in held for r in rows)


def test_memory_set_asks_one_of_several_facts_or_one_never_told(built: Path, heldout: list[dict]) -> None:
    """Told facts are distractors as often as answers; questions only in training phrasings."""
    rows = _read(built / "train_memory.jsonl")
    assert len(rows) == 120
    kinds = [r["kind"] for r in rows]
    assert (
        40 < kinds.count("user_fact") < 80
        and kinds.count("user_fact") + kinds.count("user_fact_unknown") == 120
    )
    cfg = load_config(built.parent / "cfg.toml")
    fortunes = fortune_items(cfg, random.Random(cfg.seed + 1))
    intents = all_intents(fortunes, random.Random(cfg.seed + 2), cfg.templates.heldout_phrasing_share)
    asker = next(it for it in intents if isinstance(it, UserFactIntent) and it.mode == "ask")

    def plain(text: str) -> str:
        return re.sub(r"[.,!?;]", "", text).lower()

    def asked_in(phrasings: set[str], question: str) -> bool:
        return any(
            re.search(re.escape(plain(p)).replace(r"\{v2\}", r"\w+") + "$", plain(question))
            for p in phrasings
        )

    held_asks = {p for f in USER_FACTS for p in asker.held[f.key][1]}
    train_asks = {p for f in USER_FACTS for p in asker.train[f.key][1]}
    distractors = 0
    for r in rows:
        msgs = r["messages"]
        history = " ".join(m["content"] for m in msgs[1:-2] if m["role"] == "user")
        question, reply = msgs[-2]["content"], msgs[-1]["content"]
        assert asked_in(train_asks, question) and not asked_in(held_asks, question), r
        if r["kind"] == "user_fact":  # the answer was told, and is said; the other facts are not
            (value,) = r["expect_any"]
            assert value.lower() in history.lower() and value in reply, r
            distractors += bool(r.get("expect_none"))
        else:
            assert reply in UNKNOWN_FACT_A, r
        assert not any(v in reply for v in r.get("expect_none") or []), r
    assert distractors > 20  # most known facts sit beside other told facts
    held = {json.dumps(h["messages"][:-1]) for h in heldout}
    assert not any(json.dumps(r["messages"][:-1]) in held for r in rows)


def test_long_set_puts_train_examples_late_in_a_conversation(built: Path, train: list[dict]) -> None:
    with gzip.open(built / "train_long.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 200
    finals: dict[str, list[dict]] = {}
    for r in train:
        finals.setdefault(json.dumps(r["messages"][-2:]), []).append(r)
    for r in rows:
        msgs = r["messages"]
        assert msgs[0]["role"] == "system" and [m["role"] for m in msgs[1:]] == ["user", "assistant"] * (
            (len(msgs) - 1) // 2
        )
        assert 3 <= (len(msgs) - 3) // 2 <= 6  # earlier exchanges, as many as the agent keeps
        # The question and answer of a real train example, with that example's own history.
        assert any(
            msgs[-len(own["messages"]) + 1 :] == own["messages"][1:]
            and r["kind"] == own["kind"]
            and r.get("expect_any") == own.get("expect_any")
            for own in finals[json.dumps(msgs[-2:])]
        )


def test_unseen_probe_names_are_in_no_training_pool() -> None:
    probe = unseen_names()
    assert len(probe) >= 30 and "Juniper" in probe
    assert not set(probe) & set(open_names())
    assert len(open_names()) > 5000


def test_bad_config_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[templates]\nexampels = 3\n")
    with pytest.raises(DataConfigError, match="exampels"):
        load_config(p)
    with pytest.raises(DataConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_user_fact_answers_contain_value() -> None:
    import random

    for fact in USER_FACTS:
        vals = fact.values(random.Random(0))
        for template in fact.answer + fact.ack:
            text = template.replace("{V}", vals["v"].capitalize()).format(**vals)
            assert vals["v"].lower() in text.lower(), template


# ---- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I like it, I like it a lot.", True),
        ("Well, it is what it is, so it is what it is.", True),
        ("The cat sat on the mat, then the cat slept.", False),
        ("Hello there, how are you today?", False),
    ],
)
def test_repeated_trigram(text: str, expected: bool) -> None:
    assert has_repeated_ngram(text) is expected


def test_non_words() -> None:
    assert non_words("The quick brown fox isn't lazy.") == []
    assert non_words("Sam's dog can't sing.") == []
    assert non_words("Blorfy snargle the cat.") == ["Blorfy", "snargle"]
    assert non_word_share("Blorfy snargle the cat.") == pytest.approx(0.5)
    assert non_word_share("") == 0.0


@pytest.mark.parametrize(
    "text",
    [
        "Here is **bold** text.",
        "- a list item",
        "1. first step",
        "Use `code` here.",
        "# Title",
        "See [this](x).",
    ],
)
def test_markdown_detected(text: str) -> None:
    assert has_markdown(text)


@pytest.mark.parametrize("text", ["It's 2:05 PM.", "Sure, I can help with that!", "Paris is lovely in May."])
def test_plain_speech_passes(text: str) -> None:
    assert not has_markdown(text) and not has_url(text) and not has_odd_chars(text)


def test_urls_emoji_and_lengths() -> None:
    assert has_url("Visit www.example.com for more.") and has_url("See https://x.org now.")
    assert has_odd_chars("Great job 😀 today.") and has_odd_chars("He said “hi” to me.")
    assert "too short (2 words)" in spoken_problems("Hi there.")
    assert any(p.startswith("too long") for p in spoken_problems("word " * 31 + "end."))
    assert spoken_problems("Your name is Quinnelle.", allowed_words=frozenset({"Quinnelle"})) == []
    assert spoken_problems("Nice to meet you too!") == []


def test_first_sentences_cuts_rambling() -> None:
    text = "Sure thing. Here is more. And a third sentence that never ends"
    assert first_sentences(text) == "Sure thing. Here is more."
    assert first_sentences("an unfinished thought with no end") == ""
    long = "This first sentence is fine. " + "word " * 40 + "end."
    assert first_sentences(long) == "This first sentence is fine."


# ---- teacher tokenizer + pruning (SmolLM2's real BPE, extracted from the pip-packaged GGUF) -----


def test_pruned_smollm2_tokenizer_round_trips(train: list[dict]) -> None:
    from dlm_core.smollm2 import tokenizer_json_path
    from dlm_core.vocab import SPECIAL_TOKENS, prune_bpe_tokenizer

    try:
        path = tokenizer_json_path()
    except Exception as e:  # noqa: BLE001 - package missing: say so instead of failing obscurely
        pytest.skip(f"SmolLM2 tokenizer unavailable: {e}")
    texts = ["\n".join(m["content"] for m in r["messages"]) for r in train]
    pruned = prune_bpe_tokenizer(path, texts, 2048, SPECIAL_TOKENS)
    tok = pruned.tokenizer
    assert tok.get_vocab_size() == 2048 == len(pruned.kept_old_ids)
    for t in texts[:200] + ["What's 12 times 3? It's 36.", "Ünïcode ✓ 日本語 😀"]:
        ids = tok.encode(t).ids
        assert tok.decode(ids) == t and max(ids) < 2048
    assert all(0 <= old < 49152 for old in pruned.kept_old_ids[len(SPECIAL_TOKENS) :] if old != -1)


# ---- teacher and relevance model (real SmolLM2-135M-Instruct and MiniLM from pip packages) ------


def test_relevance_ranks_related_reply_higher() -> None:
    from recipe.similarity import embed, relevance

    vecs = embed(["what time is it", "It's 2:05 PM right now."])
    assert tuple(vecs.shape) == (2, 384)
    assert abs(float(vecs[0].norm()) - 1.0) < 1e-4
    related, unrelated = relevance(
        ["I'm so tired today", "I'm so tired today"],
        ["Sounds like you need some rest tonight.", "The capital of France is Paris."],
    )
    assert related > unrelated + 0.1
    with pytest.raises(ValueError, match="prompts but"):
        relevance(["a"], [])


@pytest.mark.slow
def test_teacher_batched_replies() -> None:
    from dlm_core.smollm2 import load_teacher, teacher_messages, teacher_reply

    teacher = load_teacher(threads=1)  # 2 threads crawl when the other core is busy
    system = {"role": "system", "content": "Your name is Quinn. Today is Tuesday, November 26, 2026."}
    batch = [
        [system, {"role": "user", "content": q}] for q in ("Hello there!", "What is the capital of France?")
    ]
    out = teacher_reply(teacher, batch, num_samples=2, max_new_tokens=12, seed=0)
    assert len(out) == 2 and all(len(s) == 2 and all(isinstance(x, str) and x for x in s) for s in out)
    again = teacher_reply(teacher, batch, num_samples=2, max_new_tokens=12, seed=0)
    assert again == out  # seeded sampling is reproducible
    assert teacher_messages(batch[0])[0]["content"].startswith("You are a friendly voice assistant.")
    with pytest.raises(ValueError, match="end with a user message"):
        teacher_messages([system])


def test_some_context_questions_follow_earlier_turns(train: list[dict]) -> None:
    timed = [r for r in train if r["kind"] == "time"]
    with_history = [r for r in timed if len(r["messages"]) > 3]
    assert 0 < len(with_history) < len(timed)
    for r in with_history:
        # Earlier turns never carry a (stale) time: only the final reply may state one.
        assert not any(r["expect_any"][0] in m["content"] for m in r["messages"][1:-1])


def test_teacher_cache_reader_tolerates_only_a_truncated_last_line(tmp_path: Path) -> None:
    from recipe.teacher_gen import TeacherCacheError, load_cache

    rec = {
        "prompt": "I love hiking.",
        "origin": "chitchat",
        "system": "Your name is Sam.",
        "samples": ["Nice!"],
    }
    path = tmp_path / "cache.jsonl"
    path.write_text(json.dumps(rec) + "\n" + '{"prompt": "half wri')
    assert list(load_cache(path)) == ["I love hiking."]
    path.write_text('{"prompt": broken\n' + json.dumps(rec) + "\n")
    with pytest.raises(TeacherCacheError, match=":1:"):
        load_cache(path)
    assert load_cache(tmp_path / "missing.jsonl") == {}


def test_a_rebuild_keeps_the_shipped_vocabulary(tmp_path: Path, train: list[dict]) -> None:
    """The tokenizer is part of every model trained on it: changed text must not prune a new one."""
    import dataclasses
    import shutil

    from recipe.build_data import build_tokenizer
    from recipe.intents import Example

    shipped = Path("recipe/data")
    for name in ("tokenizer.json", "vocab_map.json"):
        shutil.copy(shipped / name, tmp_path / name)
    cfg = load_config(Path("configs/embedded_data.toml"))
    assert cfg.tokenizer.keep_existing
    cfg = dataclasses.replace(cfg, data_dir=tmp_path)
    examples = [Example(row["messages"], row["source"], row["kind"]) for row in train[:50]]
    stats = build_tokenizer(cfg, examples, [])
    for name in ("tokenizer.json", "vocab_map.json"):
        assert (tmp_path / name).read_bytes() == (shipped / name).read_bytes()
    assert stats["vocab_size"] == 8192 and stats["reply_tokens"]["max"] > 0


def test_clock_probe_covers_every_hour_and_checks_the_exact_time() -> None:
    from recipe.evaluate import clock_items, context_correct

    items = clock_items()
    assert len(items) == 24 * 3 * 3
    noon = next(it for it in items if it["expect_any"] == ["12:05"])
    assert context_correct(noon, "It's 12:05 PM.") and not context_correct(noon, "It's 2:05 AM.")
    assert {it["expect_any"][0] for it in items} >= {"12:42", "1:17", "11:05"}
