"""The agent's memory of what the user said about themselves (agent/memory.py) and where it goes."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from agent.memory import UserMemory, facts_in
from agent.prompt import Conversation, context_sentences
from recipe import intents

NOW = datetime(2026, 11, 26, 14, 5)


@pytest.mark.parametrize(
    ("said", "sentence"),
    [
        ("My name is Sam.", "The user's name is Sam."),
        ("hi i'm brian", "The user's name is Brian."),  # a name only (wamerican has no lower-case "brian")
        ("I'm Max.", "The user's name is Max."),  # "max" is a word too: the capital makes it a name
        ("my favorite color is navy blue", "The user's favorite color is navy blue."),
        ("Teal is my favourite colour.", "The user's favorite color is teal."),
        ("I live in new york city and I love it", "The user lives in New York City."),
        ("I just moved to Dallas with my wife.", "The user lives in Dallas."),
        ("i'm from phoenix", "The user lives in Phoenix."),  # lower case as ASR may give it: still a place
        ("you can call me mike", "The user's name is Mike."),
        ("We have a guinea pig called Biscuit.", "The user's guinea pig is called Biscuit."),
        ("my dog's name is rocky", "The user's dog is called Rocky."),
        ("I'm an engineer.", "The user works as an engineer."),
        ("I work as a bus driver.", "The user works as a bus driver."),
        ("I could eat dumplings every day.", "The user's favorite food is dumplings."),
        ("I love ice cream!", "The user's favorite food is ice cream."),
        ("In my free time I like knitting.", "The user's hobby is knitting."),
        ("I enjoy hiking.", "The user's hobby is hiking."),
    ],
)
def test_a_stated_fact_becomes_one_context_sentence(said: str, sentence: str) -> None:
    assert UserMemory.from_texts([said]).sentences() == (sentence,)


@pytest.mark.parametrize(
    "said",
    [
        "I'm tired.",
        "i'm max",  # lower case "max" is an ordinary word: not taken for a name
        "I'm American.",
        "I'm a bit hungry.",
        "I love you.",
        "I love everything about it.",
        "What's my name?",
        "Where do I live?",
        "My name is not important to you.",
        "I'm from work.",  # a place must look like one: a capital as said, or a proper noun
        "I live in a house.",
        "Call me later.",
        "I work as a team.",  # a job must be one
        "My job is boring.",
        "I could eat a horse every day.",  # no value starts with an article
        "My favorite food is anything.",
    ],
)
def test_questions_and_other_statements_state_nothing(said: str) -> None:
    assert facts_in(said) == []


def test_i_am_from_takes_the_place_said() -> None:
    assert UserMemory.from_texts(["I'm from Lisbon."]).sentences() == ("The user lives in Lisbon.",)


def test_a_correction_replaces_the_old_value_and_slots_keep_their_order() -> None:
    memory = UserMemory.from_texts(["I enjoy hiking.", "My name is Sam.", "Actually, call me Alex."])
    assert memory.sentences() == ("The user's name is Alex.", "The user's hobby is hiking.")
    memory.observe("My cat is named Otis. I also have a dog called Rex.")
    assert memory.sentences() == (
        "The user's name is Alex.",
        "The user's cat is called Otis.",
        "The user's dog is called Rex.",
        "The user's hobby is hiking.",
    )
    memory.clear()
    assert memory.sentences() == ()


def test_the_conversation_remembers_facts_past_its_history_window() -> None:
    convo = Conversation(assistant_name="Quinn", max_turns=2)
    convo.add_user("My name is Sam.")
    convo.add_assistant("Nice to meet you, Sam.")
    for i in range(4):  # pushes the introduction out of the two-exchange history
        convo.add_user(f"Tell me fact number {i}.")
        convo.add_assistant("Here is one.")
    messages = convo.messages_for("What's my name?", NOW)
    assert all(m.content != "My name is Sam." for m in messages)
    assert messages[0].content == context_sentences("Quinn", NOW) + " The user's name is Sam."


def test_a_fact_stated_in_the_turn_being_answered_is_not_injected_yet() -> None:
    """The context stays the one prefilled while the user spoke; the fact counts from the next turn."""
    convo = Conversation(assistant_name="Quinn")
    assert convo.messages_for("I live in Oslo.", NOW)[0].content == context_sentences("Quinn", NOW)
    convo.add_user("I live in Oslo.")
    convo.add_assistant("Oslo sounds lovely!")
    assert convo.messages_for("Where do I live?", NOW)[0].content.endswith(" The user lives in Oslo.")


def test_training_examples_carry_the_memory_the_agent_would_inject() -> None:
    """The data builder writes each example's context as serving builds it (``Example.agent_messages``)."""
    rng = random.Random(3)
    every = intents.all_intents([], rng, 0.25)  # (also sets up the history fillers)
    modes = [i for i in every if isinstance(i, intents.UserFactIntent)]
    ask, unknown = (i for i in modes if i.mode in ("ask", "unknown"))
    ctx = intents.random_ctx(rng)
    for intent in (ask, unknown):
        for _ in range(20):
            ex = intent.sample(rng, False, ctx)
            earlier = [m["content"] for m in ex.messages[1:-2] if m["role"] == "user"]
            expected = UserMemory.from_texts(earlier).sentences()
            system = ex.agent_messages[0]["content"]
            assert system.startswith(ctx.system) and system.endswith(" ".join(expected))
            if intent.mode == "unknown":  # the question asks for a fact no sentence states
                assert all(v.lower() not in " ".join(expected).lower() for v in ex.expect_none[:1])
