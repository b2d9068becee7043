"""CUDA-graph replay gives token-for-token the output of eager decoding (greedy). Needs a CUDA GPU.

Run with ``pytest -m cuda tests`` (``make gpu-check``). Models are tiny and fp32 so eager and graphed
numerics agree far below any argmax margin; one bf16 smoke test checks the production dtype runs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dlm_core import Constraints, DecodeOptions, DiffusionEngine, SamplerConfig, load_model
from dlm_core.graphs import BlockGraphRunner, _pinned_sdpa
from dlm_core.loader import LoadedModel
from dlm_core.sampling import build_plan

from .family_fixtures import write_family
from .helpers import tiny_quickturn

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

GREEDY = (SamplerConfig(), SamplerConfig(rule="low_confidence"), SamplerConfig(rule="entropy_bound"))
HELLO = [{"role": "user", "content": "hello there, how are you today?"}]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cuda")
    tiny_quickturn(root / "quickturn", seed=5)
    tiny_quickturn(
        root / "quickturn_copy", seed=6, copy_head_dim=16, output_token_ids=tuple(range(0, 300, 2))
    )
    write_family(root / "fast_dllm_v2", "fast_dllm_v2", seed=2, block=8)
    write_family(root / "sdar", "sdar", seed=3, block=4)
    return {name: root / name for name in ("quickturn", "quickturn_copy", "fast_dllm_v2", "sdar")}


def _load(folders: dict[str, Path], name: str, dtype: torch.dtype = torch.float32) -> LoadedModel:
    """A model of its own per engine: the KV cache lives on the model, so engines must not share one."""
    return load_model(folders[name], device="cuda", dtype=dtype)


def _no_stop(lm: LoadedModel) -> Constraints:
    return Constraints(banned_ids=tuple(sorted({*lm.config.eos_token_ids, lm.config.pad_token_id})))


def _block_len(lm: LoadedModel) -> int:
    return lm.config.block_size if lm.config.aligned_blocks else 8


@pytest.mark.parametrize("mode", ["block", "step"])
def test_replay_equals_the_same_body_run_eagerly(folders, mode: str) -> None:
    lm = _load(folders, "fast_dllm_v2")  # shifted logits: the anchor buffer is exercised too
    model, cfg = lm.model, lm.config
    model.setup_cache(256)
    graphed = BlockGraphRunner(model, mode=mode)
    eager = BlockGraphRunner(model, mode=mode, use_graphs=False)
    gen = torch.Generator(device="cuda").manual_seed(0)
    prompt = torch.randint(0, cfg.vocab_size, (1, 160), device="cuda", generator=gen)
    with torch.inference_mode():
        model.forward_context(prompt, start=0)
        anchor = torch.randn(1, 1, cfg.vocab_size, device="cuda", generator=gen)
        length, steps = 8, 4
        x = torch.full((1, length), cfg.mask_token_id, device="cuda")
        fixed = torch.zeros((1, length), dtype=torch.bool, device="cuda")
        x[0, 2], fixed[0, 2] = 7, True
        for ctx_len in (40, 160):  # two buckets (128, 256)
            for sampler in GREEDY:
                plan = build_plan(
                    sampler,
                    block_len=length,
                    steps=steps,
                    vocab_size=cfg.vocab_size,
                    mask_id=cfg.mask_token_id,
                    pad_id=cfg.pad_token_id,
                    eos_ids=cfg.eos_token_ids,
                    banned_ids=None,
                    min_len_in_block=3,
                    device="cuda",
                )
                out = graphed.run(x, fixed, ctx_len, steps, sampler, plan, anchor)
                with _pinned_sdpa():
                    ref = eager.run(x, fixed, ctx_len, steps, sampler, plan, anchor)
                assert torch.equal(out, ref), (ctx_len, sampler)
                assert not (out == cfg.mask_token_id).any()
    assert all(slot.graph is not None for slot in graphed._slots.values())
    assert len(graphed._slots) == 2 * len(GREEDY)


@pytest.mark.parametrize("mode", ["block", "step"])
@pytest.mark.parametrize("name", ["quickturn", "quickturn_copy", "fast_dllm_v2", "sdar"])
def test_engine_with_graphs_equals_eager_engine(folders, name: str, mode: str) -> None:
    lm = _load(folders, name)
    graphed = DiffusionEngine(lm, max_context=512, graph_mode=mode)
    eager = DiffusionEngine(_load(folders, name), max_context=512, use_cuda_graphs=False)
    assert graphed.graphs is not None and eager.graphs is None
    b = _block_len(lm)
    for sampler in GREEDY:
        opts = DecodeOptions(
            max_tokens=3 * b, steps=min(4, b), block_len=b, sampler=sampler, constraints=_no_stop(lm)
        )
        a = eager.generate(HELLO, opts)
        g = graphed.generate(HELLO, opts)
        assert g.token_ids == a.token_ids, sampler
        turn2 = [*HELLO, {"role": "assistant", "content": a.text}, {"role": "user", "content": "and then?"}]
        assert graphed.generate(turn2, opts).token_ids == eager.generate(turn2, opts).token_ids, sampler
        # The whole-word copy rule is a device flag the captured step reads: a replay follows it too.
        whole = replace(opts, constraints=_no_stop(lm).merged(Constraints(whole_word_copies=True)))
        assert graphed.generate(turn2, whole).token_ids == eager.generate(turn2, whole).token_ids, sampler
    graphs = [s for s in graphed.graphs._slots.values() if s.graph is not None]
    assert graphs, "the graphed engine never replayed a graph"


def test_warmup_captures_every_bucket_and_nothing_after(folders) -> None:
    engine = DiffusionEngine(_load(folders, "quickturn"), max_context=512)
    engine.warmup(steps=(2, 4), block_lens=(8,), rounds=1)
    buckets = engine.graphs.buckets
    assert buckets == (128, 256, 512)
    assert len(engine.graphs._slots) == 2 * len(buckets)
    before = set(engine.graphs._slots)
    engine.generate(HELLO, DecodeOptions(max_tokens=16, steps=4, block_len=8))
    assert set(engine.graphs._slots) == before  # the real turn replayed, it did not capture


@pytest.mark.parametrize("mode", ["block", "step"])
def test_outputs_survive_the_next_replay(folders, mode: str) -> None:
    lm = _load(folders, "quickturn")
    cfg = lm.config
    lm.model.setup_cache(256)
    runner = BlockGraphRunner(lm.model, mode=mode)
    sampler = SamplerConfig()
    plan = build_plan(
        sampler,
        block_len=8,
        steps=2,
        vocab_size=cfg.vocab_size,
        mask_id=cfg.mask_token_id,
        pad_id=cfg.pad_token_id,
        eos_ids=cfg.eos_token_ids,
        banned_ids=None,
        min_len_in_block=0,
        device="cuda",
    )
    with torch.inference_mode():
        lm.model.forward_context(torch.arange(1, 30, device="cuda")[None], start=0)
        x = torch.full((1, 8), cfg.mask_token_id, device="cuda")
        fixed = torch.zeros((1, 8), dtype=torch.bool, device="cuda")
        first = runner.run(x, fixed, 29, 2, sampler, plan, None)
        kept = first.clone()
        x2, fixed2 = x.clone(), fixed.clone()
        x2[0, :4], fixed2[0, :4] = torch.tensor([11, 12, 13, 14], device="cuda"), True
        second = runner.run(x2, fixed2, 29, 2, sampler, plan, None)
    assert torch.equal(first, kept)  # a clone, not the static buffer the second replay overwrote
    assert second[0, :4].tolist() == [11, 12, 13, 14]


def test_sampling_with_temperature_stays_eager(folders) -> None:
    engine = DiffusionEngine(_load(folders, "quickturn"), max_context=256)
    hot = SamplerConfig(temperature=0.8, seed=1)
    opts = DecodeOptions(max_tokens=16, steps=4, block_len=8, sampler=hot)
    a = engine.generate(HELLO, opts)
    b = engine.generate(HELLO, opts)
    assert a.token_ids == b.token_ids
    assert not engine.graphs._slots


def test_bf16_graphs_run(folders) -> None:
    lm = _load(folders, "quickturn", torch.bfloat16)
    engine = DiffusionEngine(lm, max_context=256)
    engine.warmup(steps=(4,), block_lens=(8,), rounds=1)
    r = engine.generate(HELLO, DecodeOptions(max_tokens=16, steps=4, block_len=8, constraints=_no_stop(lm)))
    assert len(r.token_ids) == 16
    assert all(0 <= t < lm.config.vocab_size for t in r.token_ids)
