"""Small real artefacts for dlm_core tests: a BPE tokenizer trained on the fly and tiny models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from dlm_core import ModelConfig, load_model, save_quickturn_model
from dlm_core.families import QUICKTURN_SPECIALS
from dlm_core.loader import LoadedModel
from dlm_core.model import Transformer

CORPUS = [
    "hello there, how are you today?",
    "I am fine, thank you. What time is it?",
    "The time is 2:05 PM. Today is Tuesday.",
    "my name is Sam and I like green apples.",
    "one two three four five six seven eight nine ten",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
] * 20


def word_tokenizer(path: Path, words: Sequence[str], specials: Sequence[str] = QUICKTURN_SPECIALS) -> Path:
    """One token per word (specials first): toy tasks whose token positions line up exactly."""
    vocab = {t: i for i, t in enumerate([*specials, "[UNK]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.add_special_tokens(list(specials))
    tok.save(str(path))
    return path


def train_tokenizer(path: Path, vocab_size: int = 300, specials: Sequence[str] = QUICKTURN_SPECIALS) -> Path:
    """A byte-level BPE on a tiny corpus; ``specials`` get the first ids, in order."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.save(str(path))
    return path


def tiny_quickturn(
    folder: Path, *, seed: int = 0, block_size: int = 1, attention: str = "block_causal", **overrides
) -> LoadedModel:
    """A random-weight quickturn model written to ``folder`` in our own format and loaded back."""
    folder.mkdir(parents=True, exist_ok=True)
    tok_path = train_tokenizer(folder / "tok_src.json")
    tok = Tokenizer.from_file(str(tok_path))
    ids = {t: tok.token_to_id(t) for t in QUICKTURN_SPECIALS}
    cfg = ModelConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=overrides.pop("hidden_size", 64),
        num_layers=overrides.pop("num_layers", 2),
        num_heads=overrides.pop("num_heads", 4),
        num_kv_heads=overrides.pop("num_kv_heads", 2),
        intermediate_size=overrides.pop("intermediate_size", 128),
        max_position_embeddings=overrides.pop("max_position_embeddings", 256),
        mask_token_id=ids["<|mask|>"],
        pad_token_id=ids["<|pad|>"],
        eos_token_ids=(ids["<|end|>"],),
        attention=attention,  # type: ignore[arg-type]
        block_size=block_size,
        **overrides,
    )
    model = Transformer(cfg)
    model.init_weights(std=0.5, seed=seed)  # large weights: peaked, well-separated logits
    save_quickturn_model(model, tok_path, folder)
    return load_model(folder)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def toy_train_config(tmp_path: Path, tokenizer: Path, train: Path, heldout: Path, **overrides):
    """A TrainConfig for a 2-layer toy model that trains in seconds on one CPU thread."""
    from dlm_core.train import TrainConfig
    from dlm_core.train.trainer import Source

    model = {
        "hidden_size": 96,
        "num_layers": 2,
        "num_heads": 4,
        "num_kv_heads": 4,
        "intermediate_size": 192,
        "max_position_embeddings": 64,
        **overrides.pop("model", {}),
    }
    base = dict(
        out_dir=str(tmp_path / "run"),
        tokenizer=str(tokenizer),
        sources=[Source(path=str(train))],
        heldout=str(heldout),
        model=model,
        block_len=8,
        max_context=64,
        max_reply_tokens=8,
        batch_size=32,
        lr=5e-3,
        min_lr=5e-4,
        warmup_steps=30,
        total_steps=400,
        eval_every=0,
        log_every=50,
        threads=1,
        sample_prompts=0,
    )
    base.update(overrides)
    return TrainConfig(**base)
