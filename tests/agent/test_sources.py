"""Grounding: offline sources answer what they cover, say "I don't know" for what they cover but lack,
and stay out of everything else; the real pipeline speaks the source's fact with the shipped model."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from agent.config import load_config
from agent.events import Event, Grounded, LatencyReport
from agent.pipeline import Services, VoicePipeline
from agent.prompt import Conversation
from agent.sources import Coverage, SourceAnswer, coverage_of, grounded_reply, look_up, phrases
from agent.sources.fun import JOKES
from audio.sinks import MemorySink

NOW = datetime(2026, 12, 7, 14, 5)


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        ("What's the capital of Italy?", "The capital of Italy is Rome."),
        ("Hey Quinn, what is the capital of France?", "The capital of France is Paris."),
        ("Capital of Mongolia?", "The capital of Mongolia is Ulaanbaatar."),
        ("Italy's capital?", "The capital of Italy is Rome."),
        ("What's the capital of the UK?", "The capital of the United Kingdom is London."),
        ("What is the capital of the United States?", "The capital of the United States is Washington, D.C."),
        ("Which city is the capital of Australia?", "The capital of Australia is Canberra."),
        ("What currency does Japan use?", "The currency of Japan is the yen."),
        ("Where is Kenya?", "Kenya is in Sub-Saharan Africa."),
        ("How many feet are in a mile?", "There are 5280 feet in a mile."),
        ("How many seconds in an hour?", "There are 3600 seconds in an hour."),
        ("Convert 10 miles to kilometers.", "10 miles is about 16.1 kilometers."),
        (
            "What is 100 degrees Fahrenheit in Celsius?",
            "100 degrees Fahrenheit is about 37.8 degrees Celsius.",
        ),
        ("What's 30 celsius in fahrenheit?", "30 degrees Celsius is 86 degrees Fahrenheit."),
        ("How many ounces are in a cup?", "There are 8 fluid ounces in a cup."),
        ("what is two kilos in pounds", "2 kilograms is about 4.41 pounds."),
        ("What does ubiquitous mean?", "The word ubiquitous means being present everywhere at once."),
        ("Define ephemeral.", "The word ephemeral means lasting a very short time."),
        (
            "What do cats mean?",
            "The word cat means a feline mammal usually having thick soft fur and no ability to roar.",
        ),
        (
            "What's the definition of run?",
            "The word run means to move fast by using one's feet, with one foot off the ground at any given time.",
        ),
    ],
)
def test_a_covered_question_gets_the_source_fact(question: str, sentence: str) -> None:
    answer = look_up(question)
    assert answer is not None and answer.coverage is Coverage.ANSWER
    assert answer.sentence == sentence
    assert answer.said_by(sentence)


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        ("What's the capital of Atlantis?", "I don't know the capital of Atlantis."),
        ("What is the currency of Narnia?", "I don't know the currency of Narnia."),
        ("How many smoots are in a mile?", "I don't know the unit smoots."),
        ("Convert 5 miles to seconds.", "I don't know how: miles and seconds measure different things."),
        ("How many days are in a month?", "I don't know: a month has no fixed number of days."),
        ("Tell me a fun fact about quantum physics.", "I don't know a fun fact about quantum physics."),
        ("What does flibbertigibbetx mean?", "I don't know the word flibbertigibbetx."),
    ],
)
def test_a_covered_kind_without_an_answer_is_an_honest_dont_know(question: str, sentence: str) -> None:
    answer = look_up(question)
    assert coverage_of(answer) is Coverage.UNKNOWN
    assert answer is not None and answer.sentence == sentence and "don't know" in answer.sentence


@pytest.mark.parametrize(
    "text",
    [
        "What's the weather like?",
        "Where is my phone?",
        "How many people are in a family?",
        "I live in the capital of France.",  # tells, does not ask
        "Who is the president of France?",
        "How are you today?",
        "What time is it?",
        "I feel lonely sometimes.",
        "What is the time?",  # "what is X" is no request for a definition
        "What is a black hole?",
    ],
)
def test_a_request_no_source_covers_is_left_alone(text: str) -> None:
    assert coverage_of(look_up(text)) is Coverage.NOT_COVERED


def test_a_follow_up_asks_the_previous_question_of_another_country() -> None:
    before = "What's the capital of Spain?"
    for follow_up in ("And of Portugal?", "What about Portugal?", "How about Portugal?"):
        answer = look_up(follow_up, before)
        assert answer is not None and answer.sentence == "The capital of Portugal is Lisbon."
    assert look_up("And of Atlantis?", before).sentence == "I don't know the capital of Atlantis."
    assert look_up("What about you?", before) is None  # not a country: not a follow-up
    assert look_up("And of Portugal?") is None  # no question before it
    assert (
        look_up("What about Japan?", "What currency does Italy use?").sentence
        == "The currency of Japan is the yen."
    )


def test_jokes_riddles_and_facts_vary_and_another_one_is_a_new_one() -> None:
    first = look_up("Tell me a joke.", seed=3)
    again = look_up("Another one!", "Tell me a joke.", seed=3)
    assert first is not None and again is not None and first.kind == again.kind == "joke"
    assert first.sentence != again.sentence
    assert look_up("Do you know any good jokes?").sentence in JOKES
    nerdy = look_up("Tell me a programming joke.")
    assert nerdy is not None and nerdy.source == "pyjokes"
    riddle = look_up("Tell me a riddle.")
    assert riddle is not None and riddle.kind == "riddle" and "?" in riddle.sentence
    space = look_up("Tell me something interesting about space.")
    assert space is not None and space.kind == "fun_fact" and space.subject == "space"


def test_the_model_phrasing_is_spoken_only_when_it_says_the_fact_and_nothing_else() -> None:
    answer = look_up("What's the capital of Italy?")
    assert answer is not None
    q = "What's the capital of Italy?"
    assert phrases(answer, "The capital is Rome.", q)
    assert phrases(answer, "Rome is the capital of Italy.", q)
    for bad in ("The capital is Italy.", "The capital of Italy is Rome, near Paris.", "", "Rome Rome Bka."):
        assert not phrases(answer, bad, q)
        assert grounded_reply(answer, bad, q).spoken == answer.sentence
    chosen = grounded_reply(answer, "Rome is the capital of Italy.", q)
    assert chosen.by == "model" and chosen.spoken == "Rome is the capital of Italy."


def test_the_context_carries_the_fact_and_follow_ups_read_the_history() -> None:
    conv = Conversation()
    ctx = conv.context_for("What's the capital of Spain?", NOW)
    assert ctx.grounding is not None and ctx.system.endswith("The capital of Spain is Madrid.")
    assert ctx.values()["answer"] == "The capital of Spain is Madrid."
    conv.add_user("What's the capital of Spain?")
    conv.add_assistant("The capital of Spain is Madrid.")
    follow = conv.context_for("And of Portugal?", NOW)
    assert isinstance(follow.grounding, SourceAnswer) and follow.grounding.must_say == ("Lisbon",)
    assert conv.context_for("How are you?", NOW).grounding is None


# -- the real pipeline's reply path, shipped model ---------------------------------------------------
@pytest.fixture(scope="module")
def services():
    return Services.load(load_config())


def _turns(services: Services, texts: list[str], overrides: list[str] | None = None) -> list[list[Event]]:
    """Typed turns through the pipeline, one after the other; each turn's events."""
    cfg = load_config(overrides=overrides)
    services.reply.reconfigure(cfg.lm)
    pipeline = VoicePipeline(cfg, services, MemorySink(services.tts.sample_rate), clock=lambda: NOW)
    events: list[Event] = []
    pipeline.bus.subscribe(events.append)

    async def run() -> None:
        for text in texts:
            done = asyncio.Event()
            unsubscribe = pipeline.bus.subscribe(lambda e, d=done: isinstance(e, LatencyReport) and d.set())
            pipeline.respond_to_text(text)
            await done.wait()
            unsubscribe()

    asyncio.run(run())
    return [[e for e in events if e.turn == turn] for turn in sorted({e.turn for e in events})]


@pytest.mark.parametrize("phrase", ["false", "true"])
def test_the_pipeline_speaks_the_fact_a_follow_up_and_an_honest_dont_know(services, phrase: str) -> None:
    turns = _turns(
        services,
        ["What's the capital of Spain?", "And of Portugal?", "What's the capital of Atlantis?",
         "How many feet are in a mile?"],
        [f"lm.phrase_grounded={phrase}"],
    )  # fmt: skip
    replies = [next(e for e in t if isinstance(e, LatencyReport)).reply for t in turns]
    assert "Madrid" in replies[0]
    assert "Lisbon" in replies[1]
    assert "don't know" in replies[2] and "Atlantis" in replies[2]
    assert "5280" in replies[3]
    grounded = [next(e for e in t if isinstance(e, Grounded)) for t in turns]
    assert [g.coverage for g in grounded] == ["answer", "answer", "unknown", "answer"]
    assert all(g.spoken_by in ("model", "source") for g in grounded)
    if phrase == "true":
        assert all(g.model_text for g in grounded)  # the model was asked, its phrasing checked


@pytest.mark.parametrize(
    ("request_text", "never_said"),
    [
        ("tell me a fun fact about octopus is", "octopus is"),
        ("how many days in a weak", "weak"),
        ("How many days are there in a leap year?", "leap year"),
    ],
)
def test_an_honest_reply_never_says_back_words_the_matcher_caught_by_mistake(
    request_text: str, never_said: str
) -> None:
    """Blind labels of 2026-12-07 called "I don't know the unit weak." garbled: only names are said back."""
    answer = look_up(request_text)
    assert answer is not None and answer.coverage is Coverage.UNKNOWN
    assert "don't know" in answer.sentence and never_said not in answer.sentence.lower()


def test_the_name_of_a_countrys_capital_is_its_capital() -> None:
    answer = look_up("Tell me the name of Germany's capital.")
    assert answer is not None and answer.sentence == "The capital of Germany is Berlin."


def test_a_joke_asked_for_again_in_the_next_turn_is_another_one() -> None:
    """make demo, 2026-12-07 23:30: "tell me a funny joke" then "Do you know any good jokes?" got the
    same joke twice within a minute."""
    conv = Conversation("Quinn")
    first = conv.context_for("Tell me a funny joke.", NOW).grounding
    conv.add_user("Tell me a funny joke.")
    assert first is not None
    conv.add_assistant(first.sentence)
    second = conv.context_for("Do you know any good jokes?", NOW).grounding
    assert second is not None and second.kind == "joke" and second.sentence != first.sentence
