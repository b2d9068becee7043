"""Prune a byte-level BPE tokenizer to a small vocabulary fitted to a corpus.

A small model cannot afford a 49k-token embedding table, but training a BPE from scratch throws away a
pretrained model's embeddings. Pruning keeps a subset of an existing BPE's tokens, so each kept token
can be warm-started from the original embedding row (``kept_old_ids``).

Kept set: the 256 byte symbols (every text stays encodable), then the corpus's most frequent tokens,
each together with its whole merge ancestry (a token is only reachable through the merge that builds
it from two kept tokens); any budget left is filled in the original merge order. Merges whose result
or parts are dropped are removed; original order (priority) of the rest is kept.

New ids: the special tokens come FIRST (ids 0 … len(special_tokens)-1, in the order given), then the
256 byte symbols, then merged tokens, both in their original id order (byte symbols the source lacks
come last in the byte block and map to ``NO_OLD_ID``, like the special tokens).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.pre_tokenizers import ByteLevel

SPECIAL_TOKENS: tuple[str, ...] = (
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
    "<|pad|>",
    "<|mask|>",
)
NO_OLD_ID = -1  # kept_old_ids entry of a special token: no row in the source embedding


class VocabError(ValueError):
    """The source tokenizer or the requested vocabulary cannot be pruned as asked."""


@dataclass
class PrunedTokenizer:
    tokenizer: Tokenizer
    kept_old_ids: list[int]  # new id → old id (NO_OLD_ID for special tokens and added byte symbols)

    @property
    def vocab_size(self) -> int:
        return len(self.kept_old_ids)


def _merge_pair(m: str | Sequence[str]) -> tuple[str, str]:
    """Merges are stored as "a b" (older files) or ["a", "b"] (newer)."""
    if isinstance(m, str):
        a, b = m.split(" ", 1)
        return a, b
    return m[0], m[1]


def prune_bpe_tokenizer(
    tokenizer_json_path: str | Path,
    corpus_texts: Iterable[str],
    vocab_size: int,
    special_tokens: Sequence[str] = SPECIAL_TOKENS,
) -> PrunedTokenizer:
    """Return a working ``tokenizers.Tokenizer`` of exactly ``vocab_size`` ids (specials included)."""
    path = Path(tokenizer_json_path)
    if not path.is_file():
        raise VocabError(f"tokenizer file {path} not found")
    spec = json.loads(path.read_text(encoding="utf-8"))
    model = spec.get("model", {})
    if model.get("type") != "BPE" or (spec.get("pre_tokenizer") or {}).get("type") != "ByteLevel":
        raise VocabError(f"{path}: only byte-level BPE tokenizers can be pruned")
    if len(set(special_tokens)) != len(special_tokens):
        raise VocabError(f"duplicate special tokens in {list(special_tokens)}")
    old_vocab: dict[str, int] = model["vocab"]
    merges = [_merge_pair(m) for m in model["merges"]]

    # Some BPEs (SmolLM2's) lack the symbols of bytes that never occur in valid UTF-8 or of rare
    # control characters; they are added anyway so that every string stays encodable.
    alphabet = sorted(ByteLevel.alphabet(), key=lambda s: (old_vocab.get(s, 1 << 30), s))
    budget = vocab_size - len(special_tokens) - len(alphabet)
    if budget < 0:
        raise VocabError(
            f"vocab_size {vocab_size} is below {len(special_tokens)} special tokens + {len(alphabet)} byte symbols"
        )

    # The merge that first builds each token (lowest rank wins, as in BPE itself).
    parents: dict[str, tuple[str, str]] = {}
    rank: dict[str, int] = {}
    for r, (a, b) in enumerate(merges):
        res = a + b
        if res not in parents:
            parents[res] = (a, b)
            rank[res] = r

    # Frequencies under the ORIGINAL tokenizer (old added/special tokens are never counted).
    source = Tokenizer.from_file(str(path))
    id_to_tok = {i: t for t, i in old_vocab.items()}
    freq: Counter[str] = Counter()
    batch: list[str] = []

    def flush() -> None:
        for enc in source.encode_batch(batch, add_special_tokens=False):
            freq.update(id_to_tok[i] for i in enc.ids if i in id_to_tok)
        batch.clear()

    for text in corpus_texts:
        batch.append(text)
        if len(batch) >= 2048:
            flush()
    flush()

    kept: set[str] = set(alphabet)
    merged_kept: list[str] = []

    def closure(tok: str) -> list[str]:
        """``tok`` plus every not-yet-kept ancestor, parents before children."""
        out: list[str] = []
        stack = [(tok, False)]
        seen: set[str] = set()
        while stack:
            t, expanded = stack.pop()
            if t in kept or (t in seen and not expanded):
                continue
            if expanded:
                out.append(t)
                continue
            seen.add(t)
            if t not in parents:
                raise VocabError(f"token {t!r} has no merge and is not a byte symbol")
            stack.append((t, True))
            stack.extend((p, False) for p in parents[t])
        return out

    def try_add(tok: str) -> None:
        need = closure(tok)
        if need and len(need) <= budget - len(merged_kept):
            kept.update(need)
            merged_kept.extend(need)

    for tok, _n in sorted(freq.items(), key=lambda kv: (-kv[1], old_vocab[kv[0]])):
        if len(merged_kept) >= budget:
            break
        if tok not in kept and tok in parents:
            try_add(tok)
    # Budget left (small corpus): fill in the original merge order, whose ancestry is always earlier.
    for a, b in merges:
        if len(merged_kept) >= budget:
            break
        if a + b not in kept and rank.get(a + b) is not None:
            try_add(a + b)
    if len(merged_kept) < budget:
        raise VocabError(
            f"source tokenizer has only {len(alphabet) + len(merged_kept)} tokens; asked for {vocab_size}"
        )

    ordered = alphabet + sorted(merged_kept, key=lambda t: old_vocab[t])
    n_special = len(special_tokens)
    new_vocab = {tok: n_special + i for i, tok in enumerate(ordered)}
    kept_merges = [(a, b) for a, b in merges if a in new_vocab and b in new_vocab and (a + b) in new_vocab]
    # Keep only the merge that builds each kept token first (duplicates would never fire anyway).
    seen_res: set[str] = set()
    unique_merges = []
    for a, b in kept_merges:
        if a + b not in seen_res:
            seen_res.add(a + b)
            unique_merges.append([a, b])

    new_spec = dict(spec)
    # The special tokens live in the model vocab too: otherwise ``tokenizers`` re-numbers added tokens
    # from the vocab's size and they would collide with the ids we assigned.
    full_vocab = {t: i for i, t in enumerate(special_tokens)} | new_vocab
    new_spec["model"] = {**model, "vocab": full_vocab, "merges": unique_merges}
    new_spec["added_tokens"] = [
        {
            "id": i,
            "content": t,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, t in enumerate(special_tokens)
    ]
    # The source's post-processor may name its own special tokens; ours adds none.
    new_spec["post_processor"] = {
        "type": "ByteLevel",
        "add_prefix_space": False,
        "trim_offsets": False,
        "use_regex": True,
    }
    new_spec["truncation"] = None
    new_spec["padding"] = None
    tokenizer = Tokenizer.from_str(json.dumps(new_spec))
    if tokenizer.get_vocab_size() != vocab_size or any(
        tokenizer.token_to_id(t) != i for i, t in enumerate(special_tokens)
    ):
        raise VocabError(
            f"built {tokenizer.get_vocab_size()} ids with misplaced specials, expected {vocab_size}"
        )
    kept_old_ids = [NO_OLD_ID] * n_special + [old_vocab.get(t, NO_OLD_ID) for t in ordered]
    return PrunedTokenizer(tokenizer, kept_old_ids)


def tokens_per_word(tokenizer: Tokenizer, texts: Iterable[str]) -> float:
    """Mean tokens per whitespace word (a compression measure for reports)."""
    n_tok = n_words = 0
    for t in texts:
        n_tok += len(tokenizer.encode(t, add_special_tokens=False).ids)
        n_words += len(t.split())
    return n_tok / max(1, n_words)
