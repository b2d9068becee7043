"""Draft-conditioned denoising: the first step keeps the draft tokens the model finds plausible, and
the later steps take a draft token wherever it has become plausible."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dlm_core import DecodeOptions, DiffusionEngine, GenerationError

from .helpers import tiny_quickturn

MESSAGES = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> DiffusionEngine:
    return DiffusionEngine(tiny_quickturn(Path(tmp_path_factory.mktemp("draft"))), max_context=128)


def test_a_plausible_draft_is_kept_word_for_word(engine: DiffusionEngine) -> None:
    draft = engine.tokenizer.encode("I am fine, thank you.") + [engine.cfg.eos_token_ids[0]]
    opts = DecodeOptions(max_tokens=16, steps=4, block_len=16, draft_threshold=1e-12)
    r = engine.generate(MESSAGES, replace(opts, early_exit=False), draft=draft)
    assert r.text == "I am fine, thank you."
    assert r.forwards == 4  # the draft check is one of the S steps, not an extra one
    # The whole reply up to its end token came from the draft: nothing is left for the other 3 steps.
    early = engine.generate(MESSAGES, opts, draft=draft)
    assert early.token_ids == r.token_ids and early.forwards == 1


def test_a_vetoed_draft_leaves_the_block_to_the_model(engine: DiffusionEngine) -> None:
    draft = engine.tokenizer.encode("I am fine, thank you.")
    opts = DecodeOptions(max_tokens=16, steps=4, block_len=16, draft_threshold=1.0)
    with_draft = engine.generate(MESSAGES, opts, draft=draft)
    without = engine.generate(MESSAGES, replace(opts, steps=3))
    assert with_draft.token_ids == without.token_ids  # nothing kept: S-1 ordinary steps remain


def test_draft_positions_outside_the_reply_are_ignored_and_bad_thresholds_rejected(
    engine: DiffusionEngine,
) -> None:
    long_draft = engine.tokenizer.encode("one two three four five six seven eight nine ten " * 4)
    opts = DecodeOptions(max_tokens=8, steps=4, block_len=8, draft_threshold=1e-12)
    r = engine.generate(MESSAGES, opts, draft=long_draft)
    assert r.token_ids == long_draft[: len(r.token_ids)] and len(r.token_ids) == 8
    with pytest.raises(GenerationError, match="draft_threshold"):
        DecodeOptions(max_tokens=8, steps=4, draft_threshold=0.0)
