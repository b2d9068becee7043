"""Per-turn latency from the event stream — one definition used by the pipeline, demo and profiler.

All stage times are milliseconds measured from the turn's last voiced frame unless named otherwise:
  endpoint_ms        last voiced frame → endpoint commit
  asr_final_ms       last voiced frame → final transcript
  asr_compute_ms     time the final ASR pass itself took
  lm_ms              reply generation (all blocks), lm_prefill_ms its prompt prefill; with the reply
                     gate on, the gate and its fallbacks too (gate_ms: the judging alone)
  lm_ms_per_step     lm_ms / denoising forwards
  tts_first_chunk_ms synthesis time of the first clause
  reply_ready_ms     last voiced frame → first reply audio ready (ASR + LM + TTS, speculative or not)
  output_ms          first audio ready or commit, whichever is later → first sample at the output
  v2v_ms             last voiced frame → first reply sample handed to the output (voice-to-voice)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .events import (
    BargeIn,
    EndpointCommitted,
    Event,
    FinalTranscript,
    FirstReplySample,
    LMFinished,
    ReplyGated,
    SpeculationDiscarded,
    TTSChunk,
    TurnMerged,
)

STAGES = (
    "endpoint_ms",
    "asr_final_ms",
    "asr_compute_ms",
    "lm_ms",
    "lm_prefill_ms",
    "lm_ms_per_step",
    "gate_ms",
    "tts_first_chunk_ms",
    "reply_ready_ms",
    "output_ms",
    "v2v_ms",
)


@dataclass
class TurnTiming:
    turn: int
    transcript: str = ""
    reply: str = ""
    stages_ms: dict[str, float] = field(default_factory=dict)
    lm_steps: int = 0
    lm_tokens: int = 0
    lm_forwards: int = 0
    discarded_speculations: int = 0
    merges: int = 0  # continuations joined into this turn (agent/turns.py)
    interrupted: bool = False
    reply_candidate: str = ""  # the reply gate's choice; "" = no gate
    gate_reason: str = ""
    last_voiced_t: float | None = None
    first_sample_t: float | None = None

    @property
    def v2v_ms(self) -> float | None:
        return self.stages_ms.get("v2v_ms")


def summarize_turn(events: Iterable[Event]) -> TurnTiming:
    """Stage times of one turn from its events (the committed attempt; discarded ones are counted)."""
    events = list(events)
    timing = TurnTiming(turn=events[0].turn if events else -1)
    # A merged turn was committed more than once: the last commit ended it.
    commit = next((e for e in reversed(events) if isinstance(e, EndpointCommitted)), None)
    if commit is None:
        return timing
    last_voiced = commit.last_voiced_t
    timing.last_voiced_t = last_voiced
    # Only the attempt that started after the last discard (or merge) belongs to the committed reply.
    discards = [e for e in events if isinstance(e, SpeculationDiscarded | TurnMerged)]
    timing.discarded_speculations = sum(isinstance(e, SpeculationDiscarded) for e in discards)
    timing.merges = len(discards) - timing.discarded_speculations
    after = max((e.t for e in discards), default=float("-inf"))
    current = [e for e in events if e.t >= after]

    def first(kind):
        return next((e for e in current if isinstance(e, kind)), None)

    ms = timing.stages_ms
    ms["endpoint_ms"] = (commit.t - last_voiced) * 1e3
    final = first(FinalTranscript)
    if final is not None:
        timing.transcript = final.text
        ms["asr_final_ms"] = (final.t - last_voiced) * 1e3
        ms["asr_compute_ms"] = final.asr_ms
    lm = first(LMFinished)
    if lm is not None:
        timing.reply = lm.text
        timing.lm_steps, timing.lm_tokens, timing.lm_forwards = lm.steps, lm.tokens, lm.forwards
        ms["lm_ms"] = lm.lm_ms
        ms["lm_prefill_ms"] = lm.prefill_ms
        if lm.forwards:
            ms["lm_ms_per_step"] = (lm.lm_ms - lm.prefill_ms) / lm.forwards
    gated = first(ReplyGated)
    if gated is not None:
        timing.reply_candidate, timing.gate_reason = gated.candidate, gated.reason
        ms["gate_ms"] = gated.gate_ms
    tts = first(TTSChunk)
    if tts is not None:
        ms["tts_first_chunk_ms"] = tts.synth_ms
        ms["reply_ready_ms"] = (tts.t - last_voiced) * 1e3
    sample = first(FirstReplySample)
    if sample is not None:
        timing.first_sample_t = sample.t
        ms["v2v_ms"] = (sample.t - last_voiced) * 1e3
        ready = max(commit.t, tts.t if tts is not None else commit.t)
        ms["output_ms"] = (sample.t - ready) * 1e3
    timing.interrupted = any(isinstance(e, BargeIn) for e in events)
    return timing
