"""Stage spans of each turn, rebuilt from the event stream after the run (nothing is timed twice).

A span is a (track, name, start, end) on the pipeline's monotonic clock. Tracks are what a trace
viewer draws as rows: the user's audio, VAD + endpointing, ASR, LM, TTS, playback, and discarded
speculative work. The LM and TTS spans come from one worker thread that alternates
``LMBlock``/``TTSChunk``, so each span runs from the previous worker event to its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..events import (
    BargeIn,
    EndpointCommitted,
    Event,
    FinalTranscript,
    FirstReplySample,
    LatencyReport,
    LMBlock,
    LMFinished,
    LMStarted,
    PartialTranscript,
    PlaybackFinished,
    SpeculationDiscarded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TTSChunk,
)

TRACKS = ("turn", "user audio", "VAD+endpoint", "ASR", "LM", "TTS", "playback", "speculation")


@dataclass
class Span:
    track: str
    name: str
    start: float  # seconds, monotonic clock
    end: float
    discarded: bool = False  # belongs to a speculative attempt that was thrown away
    instant: bool = False  # a point in time (e.g. a partial transcript), drawn as a marker
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def dur(self) -> float:
        return self.end - self.start


@dataclass
class TurnTimeline:
    turn: int
    start: float  # first captured sample of the user's speech (pre-roll included)
    end: float  # last event of the turn (playback drained, barge-in or the latency report)
    last_voiced_t: float | None
    first_sample_t: float | None
    spans: list[Span] = field(default_factory=list)

    @property
    def origin(self) -> float:
        """Time zero of the turn's relative timeline: its last voiced frame."""
        return self.last_voiced_t if self.last_voiced_t is not None else self.start

    def to_dict(self) -> dict[str, Any]:
        """JSON form: times in ms relative to the last voiced frame; ``t0`` is that frame on the
        monotonic clock (s), so runs can be laid out on one absolute axis again."""
        o = self.origin

        def rel(t: float) -> float:
            return round((t - o) * 1e3, 2)

        return {
            "t0": round(o, 6),
            "start_ms": rel(self.start),
            "end_ms": rel(self.end),
            "spans": [
                {
                    "track": s.track,
                    "name": s.name,
                    "start_ms": rel(s.start),
                    "end_ms": rel(s.end),
                    **({"discarded": True} if s.discarded else {}),
                    **({"instant": True} if s.instant else {}),
                    **({"args": s.args} if s.args else {}),
                }
                for s in self.spans
            ],
        }


def _first(events: Iterable[Event], kind: type) -> Any:
    return next((e for e in events if isinstance(e, kind)), None)


def turn_timeline(events: list[Event]) -> TurnTimeline | None:
    """Spans of one turn from its events (all with the same ``turn``); None if it never started."""
    started = _first(events, SpeechStarted)
    if started is None:
        return None
    events = sorted(events, key=lambda e: e.t)
    commit = _first(events, EndpointCommitted)
    discards = [e for e in events if isinstance(e, SpeculationDiscarded)]
    cut = max((d.t for d in discards), default=float("-inf"))  # later events: the committed attempt
    last_voiced = commit.last_voiced_t if commit is not None else None
    spans: list[Span] = []

    # User audio and VAD/endpointing.
    speech_end = last_voiced if last_voiced is not None else max(e.t for e in events)
    spans.append(Span("user audio", "user speech", started.audio_start_t, speech_end))
    resumes = [e for e in events if isinstance(e, SpeechResumed)]
    for pause in (e for e in events if isinstance(e, SpeechPaused)):
        spans.append(Span("VAD+endpoint", "silence detected", pause.last_voiced_t, pause.t))
        resumed = next((r for r in resumes if r.t >= pause.t), None)
        if resumed is not None and (commit is None or resumed.t <= commit.t):
            spans.append(Span("VAD+endpoint", "pause (speech resumed)", pause.t, resumed.t, discarded=True))
        elif commit is not None:
            spans.append(
                Span(
                    "VAD+endpoint",
                    "endpoint hangover",
                    pause.t,
                    commit.t,
                    args={"hangover_ms": round(commit.hangover_ms, 2)},
                )
            )
    if commit is not None and not any(s.name == "endpoint hangover" for s in spans):
        # forced endpoint (runaway utterance): commit without a pause
        spans.append(Span("VAD+endpoint", "endpoint (forced)", commit.last_voiced_t, commit.t))

    # ASR: partials as markers, final passes as spans.
    for p in (e for e in events if isinstance(e, PartialTranscript)):
        spans.append(
            Span(
                "ASR",
                "partial",
                p.t,
                p.t,
                instant=True,
                args={"text": f"{p.committed} {p.tentative}".strip()},
            )
        )
    for f in (e for e in events if isinstance(e, FinalTranscript)):
        spans.append(
            Span(
                "ASR",
                "final ASR" + (" (speculative)" if f.speculative else ""),
                f.t - f.asr_ms / 1e3,
                f.t,
                discarded=f.t < cut,
                args={"text": f.text},
            )
        )

    # LM and TTS: the worker thread's events in order; each span ends at its event.
    prev: float | None = None
    for e in events:
        if isinstance(e, LMStarted):
            prev = e.t
        elif isinstance(e, LMBlock) and prev is not None:
            spans.append(
                Span("LM", f"LM block {e.index}", prev, e.t, discarded=e.t < cut, args={"text": e.text})
            )
            prev = e.t
        elif isinstance(e, TTSChunk) and prev is not None:
            start = max(prev, e.t - e.synth_ms / 1e3)
            spans.append(
                Span(
                    "TTS",
                    f"TTS clause {e.index}",
                    start,
                    e.t,
                    discarded=e.t < cut,
                    args={"text": e.text, "audio_s": round(e.audio_s, 3)},
                )
            )
            prev = e.t
        elif isinstance(e, LMFinished):
            lm_args = {
                "steps": e.steps,
                "tokens": e.tokens,
                "forwards": e.forwards,
                "lm_ms": round(e.lm_ms, 2),
                "prefill_ms": round(e.prefill_ms, 2),
            }
            block0 = next(
                (
                    s
                    for s in spans
                    if s.track == "LM" and s.name == "LM block 0" and s.discarded == (e.t < cut)
                ),
                None,
            )
            if block0 is not None:
                block0.args.update(lm_args)

    # Output and playback of the committed attempt.
    committed = [e for e in events if e.t >= cut]
    first_chunk = _first(committed, TTSChunk)
    sample = _first(committed, FirstReplySample)
    ended = _first(committed, PlaybackFinished) or _first(committed, BargeIn)
    if sample is not None and commit is not None:
        ready = max(commit.t, first_chunk.t if first_chunk is not None else commit.t)
        spans.append(Span("playback", "output latency", min(ready, sample.t), sample.t))
        if ended is not None:
            name = "playing (interrupted)" if isinstance(ended, BargeIn) else "playing"
            spans.append(Span("playback", name, sample.t, max(sample.t, ended.t)))

    for d in discards:
        spans.append(
            Span(
                "speculation",
                f"discarded: {d.reason}",
                d.t - d.wasted_ms / 1e3,
                d.t,
                discarded=True,
                args={"wasted_ms": round(d.wasted_ms, 2)},
            )
        )

    end = max([e.t for e in events] + [s.end for s in spans])
    report = _first(events, LatencyReport)
    turn_args: dict[str, Any] = {}
    if report is not None:
        turn_args = {"transcript": report.transcript, "reply": report.reply, "v2v_ms": report.v2v_ms}
    spans.insert(0, Span("turn", f"turn {started.turn}", started.audio_start_t, end, args=turn_args))
    if sample is not None and last_voiced is not None:
        spans.insert(
            1,
            Span(
                "turn",
                "voice-to-voice",
                last_voiced,
                sample.t,
                args={"v2v_ms": round((sample.t - last_voiced) * 1e3, 2)},
            ),
        )
    return TurnTimeline(
        started.turn, started.audio_start_t, end, last_voiced, sample.t if sample is not None else None, spans
    )


def timelines(events: Iterable[Event]) -> dict[int, TurnTimeline]:
    """Every turn's timeline, keyed by turn id."""
    by_turn: dict[int, list[Event]] = defaultdict(list)
    for e in events:
        by_turn[e.turn].append(e)
    out = {}
    for turn, evs in sorted(by_turn.items()):
        tl = turn_timeline(evs)
        if tl is not None:
            out[turn] = tl
    return out
