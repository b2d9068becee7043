"""What can be checked of the CUDA-graph runner without a GPU: buckets, key masks, and its bodies run
eagerly (the exact code a graph records) giving the engine's own results."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dlm_core import Constraints, DecodeOptions, DiffusionEngine, GenerationError, SamplerConfig, load_model
from dlm_core.graphs import BlockGraphRunner, bucket_key_mask, context_buckets, pick_bucket

from .family_fixtures import write_family
from .helpers import tiny_quickturn


def test_buckets() -> None:
    assert context_buckets(1024) == (128, 256, 512, 1024)
    assert context_buckets(300) == (128, 256, 300)
    assert context_buckets(64) == (64,)
    assert [pick_bucket(n, (128, 256, 300)) for n in (0, 128, 129, 300, 301)] == [128, 128, 256, 300, None]


def test_bucket_key_mask() -> None:
    m = bucket_key_mask(3, 5, 2)
    assert m.shape == (1, 1, 1, 7)
    assert m[0, 0, 0].tolist() == [True, True, True, False, False, True, True]
    assert torch.equal(bucket_key_mask(torch.tensor(3), 5, 2), m)


@pytest.mark.parametrize(("attention", "block_size"), [("block_causal", 1), ("full", 1), ("block_causal", 4)])
def test_padded_bucket_with_key_mask_equals_unpadded(tmp_path: Path, attention: str, block_size: int) -> None:
    lm = tiny_quickturn(tmp_path / "m", attention=attention, block_size=block_size)
    model = lm.model
    model.setup_cache(64)
    for layer in model.layers:  # stale garbage in the slots the mask must hide
        layer.attn.cache.k.normal_()
        layer.attn.cache.v.normal_()
    tokens = torch.randint(0, lm.config.vocab_size, (1, 20), generator=torch.Generator().manual_seed(0))
    ctx, block = tokens[:, :12], tokens[:, 12:]
    positions = torch.arange(12, 20)
    with torch.no_grad():
        model.forward_context(ctx, start=0)
        exact = model.forward_block(block, positions, 12)
        padded = model.forward_block(block, positions, 32, bucket_key_mask(12, 32, 8))
    assert (exact - padded).abs().max() < 1e-5


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runner")
    tiny_quickturn(root / "quickturn", seed=5)
    tiny_quickturn(
        root / "quickturn_copy", seed=6, copy_head_dim=16, output_token_ids=tuple(range(0, 300, 2))
    )
    write_family(root / "fast_dllm_v2", "fast_dllm_v2", seed=2, block=8)
    return {name: root / name for name in ("quickturn", "quickturn_copy", "fast_dllm_v2")}


@pytest.mark.parametrize("mode", ["block", "step"])
@pytest.mark.parametrize("name", ["quickturn", "quickturn_copy", "fast_dllm_v2"])
def test_runner_bodies_equal_the_eager_engine(folders, mode: str, name: str) -> None:
    lm = load_model(folders[name])
    eager = DiffusionEngine(load_model(folders[name]), max_context=256)  # its own model: its own KV cache
    runner_engine = DiffusionEngine(lm, max_context=256)
    runner_engine.graphs = BlockGraphRunner(
        lm.model, mode=mode, use_graphs=False, buckets=(16, 32, 64, 128, 256)
    )
    no_stop = Constraints(banned_ids=tuple(sorted({*lm.config.eos_token_ids, lm.config.pad_token_id})))
    turn1 = [{"role": "user", "content": "hello there"}]
    b = lm.config.block_size if lm.config.aligned_blocks else 8
    # the step index is a tensor in step mode: the scheduled rule (gather on it) is the one to check there
    samplers = (SamplerConfig(rule="low_confidence"),) if mode == "step" else (SamplerConfig(),)
    for sampler in samplers:
        opts = DecodeOptions(max_tokens=2 * b, steps=4, block_len=b, sampler=sampler, constraints=no_stop)
        a = eager.generate(turn1, opts)
        r = runner_engine.generate(turn1, opts)
        assert r.token_ids == a.token_ids
        turn2 = [*turn1, {"role": "assistant", "content": a.text}, {"role": "user", "content": "and then?"}]
        assert runner_engine.generate(turn2, opts).token_ids == eager.generate(turn2, opts).token_ids
        # A draft guides the steps after the first one in the runner as in the eager loop.
        draft = lm.tokenizer.encode(" I am fine, thank you, and how are you today?")
        drafted = replace(opts, draft_threshold=0.002)
        guided = eager.generate(turn2, drafted, draft=draft).token_ids
        assert runner_engine.generate(turn2, drafted, draft=draft).token_ids == guided
        assert guided != eager.generate(turn2, opts).token_ids  # the draft did change the reply
        # Without guidance only the first step sees the draft, alike in both.
        first_only = replace(drafted, draft_guidance=False)
        unguided = eager.generate(turn2, first_only, draft=draft).token_ids
        assert runner_engine.generate(turn2, first_only, draft=draft).token_ids == unguided
        if name == "quickturn":  # for this model and draft the later steps' guidance changes the reply
            assert unguided != guided
        # The whole-word copy rule is a device flag read inside the step: the runner follows it too.
        whole = replace(opts, constraints=no_stop.merged(Constraints(whole_word_copies=True)))
        assert runner_engine.generate(turn2, whole).token_ids == eager.generate(turn2, whole).token_ids
    assert len({k[3] for k in runner_engine.graphs._slots}) >= 2  # the two turns used different buckets


def test_runner_declines_what_it_cannot_capture(folders) -> None:
    lm = load_model(folders["quickturn"])
    lm.model.setup_cache(128)
    runner = BlockGraphRunner(lm.model, use_graphs=False)
    assert runner.can_run(8, 4, 10)
    assert not runner.can_run(8, 4, 10, SamplerConfig(temperature=0.7))
    assert not runner.can_run(8, 4, 10, SamplerConfig(rule="random"))
    assert not runner.can_run(8, 9, 10)
    assert not runner.can_run(8, 4, 129)  # larger than every bucket
    with pytest.raises(GenerationError, match="unknown graph mode 'loop'"):
        BlockGraphRunner(lm.model, mode="loop")
    with pytest.raises(GenerationError, match="CUDA graphs need the model on a CUDA device"):
        BlockGraphRunner(lm.model, use_graphs=True)


class _OpLog(TorchDispatchMode):
    """Records every aten op a region runs."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        self.ops.append(name)
        if name.startswith(("aten.index.", "aten.index_put")):  # boolean-mask indexing hides a nonzero
            indices = args[1] if len(args) > 1 else []
            if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices):
                self.ops.append("boolean-mask indexing (nonzero)")
        return func(*args, **(kwargs or {}))


# Ops that read device values back to the host, have data-dependent output shapes, or copy host data
# in: each would break (or silently bake a constant into) a CUDA graph capture.
SYNCING_OPS = (
    "_local_scalar_dense",
    "nonzero",
    "masked_select",
    "_unique",
    "isin",
    "repeat_interleave",
    "lift_fresh",
)


@pytest.mark.parametrize("mode", ["block", "step"])
@pytest.mark.parametrize("rule", ["threshold", "low_confidence", "entropy_bound"])
@pytest.mark.parametrize("name", ["fast_dllm_v2", "quickturn_copy"])
def test_graph_bodies_contain_no_host_syncs(folders, name: str, mode: str, rule: str) -> None:
    lm = load_model(folders[name])  # fast_dllm_v2: shifted logits, GQA; quickturn_copy: the copy head
    lm.model.setup_cache(64)
    runner = BlockGraphRunner(lm.model, mode=mode, use_graphs=False)
    slot = runner._slot((mode, 8, 4, 64, SamplerConfig(rule=rule)))  # type: ignore[arg-type]
    log = _OpLog()
    with torch.inference_mode():
        slot.ctx_len.fill_(20)
        with log:
            runner._body(slot)
    assert log.ops, "nothing was recorded"
    bad = sorted({op for op in log.ops if any(s in op for s in SYNCING_OPS)})
    assert not bad, f"graph body runs host-syncing ops: {bad}"
