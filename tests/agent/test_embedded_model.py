"""The shipped embedded reply model: loads offline with the standard loader, is small enough to ship,
and answers fixed prompts on topic, deterministically under greedy decoding."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from datetime import datetime

import pytest

from agent.config import LMSection
from agent.embedded.filters import has_repeated_ngram
from agent.prompt import Conversation, context_sentences
from agent.reply import EMBEDDED_MODEL, DiffusionReply

NOW = datetime(2026, 11, 26, 14, 5)  # a Thursday


def chat(user: str, name: str = "Quinn") -> list[dict[str, str]]:
    return [{"role": "system", "content": context_sentences(name, NOW)}, {"role": "user", "content": user}]


@pytest.fixture(scope="module")
def model() -> DiffusionReply:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set by conftest: nothing may come from a model hub
    return DiffusionReply(LMSection(drafts=False))


def test_the_shipped_model_is_complete_and_small() -> None:
    files = {p.name for p in EMBEDDED_MODEL.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    total = sum(p.stat().st_size for p in EMBEDDED_MODEL.iterdir())
    assert total <= 50e6, f"{total / 1e6:.1f} MB exceeds the 50 MB budget"


def test_greedy_replies_are_deterministic(model: DiffusionReply) -> None:
    first = model.reply(chat("Hi there, how are you today?"))
    model.engine.reset()
    assert model.reply(chat("Hi there, how are you today?")) == first
    assert first.strip()


@pytest.mark.parametrize(
    ("user", "name", "expected"),
    [
        ("What's your name?", "Quinn", "Quinn"),
        ("What's your name?", "Zed", "Zed"),  # a name never seen in training (two tokens)
        ("What's your name?", "Juniper", "Juniper"),  # three tokens, in no training pool (stage 2: "Juni.")
        ("What do I call you?", "Quinn", "Quinn"),  # stage 3 read this as a question about the user
        ("What time is it?", "Quinn", "2:05"),
        ("What day is it today?", "Quinn", "Thursday"),
    ],
)
def test_replies_use_the_injected_context(model: DiffusionReply, user: str, name: str, expected: str) -> None:
    reply = model.reply(chat(user, name))
    assert expected.lower() in reply.lower(), reply
    assert not has_repeated_ngram(reply)
    assert 2 <= len(reply.split()) <= 30


def test_a_question_without_context_does_not_recite_it(model: DiffusionReply) -> None:
    reply = model.reply(chat("Do you know any good jokes?"))
    assert reply.strip() and "2:05" not in reply, reply


@pytest.fixture(scope="module")
def model_with_drafts() -> DiffusionReply:
    return DiffusionReply(LMSection())  # the agent's default: draft-conditioned denoising


@pytest.mark.parametrize("name", ["Juniper", "Marigold", "Bramble"])  # 3 tokens each, in no training pool
def test_the_default_reply_copies_an_unseen_name_whole(model_with_drafts: DiffusionReply, name: str) -> None:
    assert model_with_drafts.drafts is not None
    for question in ("What's your name?", "Tell me your name."):
        model_with_drafts.engine.reset()
        reply = model_with_drafts.reply(chat(question, name))
        assert re.search(rf"(?<!\w){name}(?!\w)", reply), reply  # the whole name, as its own word


def test_early_exit_gives_the_same_replies_in_fewer_steps(model_with_drafts: DiffusionReply) -> None:
    """The agent's default (lm.early_exit): a block ends once its reply is fully revealed."""
    engine, reply = model_with_drafts.engine, model_with_drafts
    options = reply.options  # built from the [lm] section: max_tokens 48, steps 8, early_exit on
    assert options.early_exit and options.steps == 8
    saved = 0
    for user in (
        "What's your name?",
        "What day is it today?",
        "Hi there, how are you today?",
        "My name is Sam.",
    ):
        messages = chat(user)
        draft = reply.draft_ids(messages)
        full = engine.generate(messages, replace(options, early_exit=False), draft=draft)
        early = engine.generate(messages, options, draft=draft)
        assert early.text == full.text and early.text.strip()
        assert full.forwards == 8 * len(full.blocks) and early.forwards <= full.forwards
        saved += full.forwards - early.forwards
    assert saved >= 8, "the trained model is sure of short replies well before step 8"


@pytest.mark.parametrize("name", ["Marigold", "Bramble"])
def test_the_default_reply_remembers_an_unseen_user_name(
    model_with_drafts: DiffusionReply, name: str
) -> None:
    """Built as the agent builds it: the history, and the memory's "The user's name is …." in the context."""
    convo = Conversation(assistant_name="Quinn")
    convo.add_user(f"My name is {name}.")
    convo.add_assistant(f"Nice to meet you, {name}.")
    conversation = [m.as_dict() for m in convo.messages_for("What's my name?", NOW)]
    assert f"The user's name is {name}." in conversation[0]["content"]
    model_with_drafts.engine.reset()
    reply = model_with_drafts.reply(conversation)
    assert name in reply and "Quinn" not in reply, reply


@pytest.mark.parametrize(
    ("told", "answer"),
    [("My favorite food is pizza.", "pizza"), ("My name is Sam.", None), ("I live in Oslo.", None)],
)
def test_the_default_reply_says_a_remembered_fact_and_admits_one_never_told(
    model_with_drafts: DiffusionReply, told: str, answer: str | None
) -> None:
    """'What's my favorite food?' after the user said it, or after they said something else."""
    convo = Conversation(assistant_name="Quinn")
    convo.add_user(told)
    convo.add_assistant("Got it.")
    model_with_drafts.engine.reset()
    reply = model_with_drafts.reply(
        [m.as_dict() for m in convo.messages_for("What's my favorite food?", NOW)]
    )
    if answer:
        assert answer in reply.lower(), reply
    else:  # never told: no other fact passed off as the answer
        assert reply.startswith("I") and not any(w in reply for w in ("Sam", "Oslo")), reply


def test_say_that_again_repeats_the_previous_reply(model_with_drafts: DiffusionReply) -> None:
    """A repeat request retrieves "Of course. {previous}"-style drafts filled from the history."""
    said = "Why did the scarecrow win an award? He was outstanding in his field."
    conversation = [
        {"role": "system", "content": context_sentences("Quinn", NOW)},
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": said},
        {"role": "user", "content": "Can you repeat that?"},
    ]
    model_with_drafts.engine.reset()
    reply = model_with_drafts.reply(conversation)
    assert "scarecrow win an award" in reply and "outstanding in his field" in reply, reply


def test_repeat_drafts_come_only_from_replies_that_repeat(tmp_path) -> None:
    from agent.embedded.drafts import build

    system = {"role": "system", "content": context_sentences("Ada", NOW)}

    def example(*turns: str) -> str:
        roles = ["user", "assistant"] * len(turns)
        return json.dumps({"messages": [system, *({"role": r, "content": t} for r, t in zip(roles, turns))]})

    lines = [
        example("What time is it?", "It's 2:05 PM."),
        example(
            "Tell me a joke.",
            "Why did the cow cross the road?",
            "Say that again.",
            "Sure. Why did the cow cross the road?",
        ),
        # The same reply twice by chance is not a repeat; other history-dependent answers are skipped.
        example("Say something nice.", "You are great.", "say something nice", "You are great."),
        example("I'm Bo.", "Hi Bo.", "What's my name?", "You're Bo."),
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    index = build(tmp_path / "train.jsonl")
    assert dict(zip(index.prompts, index.replies)) == {
        "what time is it": "It's {time}.",
        "say that again": "Sure. {previous}",
    }
    history = [system, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there!"}]
    assert (
        index.draft([*history, {"role": "user", "content": "say that again please"}]) == "Sure. Hello there!"
    )
    # Without a previous reply there is nothing to repeat: no draft rather than a wrong one.
    assert index.draft([system, {"role": "user", "content": "say that again"}]) is None
    assert index.draft([system, {"role": "user", "content": "what time is it"}]) == "It's 2:05 PM."


def test_memory_question_drafts_say_the_fact_or_that_it_was_never_told(tmp_path) -> None:
    """A question about a remembered fact keeps both training answers and drafts the one the context
    (the agent's memory sentences) can fill; only a question about the same thing, asked by the user."""
    from agent.embedded.drafts import build

    def example(kind: str, *turns: str) -> str:
        convo = Conversation(assistant_name="Ada")
        for user, assistant in zip(turns[:-2:2], turns[1:-2:2]):
            convo.add_user(user)
            convo.add_assistant(assistant)
        messages = [m.as_dict() for m in convo.messages_for(turns[-2], NOW)]
        return json.dumps(
            {"messages": [*messages, {"role": "assistant", "content": turns[-1]}], "kind": kind}
        )

    lines = [
        example("user_fact", "I love tacos.", "Yum!", "What's my favorite food?", "Your favorite food is tacos."),
        example("user_fact_unknown", "I live in Oslo.", "Nice.", "What's my favorite food?", "I don't think you've told me that yet."),
        example("user_fact", "My dog's name is Rex.", "Aw.", "What's my dog called?", "It's Rex, your dog."),
        example("user_fact_unknown", "I enjoy hiking.", "Fun.", "What's my dog called?", "I don't know that one yet."),
        example("user_fact", "what's your name", "I'm Ada."),
    ]  # fmt: skip
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    index = build(tmp_path / "train.jsonl")
    assert dict(zip(index.prompts, index.replies)) == {
        "what's your name": "I'm {name}.",
        "what's my favorite food": [
            "Your favorite food is {user_food}.",
            "I don't think you've told me that yet.",
        ],
        "what's my dog called": ["It's {user_dog}, your dog.", "I don't know that one yet."],
    }

    def draft(told: list[str], asked: str) -> str | None:
        convo = Conversation(assistant_name="Quinn")
        for said in told:
            convo.add_user(said)
            convo.add_assistant("Okay.")
        return index.draft([m.as_dict() for m in convo.messages_for(asked, NOW)])

    assert draft(["My favorite food is pizza."], "what's my favorite food") == "Your favorite food is pizza."
    assert (
        draft(["My name is Bo."], "Do you remember my favorite food?")
        == "I don't think you've told me that yet."
    )
    assert draft(["My dog is called Pip."], "what's my dog called") == "It's Pip, your dog."
    # The cat's name is no answer about the dog.
    assert draft(["My cat is called Tom."], "what's my dog called") == "I don't know that one yet."
    # Not about the same thing, not about the user, or a fact told rather than asked: no memory draft.
    assert draft(["My favorite food is pizza."], "what's my favorite color") is None
    assert draft(["My favorite food is pizza."], "what's your favorite food") is None
    assert draft([], "My favorite food is sushi.") is None


def test_sum_drafts_take_the_result_the_agent_worked_out(tmp_path) -> None:
    from agent.embedded.drafts import build
    from agent.prompt import with_turn_facts

    def turn(user: str) -> list[dict[str, str]]:
        system = with_turn_facts(context_sentences("Ada", NOW), user)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    lines = [
        json.dumps({"messages": [*turn("What is 7 times 8?"), {"role": "assistant", "content": "The answer is 56."}]}),
        # On the 14th of a month a result of 14 is still the result, not the day.
        json.dumps({"messages": [
            {"role": "system", "content": with_turn_facts(context_sentences("Ada", NOW.replace(day=14)), "7 plus 7")},
            {"role": "user", "content": "7 plus 7"}, {"role": "assistant", "content": "7 plus 7 is 14."},
        ]}),
    ]  # fmt: skip
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    index = build(tmp_path / "train.jsonl")
    assert dict(zip(index.prompts, index.replies)) == {
        "what is 7 times 8": "The answer is {result}.",
        "7 plus 7": "{expr} is {result}.",
    }
    assert index.draft(turn("what is 12 times 3")) == "The answer is 36."
    assert index.draft(turn("20 plus 7")) == "20 plus 7 is 27."
    # No sum worked out (a chain): no draft rather than the training example's number.
    assert index.draft(turn("what is 2 times 3 times 4")) is None
    # A number is one term however it is written: a sum asked in words finds the sums in digits.
    assert index.draft(turn("what is twelve times three")) == "The answer is 36."
    assert index.draft(turn("What's forty-three plus seven?")) == "43 plus 7 is 50."


def test_part_of_day_drafts_follow_the_context_and_any_part_word(tmp_path) -> None:
    from agent.embedded.drafts import build

    def turn(user: str, hour: int) -> list[dict[str, str]]:
        system = context_sentences("Ada", NOW.replace(hour=hour))
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    # Two files, as `make train` builds the index from every single-exchange training set.
    (tmp_path / "train.jsonl").write_text(
        json.dumps(
            {"messages": [*turn("good evening", 9), {"role": "assistant", "content": "Good evening!"}]}
        )
        + "\n"
    )
    (tmp_path / "parts.jsonl").write_text(
        json.dumps({"messages": [
            *turn("Is it afternoon yet?", 9), {"role": "assistant", "content": "It's the morning. The time is 9:05 AM."}
        ]}) + "\n"
    )  # fmt: skip
    index = build(tmp_path / "train.jsonl", tmp_path / "parts.jsonl")
    # The part of the day is a context value: the draft says the one it is now, not the example's.
    assert dict(zip(index.prompts, index.replies)) == {
        "good evening": "Good evening!",
        "is it afternoon yet": "It's {part}. The time is {time}.",
    }
    assert index.draft(turn("is it afternoon yet", 19)) == "It's the evening. The time is 7:05 PM."
    # Another part word finds the same question; a greeting still finds its greeting.
    assert index.draft(turn("Is it the evening yet?", 14)) == "It's the afternoon. The time is 2:05 PM."
    assert index.draft(turn("Good evening.", 14)) == "Good evening!"


@pytest.mark.parametrize(
    ("user", "result"),
    [
        ("What is 12 times 3?", "36"),
        ("what's 64 plus 58", "122"),
        ("9 times 7?", "63"),
        # numbers in words, as Whisper often writes them (stage 6, model card point 20)
        ("what's forty-three plus seven", "50"),
        ("what's twelve times three", "36"),
        ("How much is ninety minus eleven?", "79"),
    ],
)
def test_the_default_reply_says_the_sum_the_agent_worked_out(
    model_with_drafts: DiffusionReply, user: str, result: str
) -> None:
    """The agent computes the sum (agent/calculator.py); the model reads it from the context, and a
    three-digit result cut short in decoding ("12") is finished from the prompt (dlm_core/copies.py)."""
    from agent.prompt import Conversation

    messages = [m.as_dict() for m in Conversation("Quinn").messages_for(user, NOW)]
    assert messages[0]["content"].endswith(f" is {result}.")
    model_with_drafts.engine.reset()
    reply = model_with_drafts.reply(messages)
    assert result in reply.split() or f"{result}." in reply.split(), reply


def test_the_semantic_table_leaves_digits_and_specials_blank() -> None:
    """Digits are copied, not understood: their rows of the frozen table stay zero (model card, point 24)."""
    import numpy as np

    from agent.embedded.init_embeddings import features

    old = np.arange(1.0, 13.0, dtype=np.float32).reshape(4, 3) ** 2  # four SmolLM2 rows
    table = features(old, [-1, 0, 2, 3], ["<|mask|>", " evening", "7", " 12"])
    assert not table[0].any() and table[1].any()  # a special token; a word
    assert not table[2].any() and not table[3].any()  # tokens with a digit
