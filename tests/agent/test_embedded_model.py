"""The shipped embedded reply model: loads offline with the standard loader, is small enough to ship,
and answers fixed prompts on topic, deterministically under greedy decoding."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import datetime

import pytest

from agent.config import LMSection
from agent.prompt import Context, Conversation, Prompt
from agent.reply import EMBEDDED_MODEL, DiffusionReply

# Serving imports no recipe code, a test may: ``has_repeated_ngram`` is the evaluation's measure.
from recipe.filters import has_repeated_ngram

NOW = datetime(2026, 11, 26, 14, 5)  # a Thursday


def chat(user: str, name: str = "Quinn") -> Prompt:
    """One user message as the agent sends it: the context's sentences, and the context itself."""
    context = Context(name, NOW)
    return Prompt([{"role": "system", "content": context.system}, {"role": "user", "content": user}], context)


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
    conversation = convo.prompt_for("What's my name?", NOW)
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
    reply = model_with_drafts.reply(convo.prompt_for("What's my favorite food?", NOW))
    if answer:
        assert answer in reply.lower(), reply
    else:  # never told: no other fact passed off as the answer
        assert reply.startswith("I") and not any(w in reply for w in ("Sam", "Oslo")), reply


def test_say_that_again_repeats_the_previous_reply(model_with_drafts: DiffusionReply) -> None:
    """A repeat request retrieves "Of course. {previous}"-style drafts filled from the history."""
    said = "Why did the scarecrow win an award? He was outstanding in his field."
    convo = Conversation(assistant_name="Quinn")
    convo.add_user("Tell me a joke.")
    convo.add_assistant(said)
    conversation = convo.prompt_for("Can you repeat that?", NOW)
    model_with_drafts.engine.reset()
    reply = model_with_drafts.reply(conversation)
    assert "scarecrow win an award" in reply and "outstanding in his field" in reply, reply


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
    messages = Conversation("Quinn").prompt_for(user, NOW)
    assert messages[0]["content"].endswith(f" is {result}.")
    model_with_drafts.engine.reset()
    reply = model_with_drafts.reply(messages)
    assert result in reply.split() or f"{result}." in reply.split(), reply
