"""The turn-taking test set: utterances with a thinking pause inside, and the same utterances whole.

Regenerated deterministically (piper without prosody noise, espeak-ng) into a folder that
``quickturn profile --input`` reads: WAVs plus ``manifest.json`` with each file's reference text,
where the pause is and how long. Never the demo clips, never the training data.

    python -m benchmarks.turn_set --out out/turn_set
    quickturn profile --input out/turn_set --json out/turn_set/report.json
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from audio.espeak import espeak_speech
from audio.formats import write_wav

RATE = 16000

# (first part, second part, where the pause falls). Written for this set; 64 utterances.
PAUSED: list[tuple[str, str, str]] = [
    ("Set an alarm", "for seven tomorrow morning.", "before an object"),
    ("Remind me", "to water the plants tonight.", "after a verb"),
    ("Can you tell me", "how far away the moon is?", "between clauses"),
    ("I need", "a recipe for banana bread.", "after a verb"),
    ("What's a good name", "for a small grey kitten?", "before an object"),
    ("Turn the music", "down a little bit.", "before an object"),
    ("Tell me", "a story about a brave mouse.", "after a verb"),
    ("How long should I boil", "an egg for breakfast?", "before an object"),
    ("I'm going to the beach.", "What should I bring?", "between sentences"),
    ("Give me", "three ideas for a birthday present.", "after a verb"),
    ("Could you explain", "how rainbows form?", "after a verb"),
    ("My sister is visiting", "this weekend from Denver.", "between clauses"),
    ("Good evening.", "Did you have a nice day?", "between sentences"),
    ("What's the best way", "to learn to play the guitar?", "between clauses"),
    ("Let's talk", "about something fun.", "after a verb"),
    ("I just finished", "a really long book.", "after a verb"),
    ("Do you know", "any songs about the ocean?", "after a verb"),
    ("Play some music", "that helps me relax.", "between clauses"),
    ("Thanks for the help.", "Have a great night.", "between sentences"),
    ("Help me think of", "a name for my new boat.", "before an object"),
    ("How many legs", "does a spider have?", "between clauses"),
    ("I want to cook", "something with potatoes tonight.", "before an object"),
    ("Please add", "milk to my shopping list.", "after a verb"),
    ("Where do penguins", "live in the wild?", "between clauses"),
    ("What should I do", "when I can't sleep?", "between clauses"),
    ("Suggest", "a good movie for a rainy day.", "after a verb"),
    ("Hello there.", "Can you hear me okay?", "between sentences"),
    ("I'd like to know", "why leaves change color.", "between clauses"),
    ("Wake me up", "at half past six.", "before an object"),
    ("Describe", "what a volcano looks like.", "after a verb"),
    ("How do I make", "a paper airplane?", "before an object"),
    ("I'm feeling a bit tired.", "Any advice?", "between sentences"),
    ("Start a countdown", "for three minutes.", "before an object"),
    ("Can you recommend", "a board game for four people?", "after a verb"),
    ("Why do cats", "purr when they're happy?", "between clauses"),
    ("Find me", "something fun to do this afternoon.", "after a verb"),
    ("What's the difference", "between a frog and a toad?", "between clauses"),
    ("I've been learning", "to bake bread lately.", "after a verb"),
    ("Tell me about", "the tallest mountain in the world.", "before an object"),
    ("It's raining outside.", "What can we do indoors?", "between sentences"),
    ("How should I", "start my morning?", "between clauses"),
    ("Please switch", "the hallway light on.", "after a verb"),
    ("Think of", "a fun fact about octopuses.", "after a verb"),
    ("I really enjoy", "long walks in the park.", "after a verb"),
    ("What's a quick lunch", "I can make at home?", "between clauses"),
    ("Good morning.", "How did you sleep?", "between sentences"),
    ("Could you help me", "plan a picnic?", "between clauses"),
    ("Teach me", "a simple card trick.", "after a verb"),
    ("How far is it", "from here to the sun?", "between clauses"),
    ("I'm planning a trip", "to the mountains next month.", "before an object"),
    ("Name", "a few animals that live in the desert.", "after a verb"),
    ("What do bees", "do in the winter?", "between clauses"),
    ("I lost my keys again.", "Any tips for finding them?", "between sentences"),
    ("Make a list", "of things to pack for camping.", "before an object"),
    ("Can you say", "something nice to cheer me up?", "after a verb"),
    ("Why is the ocean", "salty?", "between clauses"),
    ("Write", "a short poem about autumn.", "after a verb"),
    ("I think I'll go", "for a run after work.", "between clauses"),
    ("How do airplanes", "stay up in the sky?", "between clauses"),
    ("Pick", "a random number between one and ten.", "after a verb"),
    ("That was funny.", "Tell me another one.", "between sentences"),
    ("What's something interesting", "about the deep sea?", "between clauses"),
    ("Open the", "garage door please.", "before an object"),
    ("Guess what happened", "at work today.", "between clauses"),
]

PAUSES_MS = (300, 450, 600, 750, 900)
# Voices: piper joe at three speaking rates (no prosody noise: the same audio every run) and
# espeak-ng at two rates.
VOICES = ("piper:1.0", "piper:1.12", "espeak:150", "piper:0.92", "espeak:175")


def _speak(tts, voice: str, text: str) -> np.ndarray:
    engine, arg = voice.split(":")
    if engine == "espeak":
        return espeak_speech(text, RATE, words_per_minute=int(arg))
    return tts.synthesize(text, noise_scale=0.0, noise_w=0.0, length_scale=float(arg))


def build(out: Path) -> list[dict]:
    from agent.tts import Synthesizer

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tts = Synthesizer(sample_rate=RATE, threads=2)
    lead = np.zeros(int(0.2 * RATE), np.float32)
    manifest = []
    for i, (first, second, where) in enumerate(PAUSED):
        voice = VOICES[i % len(VOICES)]
        pause_ms = PAUSES_MS[i % len(PAUSES_MS)]
        a, b = _speak(tts, voice, first), _speak(tts, voice, second)
        gap = np.zeros(int(pause_ms / 1000 * RATE), np.float32)
        text = f"{first} {second}"
        for kind, audio in (("paused", np.concatenate([lead, a, gap, b, lead])), ("complete", None)):
            if audio is None:
                audio = np.concatenate([lead, _speak(tts, voice, text), lead])
            name = f"{i:02d}_{kind}.wav"
            write_wav(out / name, audio, RATE)
            entry = {"file": name, "text": text, "action": "respond", "kind": kind, "voice": voice}
            if kind == "paused":
                entry |= {"pause_ms": pause_ms, "pause_at": where}
            manifest.append(entry)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("out/turn_set"))
    args = ap.parse_args(argv)
    manifest = build(args.out)
    paused = sum(e["kind"] == "paused" for e in manifest)
    print(f"{len(manifest)} clips ({paused} with a pause) in {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
