"""The trainer stays honest: a tiny model learns a toy copy task in a couple of CPU minutes, resumes
exactly where it stopped, and exports a folder the standard loader reads."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from dlm_core import DecodeOptions, DiffusionEngine, SamplerConfig, load_model
from dlm_core.train import TrainConfig, Trainer

from .helpers import toy_train_config, word_tokenizer

WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def _copy_task(path: Path, n: int, seed: int) -> Path:
    """User says three number words; the reply repeats them (needs attention to the prompt)."""
    rng = random.Random(seed)
    with path.open("w") as f:
        for _ in range(n):
            words = " ".join(rng.choice(WORDS) for _ in range(3))
            messages = [
                {"role": "user", "content": words},
                {"role": "assistant", "content": words},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


def _config(tmp_path: Path, **overrides) -> TrainConfig:
    tok = word_tokenizer(tmp_path / "tokenizer.json", WORDS)  # one token per word: positions line up
    train = _copy_task(tmp_path / "train.jsonl", 2000, seed=0)
    heldout = _copy_task(tmp_path / "heldout.jsonl", 64, seed=1)
    return toy_train_config(tmp_path, tok, train, heldout, **overrides)


@pytest.mark.slow
def test_toy_copy_task_is_learned(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    trainer = Trainer(cfg, log=lambda m: None)
    before = trainer.heldout_elbo()
    trainer.train()
    after = trainer.heldout_elbo()
    assert before > 3.0  # an untrained model is far from the data
    assert after < 0.6, f"held-out diffusion loss {after:.3f} did not fall below 0.6 (was {before:.3f})"
    # The exported model, loaded like any checkpoint, copies a prompt it has not seen.
    folder = trainer.export(tmp_path / "model")
    engine = DiffusionEngine(load_model(folder), max_context=64)
    reply = engine.generate(
        [{"role": "user", "content": "two seven one"}],
        DecodeOptions(max_tokens=16, steps=4, block_len=8, sampler=SamplerConfig(rule="low_confidence")),
    ).text
    assert reply == "two seven one"


def test_resume_continues_from_the_saved_step(tmp_path: Path) -> None:
    cfg = _config(tmp_path, total_steps=6, log_every=2)
    Trainer(cfg, log=lambda m: None).train()
    first = torch.load(Path(cfg.out_dir) / "last.pt", weights_only=False)
    assert first["step"] == 6
    cfg.total_steps = 10
    resumed = Trainer(cfg, log=lambda m: None)
    assert resumed.step == 6
    assert torch.equal(resumed.model.embed_tokens.weight, first["model"]["embed_tokens.weight"])
    resumed.train()
    assert torch.load(Path(cfg.out_dir) / "last.pt", weights_only=False)["step"] == 10
    lines = (Path(cfg.out_dir) / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [2, 4, 6, 8, 10]


def test_stop_step_ends_a_run_early_and_finished_says_so(tmp_path: Path) -> None:
    from dlm_core.train.trainer import main

    cfg = _config(tmp_path, total_steps=20, stop_step=4, log_every=2)
    (tmp_path / "train.toml").write_text(
        f'[data]\ntokenizer = "{cfg.tokenizer}"\n[[data.sources]]\npath = "{cfg.sources[0].path}"\n'
        f"[model]\nhidden_size = 32\nnum_layers = 1\nnum_heads = 2\nnum_kv_heads = 2\nintermediate_size = 64\n"
        f'max_position_embeddings = 64\n[train]\nout_dir = "{cfg.out_dir}"\ntotal_steps = 20\nstop_step = 4\n'
        f"block_len = 8\nmax_context = 64\nmax_reply_tokens = 8\nthreads = 1\nlog_every = 2\n"
    )
    config = str(tmp_path / "train.toml")
    assert main(["--config", config, "--finished"]) == 3  # nothing trained yet
    assert main(["--config", config]) == 0
    assert torch.load(Path(cfg.out_dir) / "last.pt", weights_only=False)["step"] == 4  # not 20
    assert main(["--config", config, "--finished"]) == 0


def test_export_can_average_the_run_with_its_starting_point(tmp_path: Path) -> None:
    """``export_average_with``: the exported folder holds the parameter-wise mix of two checkpoints."""
    from dlm_core.train.trainer import main

    cfg = _config(tmp_path, total_steps=4, log_every=2)
    Trainer(cfg, log=lambda m: None).train()
    start = Path(cfg.out_dir).with_name("start.pt")
    Path(cfg.out_dir, "last.pt").rename(start)
    cfg.total_steps = 8
    Trainer(cfg, log=lambda m: None).train()  # a fresh run: different weights at step 8
    (tmp_path / "train.toml").write_text(
        f'[data]\ntokenizer = "{cfg.tokenizer}"\n[[data.sources]]\npath = "{cfg.sources[0].path}"\n'
        f'[model]\nhidden_size = 96\n[train]\nout_dir = "{cfg.out_dir}"\n'
        f'export_average_with = "{start}"\nexport_average_weight = 0.25\n'
    )
    assert main(["--config", str(tmp_path / "train.toml"), "--export", str(tmp_path / "mixed")]) == 0
    mixed = load_model(tmp_path / "mixed").model.state_dict()
    a = torch.load(Path(cfg.out_dir) / "last.pt", weights_only=False)["model"]
    b = torch.load(start, weights_only=False)["model"]
    assert a["embed_tokens.weight"].ne(b["embed_tokens.weight"]).any()
    for key in ("embed_tokens.weight", "layers.0.mlp.up_proj.weight"):
        # averaged in fp32, stored in fp16 like every export
        assert torch.equal(mixed[key], (0.75 * a[key] + 0.25 * b[key]).half().float())
    # The trainer's own export follows the same recipe (it resumes at step 8: the same weights as a).
    cfg.export_average_with, cfg.export_average_weight = str(start), 0.25
    again = load_model(Trainer(cfg, log=lambda m: None).export(tmp_path / "again")).model.state_dict()
    assert all(torch.equal(again[k], mixed[k]) for k in mixed)
    # A checkpoint of another shape is refused with a clear error, not averaged.
    (tmp_path / "o").mkdir()
    other = _config(tmp_path / "o", total_steps=2, model={"hidden_size": 64})
    Trainer(other, log=lambda m: None).train()
    text = (tmp_path / "train.toml").read_text().replace(str(start), str(Path(other.out_dir) / "last.pt"))
    (tmp_path / "bad.toml").write_text(text)
    assert main(["--config", str(tmp_path / "bad.toml"), "--export", str(tmp_path / "bad")]) == 2


def test_export_can_average_the_run_with_a_model_folder(tmp_path: Path) -> None:
    """``export_average_with`` may name a model folder (what an earlier stage shipped), not only a
    checkpoint: the run is mixed with the folder's (float16) weights."""
    cfg = _config(tmp_path, total_steps=4, log_every=2)
    trainer = Trainer(cfg, log=lambda m: None)
    trainer.train()
    shipped = trainer.export(tmp_path / "shipped")
    Path(cfg.out_dir, "last.pt").unlink()
    cfg.total_steps = 8
    Trainer(cfg, log=lambda m: None).train()  # a fresh run: different weights
    cfg.export_average_with, cfg.export_average_weight = str(shipped), 0.5
    mixed = load_model(Trainer(cfg, log=lambda m: None).export(tmp_path / "mixed")).model.state_dict()
    a = torch.load(Path(cfg.out_dir) / "last.pt", weights_only=False)["model"]
    b = load_model(shipped).model.state_dict()
    for key in ("embed_tokens.weight", "layers.0.mlp.up_proj.weight"):
        assert not torch.equal(a[key], b[key])
        assert torch.equal(mixed[key], (0.5 * a[key] + 0.5 * b[key]).half().float())


def test_seed_flag_gives_each_seed_its_own_run(tmp_path: Path) -> None:
    """``--seed N``: a run of its own in ``<out_dir>-seedN`` (seeds never resume each other's checkpoint)."""
    from dlm_core.train.trainer import main

    cfg = _config(tmp_path)
    (tmp_path / "train.toml").write_text(
        f'[data]\ntokenizer = "{cfg.tokenizer}"\n[[data.sources]]\npath = "{cfg.sources[0].path}"\n'
        f'[model]\nhidden_size = 64\nnum_layers = 1\nnum_heads = 4\nnum_kv_heads = 2\nintermediate_size = 128\n[train]\nout_dir = "{tmp_path / "run"}"\n'
        "total_steps = 2\nbatch_size = 4\nlog_every = 1\nthreads = 1\n"
    )
    config = str(tmp_path / "train.toml")
    for seed in (5, 6):
        assert main(["--config", config, "--seed", str(seed)]) == 0
        assert main(["--config", config, "--seed", str(seed), "--finished"]) == 0
    assert main(["--config", config, "--finished"]) == 3  # the unseeded run has not started
    a, b = (torch.load(tmp_path / f"run-seed{s}" / "last.pt", weights_only=False)["model"] for s in (5, 6))
    assert not torch.equal(a["embed_tokens.weight"], b["embed_tokens.weight"])


def _features(tmp_path: Path, vocab: int) -> str:
    """A random semantic feature table; the special tokens and [UNK] have none (and are never hidden)."""
    import numpy as np

    table = np.random.default_rng(0).normal(size=(vocab, 12)).astype(np.float16)
    table[:7] = 0
    np.save(tmp_path / "features.npy", table)
    return str(tmp_path / "features.npy")


def _cli_export_equals(tmp_path: Path, cfg: TrainConfig, loaded, extra: str = "") -> Path:
    """The CLI's export of the run's checkpoint gives the same folder as the trainer's; returns its config."""
    from dlm_core.train.trainer import main

    (tmp_path / "train.toml").write_text(
        f'[data]\ntokenizer = "{cfg.tokenizer}"\n[[data.sources]]\npath = "{cfg.sources[0].path}"\n'
        f'[model]\nhidden_size = 96\n[train]\nout_dir = "{cfg.out_dir}"\nsemantic_inputs = "{cfg.semantic_inputs}"\n'
        + extra
    )
    assert main(["--config", str(tmp_path / "train.toml"), "--export", str(tmp_path / "cli")]) == 0
    cli = load_model(tmp_path / "cli").model.state_dict()
    assert all(torch.equal(cli[k], v) for k, v in loaded.model.state_dict().items())
    return tmp_path / "train.toml"


def _export_averaged_with_a_tied_run(tmp_path: Path, cfg: TrainConfig) -> tuple[dict, dict]:
    """(the run exported averaged ¾ + ¼ with a tied checkpoint, that checkpoint's weights)."""
    (tmp_path / "t").mkdir()
    tied = _config(tmp_path / "t", total_steps=2)
    Trainer(tied, log=lambda m: None).train()
    other = torch.load(Path(tied.out_dir) / "last.pt", weights_only=False)["model"]
    cfg.export_average_with, cfg.export_average_weight = str(Path(tied.out_dir) / "last.pt"), 0.25
    mixed = load_model(Trainer(cfg, log=lambda m: None).export(tmp_path / "mixed")).model.state_dict()
    return mixed, other


def test_semantic_inputs_train_resume_and_export_folded(tmp_path: Path) -> None:
    """``semantic_inputs``: a frozen feature table reaches the model through a learned map that starts
    at zero; the run resumes with it and exports an ordinary untied model computing the same function."""
    from dlm_core.train.trainer import main

    cfg = _config(tmp_path, total_steps=4, log_every=2, semantic_input_dropout=0.25)
    vocab = Trainer(cfg, log=lambda m: None).model_cfg.vocab_size
    cfg.out_dir = str(tmp_path / "sem")
    cfg.semantic_inputs = _features(tmp_path, vocab)
    trainer = Trainer(cfg, log=lambda m: None)
    assert trainer.model.embed_tokens.proj.weight.abs().sum() == 0  # starts silent
    trainer.train()
    proj = trainer.model.embed_tokens.proj.weight.detach().clone()
    assert proj.abs().sum() > 0  # and learns

    cfg.total_steps = 6
    cfg.semantic_input_spare_reply_words = False  # the rest of the run hides reply words too
    resumed = Trainer(cfg, log=lambda m: None)
    assert resumed.step == 4 and torch.equal(resumed.model.embed_tokens.proj.weight, proj)
    resumed.train()
    model = resumed.model.eval()
    folder = resumed.export(tmp_path / "folded")
    loaded = load_model(folder)
    assert not loaded.config.tie_word_embeddings
    ids = torch.randint(8, vocab, (1, 12))
    see_all = torch.ones(1, 1, 12, 12, dtype=torch.bool)
    with torch.no_grad():
        want = model.forward_masked(ids, see_all)
        got = loaded.model.float().forward_masked(ids, see_all)
    assert torch.allclose(want, got, atol=2e-2), float((want - got).abs().max())  # fp16 storage

    # The CLI's export of the checkpoint folds it the same way; without the table it says what is missing.
    toml = _cli_export_equals(tmp_path, cfg, loaded)
    # Averaged with a tied checkpoint (its embedding stands in for its head), as the trainer exports it.
    mixed, other = _export_averaged_with_a_tied_run(tmp_path, cfg)
    own = resumed.model.embed_tokens.weight.detach()
    assert torch.allclose(
        mixed["lm_head.weight"], 0.75 * own + 0.25 * other["embed_tokens.weight"], atol=2e-3
    )
    folded_in = loaded.model.state_dict()["embed_tokens.weight"].float()
    assert torch.allclose(
        mixed["embed_tokens.weight"], 0.75 * folded_in + 0.25 * other["embed_tokens.weight"], atol=2e-2
    )
    text = toml.read_text().replace(f'semantic_inputs = "{cfg.semantic_inputs}"\n', "")
    (tmp_path / "bare.toml").write_text(text)
    assert main(["--config", str(tmp_path / "bare.toml"), "--export", str(tmp_path / "bare")]) == 2


def test_semantic_inputs_never_hide_a_token_the_reply_contains() -> None:
    from dlm_core.train.objective import Batch
    from dlm_core.train.semantic import SemanticEmbedding, reply_tokens_in_input

    tokens = torch.tensor([[5, 6, 7, 9, 9], [1, 2, 3, 4, 5]])
    targets = torch.tensor([[5, 6, 7, 7, 8], [1, 2, 3, 4, 5]])
    prefix_len = torch.tensor([3, 3])  # the reply block is the last two positions of each row
    noised = torch.zeros(2, 5, dtype=torch.bool)
    batch = Batch(tokens, targets, prefix_len, 2, prefix_len + 2, torch.ones(2), noised)
    keep = reply_tokens_in_input(batch)
    assert keep.tolist() == [[False, False, True, False, False], [False, False, False, True, True]]

    weight = torch.nn.Parameter(torch.randn(10, 4))
    features = torch.randn(10, 3)
    emb = SemanticEmbedding(weight, features, dropout=1.0).train()  # hide every word it may
    ids = torch.tensor([[1, 2, 3]])
    emb.keep = torch.tensor([[False, True, False]])
    out = emb(ids)
    assert torch.equal(out[0, 1], weight[2].detach()) and out[0, 0].abs().sum() == 0  # the map is still zero
    assert emb.keep is None  # a keep mask is for one forward only
    assert emb(ids).abs().sum() == 0  # without one, every word is hidden


def test_semantic_inputs_on_user_turns_export_a_tied_model_with_a_user_table(tmp_path: Path) -> None:
    """``semantic_input_scope = "user"``: the channel feeds only the user's words; the export keeps
    the embedding tied to the head and folds the channel into the user input table — the same function
    (averaged with a tied checkpoint, that one's embedding stands in for the table)."""
    from dlm_core.model import user_turn_mask

    cfg = _config(tmp_path, total_steps=4, log_every=2, semantic_input_dropout=0.25)
    trainer = Trainer(cfg, log=lambda m: None)
    vocab, tok = trainer.model_cfg.vocab_size, trainer.tokenizer
    cfg.out_dir, cfg.semantic_input_scope = str(tmp_path / "sem"), "user"
    cfg.semantic_inputs = _features(tmp_path, vocab)
    trainer = Trainer(cfg, log=lambda m: None)
    trainer.train()
    model = trainer.model.eval()
    ids = torch.tensor(
        [tok.encode_chat([{"role": "user", "content": "one two three"}], add_generation_prompt=True)]
    )
    scope = user_turn_mask(ids, tok.token_id("<|user|>"), tok.token_id("<|end|>"))
    assert 0 < int(scope.sum()) < ids.shape[1]
    with torch.no_grad():
        embedded = model.embed_tokens(ids)
        own = torch.nn.functional.embedding(ids, model.embed_tokens.weight)
    assert torch.equal(embedded[~scope], own[~scope]) and not torch.allclose(embedded[scope], own[scope])

    loaded = load_model(trainer.export(tmp_path / "folded"))
    assert loaded.config.tie_word_embeddings and loaded.config.user_turn_ids == (
        tok.token_id("<|user|>"),
        tok.token_id("<|end|>"),
    )
    see = torch.ones(1, 1, ids.shape[1], ids.shape[1], dtype=torch.bool)
    with torch.no_grad():
        want = model.forward_masked(ids, see)
        got = loaded.model.float().forward_masked(ids, see)
    assert torch.allclose(want, got, atol=2e-2), float((want - got).abs().max())  # fp16 storage

    _cli_export_equals(tmp_path, cfg, loaded, 'semantic_input_scope = "user"\n')
    mixed, other = _export_averaged_with_a_tied_run(tmp_path, cfg)
    folded_in = loaded.model.state_dict()["embed_user.weight"].float()
    assert torch.allclose(
        mixed["embed_user.weight"], 0.75 * folded_in + 0.25 * other["embed_tokens.weight"], atol=2e-2
    )
    assert "lm_head.weight" not in mixed


def test_soup_is_the_mean_of_its_folders_and_refuses_other_shapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m dlm_core.train.soup``: a folder the loader reads, holding the parameter-wise mean
    (in fp32, stored in fp16 like every export) of folders of one architecture."""
    from dlm_core.train.soup import main

    from .helpers import tiny_quickturn

    folders = [tmp_path / name for name in ("a", "b", "c")]
    weights = [tiny_quickturn(f, seed=i).model.state_dict() for i, f in enumerate(folders)]
    assert main([*map(str, folders), "--out", str(tmp_path / "soup")]) == 0
    soup = load_model(tmp_path / "soup").model.state_dict()
    assert soup.keys() == weights[0].keys()
    for key in ("embed_tokens.weight", "layers.1.mlp.up_proj.weight"):
        mean = sum(w[key] for w in weights) / 3
        assert not torch.equal(weights[0][key], weights[1][key])
        assert torch.equal(soup[key], mean.half().float())
    tiny_quickturn(tmp_path / "wide", hidden_size=96)
    assert main([str(folders[0]), str(tmp_path / "wide"), "--out", str(tmp_path / "bad")]) == 2
    assert "not the same architecture" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
