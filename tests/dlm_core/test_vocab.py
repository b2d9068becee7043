"""BPE pruning on a real byte-level BPE trained here with ``tokenizers`` (no model download)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from dlm_core.vocab import NO_OLD_ID, SPECIAL_TOKENS, VocabError, prune_bpe_tokenizer, tokens_per_word

CORPUS = [
    "What time is it? It's 2:05 PM right now.",
    "Today is Tuesday, November 26, 2026. Your name is Quinn.",
    "Why don't skeletons fight each other? They don't have the guts.",
    "I'm doing well, thanks for asking! How about you?",
    "The capital of France is Paris. Mixing blue and yellow makes green.",
    "There are 60 minutes in an hour, and 24 hours in a day.",
    "Sorry, I can't check the weather. I don't have internet access.",
] * 20

VARIED = [
    "Hello there! What time is it? It's 2:05 PM.",
    "Ünïcödé ✓ 日本語, emoji 😀 and “curly quotes” — dashes…",
    "  two  spaces,\ttabs\nand newlines\r\n",
    "Numbers: 3.14159, 1,000,000 and -42; 7/8 = 0.875 (approx).",
    "Punctuation!?!... #hash @at $dollar %percent ^caret &amp *star",
    "Zürich's café serves crème brûlée; naïve résumé.",
    "",
]


@pytest.fixture(scope="module")
def source_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1,200-token byte-level BPE trained on a wider text, like a pretrained model's tokenizer."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1200,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    wide = CORPUS + [f"line {i}: the quick brown fox {i * 7} jumps over lazy dogs" for i in range(300)]
    tok.train_from_iterator(wide, trainer)
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    tok.save(str(path))
    return path


@pytest.fixture(scope="module")
def pruned(source_json: Path):  # noqa: ANN201
    return prune_bpe_tokenizer(source_json, CORPUS, 600, SPECIAL_TOKENS)


def test_size_and_special_tokens(pruned) -> None:  # noqa: ANN001
    tok = pruned.tokenizer
    assert tok.get_vocab_size() == 600 == pruned.vocab_size
    for i, t in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(t) == i  # specials first, in the given order
        assert pruned.kept_old_ids[i] == NO_OLD_ID
    enc = tok.encode("<|system|>Hi.<|user|>What time is it?<|end|><|assistant|><|mask|><|mask|><|pad|>")
    assert enc.ids[0] == 0 and enc.ids.count(5) == 2 and enc.ids[-1] == 4
    assert tok.decode(enc.ids, skip_special_tokens=True) == "Hi.What time is it?"


@pytest.mark.parametrize("text", VARIED + CORPUS[:7])
def test_round_trip(pruned, text: str) -> None:  # noqa: ANN001
    ids = pruned.tokenizer.encode(text).ids
    assert pruned.tokenizer.decode(ids) == text
    assert all(0 <= i < 600 for i in ids)


def test_merge_closure_and_old_ids(pruned, source_json: Path) -> None:  # noqa: ANN001
    spec = json.loads(pruned.tokenizer.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in spec["model"]["merges"]]
    for a, b in merges:
        assert a in vocab and b in vocab and a + b in vocab
    built = {a + b for a, b in merges}
    alphabet = set(pre_tokenizers.ByteLevel.alphabet())
    assert alphabet <= set(vocab)
    for t in vocab:
        assert t in SPECIAL_TOKENS or t in alphabet or t in built, t
    old = json.loads(source_json.read_text())["model"]["vocab"]
    old_by_id = {i: t for t, i in old.items()}
    for t, new_id in vocab.items():
        old_id = pruned.kept_old_ids[new_id]
        if old_id != NO_OLD_ID:
            assert old_by_id[old_id] == t


def test_frequent_words_stay_whole_and_compression(pruned, source_json: Path) -> None:  # noqa: ANN001
    tok = pruned.tokenizer
    assert tok.encode(" weather").tokens == ["Ġweather"]
    full = Tokenizer.from_file(str(source_json))
    tpw_pruned = tokens_per_word(tok, CORPUS)
    tpw_full = tokens_per_word(full, CORPUS)
    print(f"tokens/word: pruned(600) {tpw_pruned:.3f}, source(1200) {tpw_full:.3f}")
    assert tpw_pruned <= 1.25 * tpw_full
    # Text unlike the corpus still encodes, just in more pieces.
    assert tokens_per_word(tok, ["quantum chromodynamics"]) > 2


def test_errors(source_json: Path, tmp_path: Path) -> None:
    with pytest.raises(VocabError, match="below"):
        prune_bpe_tokenizer(source_json, CORPUS, 100)
    with pytest.raises(VocabError, match="not found"):
        prune_bpe_tokenizer(tmp_path / "nope.json", CORPUS, 400)
    with pytest.raises(VocabError, match="only"):
        prune_bpe_tokenizer(source_json, CORPUS, 5000)
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.save(str(tmp_path / "wp.json"))
    with pytest.raises(VocabError, match="byte-level BPE"):
        prune_bpe_tokenizer(tmp_path / "wp.json", CORPUS, 400)
    with pytest.raises(VocabError, match="duplicate"):
        prune_bpe_tokenizer(source_json, CORPUS, 400, ["<a>", "<a>"])
