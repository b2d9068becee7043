"""The draft index builder (``recipe/drafts.py``): reply templates from the training sets, filled at
serving time from the typed context the agent wrote (``agent.prompt.Context``); the committed data's
contexts are the ones the agent writes; the semantic feature table."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from agent.prompt import Context, Conversation, Prompt
from dlm_core.train.data import read_chat_jsonl
from recipe.context import context_of
from recipe.drafts import build

NOW = datetime(2026, 11, 26, 14, 5)  # a Thursday
DATA = Path(__file__).resolve().parents[2] / "recipe" / "data"


def turn(user: str, context: Context, history: tuple[dict[str, str], ...] = ()) -> Prompt:
    """A user message as the agent sends it: the context's sentences, the history, the message."""
    messages = [{"role": "system", "content": context.system}, *history, {"role": "user", "content": user}]
    return Prompt(messages, context)


def example(prompt: Prompt, reply: str, kind: str = "") -> str:
    record: dict = {"messages": [*prompt, {"role": "assistant", "content": reply}]}
    return json.dumps(record | ({"kind": kind} if kind else {}))


def test_repeat_drafts_come_only_from_replies_that_repeat(tmp_path: Path) -> None:
    ada = Context("Ada", NOW)

    def chat(*turns: str) -> str:
        roles = ["user", "assistant"] * len(turns)
        history = tuple({"role": r, "content": t} for r, t in zip(roles, turns[:-2]))
        return example(turn(turns[-2], ada, history), turns[-1])

    lines = [
        chat("What time is it?", "It's 2:05 PM."),
        chat("Tell me a joke.", "Why did the cow cross the road?", "Say that again.", "Sure. Why did the cow cross the road?"),
        # The same reply twice by chance is not a repeat; other history-dependent answers are skipped.
        chat("Say something nice.", "You are great.", "say something nice", "You are great."),
        chat("I'm Bo.", "Hi Bo.", "What's my name?", "You're Bo."),
    ]  # fmt: skip
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    index = build(tmp_path / "train.jsonl")
    assert dict(zip(index.prompts, index.replies)) == {
        "what time is it": "It's {time}.",
        "say that again": "Sure. {previous}",
    }
    history = ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there!"})
    asked = turn("say that again please", ada, history)
    assert index.draft(asked, asked.context) == "Sure. Hello there!"
    # Without a previous reply there is nothing to repeat: no draft rather than a wrong one.
    assert index.draft(turn("say that again", ada), ada) is None
    assert index.draft(turn("what time is it", ada), ada) == "It's 2:05 PM."
    # Without the typed context no value is filled in (the sentences are never read back).
    assert index.draft(turn("what time is it", ada), None) is None


def test_memory_question_drafts_say_the_fact_or_that_it_was_never_told(tmp_path: Path) -> None:
    """A question about a remembered fact keeps both training answers and drafts the one the context
    (the agent's memory) can fill; only a question about the same thing, asked by the user."""

    def chat(kind: str, *turns: str) -> str:
        convo = Conversation(assistant_name="Ada")
        for user, assistant in zip(turns[:-2:2], turns[1:-2:2]):
            convo.add_user(user)
            convo.add_assistant(assistant)
        return example(convo.prompt_for(turns[-2], NOW), turns[-1], kind)

    lines = [
        chat("user_fact", "I love tacos.", "Yum!", "What's my favorite food?", "Your favorite food is tacos."),
        chat("user_fact_unknown", "I live in Oslo.", "Nice.", "What's my favorite food?", "I don't think you've told me that yet."),
        chat("user_fact", "My dog's name is Rex.", "Aw.", "What's my dog called?", "It's Rex, your dog."),
        chat("user_fact_unknown", "I enjoy hiking.", "Fun.", "What's my dog called?", "I don't know that one yet."),
        chat("user_fact", "what's your name", "I'm Ada."),
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
        prompt = convo.prompt_for(asked, NOW)
        return index.draft(prompt, prompt.context)

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


def test_sum_drafts_take_the_result_the_agent_worked_out(tmp_path: Path) -> None:
    def asked(user: str, now: datetime = NOW) -> Prompt:
        return Conversation(assistant_name="Ada").prompt_for(user, now)

    lines = [
        example(asked("What is 7 times 8?"), "The answer is 56."),
        # On the 14th of a month a result of 14 is still the result, not the day.
        example(asked("7 plus 7", NOW.replace(day=14)), "7 plus 7 is 14."),
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    index = build(tmp_path / "train.jsonl")
    assert dict(zip(index.prompts, index.replies)) == {
        "what is 7 times 8": "The answer is {result}.",
        "7 plus 7": "{expr} is {result}.",
    }

    def draft(user: str) -> str | None:
        prompt = asked(user)
        return index.draft(prompt, prompt.context)

    assert draft("what is 12 times 3") == "The answer is 36."
    assert draft("20 plus 7") == "20 plus 7 is 27."
    # No sum worked out (a chain): no draft rather than the training example's number.
    assert draft("what is 2 times 3 times 4") is None
    # A number is one term however it is written: a sum asked in words finds the sums in digits.
    assert draft("what is twelve times three") == "The answer is 36."
    assert draft("What's forty-three plus seven?") == "43 plus 7 is 50."


def test_part_of_day_drafts_follow_the_context_and_any_part_word(tmp_path: Path) -> None:
    def at(hour: int) -> Context:
        return Context("Ada", NOW.replace(hour=hour))

    # Two files, as `make train` builds the index from every single-exchange training set.
    (tmp_path / "train.jsonl").write_text(example(turn("good evening", at(9)), "Good evening!") + "\n")
    parts = example(turn("Is it afternoon yet?", at(9)), "It's the morning. The time is 9:05 AM.")
    (tmp_path / "parts.jsonl").write_text(parts + "\n")
    index = build(tmp_path / "train.jsonl", tmp_path / "parts.jsonl")
    # The part of the day is a context value: the draft says the one it is now, not the example's.
    assert dict(zip(index.prompts, index.replies)) == {
        "good evening": "Good evening!",
        "is it afternoon yet": "It's {part}. The time is {time}.",
    }
    assert (
        index.draft(turn("is it afternoon yet", at(19)), at(19)) == "It's the evening. The time is 7:05 PM."
    )
    # Another part word finds the same question; a greeting still finds its greeting.
    assert (
        index.draft(turn("Is it the evening yet?", at(14)), at(14))
        == "It's the afternoon. The time is 2:05 PM."
    )
    assert index.draft(turn("Good evening.", at(14)), at(14)) == "Good evening!"


@pytest.mark.parametrize(
    "name", ["heldout.jsonl", "train_parts.jsonl", "train_sums.jsonl", "train_memory.jsonl"]
)
def test_the_committed_data_holds_the_contexts_the_agent_writes(name: str) -> None:
    """The builder and the evaluation work each example's context out again (``context_of``): for every
    committed example it must be the context the example holds, sentence for sentence."""
    chats = read_chat_jsonl(DATA / name)
    assert chats
    for chat in chats:
        context = context_of(chat[:-1])
        assert context is not None and context.system == chat[0]["content"], chat


def test_no_context_sentence_no_context() -> None:
    assert context_of([{"role": "user", "content": "hi"}]) is None
    assert (
        context_of([{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "hi"}])
        is None
    )


def test_the_semantic_table_leaves_digits_and_specials_blank() -> None:
    """Digits are copied, not understood: their rows of the frozen table stay zero (model card, point 24)."""
    import numpy as np

    from recipe.init_embeddings import features

    old = np.arange(1.0, 13.0, dtype=np.float32).reshape(4, 3) ** 2  # four SmolLM2 rows
    table = features(old, [-1, 0, 2, 3], ["<|mask|>", " evening", "7", " 12"])
    assert not table[0].any() and table[1].any()  # a special token; a word
    assert not table[2].any() and not table[3].any()  # tokens with a digit
