"""The data build's settings: ``configs/embedded_data.toml`` → one frozen dataclass tree."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any


class DataConfigError(ValueError):
    """The data config is malformed: unknown key, wrong type or impossible value."""


@dataclass(frozen=True)
class TemplateConfig:
    examples: int = 40000  # templated training examples (cheap: generated, not stored anywhere else)
    # Relative weights of intent groups in the training mix (missing groups get weight 1.0).
    weights: dict[str, float] = field(default_factory=dict)
    heldout_phrasing_share: float = 0.2  # share of each intent's user phrasings reserved for held-out
    history_share: float = 0.25  # single-turn examples that get 1-2 unrelated earlier exchanges


@dataclass(frozen=True)
class ChatterbotConfig:
    enabled: bool = True
    files: tuple[str, ...] = ()  # empty = sources.DEFAULT_CHATTERBOT_FILES
    max_pairs: int = 0  # 0 = all that pass the filters
    repeat: int = 2  # copies of each kept pair in train (with fresh contexts)


@dataclass(frozen=True)
class CopySetConfig:
    examples: int = 12000  # name questions over ~9,000 dictionary names (train_copy.jsonl; 0 = none)


@dataclass(frozen=True)
class NameSetConfig:
    examples: int = 4000  # own-name / user-name questions in more phrasings (train_names.jsonl; 0 = none)


@dataclass(frozen=True)
class PartSetConfig:
    examples: int = 2000  # part-of-day questions + part-of-day greetings (train_parts.jsonl; 0 = none)


@dataclass(frozen=True)
class SumSetConfig:
    examples: int = 1500  # sums asked with the numbers in words ("two plus two"; train_sums.jsonl; 0 = none)


@dataclass(frozen=True)
class MemorySetConfig:
    # Facts asked back after 1-3 other facts, half never told (train_memory.jsonl; 0 = none).
    examples: int = 6000


@dataclass(frozen=True)
class LongHistoryConfig:
    examples: int = 12000  # train examples with 3–6 earlier exchanges (train_long.jsonl.gz; 0 = none)


@dataclass(frozen=True)
class ChitchatConfig:
    pretrain: bool = True
    pretrain_file: str = "pretrain.jsonl.gz"  # gzip keeps the committed data small (~3 MB vs ~10 MB)
    max_words: int = 40
    max_pairs: int = 0  # 0 = all


@dataclass(frozen=True)
class FortunesConfig:
    enabled: bool = False  # off by default: most short fortunes are predictions or gloomy quips
    max_items: int = 150


@dataclass(frozen=True)
class TeacherConfig:
    enabled: bool = True  # read the cache (the build never runs the teacher itself)
    cache_file: str = "teacher_cache.jsonl"
    max_chitchat_prompts: int = 1800
    samples_per_prompt: int = 2
    temperature: float = 0.6
    top_p: float = 0.9
    repetition_penalty: float = 1.05
    no_repeat_ngram_size: int = 3
    max_new_tokens: int = 40
    min_relevance: float = 0.5  # MiniLM cosine prompt↔reply of the best kept sample
    min_agreement: float = 0.6  # general questions: MiniLM cosine between two clean samples
    repeat: int = 2


@dataclass(frozen=True)
class HeldoutConfig:
    size: int = 500


@dataclass(frozen=True)
class TokenizerConfig:
    enabled: bool = True
    vocab_size: int = 8192
    # The vocabulary is part of every model trained on it: a rebuild keeps the tokenizer.json already in
    # the data folder (the one the shipped model uses) instead of pruning a new one from changed text.
    keep_existing: bool = True


@dataclass(frozen=True)
class DataConfig:
    seed: int = 1234
    data_dir: Path = Path("recipe/data")
    templates: TemplateConfig = field(default_factory=TemplateConfig)
    chatterbot: ChatterbotConfig = field(default_factory=ChatterbotConfig)
    chitchat: ChitchatConfig = field(default_factory=ChitchatConfig)
    copy_set: CopySetConfig = field(default_factory=CopySetConfig)
    long_history: LongHistoryConfig = field(default_factory=LongHistoryConfig)
    name_set: NameSetConfig = field(default_factory=NameSetConfig)
    part_set: PartSetConfig = field(default_factory=PartSetConfig)
    sum_set: SumSetConfig = field(default_factory=SumSetConfig)
    memory_set: MemorySetConfig = field(default_factory=MemorySetConfig)
    fortunes: FortunesConfig = field(default_factory=FortunesConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    heldout: HeldoutConfig = field(default_factory=HeldoutConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    defaults = cls()
    for key, value in raw.items():
        if key not in known:
            raise DataConfigError(f"unknown key '{where}{key}' (known: {', '.join(sorted(known))})")
        default = getattr(defaults, key)
        if is_dataclass(default):
            if not isinstance(value, dict):
                raise DataConfigError(f"'{where}{key}' must be a table")
            kwargs[key] = _build(type(default), value, f"{where}{key}.")
        elif isinstance(default, Path):
            kwargs[key] = Path(value)
        elif isinstance(default, tuple):
            kwargs[key] = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise DataConfigError(f"'{where}{key}' must be true or false, got {value!r}")
            kwargs[key] = value
        elif isinstance(default, (int, float)) and not isinstance(value, (int, float)):
            raise DataConfigError(f"'{where}{key}' must be a number, got {value!r}")
        elif isinstance(default, int) and isinstance(value, float):
            raise DataConfigError(f"'{where}{key}' must be an integer, got {value!r}")
        else:
            kwargs[key] = value
    return cls(**kwargs)


def load_config(path: Path, base_dir: Path | None = None) -> DataConfig:
    """Read a TOML data config; ``data_dir`` is resolved against ``base_dir`` (default: the cwd)."""
    if not path.is_file():
        raise DataConfigError(f"config file {path} not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise DataConfigError(f"{path}: {e}") from e
    cfg = _build(DataConfig, raw, "")
    if base_dir is not None and not cfg.data_dir.is_absolute():
        cfg = DataConfig(**{**cfg.__dict__, "data_dir": base_dir / cfg.data_dir})
    if cfg.templates.examples < 0 or cfg.heldout.size < 0 or cfg.tokenizer.vocab_size < 300:
        raise DataConfigError(f"{path}: counts must be ≥ 0 and vocab_size ≥ 300")
    return cfg
