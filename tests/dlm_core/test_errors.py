"""Bad input gets a dlm_core error that names the problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from dlm_core import (
    Constraints,
    DecodeOptions,
    DiffusionEngine,
    GenerationError,
    ModelLoadError,
    SamplerConfig,
    ShapeError,
    load_model,
)

from .family_fixtures import write_family
from .helpers import tiny_quickturn


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("good") / "model"
    tiny_quickturn(folder)
    return folder


@pytest.fixture
def copy(good: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(good, dst)
    return dst


@pytest.fixture(scope="module")
def engine(good: Path) -> DiffusionEngine:
    return DiffusionEngine(load_model(good), max_context=64)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model folder not found"):
        load_model(tmp_path / "nowhere")


def test_missing_config(copy: Path) -> None:
    (copy / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_model(copy)


def test_invalid_json(copy: Path) -> None:
    (copy / "config.json").write_text("{ not json")
    with pytest.raises(ModelLoadError, match="config.json is not valid JSON"):
        load_model(copy)


def test_missing_weights(copy: Path) -> None:
    (copy / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"no \*\.safetensors weights"):
        load_model(copy)


def test_truncated_weights(copy: Path) -> None:
    path = copy / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=r"model\.safetensors \(corrupt or truncated safetensors\?\)"):
        load_model(copy)


def test_truncated_shard(tmp_path: Path) -> None:
    fx = write_family(tmp_path / "sharded", "sdar", shards=2, block=4)
    shard = fx.folder / "model-00002-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="model-00002-of-00002.safetensors .corrupt or truncated"):
        load_model(fx.folder)


def test_missing_shard(tmp_path: Path) -> None:
    fx = write_family(tmp_path / "sharded", "llada", shards=2)
    (fx.folder / "model-00001-of-00002.safetensors").unlink()
    with pytest.raises(
        ModelLoadError, match=r"shards named in the index are missing: \['model-00001-of-00002"
    ):
        load_model(fx.folder)


def test_missing_tensor(copy: Path) -> None:
    tensors = load_file(str(copy / "model.safetensors"))
    del tensors["layers.1.mlp.up_proj.weight"]
    save_file(tensors, str(copy / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="missing 1 weight.*layers.1.mlp.up_proj.weight"):
        load_model(copy)


def test_unknown_family(copy: Path) -> None:
    cfg = json.loads((copy / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        ModelLoadError, match=r"cannot tell which diffusion-LM family.*'gpt2'.*known families: dream"
    ):
        load_model(copy)
    with pytest.raises(ModelLoadError, match="unknown model family 'mamba'"):
        load_model(copy, family="mamba")


def test_family_config_missing_key(tmp_path: Path) -> None:
    fx = write_family(tmp_path / "llada", "llada")
    cfg = dict(fx.config)
    del cfg["d_model"]
    (fx.folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="'llada' checkpoint lacks the required key 'd_model'"):
        load_model(fx.folder)


def test_unsupported_architecture_option(tmp_path: Path) -> None:
    fx = write_family(tmp_path / "sdar", "sdar", block=4)
    (fx.folder / "config.json").write_text(json.dumps({**fx.config, "rope_scaling": {"rope_type": "yarn"}}))
    with pytest.raises(ModelLoadError, match="rope_scaling .* is not supported"):
        load_model(fx.folder)


def test_wrong_tensor_shape(copy: Path) -> None:
    tensors = load_file(str(copy / "model.safetensors"))
    tensors["layers.0.attn.q_proj.weight"] = tensors["layers.0.attn.q_proj.weight"][:, :10].contiguous()
    save_file(tensors, str(copy / "model.safetensors"))
    with pytest.raises(
        ShapeError, match=r"weight layers.0.attn.q_proj.weight has shape \(64, 10\), expected \(64, 64\)"
    ):
        load_model(copy)


def test_missing_tokenizer(copy: Path) -> None:
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match="tokenizer file not found"):
        load_model(copy)


def test_prompt_longer_than_context(engine: DiffusionEngine) -> None:
    long = [{"role": "user", "content": "one two three four five six seven eight nine ten " * 6}]
    with pytest.raises(GenerationError, match=r"prompt of \d+ tokens \+ reply of 8 .* context holds 64"):
        engine.generate(long, DecodeOptions(max_tokens=8, steps=2, block_len=8))


def test_steps_above_block_length(engine: DiffusionEngine) -> None:
    with pytest.raises(GenerationError, match=r"steps \(9\) cannot exceed the block length \(8\)"):
        engine.generate(
            [{"role": "user", "content": "hi"}], DecodeOptions(max_tokens=8, steps=9, block_len=8)
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", 0), ("steps", 0), ("block_len", 0), ("draft_threshold", 0.0), ("draft_threshold", 1.5)],
)
def test_bad_decode_options(field: str, value: float) -> None:
    with pytest.raises(GenerationError, match=rf"{field} must be"):
        DecodeOptions(**{field: value})


def test_unknown_sampler_rule() -> None:
    with pytest.raises(GenerationError, match="unknown sampler rule 'greedy_magic'"):
        SamplerConfig(rule="greedy_magic")  # type: ignore[arg-type]


def test_bad_constraints(engine: DiffusionEngine) -> None:
    with pytest.raises(GenerationError, match=r"fixed token at reply position 20 lies outside 0..7"):
        engine.generate(
            [{"role": "user", "content": "hi"}],
            DecodeOptions(max_tokens=8, steps=2, block_len=8, constraints=Constraints(fixed={20: 5})),
        )


def test_aligned_family_rejects_other_block_lengths(tmp_path: Path) -> None:
    fx = write_family(tmp_path / "sdar", "sdar", block=4)
    engine = DiffusionEngine(load_model(fx.folder), max_context=64)
    with pytest.raises(GenerationError, match="aligned blocks of 4 tokens.*got block_len=8"):
        engine.generate(
            [{"role": "user", "content": "hi"}], DecodeOptions(max_tokens=8, steps=2, block_len=8)
        )
