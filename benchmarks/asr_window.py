"""Word error and time of the ASR final pass for several fixed windows, on a spoken corpus made here.

    python -m benchmarks.asr_window --windows 6,7,8,10 --json out/bench/asr_window.json
    CT2_FORCE_CPU_ISA=AVX python -m benchmarks.asr_window   # another CPU's int8 kernels

The corpus: the demo's utterances, the ASR tests' sentences and 45 user turns of the embedded
model's held-out set (those without digits, whose spoken form is ambiguous), each spoken by piper
(the agent's own voice) and by espeak-ng at 165 words a minute (a harder, robotic voice): 130 clips
with 0.2 s of silence either side, as the VAD leaves them. Every clip goes through every window, in
turn, so the windows share the machine's state. Reported per window: word error rate against the
text (all clips and piper only), loop cuts and standard-path fallbacks, and the pass's time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np

from agent.asr import SAMPLE_RATE, SpeechRecognizer
from agent.tts import Synthesizer
from agent.wer import normalize, word_error_rate
from audio.espeak import espeak_speech

ROOT = Path(__file__).resolve().parents[1]
TEST_SENTENCES = [
    "Hi there, how are you today?",
    "What is the capital of France and how many people live there?",
    "Please turn off the lights in the kitchen and lock the front door.",
    "My favorite thing to do on a Sunday afternoon is to read a good book.",
    "Tell me something interesting about space.",
    "Please turn off the lights in the kitchen.",
    "What day of the week is it today?",
]


def corpus_texts(n_heldout: int = 45) -> list[str]:
    texts = [e["text"] for e in json.loads((ROOT / "demo" / "manifest.json").read_text())]
    texts += TEST_SENTENCES
    seen = {t.lower() for t in texts}
    heldout = []
    for line in (ROOT / "agent" / "embedded" / "data" / "heldout.jsonl").read_text().splitlines():
        user = [m["content"] for m in json.loads(line)["messages"] if m["role"] == "user"][-1]
        if re.search(r"\d", user) or len(user.split()) < 3 or user.lower() in seen:
            continue
        seen.add(user.lower())
        heldout.append(user)
    random.Random(0).shuffle(heldout)
    return texts + heldout[:n_heldout]


def make_corpus(texts: list[str]) -> list[tuple[str, str, np.ndarray]]:
    """(voice, text, audio) for each text and voice."""
    tts = Synthesizer(sample_rate=SAMPLE_RATE, threads=2)
    pad = np.zeros(int(0.2 * SAMPLE_RATE), dtype=np.float32)
    clips = []
    for text in texts:
        clips.append(("piper", text, np.concatenate([pad, tts.synthesize(text), pad])))
        if shutil.which("espeak-ng"):
            clips.append(
                (
                    "espeak",
                    text,
                    np.concatenate([pad, espeak_speech(text, SAMPLE_RATE, words_per_minute=165), pad]),
                )
            )
    return clips


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.asr_window", description=__doc__.split("\n\n")[0])
    ap.add_argument("--windows", default="6,7,8,10", help="comma-separated window lengths in seconds")
    ap.add_argument("--threads", type=int, default=1, help="CTranslate2 threads (the pipeline uses 1)")
    ap.add_argument("--json", type=Path, help="write the per-window results (and every miss) here")
    args = ap.parse_args(argv)
    windows = [float(w) for w in args.windows.split(",")]
    clips = make_corpus(corpus_texts())
    recognizers = {w: SpeechRecognizer(cpu_threads=args.threads, window_s=w) for w in windows}
    fields = ("errors", "words", "piper_errors", "piper_words", "loop_cuts", "fallbacks")
    stats = {w: {**dict.fromkeys(fields, 0), "ms": [], "misses": []} for w in windows}
    for voice, text, audio in clips:
        for w, rec in recognizers.items():
            t = rec.transcribe(audio)
            s = stats[w]
            words = len(normalize(text))
            errors = word_error_rate(text, t.text) * words
            s["errors"] += errors
            s["words"] += words
            if voice == "piper":
                s["piper_errors"] += errors
                s["piper_words"] += words
            s["loop_cuts"] += t.loop_cut
            s["fallbacks"] += t.fell_back
            s["ms"].append(t.decode_ms)
            if errors:
                s["misses"].append({"voice": voice, "text": text, "heard": t.text})
    isa = os.environ.get("CT2_FORCE_CPU_ISA", "native")
    print(f"{len(clips)} clips, CTranslate2 ISA {isa}, {args.threads} thread(s)\n")
    print("| window s | WER all | WER piper | loop cuts | fallbacks | pass p50 ms | pass p90 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for w, s in stats.items():
        print(
            f"| {w:g} | {100 * s['errors'] / s['words']:.2f} % | {100 * s['piper_errors'] / s['piper_words']:.2f} % "
            f"| {s['loop_cuts']} | {s['fallbacks']} | {np.median(s['ms']):.0f} | {np.percentile(s['ms'], 90):.0f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"isa": isa, "clips": len(clips), "windows": {str(w): s for w, s in stats.items()}}
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
