"""Barge-in with echo cancellation on, the way a room does it — deterministic, faster than real time.

The agent plays a reply (piper, its own voice); the room carries it back into the microphone
through an echo path (a delay of 20–150 ms, an attenuation, a reverberant tail with RT60 0–500 ms;
the same arithmetic as ``SimulatedMic``) or through none at all (headphones, a virtual mic). In a
"speak over" try the user says an interruption 0.6–2.0 s into the reply (five phrases, four voices:
piper at two rates and espeak-ng at two, three levels); in a "silent" try nobody speaks.

Each 32 ms frame goes through what ``VoicePipeline.process_frame`` does — ``EchoCanceller`` fed the
reference of the same span, its echo gate, the Silero VAD, the ``SpeechDetector`` — and the sans-I/O
``TurnTracker`` decides, as in the pipeline: ``CheckInterruption`` transcribes the speech over the
reply (its answer lands ``--check-frames`` frames later, as the ASR thread's would), a ``BargeIn``
stops the reply (the echo's tail still rings), and the new turn's audio is transcribed when the
tracker commits it. "Heard" = barged in, and the turn's transcript has WER ≤ 25 %; a
self-interruption = a ``BargeIn`` in a silent try (or before the user spoke). No wall clock, no
threads: every run gives the same numbers.

Variants side by side: ``before`` = AEC3's output with the 6 dB echo-level gate; ``after`` = the
linear near-end filter's output, AEC3 kept for the residual-relative gate (audio/aec.py).

    python -m benchmarks.barge_in_echo --tries 20 --json out/bench/barge_in_echo.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.asr import SpeechRecognizer
from agent.config import load_config
from agent.pipeline import load_asr
from agent.report import meta
from agent.turns import BargeIn, CheckInterruption, StartUtterance, TurnPolicy, TurnTracker
from agent.wer import word_error_rate
from audio.aec import EchoCanceller
from audio.espeak import espeak_speech
from audio.resample import resample
from audio.sources import room_impulse_response
from audio.vad import SileroVAD, SpeechDetector

RATE = 16000
# variant: (EchoCanceller near_end_filter, residual_gate, ASR hears the linear filter's output)
VARIANTS = {"before": (False, False, False), "gate": (False, True, False), "after": (True, True, True)}
FRAME = 512

REPLIES = (
    "Space is full of surprises. A day on Venus is longer than its year, and there are more stars "
    "in the universe than grains of sand on every beach on Earth.",
    "Here is a fun fact about octopuses. They have three hearts, blue blood, and each of their "
    "eight arms can taste what it touches.",
    "Sure, let me think about dinner ideas. You could roast some vegetables with garlic, make a "
    "quick pasta with tomatoes, or try a simple curry with rice.",
)
# Phrases tiny.en hears word for word in all four voices, whatever the silence before them (some,
# "... a joke about cats" in espeak-ng, flip with 100 ms more lead: that measures the ASR, not echo).
INTERRUPTIONS = (
    "Hold on, what time is it right now?",
    "Wait, stop. What time is it?",
    "Actually, can you set a timer for ten minutes?",
    "Wait, can you repeat that please?",
    "Wait, I want a different answer.",
)
VOICES = ("piper:1.0", "espeak:150", "piper:1.15", "espeak:175")
LEVELS = (0.5, 1.0, 2.0)  # the user's speech, relative to an RMS of 0.06 (the demo clips')


@dataclass(frozen=True)
class Path_:
    name: str
    delay_ms: float
    gain: float
    rt60_ms: float


CONDITIONS = (
    Path_("no echo path", 0, 0.0, 0),
    Path_("20 ms, gain 0.3, RT60 250 ms", 20, 0.3, 250),
    Path_("50 ms, gain 0.5, no reverb", 50, 0.5, 0),
    Path_("80 ms, gain 0.3, RT60 300 ms", 80, 0.3, 300),
    Path_("120 ms, gain 0.2, RT60 500 ms", 120, 0.2, 500),
    Path_("150 ms, gain 0.3, RT60 400 ms", 150, 0.3, 400),
)


def speak(tts, voice: str, text: str) -> np.ndarray:
    engine, arg = voice.split(":")
    if engine == "espeak":
        x = espeak_speech(text, RATE, words_per_minute=int(arg))
    else:
        x = resample(
            tts.synthesize(text, noise_scale=0.0, noise_w=0.0, length_scale=float(arg)), tts.sample_rate, RATE
        )
    x = np.asarray(x, np.float32)
    return x / (np.sqrt(np.mean(x**2)) + 1e-9) * 0.06


def echo_of(played: np.ndarray, path: Path_) -> np.ndarray:
    """What the mic hears of ``played``: SimulatedMic's echo (delay, gain, room response)."""
    if path.gain <= 0:
        return np.zeros_like(played)
    ir = room_impulse_response(path.rt60_ms, RATE, 0) if path.rt60_ms > 0 else np.ones(1, np.float32)
    n = len(played)
    size = 1 << int(np.ceil(np.log2(n + len(ir))))
    wet = np.fft.irfft(np.fft.rfft(played, size) * np.fft.rfft(ir, size), size)[:n]
    d = int(path.delay_ms * RATE / 1000)
    out = np.zeros(n, np.float32)
    out[d:] = path.gain * wet[: n - d]
    return out


class Front:
    """The pipeline's per-frame front end (VoicePipeline.process_frame) and the turn tracker."""

    def __init__(self, cfg, variant: str) -> None:
        linear, gate = VARIANTS[variant][:2]
        self.asr_linear = VARIANTS[variant][2]
        self.aec = EchoCanceller(RATE, near_end_filter=linear, residual_gate=gate)
        self.vad = SileroVAD(RATE, threads=1)
        v = cfg.vad
        self.detector = SpeechDetector(v.threshold_on, v.threshold_off, v.min_speech_ms, cfg.audio.frame_ms)
        self.tracker = TurnTracker(TurnPolicy.from_config(cfg, self.detector.min_speech_frames))
        self.tracker.text_turn()
        self.tracker.playback_started(0.0)
        self.frame_cost_s: list[float] = []

    def frame(self, mic: np.ndarray, ref: np.ndarray, t: float):
        t0 = time.perf_counter()
        x = self.aec.process(mic, ref)
        echo = self.aec.may_be_echo(x)
        self.frame_cost_s.append(time.perf_counter() - t0)
        prob = self.vad.probability(x)
        d = self.detector.update(0.0 if echo else prob)
        if self.asr_linear:
            x = self.aec.near_end_audio
        return x, self.tracker.frame(t, d.is_speech, d.prob, d.event == "start")


def one_try(
    cfg,
    asr: SpeechRecognizer,
    variant: str,
    path: Path_,
    reply: np.ndarray,
    reply_text: str,
    user: np.ndarray | None,
    user_text: str,
    at_s: float,
    check_frames: int,
) -> dict:
    front = Front(cfg, variant)
    tail = 4.0 if user is not None else 1.0
    n = (len(reply) + int(tail * RATE) + FRAME - 1) // FRAME * FRAME
    played = np.zeros(n, np.float32)
    played[: len(reply)] = reply
    echo = echo_of(played, path)
    near = np.zeros(n, np.float32)
    user_end = n
    if user is not None:
        a = int(at_s * RATE)
        near[a : a + len(user)] = user[: n - a]
        user_end = a + len(user)
    noise = (np.random.default_rng(7).standard_normal(n) * 3e-4).astype(np.float32)  # a quiet room
    policy = front.tracker.policy
    recent: list[np.ndarray] = []
    interruption: list[np.ndarray] | None = None
    utt: list[np.ndarray] | None = None
    pending: list[tuple[int, int, str]] = []  # (frame due, check id, transcript)
    barge_k: int | None = None
    checks = 0
    heard = ""
    said: list[str] = []  # what each interruption check heard
    for k in range(n // FRAME):
        s = slice(k * FRAME, (k + 1) * FRAME)
        t = (k + 1) * FRAME / RATE
        x, actions = front.frame(echo[s] + near[s] + noise[s], played[s], t)
        recent = (recent + [x])[-policy.preroll_frames :]
        if utt is not None:
            utt.append(x)
        if interruption is not None:
            interruption.append(x)
        if front.tracker.interrupting and interruption is None:
            interruption = recent[-front.tracker.interruption_preroll :]
        while pending and pending[0][0] <= k:
            _, check, text = pending.pop(0)
            actions += front.tracker.interruption_heard(check, text, reply_text)
        for act in actions:
            if isinstance(act, CheckInterruption):
                checks += 1
                text = asr.transcribe(np.concatenate(interruption)).text if interruption else ""
                pending.append((k + check_frames, act.check, text))
                said.append(f"{t:.2f}s: {text}")
            elif isinstance(act, BargeIn) and barge_k is None:
                barge_k = k
                stop = (k + 1) * FRAME  # the speaker stops; what it played still echoes
                played[stop:] = 0.0
                echo = echo_of(played, path)
            elif isinstance(act, StartUtterance):
                utt = list(interruption or [])
                interruption = None
        if (k + 1) * FRAME > user_end + (0.8 if barge_k is not None else 2.5) * RATE:
            break  # the pipeline's final pass: what was collected as the turn (merges included)
    if barge_k is not None and utt:
        heard = asr.transcribe(np.concatenate(utt)).text
    user_onset = int(at_s * RATE) if user is not None else n
    early = barge_k is not None and (barge_k + 1) * FRAME < user_onset
    out = {
        "barged_in": barge_k is not None and not early,
        "self_interrupted": bool(early) or (user is None and barge_k is not None),
        "checks": checks,
        "checked": said,
        "transcript": heard,
        "frame_ms_p50": round(float(np.median(front.frame_cost_s)) * 1e3, 3),
    }
    if user is not None:
        out["wer"] = round(word_error_rate(user_text, heard), 3) if heard else 1.0
        out["heard"] = out["barged_in"] and out["wer"] <= 0.25
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--tries", type=int, default=20, help="speak-over tries per condition (and as many silent)"
    )
    ap.add_argument("--variants", default="before,after")
    ap.add_argument("--conditions", default="", help="indices into the condition list (default: all)")
    ap.add_argument("--check-frames", type=int, default=6, help="frames the interruption's ASR takes")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from agent.tts import Synthesizer

    cfg = load_config()
    asr = load_asr(cfg)
    tts = Synthesizer(threads=1, target_rms=cfg.tts.target_rms)
    replies = [
        resample(tts.synthesize(r, noise_scale=0.0, noise_w=0.0), tts.sample_rate, RATE) for r in REPLIES
    ]
    clips = {(v, i): speak(tts, v, text) for v in VOICES for i, text in enumerate(INTERRUPTIONS)}
    conditions = [CONDITIONS[int(i)] for i in args.conditions.split(",")] if args.conditions else CONDITIONS
    variants = args.variants.split(",")
    results: dict[str, dict] = {}
    for path in conditions:
        for variant in variants:
            over, quiet = [], []
            for k in range(args.tries):
                voice, phrase = VOICES[k % len(VOICES)], (k // len(VOICES)) % len(INTERRUPTIONS)
                level = LEVELS[k % len(LEVELS)]
                r = k % len(replies)
                # 9 is prime to 20: every level and voice meets early and late starts alike
                at = 0.6 + 1.4 * ((k * 9) % args.tries) / max(1, args.tries - 1)
                over.append(
                    one_try(
                        cfg,
                        asr,
                        variant,
                        path,
                        replies[r],
                        REPLIES[r],
                        clips[voice, phrase] * level,
                        INTERRUPTIONS[phrase],
                        at,
                        args.check_frames,
                    )
                    | {"voice": voice, "level": level, "at_s": round(at, 2), "reply": r}
                )
                quiet.append(
                    one_try(cfg, asr, variant, path, replies[r], REPLIES[r], None, "", 0.0, args.check_frames)
                )
            for t in over + quiet:
                if t["self_interrupted"]:
                    print(f"    self-interrupted: {t['checked']}", flush=True)
            heard = sum(t["heard"] for t in over)
            selfi = sum(t["self_interrupted"] for t in over + quiet)
            cost = float(np.median([t["frame_ms_p50"] for t in over + quiet]))
            results.setdefault(path.name, {})[variant] = {
                "heard": heard,
                "tries": len(over),
                "self_interruptions": selfi,
                "silent_tries": len(quiet),
                "front_end_ms_per_frame_p50": round(cost, 3),
                "speak_over": over,
                "silent": quiet,
            }
            print(
                f"{path.name:32s} {variant:6s} heard {heard}/{len(over)}; self-interruptions {selfi} "
                f"in {len(over) + len(quiet)} tries; AEC {cost:.2f} ms/frame",
                flush=True,
            )
            for t in over:
                if not t["heard"]:
                    print(
                        f"    missed: {t['voice']} level {t['level']} at {t['at_s']} s: barged_in={t['barged_in']} "
                        f"checks={t['checks']} {t['checked']} wer={t['wer']} {t['transcript']!r}",
                        flush=True,
                    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"meta": meta(cfg, vars(args) | {"json": str(args.json)}), "results": results}, indent=1
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
