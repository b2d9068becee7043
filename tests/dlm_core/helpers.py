"""Small real artefacts for dlm_core tests: a BPE tokenizer trained on the fly and tiny models."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from dlm_core.families import QUICKTURN_SPECIALS

CORPUS = [
    "hello there, how are you today?",
    "I am fine, thank you. What time is it?",
    "The time is 2:05 PM. Today is Tuesday.",
    "my name is Sam and I like green apples.",
    "one two three four five six seven eight nine ten",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
] * 20


def train_tokenizer(path: Path, vocab_size: int = 300) -> Path:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(QUICKTURN_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.save(str(path))
    return path
