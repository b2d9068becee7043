"""A frozen semantic input channel for training: fixed token features (e.g. a bigger model's token
embeddings) reach the model through a learned map, beside its own input embedding.

A small model's own embeddings say little about which words are alike: tied to the output head, a
word lands beside the words it is *said* with, not those it *means* (in the embedded model "evening"
sits among the weekday names). With input = E[t] + scale · W · F[t] (F frozen, W learned and zero at
the start, so a warm start begins exactly where it was), words alike in F share part of their input.
``dropout`` hides E for that share of word tokens during training (never for a token the reply
contains: a copied name must stay exactly itself), so the model must learn to read words through F
too — which is what carries what it learned for "afternoon" over to "evening".

Nothing of this runs at inference: ``folded_state`` writes E + scale · W · F into an untied input
table and keeps E as the output head, an ordinary checkpoint for any loader. With ``user_turn_ids``
the channel feeds only the user's words (a chat template's user turns): the system sentences and the
history's replies — what a reply copies times and names from — are read through E alone, and the
export keeps E tied to the head and writes E + scale · W · F as the model's user input table
(``ModelConfig.user_turn_ids``).

Measured on the embedded model (docs/model-card.md, points 23 d, 24 and 25 b): on every token it
fixes the part-of-day questions the model's own embedding misread, but copies clock times worse even
with the digits' feature rows left blank (all-zero rows carry nothing and are never hidden); on the
user's words only it keeps the clock, and the shipped stage 7 uses it that way (point 26; its gain
varies by seed and it costs some relevance).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..model import Transformer, user_turn_mask
from .data import DataError
from .objective import Batch

# W's output is multiplied by this: Adam moves a weight by about the learning rate per step whatever
# its gradient, so the map learns ``SCALE`` times faster than the (gently fine-tuned) rest.
SCALE = 40.0
# The features are rescaled to this spread per entry (about a trained embedding table's here), fixed so
# that a resumed run computes the same function.
FEATURE_STD = 0.17
PROJ_KEY = "embed_tokens.proj.weight"


class SemanticEmbedding(nn.Embedding):
    """An input embedding plus a learned map of frozen features (``features``: [vocab, d]; all-zero
    rows, such as special tokens', are never hidden) — for every token, or with ``user_turn_ids``
    (open, close) only for those inside user turns."""

    def __init__(
        self,
        weight: nn.Parameter,
        features: torch.Tensor,
        dropout: float,
        user_turn_ids: tuple[int, ...] = (),
    ) -> None:
        super().__init__(weight.shape[0], weight.shape[1])
        self.weight = weight  # the same parameter: the tied output head keeps using it
        self.register_buffer("features", features.to(weight.dtype), persistent=False)
        self.register_buffer("has_features", features.abs().sum(-1) > 0, persistent=False)
        self.proj = nn.Linear(features.shape[1], weight.shape[1], bias=False, device=weight.device)
        nn.init.zeros_(self.proj.weight)
        self.dropout = dropout
        self.user_turn_ids = tuple(user_turn_ids)
        self.keep: torch.Tensor | None = None  # [B, T] positions never hidden in the next forward

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        own = F.embedding(ids, self.weight)
        scope = user_turn_mask(ids, *self.user_turn_ids) if self.user_turn_ids else None
        if self.training and self.dropout > 0:
            hidden = (torch.rand(ids.shape, device=ids.device) < self.dropout) & self.has_features[ids]
            if self.keep is not None and self.keep.shape == ids.shape:
                hidden &= ~self.keep
            if scope is not None:
                hidden &= scope
            own = own.masked_fill(hidden.unsqueeze(-1), 0.0)
        self.keep = None
        channel = SCALE * self.proj(self.features[ids])
        if scope is not None:
            channel = channel * scope.unsqueeze(-1)
        return own + channel


def reply_tokens_in_input(batch: Batch) -> torch.Tensor:
    """[B, T] bool: input positions holding a token that the row's reply block contains. Those keep
    their own embedding: a word the reply copies must stay exactly itself, whatever the channel says
    it resembles."""
    tokens, targets = batch.tokens, batch.targets
    pos = torch.arange(tokens.shape[1], device=tokens.device)[None, :]
    start = batch.prefix_len[:, None]
    block = (pos >= start) & (pos < start + batch.block_len)
    vocab = int(max(tokens.max(), targets.max())) + 1
    in_block = torch.zeros(tokens.shape[0], vocab, dtype=torch.bool, device=tokens.device)
    in_block.scatter_(1, torch.where(block, targets, 0), block)
    return in_block.gather(1, tokens)


def read_features(path: str | Path, vocab_size: int) -> torch.Tensor:
    """A [vocab, d] table from .npy (or a torch file), rescaled to ``FEATURE_STD``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"semantic input table not found: {path} (python -m recipe.init_embeddings --features)"
        )
    table = torch.from_numpy(np.load(path)) if path.suffix == ".npy" else torch.load(path, map_location="cpu")
    table = table.float()
    if table.dim() != 2 or table.shape[0] != vocab_size:
        raise DataError(f"{path}: expected [{vocab_size}, d] token features, got {tuple(table.shape)}")
    known = table.abs().sum(-1) > 0
    if not known.any():
        raise DataError(f"{path}: every row is zero")
    return table * (FEATURE_STD / float(table[known].std()))


def attach(
    model: Transformer, features: torch.Tensor, dropout: float, user_turn_ids: tuple[int, ...] = ()
) -> SemanticEmbedding:
    """Give ``model`` the semantic channel (its own embedding and head unchanged)."""
    if not model.cfg.tie_word_embeddings or model.embed_user is not None:
        raise DataError("semantic inputs need a model with tied embeddings and one input table")
    weight = model.embed_tokens.weight
    emb = SemanticEmbedding(weight, features.to(weight.device), dropout, user_turn_ids)
    model.embed_tokens = emb
    return emb


def folded_state(
    state: dict[str, torch.Tensor], features: torch.Tensor, user_turn_ids: tuple[int, ...] = ()
) -> dict[str, torch.Tensor]:
    """A trained state with the channel → the state of a model that computes exactly the same
    function with no channel: untied (E the head, E + scale · W · F the input table), or, with
    ``user_turn_ids``, tied with E + scale · W · F as its user input table (``folded_config``)."""
    state = dict(state)
    proj = state.pop(PROJ_KEY).float()
    own = state["embed_tokens.weight"]
    folded = (own.float() + SCALE * features.float() @ proj.T).to(own.dtype)
    if user_turn_ids:
        state["embed_user.weight"] = folded
        return state
    state["lm_head.weight"] = own.clone()
    state["embed_tokens.weight"] = folded
    return state


def folded_config(model_config: dict, user_turn_ids: tuple[int, ...] = ()) -> dict:
    """The model config that goes with ``folded_state``."""
    if user_turn_ids:
        return {**model_config, "user_turn_ids": list(user_turn_ids)}
    return {**model_config, "tie_word_embeddings": False}
