"""The copy head (pointer over the cached context): the engine computes exactly what training scores,
copies can reach tokens outside the output vocabulary, it round-trips through our format, and a tiny
model learns with it to say words it could not generate."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from dlm_core import DecodeOptions, DiffusionEngine, load_model
from dlm_core.train import Trainer
from dlm_core.train.objective import attention_mask, make_batch, reply_log_probs

from .helpers import tiny_quickturn, toy_train_config, word_tokenizer


@pytest.fixture(scope="module")
def copy_model(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("copy") / "m"
    return tiny_quickturn(folder, seed=3, copy_head_dim=16, output_token_ids=tuple(range(0, 300, 3)))


def test_cached_block_equals_the_training_path(copy_model) -> None:
    model, cfg = copy_model.model, copy_model.config
    gen = torch.Generator().manual_seed(0)
    prefix = torch.randint(10, cfg.vocab_size, (13,), generator=gen).tolist()
    block = torch.randint(10, cfg.vocab_size, (8,), generator=gen).tolist()
    block[2] = block[5] = cfg.mask_token_id
    model.setup_cache(64)
    with torch.no_grad():
        model.forward_context(torch.tensor([prefix]), start=0)
        cached = model.forward_block(torch.tensor([block]), torch.arange(13, 21), 13)[0]
        batch = make_batch([prefix], [block], mask_id=cfg.mask_token_id, pad_id=cfg.pad_token_id)
        batch.tokens[0, 13:] = torch.tensor(block)  # the same noised block, not a fresh draw
        hidden = model.hidden_masked(batch.tokens, attention_mask(batch.prefix_len, 8, batch.tokens.shape[1]))
        rows, cols = torch.zeros(8, dtype=torch.long), torch.arange(13, 21)
        trained = reply_log_probs(model, batch, hidden, rows, cols, None)
    assert (cached - trained).abs().max() < 1e-4
    assert torch.allclose(cached.exp().sum(-1), torch.ones(8), atol=1e-4)  # a distribution


def test_inference_mixes_in_probability_space_what_training_mixes_in_log_space(copy_model) -> None:
    head = copy_model.model.copy_head
    gen = torch.Generator().manual_seed(1)
    v, length, t = copy_model.config.vocab_size, 6, 9
    logits = torch.randn(length, v, generator=gen) * 8  # peaked: many generator probabilities near 0
    h = torch.randn(length, head.query.in_features, generator=gen)
    keys = torch.randn(t, head.dim, generator=gen).expand(length, t, head.dim)
    ids = torch.randint(0, v, (t,), generator=gen).expand(length, t)
    valid = torch.ones(length, t, dtype=torch.bool)
    valid[:, -2:] = False
    trained = head.mix(logits.requires_grad_(), h, keys, ids, valid)  # log space (autograd on)
    with torch.no_grad():
        served = head.mix(logits, h, keys, ids, valid)  # probability space
    assert trained.requires_grad and not served.requires_grad
    assert torch.isfinite(served).all()
    assert (served - trained.detach()).abs().max() < 1e-3
    assert torch.equal(served.argmax(-1), trained.detach().argmax(-1))


def test_copies_reach_tokens_outside_the_output_vocabulary(copy_model) -> None:
    model, cfg = copy_model.model, copy_model.config
    allowed = set(cfg.output_token_ids)
    prefix = [t for t in range(40, 120) if t not in allowed][:12]
    model.setup_cache(64)
    gate_bias = model.copy_head.gate.bias.detach().clone()
    try:
        with torch.no_grad():
            model.copy_head.gate.bias.fill_(30.0)  # always copy
            model.forward_context(torch.tensor([prefix]), start=0)
            log_p = model.forward_block(torch.full((1, 4), cfg.mask_token_id), torch.arange(12, 16), 12)[0]
    finally:
        with torch.no_grad():
            model.copy_head.gate.bias.copy_(gate_bias)
    probs = log_p.exp()
    assert torch.allclose(probs[:, prefix].sum(-1), torch.ones(4), atol=1e-4)
    assert all(int(i) in prefix and int(i) not in allowed for i in probs.argmax(-1))
    # the engine bans nothing itself: the head restricts its own generator
    assert DiffusionEngine(copy_model, max_context=64)._outside_output_vocab == ()


def test_copy_head_round_trips_through_our_format(copy_model, tmp_path: Path) -> None:
    from dlm_core.loader import save_quickturn_model

    save_quickturn_model(copy_model.model, copy_model.path / "tokenizer.json", tmp_path, dtype=torch.float32)
    again = load_model(tmp_path)
    assert again.config.copy_head_dim == 16
    for name, p in copy_model.model.copy_head.named_parameters():
        assert torch.equal(p, dict(again.model.copy_head.named_parameters())[name])


NAMES = ["ada", "bo", "cy", "di", "ed", "flo", "gus", "hal"]
FILLER = ["my", "name", "is", "i", "am", "call", "me"]


def _naming_task(path: Path, n: int, names: list[str], seed: int) -> Path:
    """The system prompt gives a name; the reply says it (a word never seen in any training reply)."""
    rng = random.Random(seed)
    with path.open("w") as f:
        for _ in range(n):
            name = rng.choice(names)
            messages = [
                {"role": "system", "content": f"my name is {name}"},
                {"role": "user", "content": rng.choice(["call me", "name"])},
                {"role": "assistant", "content": f"i am {name}"},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


@pytest.mark.slow
def test_a_tiny_model_learns_to_copy_words_it_cannot_generate(tmp_path: Path) -> None:
    tok = word_tokenizer(tmp_path / "tokenizer.json", NAMES + FILLER)
    train = _naming_task(tmp_path / "train.jsonl", 1500, NAMES[:6], seed=0)
    # The output vocabulary comes from replies without names: only the copy head can say one.
    vocab = tmp_path / "replies.jsonl"
    vocab.write_text(json.dumps({"messages": [{"role": "assistant", "content": "i am"}]}) + "\n")
    heldout = _naming_task(tmp_path / "heldout.jsonl", 32, NAMES[6:], seed=1)  # unseen names
    cfg = toy_train_config(
        tmp_path,
        tok,
        train,
        heldout,
        output_vocab_from=[str(vocab)],
        model={"hidden_size": 64, "intermediate_size": 128, "copy_head_dim": 16},
        block_len=4,
        max_reply_tokens=4,
        warmup_steps=20,
        total_steps=200,
    )
    trainer = Trainer(cfg, log=lambda m: None)
    trainer.train()
    elbo = trainer.heldout_elbo()
    assert elbo < 0.3, f"held-out loss {elbo:.3f} on names never seen in training"
    engine = DiffusionEngine(load_model(trainer.export(tmp_path / "model")), max_context=64)
    for name in NAMES[6:]:
        conv = [{"role": "system", "content": f"my name is {name}"}, {"role": "user", "content": "name"}]
        reply = engine.generate(conv, DecodeOptions(max_tokens=4, steps=4, block_len=4)).text
        assert reply == f"i am {name}"


def test_the_denoiser_multiplies_only_output_vocabulary_rows(copy_model) -> None:
    """Lossless speed-up: the restricted head equals the full head with the other tokens at -inf."""
    model, cfg = copy_model.model, copy_model.config
    h = torch.randn(1, 5, cfg.hidden_size, generator=torch.Generator().manual_seed(1))
    full = model.head(h)
    outside = torch.ones(cfg.vocab_size, dtype=torch.bool)
    outside[list(cfg.output_token_ids)] = False
    with torch.no_grad():
        restricted = model._reply_logits(h)
        assert torch.equal(restricted[..., ~outside], full[..., ~outside])
        assert torch.isneginf(restricted[..., outside]).all()
        model.embed_tokens.weight.add_(0.5)  # an in-place update (a training step) refreshes the rows
        assert torch.allclose(model._reply_logits(h)[..., ~outside], model.head(h)[..., ~outside])
        model.embed_tokens.weight.sub_(0.5)


def test_a_model_made_in_inference_mode_runs(tmp_path: Path) -> None:
    """Benchmarks build models under torch.inference_mode: their weights keep no version counter."""
    with torch.inference_mode():
        lm = tiny_quickturn(tmp_path / "m", seed=4, copy_head_dim=8, output_token_ids=tuple(range(0, 300, 2)))
        engine = DiffusionEngine(lm, max_context=64)
        reply = engine.generate(
            [{"role": "user", "content": "hello there"}], DecodeOptions(max_tokens=8, steps=4, block_len=8)
        )
    assert reply.token_ids


def test_a_copy_starts_where_a_prompt_word_starts() -> None:
    """``CopyHead.copy_start_ok``: a word's later token ("ur" of "␣t" "ur" "quoise") may be copied only
    right after its earlier one; word starts, punctuation and digits anywhere; off, all."""
    from dlm_core.config import ModelConfig
    from dlm_core.model import CopyHead

    texts = ["<m>", "<a>", " t", "ur", "quoise", " is", " 12", ":", "0", "5", " I", " love"]
    tok = {t: i for i, t in enumerate(texts)}
    cfg = ModelConfig(
        vocab_size=len(texts), hidden_size=8, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=8
    )
    head = CopyHead(ModelConfig(**{**cfg.to_dict(), "copy_head_dim": 4}))
    context = torch.tensor([[tok[t] for t in (" t", "ur", "quoise", " is", " 12", ":", "0", "5", "<a>")]])
    block = torch.tensor([[tok[" I"], tok[" love"], tok[" t"], tok["<m>"], tok["ur"], tok[":"], tok["0"]]])
    first = torch.tensor([context.shape[1]])
    assert head.copy_start_ok(block, context, first) is None  # no vocabulary given: no rule
    head.set_word_pieces(texts, "cpu")
    head.whole_words.fill_(True)
    ok = head.copy_start_ok(block, context, first)[0]  # [L, T]
    slot = {t: j for j, t in enumerate((" t", "ur", "quoise", " is", " 12", ":", "0", "5", "<a>"))}
    starts = [slot[t] for t in (" t", " is", " 12", ":", "0", "<a>")]
    assert ok[:, starts].all()  # word starts, punctuation, a digit after ":" (and the marker) anywhere
    assert ok[:, slot["ur"]].tolist() == [False, False, False, True, False, False, False]  # only after " t"
    assert ok[:, slot["quoise"]].tolist() == [False] * 5 + [True, False]  # only after "ur"
    assert not ok[4, slot["ur"]]  # after a still-masked position: wait until it is revealed
    assert ok[:, slot["5"]].all()  # a number's digits are each their own copy: "5" need not wait for "0"
    head.whole_words.fill_(False)
    assert head.copy_start_ok(block, context, first).all()
