"""Draft retrieval by meaning: the MiniLM encoder written here matches the reference BERT, a paraphrase
finds the draft word overlap misses, and a partial transcript encoded while the user speaks is reused."""

from __future__ import annotations

from datetime import datetime

import pytest
import torch

from agent.embedded.drafts import DraftIndex
from agent.embedded.meaning import SentenceEncoder, model_dir, prompt_vectors, shared_encoder
from agent.prompt import Conversation
from agent.reply import DRAFTS_FILE, EMBEDDED_MODEL

NOW = datetime(2026, 12, 7, 14, 5)


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return shared_encoder()


@pytest.fixture(scope="module")
def indexes() -> tuple[DraftIndex, DraftIndex]:
    words = DraftIndex.load(EMBEDDED_MODEL / DRAFTS_FILE)
    meaning = DraftIndex.load(EMBEDDED_MODEL / DRAFTS_FILE, retrieval="meaning", min_meaning=0.6)
    return words, meaning


def test_the_encoder_matches_the_reference_bert(encoder: SentenceEncoder) -> None:
    transformers = pytest.importorskip("transformers")  # dev extra: the reference, not used by serving
    texts = ["Do you remember my favorite food?", "What's my favorite food?", "hello there"]
    ref_model = transformers.BertModel.from_pretrained(str(model_dir())).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir()))
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = ref_model(**batch).last_hidden_state
    mask = batch["attention_mask"][:, :, None].float()
    ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    ours = encoder.encode_batch(texts)
    assert torch.allclose(ours, ref, atol=1e-5)
    assert float(ours[0] @ ours[1]) > float(ours[0] @ ours[2]) + 0.3  # a paraphrase is closer than small talk


def _prompt(ask: str, told: tuple[str, ...] = ()):
    conv = Conversation()
    for t in told:
        conv.add_user(t)
        conv.add_assistant("Got it.")
    return conv.prompt_for(ask, NOW)


@pytest.mark.parametrize(
    ("ask", "told", "expect"),
    [
        (
            "Do you remember my favorite food?",
            ("My favorite food is tacos.",),
            "Your favorite food is tacos.",
        ),
        ("Which mountain on Earth is the highest?", (), "Everest"),
        ("Who created you?", (), "built"),
        ("Do you get sleepy?", (), "tired"),
        ("What are the headlines today?", (), "news"),
    ],
)
def test_a_paraphrase_finds_the_draft_word_overlap_misses(
    indexes, ask: str, told: tuple[str, ...], expect: str
) -> None:
    words, meaning = indexes
    prompt = _prompt(ask, told)
    by_words = words.draft(prompt, prompt.context)
    by_meaning = meaning.draft(prompt, prompt.context)
    assert by_meaning is not None and expect in by_meaning
    assert by_words is None or expect not in by_words  # the paraphrase is one word overlap gets wrong


def test_a_remembered_fact_is_never_another_facts_draft(indexes) -> None:
    _, meaning = indexes
    prompt = _prompt("Do you remember my favorite color?", ("My favorite food is tacos.",))
    draft = meaning.draft(prompt, prompt.context)
    assert draft is None or "tacos" not in draft


def test_a_request_with_no_stored_answer_gets_no_draft(indexes) -> None:
    _, meaning = indexes
    for ask in ("What's the stock price of Apple?", "How do I fix a leaking tap?"):
        prompt = _prompt(ask)
        assert meaning.draft(prompt, prompt.context) is None


def test_the_partial_transcript_is_encoded_once(indexes, encoder: SentenceEncoder) -> None:
    _, meaning = indexes
    meaning.prepare("what time is it")  # as the pipeline does with a partial transcript
    assert encoder.cached("What time is it?")  # the final transcript: no encoder pass at the turn's end
    assert not encoder.cached("What time is it in Tokyo?")


def test_stored_vectors_are_rebuilt_when_the_prompts_change(tmp_path, encoder: SentenceEncoder) -> None:
    first = prompt_vectors(["hello there", "what time is it"], tmp_path, encoder)
    again = prompt_vectors(["hello there", "what time is it"], tmp_path, encoder)  # read back from the file
    assert torch.allclose(first, again, atol=1e-3)
    changed = prompt_vectors(["goodbye", "what time is it"], tmp_path, encoder)
    assert not torch.allclose(changed[0], first[0], atol=1e-2)
    assert torch.allclose(changed[0], encoder.encode_batch(["goodbye"])[0], atol=1e-3)


def test_without_encoding_in_the_turn_unseen_words_are_looked_up_by_words(indexes, encoder) -> None:
    words, meaning = indexes
    prompt = _prompt("Which mountain on Earth is the highest of them all?")
    meaning.configure("meaning", 0.6, encode_in_turn=False)
    try:
        assert not encoder.cached(prompt[-1]["content"])
        assert meaning.draft(prompt, prompt.context) == words.draft(prompt, prompt.context)  # no encoder pass
        assert not encoder.cached(prompt[-1]["content"])
        meaning.prepare(prompt[-1]["content"])  # as from a partial transcript while the user spoke
        draft = meaning.draft(prompt, prompt.context)
        assert draft is not None and "Everest" in draft
    finally:
        meaning.configure("meaning", 0.6, encode_in_turn=True)


def test_retrieval_is_a_run_time_setting_of_the_loaded_model() -> None:
    from agent.config import load_config
    from agent.reply import DiffusionReply

    model = DiffusionReply(load_config(overrides=["lm.draft_retrieval=words"]).lm)
    assert model.drafts is not None and model.drafts.retrieval == "words" and model.drafts.vectors is None
    model.reconfigure(
        load_config(overrides=["lm.draft_retrieval=meaning", "lm.draft_encode_in_turn=true"]).lm
    )
    assert (
        model.drafts.retrieval == "meaning"
        and model.drafts.vectors is not None
        and model.drafts.encode_in_turn
    )
    with pytest.raises(ValueError, match="words, meaning or both"):
        model.drafts.configure("vibes", 0.6, True)  # type: ignore[arg-type]
