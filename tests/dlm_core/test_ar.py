"""The autoregressive baseline: same weights, causal mask, static KV cache, greedy, one token per forward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dlm_core import GenerationError
from dlm_core.ar import ar_generate
from dlm_core.model import Transformer, block_causal_mask

from .helpers import tiny_quickturn

PROMPT = [5, 17, 42, 8, 99, 23, 7]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Transformer:
    lm = tiny_quickturn(tmp_path_factory.mktemp("ar") / "m", seed=4)
    lm.model.setup_cache(64)
    return lm.model


def _uncached(model: Transformer, prompt: list[int], n: int) -> list[int]:
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            logits = model.forward_masked(torch.tensor([seq]), block_causal_mask(len(seq), 1))[0, -1]
            logits[model.cfg.mask_token_id] = float("-inf")
            seq.append(int(logits.argmax()))
    return seq[len(prompt) :]


def test_deterministic_and_equal_to_uncached_decoding(model: Transformer) -> None:
    a = ar_generate(model, PROMPT, 12)
    assert a == ar_generate(model, PROMPT, 12)
    assert a == _uncached(model, PROMPT, 12)


@pytest.mark.parametrize("n", [1, 4, 20])
def test_respects_max_new_tokens(model: Transformer, n: int) -> None:
    assert len(ar_generate(model, PROMPT, n)) == n


def test_stops_at_eos(model: Transformer) -> None:
    free = ar_generate(model, PROMPT, 16)
    k = next(i for i in range(1, len(free)) if free[i] not in free[:i])
    assert ar_generate(model, PROMPT, 16, eos_ids=[free[k]]) == free[: k + 1]


def test_full_attention_model_is_forced_causal(tmp_path: Path) -> None:
    lm = tiny_quickturn(tmp_path / "full", attention="full", seed=2)
    lm.model.setup_cache(64)
    assert ar_generate(lm.model, PROMPT, 8) == _uncached(lm.model, PROMPT, 8)


def test_errors(model: Transformer) -> None:
    with pytest.raises(GenerationError, match="max_new_tokens must be ≥ 1"):
        ar_generate(model, PROMPT, 0)
    with pytest.raises(GenerationError, match="exceeds the KV cache of 64 positions"):
        ar_generate(model, PROMPT, 100)
