"""Generate the scripted demo conversation: one 16 kHz mono WAV per user turn + demo/manifest.json.

    python demo/make_demo_audio.py            # writes demo/*.wav and demo/manifest.json, then checks
    python demo/make_demo_audio.py --no-check # skip the ASR check
    python demo/make_demo_audio.py --only 14_sum.wav  # render these turns, keep the other WAVs

The only offline voices are piper's joe (also the agent's voice) and espeak-ng, so the user turns
vary piper's speed and noise per turn (and one turn is espeak-ng) to sound unlike the agent.
Each turn gets 250 ms of lead-in and 600 ms of trailing silence (room for end-of-speech detection)
and a -80 dBFS noise floor (real microphones are never digitally silent).

Manifest entries: ``file``, ``text`` (what is said), ``action``:
- "respond": a normal turn, the agent answers;
- "barge_in": spoken ``barge_in_after_ms`` after the previous turn's reply starts playing; the
  agent must stop talking and answer this instead;
- "backchannel": spoken ``backchannel_after_ms`` after the previous reply starts; must NOT
  interrupt it.
``pause_ms`` marks a turn with a mid-sentence pause (the agent must wait for the end).
``needs: "tools"`` marks a skills turn (skipped without skills); ``after_announcement``: spoken after
the agent's next announcement (a timer ringing) has played.
"""

from __future__ import annotations

import argparse
import json
import sys
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio.espeak import espeak_speech

SAMPLE_RATE = 16000
LEAD_S, TAIL_S = 0.25, 0.6
NOISE_RMS = 1e-4  # -80 dBFS


@dataclass
class Turn:
    file: str
    text: str  # the words spoken (and the expected transcript)
    action: str = "respond"
    parts: list[str] = field(default_factory=list)  # synthesized pieces; default [text]
    pause_ms: int | None = None  # silence between parts
    engine: str = "piper"
    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w: float = 0.8
    extra: dict = field(default_factory=dict)
    lead_s: float = LEAD_S
    tail_s: float = TAIL_S


TURNS = [
    Turn("01_greeting.wav", "Hi there, how are you today?", length_scale=1.08, noise_scale=0.75),
    Turn("02_your_name.wav", "What's your name?", length_scale=1.15, noise_scale=0.6, tail_s=0.7),
    Turn("03_time.wav", "What time is it right now?", length_scale=1.05, noise_scale=0.8),
    # "…day of the week…" came out as "…day of a week…" in 2 of 5 syntheses (joe's reduced "the").
    Turn("04_weekday.wav", "What day is it today?", length_scale=1.05, noise_scale=0.7),
    Turn(
        "05_mid_sentence_pause.wav",
        "I was thinking about going for a walk later.",
        parts=["I was thinking about,", "going for a walk later."],
        pause_ms=700,
        length_scale=1.05,
        noise_scale=0.7,
        tail_s=0.5,
    ),
    Turn("06_my_name_is_sam.wav", "My name is Sam.", length_scale=1.12, noise_scale=0.65, tail_s=0.7),
    Turn("07_whats_my_name.wav", "What's my name?", length_scale=1.1, noise_scale=0.75, tail_s=0.7),
    Turn("08_weather.wav", "What's the weather like tomorrow?", length_scale=1.0, noise_scale=0.72),
    Turn(
        "12_barge_in.wav",
        "Wait, stop. Tell me a funny joke instead.",
        action="barge_in",
        length_scale=0.95,
        noise_scale=0.75,
        # Over the weather reply, the longest and steadiest of the demo (~4.5 s of speech).
        extra={"barge_in_after_ms": 800},
        tail_s=0.5,
    ),
    # piper's stressed "a" reads as "they"/"the" to tiny.en ("Tell me they joke."): rephrased.
    Turn("09_joke.wav", "Do you know any good jokes?", length_scale=1.05, noise_scale=0.7, tail_s=0.7),
    Turn(
        "10_backchannel.wav",
        "Uh-huh.",
        action="backchannel",
        parts=["Uh huh."],
        length_scale=1.2,
        noise_scale=0.6,
        extra={"backchannel_after_ms": 1200},
        lead_s=0.15,
        tail_s=0.35,
    ),
    Turn("11_space.wav", "Tell me something interesting about space.", length_scale=1.0, noise_scale=0.7),
    # A sum: the agent works it out and puts the result in the reply model's context.
    Turn("14_sum.wav", "What is 12 times 3?", length_scale=1.05, noise_scale=0.7, tail_s=0.7),
    # Skills (tools.enabled): a timer that fires and is acknowledged, a light switched over MQTT.
    # "needs": the runner skips them when the pipeline has no skills (plain profile runs).
    Turn(
        "15_timer.wav",
        "Set a timer for five seconds.",
        length_scale=1.05,
        noise_scale=0.7,
        extra={"needs": "tools"},
    ),  # fmt: skip
    Turn(
        "16_timer_okay.wav",
        "Thank you.",
        length_scale=1.1,
        noise_scale=0.7,
        tail_s=0.7,
        extra={"needs": "tools", "after_announcement": True},
    ),  # fmt: skip
    Turn(
        "17_lights_off.wav",
        "Turn off the kitchen lights.",
        length_scale=1.05,
        noise_scale=0.72,
        extra={"needs": "tools"},
    ),  # fmt: skip
    Turn("13_goodbye.wav", "Thanks, goodbye!", engine="espeak", tail_s=0.7),
]


def espeak(text: str, speed: int = 150) -> np.ndarray:
    audio = espeak_speech(text, SAMPLE_RATE, words_per_minute=speed)
    # espeak's own silence at the edges, then the same level as the piper turns (≈ -20 dBFS).
    voiced = np.nonzero(np.abs(audio) > 0.01)[0]
    audio = audio[voiced[0] : voiced[-1] + 1]
    return (audio * (0.1 / np.sqrt(np.mean(audio**2)))).clip(-0.9, 0.9).astype(np.float32)


def render(turn: Turn, tts, rng: np.random.Generator) -> np.ndarray:
    pieces = []
    for i, part in enumerate(turn.parts or [turn.text]):
        if i and turn.pause_ms:
            pieces.append(np.zeros(int(turn.pause_ms * SAMPLE_RATE / 1000), dtype=np.float32))
        if turn.engine == "espeak":
            pieces.append(espeak(part))
        else:
            pieces.append(
                tts.synthesize(
                    part, length_scale=turn.length_scale, noise_scale=turn.noise_scale, noise_w=turn.noise_w
                )
            )
    speech = np.concatenate(pieces)
    audio = np.concatenate(
        [
            np.zeros(int(turn.lead_s * SAMPLE_RATE), dtype=np.float32),
            speech,
            np.zeros(int(turn.tail_s * SAMPLE_RATE), dtype=np.float32),
        ]
    )
    return audio + (rng.standard_normal(audio.size) * NOISE_RMS).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == SAMPLE_RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768


def manifest_entry(turn: Turn, audio: np.ndarray) -> dict:
    entry: dict = {"file": turn.file, "text": turn.text, "action": turn.action}
    if turn.pause_ms:
        entry["pause_ms"] = turn.pause_ms
    entry.update(turn.extra)
    entry["duration_s"] = round(audio.size / SAMPLE_RATE, 3)
    entry["voice"] = (
        "espeak-ng"
        if turn.engine == "espeak"
        else f"piper joe length_scale={turn.length_scale} noise_scale={turn.noise_scale}"
    )
    return entry


def check(out_dir: Path, manifest: list[dict]) -> float:
    """Transcribe every WAV with the ASR final pass; print WER per file; return the worst."""
    from agent.asr import SpeechRecognizer
    from agent.wer import word_error_rate as wer

    asr = SpeechRecognizer()
    worst = 0.0
    for entry in manifest:
        t = asr.transcribe(read_wav(out_dir / entry["file"]))
        e = wer(entry["text"], t.text)
        worst = max(worst, e)
        print(f"  WER {e:4.2f} {t.decode_ms:5.0f} ms  {entry['file']:28} {t.text!r}")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=1234, help="seed of the noise floor")
    parser.add_argument("--no-check", action="store_true", help="skip the ASR check")
    parser.add_argument("--only", nargs="+", metavar="FILE", help="render only these turns; keep the others")
    args = parser.parse_args(argv)

    from agent.tts import Synthesizer

    tts = Synthesizer(sample_rate=SAMPLE_RATE)
    args.out.mkdir(parents=True, exist_ok=True)
    kept: dict[str, dict] = {}
    if args.only:
        unknown = set(args.only) - {t.file for t in TURNS}
        if unknown:
            parser.error(f"no such turn: {', '.join(sorted(unknown))}")
        old = args.out / "manifest.json"
        kept = {e["file"]: e for e in json.loads(old.read_text())} if old.is_file() else {}
    manifest = []
    for i, turn in enumerate(TURNS):
        if args.only and turn.file not in args.only:
            if turn.file not in kept or not (args.out / turn.file).is_file():
                parser.error(f"{turn.file} is not rendered yet: run without --only")
            manifest.append(kept[turn.file])
            continue
        # Each turn's noise floor has its own seed, so one turn can be rendered again alone.
        audio = render(turn, tts, np.random.default_rng([args.seed, i]))
        write_wav(args.out / turn.file, audio)
        manifest.append(manifest_entry(turn, audio))
        print(f"{turn.file:28} {audio.size / SAMPLE_RATE:4.2f} s  {turn.action:11} {turn.text}")
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(manifest)} WAVs and manifest.json to {args.out}")
    if not args.no_check:
        worst = check(args.out, manifest)
        print(f"worst WER {worst:.2f}")
        if worst > 0.0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
