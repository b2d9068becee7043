"""The context the agent injects: date, time, part of day, and sums it works out from the request."""

from __future__ import annotations

from datetime import datetime

import pytest

from agent.calculator import arithmetic_fact, number_in_words, worked_sum
from agent.prompt import Conversation, PromptFit, PromptTooLong, context_sentences, fit_prompt, part_of_day


@pytest.mark.parametrize(
    ("text", "fact"),
    [
        ("What is 12 times 3?", "12 times 3 is 36."),
        ("hey milo, 24 divided by 2", "24 divided by 2 is 12."),  # as the ASR writes it
        ("what's forty-three plus seventy seven", "43 plus 77 is 120."),  # numbers as words
        ("one hundred and five minus five", "105 minus 5 is 100."),
        ("a hundred times two", "100 times 2 is 200."),
        ("What's 1,000 plus 1?", "1000 plus 1 is 1001."),
        ("3 x 4", "3 times 4 is 12."),
        ("10 / 4", "10 divided by 4 is 2.5."),
        ("what is 7 - 2", "7 minus 2 is 5."),
        ("1 divided by 3", "1 divided by 3 is about 0.33."),
        ("5 minus 9", "5 minus 9 is minus 4."),
        ("What does 6 multiplied by 7 make?", "6 times 7 is 42."),
    ],
)
def test_a_spoken_sum_is_worked_out(text: str, fact: str) -> None:
    assert arithmetic_fact(text) == fact
    worked = worked_sum(text)  # the same sum as values, for the draft index
    assert worked is not None and worked.sentence == fact
    assert fact.startswith(f"{worked.expr} is ") and fact.endswith(f" {worked.result}.")


@pytest.mark.parametrize(
    "text",
    [
        "What time is it?",
        "I have 2 kids and 3 dogs.",
        "2 plus 3 times 4",  # a chain: the order of operations would be a guess
        "What is 5 plus 1 and 2 minus 1?",  # two sums: which one was asked?
        "5 divided by 0",
        "twenty twelve plus one",  # not one number
        "one two three",
        "What happened on 9/11?",  # a date, not 9 divided by 11
        "Tell me about 1939-1945.",  # a range
        "Call 555-1234.",
    ],
)
def test_no_sentence_rather_than_a_wrong_one(text: str) -> None:
    assert arithmetic_fact(text) is None


@pytest.mark.parametrize(
    ("n", "words"), [(0, "zero"), (7, "seven"), (19, "nineteen"), (40, "forty"), (43, "forty-three"),
                     (100, "one hundred"), (144, "one hundred forty-four"), (999, "nine hundred ninety-nine")],
)  # fmt: skip
def test_numbers_in_words_read_back_as_the_same_numbers(n: int, words: str) -> None:
    assert number_in_words(n) == words
    assert arithmetic_fact(f"what's {words} plus 1") == f"{n} plus 1 is {n + 1}."


def test_numbers_in_words_cover_what_the_sums_use() -> None:
    for n in range(1000):
        assert arithmetic_fact(f"{number_in_words(n)} times 1") == f"{n} times 1 is {n}."
    with pytest.raises(ValueError):
        number_in_words(1000)


@pytest.mark.parametrize(
    ("hour", "part"),
    [(4, "nighttime"), (5, "the morning"), (11, "the morning"), (12, "the afternoon"), (17, "the evening"),
     (20, "the evening"), (21, "nighttime"), (0, "nighttime")],
)  # fmt: skip
def test_part_of_day_boundaries(hour: int, part: str) -> None:
    assert part_of_day(datetime(2026, 11, 26, hour, 30)) == part


def test_the_sum_goes_into_this_turns_context_only() -> None:
    now = datetime(2026, 11, 26, 19, 5)
    convo = Conversation(assistant_name="Quinn")
    plain = context_sentences("Quinn", now)
    assert plain == (
        "Your name is Quinn. Today is Thursday, November 26, 2026. The time is 7:05 PM. It is the evening."
    )
    asked = convo.messages_for("what's 7 times 8", now)
    assert asked[0].content == f"{plain} 7 times 8 is 56."
    convo.add_user("what's 7 times 8")
    convo.add_assistant("7 times 8 is 56.")
    # The next turn asks something else: the earlier sum stays in the history, not in the context.
    assert convo.messages_for("thanks", now)[0].content == plain


# -- fitting the prompt to the model's context -------------------------------------------------------------
def words_chat(messages: list[dict[str, str]]) -> int:
    """A word-level stand-in for a chat template: 3 tokens per message plus one per word."""
    return sum(3 + len(m["content"].split()) for m in messages)


def fit(messages: list[dict[str, str]], budget: int) -> PromptFit:
    return fit_prompt(messages, budget, words_chat, str.split, " ".join)  # type: ignore[arg-type]


def chat(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in pairs]


def test_a_prompt_that_fits_is_left_alone() -> None:
    messages = chat(("system", "Your name is Quinn."), ("user", "Hi there"))
    assert fit(messages, 100) == PromptFit(messages, words_chat(messages))


def test_the_oldest_exchanges_go_first_a_whole_exchange_at_a_time() -> None:
    messages = chat(("system", "ctx"), ("user", "one two three"), ("assistant", "four five"),
                    ("user", "six"), ("assistant", "seven"), ("user", "eight nine"))  # fmt: skip
    result = fit(messages, 17)
    assert result.messages == chat(
        ("system", "ctx"), ("user", "six"), ("assistant", "seven"), ("user", "eight nine")
    )
    assert result.dropped_messages == 2 and result.cut_tokens == 0 and result.tokens <= 17


def test_an_oversized_message_keeps_its_end_and_the_system_context() -> None:
    long = " ".join(f"w{i}" for i in range(500)) + " what do you think"
    messages = chat(("system", "ctx"), ("user", "old"), ("assistant", "reply"), ("user", long))
    result = fit(messages, 50)
    assert result.messages[0] == {"role": "system", "content": "ctx"} and len(result.messages) == 2
    kept = result.messages[1]["content"]
    assert kept.endswith("what do you think") and result.tokens <= 50 and result.trimmed
    assert result.dropped_messages == 2 and result.cut_tokens == len(long.split()) - len(kept.split()) - 1
    with pytest.raises(PromptTooLong):
        fit(messages, 5)  # not even the system context and an empty message fit


def test_a_reply_revised_to_what_was_heard() -> None:
    convo = Conversation()
    assert not convo.revise_last_reply("anything")  # no exchange yet
    convo.add_user("Tell me a joke")
    convo.add_assistant("Why did the chicken cross the road?")
    assert convo.revise_last_reply("Why did the")
    assert [m.content for m in convo.turns] == ["Tell me a joke", "Why did the"]
    convo.revise_last_reply("")  # nothing was heard: no reply in the history
    assert [m.role for m in convo.turns] == ["user"]
    convo.revise_last_reply("Why")  # and back
    assert [m.content for m in convo.turns] == ["Tell me a joke", "Why"]
