"""A user input table (``ModelConfig.user_turn_ids``): the user's words, and only they, are read
through a second embedding — in training's whole-sequence forward and in the engine's cached prefill
alike, also when a prefill resumes inside a user turn (a transcript that grew while the user spoke)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dlm_core import DiffusionEngine, load_model
from dlm_core.model import block_causal_mask, user_turn_mask

from .helpers import QUICKTURN_SPECIALS, tiny_quickturn

USER, END = QUICKTURN_SPECIALS.index("<|user|>"), QUICKTURN_SPECIALS.index("<|end|>")


def test_the_mask_marks_the_words_inside_user_turns_only() -> None:
    o, c = 2, 3
    ids = torch.tensor([[1, 9, 9, c, o, 5, 6, c, 4, 7, c, o, 8]])
    inside = [False] * 5 + [True, True] + [False] * 5 + [True]
    assert user_turn_mask(ids, o, c)[0].tolist() == inside


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user_table") / "m"
    tiny_quickturn(folder, seed=5, user_turn_ids=(USER, END))
    return folder


def test_the_table_round_trips_and_changes_only_what_follows_the_user_words(folder: Path) -> None:
    loaded = load_model(folder)
    assert loaded.config.user_turn_ids == (USER, END) and loaded.model.embed_user is not None
    model = loaded.model
    ids = torch.tensor([[10, 11, 12, END, USER, 20, 21, END, 30, 31]])
    see = block_causal_mask(ids.shape[1], 1)
    with torch.no_grad():
        before = model.forward_masked(ids, see)
        model.embed_user.weight.add_(1.0)
        after = model.forward_masked(ids, see)
        model.embed_user.weight.sub_(1.0)
    same = (before - after).abs().amax(-1)[0]
    assert torch.all(same[:5] == 0)  # the system part and the user marker itself
    assert torch.all(same[5:] > 0)  # the user's words, and everything that attends to them


def test_a_prefill_resumed_inside_a_user_turn_caches_what_one_whole_prefill_does(folder: Path) -> None:
    system = {"role": "system", "content": "the time is late"}
    grown = DiffusionEngine(load_model(folder), max_context=128)
    grown.prefill([system, {"role": "user", "content": "what is"}])
    kept = len(grown._cached)
    new = grown.prefill([system, {"role": "user", "content": "what is the time now"}])
    ids = grown._cached
    assert 0 < len(ids) - new < kept  # the second prefill resumed at a token inside the user turn
    assert user_turn_mask(torch.tensor(ids), USER, END)[len(ids) - new]

    whole = DiffusionEngine(load_model(folder), max_context=128)
    whole.prefill([system, {"role": "user", "content": "what is the time now"}])
    assert whole._cached == ids
    for a, b in zip(grown.model.layers, whole.model.layers):
        assert torch.allclose(a.attn.cache.k[:, :, : len(ids)], b.attn.cache.k[:, :, : len(ids)], atol=1e-5)
    # Read as if it started outside a user turn, the resumed chunk would have cached something else.
    start = len(ids) - new
    with torch.inference_mode():
        whole.model.forward_context(torch.tensor([ids[start:]]), start=start)
    k = whole.model.layers[-1].attn.cache.k[:, :, start : len(ids)]
    assert not torch.allclose(k, grown.model.layers[-1].attn.cache.k[:, :, start : len(ids)], atol=1e-3)
