"""The reply gate with the shipped model: nothing it judges garbled is spoken, good replies pass, the
fallback chain keeps its order, and the decision is a typed event in the turn's trace.

Garbled candidates are real: replies the shipped model gave (issue 20, the 2026-12-07 listener run)
and the model's own outputs here; nothing stands in for the model.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from agent.config import GateSection, load_config
from agent.events import LatencyReport, LMFinished, ReplyGated, TTSChunk
from agent.gated_reply import CANDIDATES, GatedReply, gate_input, with_gate
from agent.pipeline import Services
from agent.prompt import Conversation
from agent.reply import DiffusionReply
from agent.reply_gate import (
    FEATURES,
    HONEST_REPLIES,
    GateError,
    GateModel,
    Lexicon,
    asks_about_user,
    honest_reply,
    recall_reply,
    request_kind,
    second_person,
    signals,
)
from agent.simulate import ScriptItem, ScriptRunner

DEMO = Path(__file__).resolve().parents[2] / "demo"
MANIFEST = {e["file"]: e for e in json.loads((DEMO / "manifest.json").read_text())}
CONTEXT = "Your name is Quinn. Today is Thursday, May 14, 2026. The time is 4:20 PM. It is the afternoon."

# Replies the shipped model spoke (issue 20 and the labelled listener run), all labelled garbled.
GARBLED = [
    (
        "Tell me something interesting about space.",
        "A interesting is a huge year about, about 1 deep in6 Earth.",
    ),
    ("Hi there, How are you today?", "It's Monday, December I I help you?"),
    ("What should I cook for dinner tonight?", "I's great news, you. about you!"),
    ("Why is the sky blue?", "Red, orange is the blue, blue, about the It's the sky said hello."),
    ("What's the capital of Spain?", "The capital of is the capital of Spain."),
    ("What's the capital of Japan?", "The capital of Japan is B."),
    ("Hey there, long time no see.", "It really does. the good to enjoy the moments."),
    ("What's the largest ocean on Earth?", "The Pacific Ocean is the largest ocean and the"),
]
# ... and fluent ones that fail the conversation (wrong by the rubric).
WRONG = [
    ("What's the capital of Italy?", "The capital is Italy."),
    ("Goodbye, talk to you later.", "It's 5:46 PM now."),
    ("Thanks, goodbye!", "Hello! How was your day?"),
]


def messages(user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": CONTEXT}, {"role": "user", "content": user}]


@pytest.fixture(scope="module")
def cfg():
    c = load_config()
    c.lm.threads = 1
    c.lm.prefill_while_listening = False
    return c


@pytest.fixture(scope="module")
def gated(cfg) -> GatedReply:
    model = GatedReply(DiffusionReply(cfg.lm), cfg.gate)
    model.warmup()
    return model


@pytest.fixture(scope="module")
def gate() -> GateModel:
    return GateModel.load()


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load()


def test_shipped_weights_cover_the_signals(gate):
    assert set(gate.weights) == set(FEATURES)
    assert 0 < gate.threshold <= 0.5
    assert gate.meta["held_out"]["garbled"]["recall"] >= 0.95  # what the fit measured, kept with it


@pytest.mark.parametrize(("user", "reply"), GARBLED + WRONG)
def test_garbled_and_wrong_replies_are_blocked_even_beside_a_good_draft(user, reply, gate, lexicon):
    """A good draft retrieved for the message does not let a broken or wrong reply through."""
    good_draft = "I'm not sure about that one."
    verdict = gate.judge(signals(gate_input(messages(user), reply, None, good_draft), lexicon))
    assert not verdict.passed and verdict.reasons


@pytest.mark.parametrize(
    ("reply", "signal"),
    [
        ("A interesting is a huge year about, about 1 deep in6 Earth.", "nonwords"),
        ("It's Monday, December I I help you?", "repeats"),
        ("The capital of is the capital of Spain.", "bad_pairs"),
        ("The Pacific Ocean is the largest ocean and the", "no_end_punct"),
        ("It really does. the good to enjoy the moments.", "lower_start"),
    ],
)
def test_each_form_signal_fires_on_its_kind_of_garbling(reply, signal, lexicon):
    s = signals(gate_input(messages("Tell me something."), reply, None, None), lexicon)
    assert s[signal] > 0
    clean = signals(gate_input(messages("Tell me something."), "Honey never spoils.", None, None), lexicon)
    assert clean[signal] == 0


def test_content_signals(lexicon):
    def s(user: str, reply: str) -> dict[str, float]:
        return signals(gate_input(messages(user), reply, None, None), lexicon)

    assert s("What's the capital of Italy?", "The capital is Italy.")["echo_question"] == 1
    assert s("What's the capital of Italy?", "The capital of Italy is Rome.")["echo_question"] == 0
    assert s("Goodbye, talk to you later.", "It's 5:46 PM now.")["unasked_time"] == 1
    assert s("What time is it?", "It's 5:46 PM now.")["context_mismatch"] == 1  # the context says 4:20
    assert s("What time is it?", "It's 4:20 PM now.")["context_mismatch"] == 0
    assert s("Hi!", "Your name is Quinn. Today is Thursday, May 14, 2026.")["context_copy"] == 2
    assert s("Thanks, goodbye!", "Hello! How was your day?")["farewell_mismatch"] == 1
    assert s("I'm nervous about my exam.", "Awesome! You must be thrilled.")["cheer_on_sad"] == 1
    assert s("Hi!", "")["empty"] == 1
    told = [{"role": "system", "content": CONTEXT}, {"role": "user", "content": "Hi, I'm Tomasz."},
            {"role": "assistant", "content": "Hi Tomasz!"}, {"role": "user", "content": "Who am I?"}]  # fmt: skip
    assert signals(gate_input(told, "Your name is Tomasz.", None, None), lexicon)["recalls_user"] == 1
    assert (
        signals(gate_input(told, "Your name is Quinn.", None, None), lexicon)["recalls_user"] == 1
    )  # context
    assert signals(gate_input(told, "You are you.", None, None), lexicon)["recalls_user"] == 0


def test_an_empty_reply_is_never_passed(gate, lexicon):
    verdict = gate.judge(signals(gate_input(messages("Hi!"), "  ", None, None), lexicon), threshold=1.0)
    assert not verdict.passed and verdict.reasons == ("empty",)


def test_request_kinds_get_fitting_honest_replies():
    assert honest_reply("What's the tallest building in Peru?") == HONEST_REPLIES["question"]
    assert honest_reply("Order me a pizza.") == HONEST_REPLIES["request"]
    assert honest_reply("I feel lonely sometimes.") == HONEST_REPLIES["sad"]
    assert honest_reply("Thanks, goodbye!") == HONEST_REPLIES["farewell"]
    assert honest_reply("Thank you so much.") == HONEST_REPLIES["thanks"]
    assert honest_reply("Hi there, how are you today?") == HONEST_REPLIES["how_are_you"]
    assert honest_reply("I baked bread for the first time.") == HONEST_REPLIES["statement"]
    assert honest_reply("Honestly, I'm not doing great.") == HONEST_REPLIES["sad"]
    assert request_kind("Do you ever get bored?") == "question"  # about the agent, not sad news
    assert request_kind("Howdy, partner.") == "greeting"
    assert request_kind("Have a nice evening.") == "farewell"
    assert honest_reply("purple monkey") == HONEST_REPLIES["unclear"]
    assert request_kind("") == "unclear"


def test_bad_weights_file_gives_a_clear_error(tmp_path):
    with pytest.raises(GateError, match="not found"):
        GateModel.load(tmp_path / "missing.json")
    bad = tmp_path / "gate.json"
    bad.write_text(json.dumps({"weights": {"made_up": 1.0}, "bias": 0, "threshold": 0.5}))
    with pytest.raises(GateError, match="made_up"):
        GateModel.load(bad)


def test_engine_reports_a_reveal_probability_per_token(gated):
    engine = gated.inner.engine
    result = engine.generate(messages("Hello there."), gated.inner.options)
    assert result.token_ids and len(result.confidences) == len(result.token_ids)
    assert all(0.0 < p <= 1.0 for p in result.confidences if not math.isnan(p))
    assert sum(len(b.confidences) for b in result.blocks) == len(result.confidences)


@pytest.mark.parametrize(
    "user",
    [u for u, _ in GARBLED + WRONG]
    + ["What time is it?", "Turn off the lights.", "What's two plus two?", "I feel lonely sometimes."],
)
def test_the_model_reply_is_spoken_only_if_it_passes(user, gated, cfg):
    """Real model outputs: whatever the model says, the spoken text is the first candidate that passed
    (in the chain's order), and a blocked model reply is never the one spoken."""
    conv = Conversation(cfg.agent.name, cfg.agent.history_turns)
    gated.reset()
    prompt = conv.prompt_for(user, datetime(2026, 5, 14, 16, 20))
    spoken = gated.reply(prompt)
    d = gated.last_gate
    assert d is not None and spoken == d.text
    order = [t.candidate for t in d.tried]
    if prompt.context.grounding is not None:  # an offline source answers it: its checked fact is spoken
        assert order == ["source"] and d.candidate == "source"
        assert prompt.context.grounding.sentence in spoken or d.reason == "grounded (model)"
        return
    assert order == sorted(order, key=CANDIDATES.index) and order[0] == "model"
    assert all(not t.verdict.passed for t in d.tried[:-1])  # every candidate before the spoken one failed
    assert d.tried[-1].verdict.passed and d.tried[-1].candidate == d.candidate
    if not d.tried[0].verdict.passed:
        assert spoken != d.tried[0].text or d.candidate != "model"
        assert d.reason.startswith("model:")
    else:
        assert d.reason == "passed"


def test_fallback_order_with_constructed_candidates(gated, cfg):
    """A garbled model reply with a good draft speaks the draft; with a garbled draft too and the
    re-decode on, the real re-decode comes next; what fails all gets the honest reply."""
    msgs = gated.inner.fit(messages("What's the capital of Italy?")).messages
    garbled, t0 = "The capital is Italy.", time.perf_counter()
    d = gated._choose(msgs, garbled, [0.5] * 5, "The capital of Italy is Rome.", t0)
    assert (d.candidate, d.text) == ("draft", "The capital of Italy is Rome.")
    assert [t.candidate for t in d.tried] == ["model", "draft"]

    d = gated._choose(msgs, garbled, [0.5] * 5, "The the capital capital is is.", t0)
    assert [t.candidate for t in d.tried] == ["model", "draft", "honest"]
    assert d.text == HONEST_REPLIES["question"] and "draft:" in d.reason

    redecoding = GatedReply(gated.inner, replace(cfg.gate, redecode=True, redecode_within_ms=1e9))
    d = redecoding._choose(msgs, garbled, [0.5] * 5, None, time.perf_counter())
    assert [t.candidate for t in d.tried][:2] == ["model", "redecode"]
    assert d.candidate in ("redecode", "honest") and d.candidate == d.tried[-1].candidate
    if d.candidate == "redecode":
        assert d.tried[1].verdict.passed
    # Out of budget: no re-decode at all.
    late = GatedReply(gated.inner, replace(cfg.gate, redecode=True, redecode_within_ms=0.0))
    d = late._choose(msgs, garbled, [0.5] * 5, None, time.perf_counter())
    assert [t.candidate for t in d.tried] == ["model", "honest"]


def test_with_gate_wraps_only_when_enabled(gated, cfg):
    assert with_gate(gated, replace(cfg.gate, enabled=False)) is gated.inner
    assert isinstance(with_gate(gated.inner, cfg.gate), GatedReply)
    assert with_gate(gated, cfg.gate) is gated  # same settings: the same wrapper
    assert GateSection().enabled  # on by default


@pytest.fixture(scope="module")
def services():
    return Services.load(load_config())


def test_pipeline_turn_carries_the_gate_decision(services):
    """A spoken turn: ReplyGated comes before the reply's audio, names what was spoken, and the
    latency report carries the candidate and its reason."""
    cfg = load_config()
    assert isinstance(services.reply, GatedReply)
    e = MANIFEST["01_greeting.wav"]
    runner = ScriptRunner(cfg, services)
    asyncio.run(runner.run([ScriptItem(DEMO / e["file"], e["text"], "respond", 0.0)]))
    events = runner.events
    gated_events = [ev for ev in events if isinstance(ev, ReplyGated)]
    assert gated_events, "no ReplyGated event in the turn"
    g = gated_events[-1]
    lm = [ev for ev in events if isinstance(ev, LMFinished) and ev.turn == g.turn][-1]
    tts = [ev for ev in events if isinstance(ev, TTSChunk) and ev.turn == g.turn and ev.t >= g.t]
    assert g.candidate in CANDIDATES and g.text == lm.text and g.gate_ms > 0
    assert tts and g.t <= tts[0].t  # judged before the first clause was synthesised
    assert " ".join(c.text for c in tts).split() == g.text.split()  # exactly the judged text is spoken
    report = [ev for ev in events if isinstance(ev, LatencyReport) and ev.turn == g.turn][0]
    assert report.reply_candidate == g.candidate and report.gate_reason == g.reason
    assert report.stages_ms["gate_ms"] == pytest.approx(g.gate_ms, abs=0.01)  # rounded to 0.01 ms


def test_profile_summary_counts_the_spoken_candidates():
    from agent.report import summarize

    rows = [
        {"file": f"{n}.wav", "turn": n, "transcript": "", "reply_candidate": c, "discarded_speculations": 0,
         "interrupted": False}
        for n, c in enumerate(["model", "honest", "draft", "honest", ""])
    ]  # fmt: skip
    assert summarize(rows)["reply_candidates"] == {"draft": 1, "honest": 2, "model": 1}
    assert "reply_candidates" not in summarize([{**rows[0], "reply_candidate": ""}])  # no gate, no line


def test_questions_about_the_user_get_their_own_words_back():
    assert asks_about_user("What's my wife called?") and asks_about_user("How old did I say I am?")
    assert asks_about_user("Who is coming to visit me?")
    assert not asks_about_user("What should I cook for dinner?") and not asks_about_user("Tell me a joke.")
    for other in ("Can you see me?", "Is my parcel out for delivery yet?", "how do i make a cup of tea",
                  "Tell me something interesting I might not know.", "Why not? My old speaker could."):  # fmt: skip
        assert not asks_about_user(other), other
    assert asks_about_user("Very long. Do you remember what my job is?")
    assert second_person("I'm 34 years old.") == "you're 34 years old"
    assert second_person("The user lives in Leeds.") == "you live in Leeds"
    assert second_person("Hi, I'm Tomasz, by the way.") == "you're Tomasz"
    told = ["The user's name is Priya.", "My sister Jo is visiting this weekend.", "I play the cello."]
    assert recall_reply("What instrument do I play?", told) == "You told me you play the cello."
    assert recall_reply("What is my name?", told) == "You told me your name is Priya."
    assert (
        recall_reply("Who is coming to visit me?", told[:2])
        == "You told me your sister Jo is visiting this weekend."
    )
    assert recall_reply("What's my dog called?", []) == "I don't think you've told me that yet."
    assert recall_reply("What's the capital of Peru?", told) is None


def test_a_blocked_reply_about_the_user_falls_back_to_what_they_said(gated):
    msgs = [
        {"role": "system", "content": CONTEXT},
        {"role": "user", "content": "I drive an old red Volvo."},
        {"role": "assistant", "content": "A classic!"},
        {"role": "user", "content": "What kind of car do I drive?"},
    ]
    d = gated._choose(msgs, "Weees make car and car.", [0.3] * 6, None, time.perf_counter())
    assert [t.candidate for t in d.tried] == ["model", "recall"]
    assert d.text == "You told me you drive an old red Volvo."


def test_a_batched_session_is_gated_and_grounded_as_the_plain_model_is(gated, cfg):
    """``quickturn serve`` batches replies across sessions: each session's view sits behind the same
    gate, judged with the same reveal probabilities, and a source's fact is spoken as it is."""
    from agent.reply_batch import BatchedReply

    batched = BatchedReply(gated.inner, max_batch=2, sessions=2)
    try:
        view = gated.behind_batch(batched).for_session("session-a")
        assert isinstance(view, GatedReply) and view.inner is not gated.inner
        conv = Conversation(cfg.agent.name, cfg.agent.history_turns)
        now = datetime(2026, 5, 14, 16, 20)
        for user in ("What's the capital of Spain?", "Tell me a riddle.", "I feel lonely sometimes."):
            prompt = conv.prompt_for(user, now)
            gated.reset()
            alone = gated.reply(prompt)
            spoken = view.reply(prompt)
            assert spoken == alone and view.last_gate is not None and gated.last_gate is not None
            assert view.last_gate.candidate == gated.last_gate.candidate
            assert view.last_gate.tried[0].verdict.score == pytest.approx(
                gated.last_gate.tried[0].verdict.score
            )
        assert "Madrid" in view.reply(conv.prompt_for("What's the capital of Spain?", now))
        assert view.last_gate.candidate == "source"
    finally:
        batched.close()


def test_a_lone_later_is_no_goodbye():
    """make demo, 2026-12-07 23:24: "I was thinking about going for a walk later." got "Goodbye!"."""
    from agent.reply_gate import request_kind, says_goodbye

    assert not says_goodbye("I was thinking about going for a walk later.")
    assert request_kind("I was thinking about going for a walk later.") == "statement"
    for bye in ("Later!", "See you later.", "Catch you later", "Bye now."):
        assert says_goodbye(bye) and request_kind(bye) == "farewell"


def test_a_draft_never_puts_its_own_name_where_the_user_gave_theirs(gated):
    """make demo, 2026-12-07 23:24: "My name is Sam." got the stored "Hello Will! I'll remember that."
    as written; the draft's wording with the user's own name is spoken instead, a made-up name never."""
    from agent.gated_reply import draft_in_users_words
    from agent.reply_gate import new_names

    msgs = messages("My name is Sam.")
    assert new_names("Hello Will! I'll remember that.", msgs) == {"Will"}
    assert new_names("Hello Sam! I'll remember that.", msgs) == set()
    fixed = draft_in_users_words("Hello Will! I'll remember that.", "Hello Sam! I'll remember that.", msgs)
    assert fixed == "Hello Sam! I'll remember that."
    assert (
        draft_in_users_words("Hello Will! I'll remember that.", "Hello Bob! I'll remember that.", msgs)
        is None
    )
    t0 = time.perf_counter()
    for model_reply in ("Hello Sam! I'll remember that.", "Hello Sa! remember that."):
        d = gated._choose(msgs, model_reply, [0.01] * 8, "Hello Will! I'll remember that.", t0)
        assert "Will" not in d.text
