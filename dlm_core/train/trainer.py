"""Resumable CPU/GPU trainer for quickturn's own diffusion LMs.

    python -m dlm_core.train --config configs/train_embedded.toml          # train (resumes if it can)
    python -m dlm_core.train --config ... --export agent/embedded/model    # write config+safetensors+tokenizer

Runs stop at ``max_minutes`` and pick up where they stopped (model, optimiser, step, data RNG) the
next time, so a long schedule can be spread over many sessions and machines.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from ..config import ModelConfig
from ..engine import DecodeOptions, DiffusionEngine
from ..families import FAMILIES
from ..loader import LoadedModel, load_model, save_quickturn_model
from ..model import Transformer
from ..tokenizer import ChatTokenizer
from . import semantic
from .data import DataError, Example, read_chat_jsonl, sample_block, tokenize_examples
from .objective import loss_terms, make_batch, masked_elbo, output_bias_for


@dataclass
class Source:
    path: str
    weight: float = 1.0
    kinds: list[str] = field(default_factory=list)  # only examples of these kinds ("" = all)


@dataclass
class TrainConfig:
    out_dir: str
    tokenizer: str
    sources: list[Source]
    heldout: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    block_len: int = 32
    max_context: int = 256
    max_reply_tokens: int = 64
    batch_size: int = 32
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup_steps: int = 200
    total_steps: int = 20000  # length of the learning-rate schedule
    stop_step: int = 0  # > 0: the run ends here even if the schedule is longer (a recorded early stop)
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    ar_weight: float = 0.5
    ar_fraction: float = 1.0  # share of prefix positions that get the next-token loss
    length_buckets: int = 4  # draw this many × batch_size candidates and keep similar lengths
    threads: int = 0  # 0 = torch default
    device: str = "cpu"
    seed: int = 0
    max_minutes: float = 115.0
    save_every_minutes: float = 10.0
    eval_every: int = 500
    log_every: int = 20
    init_from: str = ""  # a checkpoint (.pt) or quickturn model folder to start from (weights only)
    init_embeddings: str = ""  # a [vocab, hidden] .npy/.pt to warm-start the embedding table
    output_vocab_from: list[str] = field(default_factory=list)  # reply tokens of these files = output vocab
    sample_prompts: int = 3
    # Export the average of this run's weights and another checkpoint's (weight-space ensembling, as in
    # WiSE-FT): a fine-tune keeps more of what its starting point could do. "" = this run's weights.
    export_average_with: str = ""
    export_average_weight: float = 0.5  # share of ``export_average_with`` in the exported weights
    # Frozen token features ([vocab, d] .npy) added to the input through a learned map, the learned
    # embedding hidden for ``semantic_input_dropout`` of word tokens (``semantic.py``); exported folded
    # into an untied input table. "" = none.
    semantic_inputs: str = ""
    semantic_input_dropout: float = 0.0
    semantic_input_spare_reply_words: bool = True  # never hide a token the reply block contains
    # "all" tokens, or only the "user" turns' words: then the export stays tied and gets a user input
    # table (``ModelConfig.user_turn_ids``), and the context sentences keep their own embedding.
    semantic_input_scope: str = "all"

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        data = tomllib.loads(Path(path).read_text())
        train = dict(data.get("train", {}))
        train["sources"] = [Source(**s) for s in data.get("data", {}).get("sources", [])]
        for key in ("tokenizer", "heldout"):
            if key in data.get("data", {}):
                train[key] = data["data"][key]
        train["model"] = data.get("model", {})
        known = {f.name for f in fields(cls)}
        unknown = set(train) - known
        if unknown:
            raise DataError(f"{path}: unknown [train] keys {sorted(unknown)}")
        if not train["sources"]:
            raise DataError(f"{path}: no [[data.sources]] given")
        if train.get("semantic_input_scope", "all") not in ("all", "user"):
            raise DataError(f'{path}: semantic_input_scope must be "all" or "user"')
        return cls(**train)


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.total_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


class Trainer:
    def __init__(self, cfg: TrainConfig, log=print) -> None:
        self.cfg = cfg
        self.log = log
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.tokenizer = ChatTokenizer.from_file(cfg.tokenizer, FAMILIES["quickturn"])
        tok = self.tokenizer
        self.mask_id, self.pad_id, self.eos_id = (tok.token_id(t) for t in ("<|mask|>", "<|pad|>", "<|end|>"))
        self.model_cfg = ModelConfig(
            **{
                "vocab_size": tok.vocab_size,
                "mask_token_id": self.mask_id,
                "pad_token_id": self.pad_id,
                "eos_token_ids": (self.eos_id,),
                "gen_block_size": cfg.block_len,
                "attention": "block_causal",
                "block_size": 1,
                **cfg.model,
            }
        )
        self.output_bias: torch.Tensor | None = None
        if cfg.output_vocab_from:
            allowed = self._reply_vocabulary(cfg.output_vocab_from)
            self.model_cfg.output_token_ids = tuple(sorted(allowed))
            self.output_bias = output_bias_for(self.model_cfg)
            log(
                f"output vocabulary: {len(allowed)} of {tok.vocab_size} tokens (replies of {cfg.output_vocab_from})"
            )
        self.device = torch.device(cfg.device)
        self.model = Transformer(self.model_cfg).to(self.device)
        self.semantic: torch.Tensor | None = None
        self.semantic_scope = semantic_scope_ids(cfg, tok)
        if cfg.semantic_inputs:
            self.semantic = semantic.read_features(cfg.semantic_inputs, self.model_cfg.vocab_size)
            semantic.attach(self.model, self.semantic, cfg.semantic_input_dropout, self.semantic_scope)
        self.step = 0
        self.rng = random.Random(cfg.seed)
        self.torch_gen = torch.Generator().manual_seed(cfg.seed)
        self.sources = [self._load_source(s) for s in cfg.sources]
        self.heldout: list[Example] = []
        if cfg.heldout:
            self.heldout, _ = self._tokenize(read_chat_jsonl(cfg.heldout))
            self.heldout_conversations = read_chat_jsonl(cfg.heldout)
        # The semantic map starts at zero and is not decayed back there.
        decay = [p for n, p in self.model.named_parameters() if p.dim() >= 2 and n != semantic.PROJ_KEY]
        no_decay = [p for n, p in self.model.named_parameters() if p.dim() < 2 or n == semantic.PROJ_KEY]
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr,
            betas=(0.9, 0.95),
        )
        self._init_or_resume()

    # -- setup -------------------------------------------------------------------------------------
    def _tokenize(self, conversations) -> tuple[list[Example], int]:
        return tokenize_examples(
            conversations,
            self.tokenizer,
            eos_id=self.eos_id,
            max_context=min(self.cfg.max_context, self.model_cfg.max_position_embeddings),
            block_len=self.cfg.block_len,
            max_reply_tokens=self.cfg.max_reply_tokens,
        )

    def _reply_vocabulary(self, paths: list[str]) -> set[int]:
        replies = [c[-1]["content"].strip() for p in paths for c in read_chat_jsonl(p)]
        allowed = {self.eos_id, self.pad_id}
        for enc in self.tokenizer.tokenizer.encode_batch(replies, add_special_tokens=False):
            allowed.update(enc.ids)
        return allowed

    def _load_source(self, src: Source) -> list[Example]:
        examples, skipped = self._tokenize(read_chat_jsonl(src.path, src.kinds))
        which = f" (kinds {', '.join(src.kinds)})" if src.kinds else ""
        self.log(f"data: {src.path}{which}: {len(examples)} examples ({skipped} too long, skipped)")
        if not examples:
            raise DataError(f"{src.path}: no example fits max_context={self.cfg.max_context}")
        return examples

    def _init_or_resume(self) -> None:
        ckpt = self.out / "last.pt"
        if ckpt.is_file():
            state = torch.load(ckpt, map_location=self.device, weights_only=False)
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["opt"])
            self.step = state["step"]
            self.rng.setstate(state["rng"])
            self.torch_gen.set_state(state["torch_gen"])
            self.log(f"resumed from {ckpt} at step {self.step}")
            return
        self.model.init_weights(seed=self.cfg.seed)
        if self.semantic is not None:  # a new channel starts silent: a warm start begins where it was
            torch.nn.init.zeros_(self.model.embed_tokens.proj.weight)
        if self.cfg.init_from:
            self._load_weights(self.cfg.init_from)  # (a checkpoint that has the channel brings its map)
        if self.cfg.init_embeddings and not self.cfg.init_from:  # a warm start already has its embeddings
            emb = self._read_array(self.cfg.init_embeddings)
            if tuple(emb.shape) != tuple(self.model.embed_tokens.weight.shape):
                raise DataError(
                    f"init_embeddings {self.cfg.init_embeddings} has shape {tuple(emb.shape)}, "
                    f"expected {tuple(self.model.embed_tokens.weight.shape)}"
                )
            with torch.no_grad():
                self.model.embed_tokens.weight.copy_(emb)
            self.log(f"embeddings warm-started from {self.cfg.init_embeddings}")

    @staticmethod
    def _read_array(path: str) -> torch.Tensor:
        if path.endswith(".npy"):
            import numpy as np

            return torch.from_numpy(np.load(path)).float()
        return torch.load(path, map_location="cpu").float()

    def _load_weights(self, path: str) -> None:
        p = Path(path)
        if p.is_dir():
            state = dict(load_model(p).model.state_dict())
        else:
            state = torch.load(p, map_location="cpu", weights_only=False)["model"]
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        self.log(f"initialised from {path} (missing {len(missing)}, unexpected {len(unexpected)})")

    # -- loop --------------------------------------------------------------------------------------
    def _batch(self):
        """A batch of similar-length examples: padding is wasted compute on a CPU."""
        weights = [s.weight for s in self.cfg.sources]
        n = self.cfg.batch_size * max(1, self.cfg.length_buckets)
        pairs = []
        for _ in range(n):
            src = self.rng.choices(self.sources, weights)[0]
            ex = src[self.rng.randrange(len(src))]
            pairs.append(sample_block(ex, self.cfg.block_len, self.pad_id, self.rng))
        pairs.sort(key=lambda p: len(p[0]))
        start = self.rng.randrange(0, n - self.cfg.batch_size + 1, self.cfg.batch_size)
        chosen = pairs[start : start + self.cfg.batch_size]
        return make_batch(
            [p for p, _ in chosen],
            [b for _, b in chosen],
            mask_id=self.mask_id,
            pad_id=self.pad_id,
            generator=self.torch_gen,
        )

    def train(self) -> None:
        cfg = self.cfg
        started = time.monotonic()
        last_save = started
        window: list[float] = []
        tokens = 0
        self.model.train()
        log_path = self.out / "log.jsonl"
        while self.step < self.end_step:
            elapsed = (time.monotonic() - started) / 60
            if elapsed >= cfg.max_minutes:
                self.log(f"time limit of {cfg.max_minutes} min reached at step {self.step}")
                break
            lr = lr_at(self.step, cfg)
            for g in self.opt.param_groups:
                g["lr"] = lr
            batch = self._batch()
            if self.semantic is not None and cfg.semantic_input_spare_reply_words:
                self.model.embed_tokens.keep = semantic.reply_tokens_in_input(batch)
            terms = loss_terms(
                self.model,
                batch,
                cfg.ar_weight,
                self.pad_id,
                cfg.ar_fraction,
                self.torch_gen,
                self.output_bias,
            )
            self.opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.opt.step()
            self.step += 1
            tokens += int(batch.lengths.sum())
            window.append(float(terms["diffusion"].detach()))
            if self.step % cfg.log_every == 0:
                rate = tokens / max(1e-9, time.monotonic() - started)
                record = {
                    "step": self.step,
                    "loss": round(float(terms["loss"].detach()), 4),
                    "diffusion": round(sum(window) / len(window), 4),
                    "ar": round(float(terms.get("ar", torch.tensor(0.0)).detach()), 4),
                    "lr": lr,
                    "grad_norm": round(float(grad_norm), 3),
                    "tok_per_s": round(rate),
                    "minutes": round((time.monotonic() - started) / 60, 2),
                }
                with log_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                self._progress(record)
                window.clear()
            if self.heldout and cfg.eval_every and self.step % cfg.eval_every == 0:
                self.evaluate()
                self.model.train()
            if (time.monotonic() - last_save) / 60 >= cfg.save_every_minutes:
                self.save()
                last_save = time.monotonic()
        self.save()
        if self.heldout:
            self.evaluate()

    @property
    def end_step(self) -> int:
        return min(self.cfg.total_steps, self.cfg.stop_step or self.cfg.total_steps)

    @property
    def finished(self) -> bool:
        return self.step >= self.end_step

    def _progress(self, r: dict) -> None:
        frac = self.step / self.cfg.total_steps
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        line = (
            f"[{bar}] step {r['step']}/{self.cfg.total_steps} diff {r['diffusion']:.3f} ar {r['ar']:.3f} "
            f"lr {r['lr']:.2e} {r['tok_per_s']} tok/s {r['minutes']:.1f} min"
        )
        self.log(line)

    def save(self) -> None:
        state = {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "step": self.step,
            "rng": self.rng.getstate(),
            "torch_gen": self.torch_gen.get_state(),
            "model_config": self.model_cfg.to_dict(),
        }
        tmp = self.out / "last.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.out / "last.pt")

    # -- evaluation --------------------------------------------------------------------------------
    @torch.no_grad()
    def heldout_elbo(self, n: int = 256, seed: int = 1234) -> float:
        """Masked-diffusion loss (ELBO bound, nats/token) on held-out replies with fixed noise draws."""
        return masked_elbo(
            self.model,
            self.heldout[:n],
            block_len=self.cfg.block_len,
            mask_id=self.mask_id,
            pad_id=self.pad_id,
            batch_size=self.cfg.batch_size,
            seed=seed,
            output_bias=self.output_bias,
        )

    def engine(self) -> DiffusionEngine:
        loaded = LoadedModel(self.model, self.tokenizer, self.model_cfg, FAMILIES["quickturn"], self.out)
        return DiffusionEngine(loaded, max_context=self.cfg.max_context, use_cuda_graphs=False)

    def evaluate(self) -> None:
        elbo = self.heldout_elbo()
        self.log(
            f"eval step {self.step}: heldout diffusion loss {elbo:.3f} (ppl ≤ {math.exp(min(elbo, 20)):.1f})"
        )
        engine = self.engine()
        for conv in self.heldout_conversations[: self.cfg.sample_prompts]:
            reply = engine.generate(conv[:-1], DecodeOptions(max_tokens=self.cfg.block_len, steps=8)).text
            self.log(f"  user: {conv[-2]['content']!r} -> {reply!r}")
        self.model.drop_cache()
        with (self.out / "eval.jsonl").open("a") as f:
            f.write(json.dumps({"step": self.step, "heldout_diffusion": round(elbo, 4)}) + "\n")

    def export(self, folder: str | Path) -> Path:
        """The current weights as a model folder (averaged as ``export_average_with`` says, like the CLI)."""
        model = exported_model(
            self.model.state_dict(),
            self.model_cfg.to_dict(),
            self.semantic,
            self.semantic_scope,
            self.cfg.export_average_with,
            self.cfg.export_average_weight,
        )
        return save_quickturn_model(model, self.cfg.tokenizer, folder)


def averaged_weights(
    weights: dict[str, torch.Tensor], model_config: dict, other_ckpt: str | Path, other_weight: float
) -> dict[str, torch.Tensor]:
    """``(1 - other_weight) · weights + other_weight · other``, parameter by parameter, for a
    checkpoint or model folder ``other_ckpt`` of the same architecture (weight-space ensembling)."""
    theirs, their_cfg = _weights_and_config(other_ckpt)
    if their_cfg != ModelConfig.from_dict(model_config) or theirs.keys() != weights.keys():
        raise DataError(f"{other_ckpt} is not the same architecture as this run: cannot average them")
    return _mixed(weights, theirs, other_weight, other_ckpt)


def _weights_and_config(source: str | Path) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """A training checkpoint's or a model folder's weights (a folder's in float32) and architecture."""
    path = Path(source)
    if path.is_dir():
        model = load_model(path).model
        return dict(model.float().state_dict()), model.cfg
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state["model"], ModelConfig.from_dict(state["model_config"])


def semantic_scope_ids(cfg: TrainConfig, tok: ChatTokenizer | None = None) -> tuple[int, ...]:
    """The (open, close) ids of a user turn when the channel feeds only the user's words, else ()
    (``tok``: the run's tokenizer, read from ``cfg.tokenizer`` only when needed and not given)."""
    if cfg.semantic_input_scope != "user":
        return ()
    tok = tok or ChatTokenizer.from_file(cfg.tokenizer, FAMILIES["quickturn"])
    return (tok.token_id("<|user|>"), tok.token_id("<|end|>"))


def exported_model(
    weights: dict[str, torch.Tensor],
    model_config: dict,
    features: torch.Tensor | None,
    user_turn_ids: tuple[int, ...],
    average_with: str | Path = "",
    average_weight: float = 0.5,
) -> Transformer:
    """A run's weights as the model its folder holds: a semantic run (``features``: the channel's
    table) folded into an ordinary model (``semantic.folded_state``), and averaged with
    ``average_with`` if given."""
    if features is not None:
        weights = semantic.folded_state(weights, features, user_turn_ids)
        model_config = semantic.folded_config(model_config, user_turn_ids)
        if average_with:
            weights = averaged_folded(weights, average_with, average_weight)
    elif average_with:
        weights = averaged_weights(weights, model_config, average_with, average_weight)
    model = Transformer(ModelConfig.from_dict(model_config))
    model.load_state_dict(weights)
    return model


def averaged_folded(
    weights: dict[str, torch.Tensor], other: str | Path, other_weight: float
) -> dict[str, torch.Tensor]:
    """``averaged_weights`` for a folded semantic run (an untied head or a user input table) and a
    checkpoint or model folder that may have neither: its embedding stands in for both."""
    theirs, _ = _weights_and_config(other)
    for key in ("lm_head.weight", "embed_user.weight"):
        if key in weights and key not in theirs:
            theirs = {**theirs, key: theirs["embed_tokens.weight"]}
    return _mixed(weights, theirs, other_weight, other)


def _mixed(
    weights: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], other_weight: float, source: object
) -> dict[str, torch.Tensor]:
    if not 0.0 <= other_weight <= 1.0:
        raise DataError(f"export_average_weight must be in [0, 1], got {other_weight}")
    for k, v in weights.items():
        if k not in theirs or theirs[k].shape != v.shape:
            raise DataError(f"{source} is not the same architecture as this run: cannot average them ({k})")
    return {
        k: (v.float() * (1.0 - other_weight) + theirs[k].float() * other_weight).to(v.dtype)
        for k, v in weights.items()
    }


def export_checkpoint(
    ckpt: str | Path,
    tokenizer_json: str | Path,
    folder: str | Path,
    average_with: str | Path = "",
    average_weight: float = 0.5,
    semantic_inputs: str | Path = "",
    semantic_scope: tuple[int, ...] = (),
) -> int:
    """Write a training checkpoint as a model folder (no data loading); returns its step.

    ``average_with``: another checkpoint of the same architecture; the folder then gets
    ``(1 - average_weight) · this + average_weight · that``, parameter by parameter. A run trained
    with semantic inputs needs their table (``semantic_inputs``) and the user-turn ids it was scoped
    to (``semantic_scope``, if any) and exports folded (``exported_model``)."""
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    weights, model_config = state["model"], dict(state["model_config"])
    features = None
    if semantic.PROJ_KEY in weights:
        if not semantic_inputs:
            raise DataError(f"{ckpt} was trained with semantic inputs: give their table to export it")
        features = semantic.read_features(semantic_inputs, model_config["vocab_size"])
    model = exported_model(weights, model_config, features, semantic_scope, average_with, average_weight)
    save_quickturn_model(model, tokenizer_json, folder)
    return int(state["step"])


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m dlm_core.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--export", metavar="DIR", help="write the current checkpoint as a model folder and exit")
    ap.add_argument("--max-minutes", type=float, help="override [train] max_minutes")
    ap.add_argument("--device", help="override [train] device (cpu | cuda)")
    ap.add_argument(
        "--seed",
        type=int,
        help="override [train] seed; the run's folder becomes <out_dir>-seed<N>, so seeds never resume each other",
    )
    ap.add_argument(
        "--finished",
        action="store_true",
        help="exit 0 if the run has reached its last step, 3 if not (no training)",
    )
    args = ap.parse_args(argv)
    try:
        cfg = TrainConfig.from_toml(args.config)
    except (OSError, tomllib.TOMLDecodeError, DataError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.max_minutes is not None:
        cfg.max_minutes = args.max_minutes
    if args.device:
        cfg.device = args.device
    if args.seed is not None:
        cfg.seed = args.seed
        cfg.out_dir = f"{cfg.out_dir}-seed{args.seed}"

    def log(msg: str) -> None:
        print(msg, flush=True)

    if args.finished:
        ckpt = Path(cfg.out_dir) / "last.pt"
        step = torch.load(ckpt, map_location="cpu", weights_only=False)["step"] if ckpt.is_file() else 0
        end = min(cfg.total_steps, cfg.stop_step or cfg.total_steps)
        log(f"{args.config}: step {step} of {end}" + ("" if step >= end else " — run it again to continue"))
        return 0 if step >= end else 3
    if args.export:
        ckpt = Path(cfg.out_dir) / "last.pt"
        if not ckpt.is_file():
            print(f"error: no checkpoint in {cfg.out_dir} to export", file=sys.stderr)
            return 2
        try:
            step = export_checkpoint(
                ckpt,
                cfg.tokenizer,
                args.export,
                cfg.export_average_with,
                cfg.export_average_weight,
                cfg.semantic_inputs,
                semantic_scope_ids(cfg),
            )
        except (OSError, DataError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        mixed = (
            f", averaged with {cfg.export_average_with} ({cfg.export_average_weight:g})"
            if cfg.export_average_with
            else ""
        )
        log(f"exported step {step} to {args.export}{mixed}")
        return 0
    try:
        trainer = Trainer(cfg, log=log)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Ctrl-C or a SIGTERM saves a checkpoint at the current step, so no work is lost between saves.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        trainer.train()
    except KeyboardInterrupt:
        trainer.save()
        log(f"interrupted: saved step {trainer.step} to {Path(cfg.out_dir) / 'last.pt'}")
        return 130
    return 0
