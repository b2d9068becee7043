"""Semantic end of turn: the probability that the user has finished, from the words so far.

The speculative transcript is ready ~150 ms into a pause. A logistic model over the utterance's last
words (trained on complete user turns against their own truncations: recipe/end_of_turn.py) says how
likely the words are a whole turn: "Set a timer for five minutes" is, "Tell me" and "I was thinking
about" are not. The required silence follows it: short when surely finished, longer when not, never
more than the cap. A premature end costs little: speech that resumes is merged into the same turn
(agent/turns.py). Pure functions and a small JSON table, no I/O beyond loading it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

MODEL_FILE = "end_of_turn.json"
_WORD = re.compile(r"[a-z0-9']+")


class EndOfTurnModelError(FileNotFoundError):
    """The end-of-turn table is missing or malformed."""


def words_of(text: str) -> list[str]:
    """Lower-case words without punctuation (Whisper ends a cut-off sentence with a period too)."""
    return _WORD.findall(text.lower().replace("’", "'"))


def features(words: list[str]) -> list[str]:
    """The cues a listener uses: the last words, how the utterance opened, and its length."""
    if not words:
        return ["empty"]
    last = words[-1]
    feats = [f"w1={last}", f"first={words[0]}", f"len={min(len(words), 8)}", f"first+w1={words[0]}|{last}"]
    if len(words) >= 2:
        feats.append(f"w2={words[-2]}|{last}")
        feats.append(f"w2_only={words[-2]}")
    if len(words) >= 3:
        feats.append(f"w3={words[-3]}|{words[-2]}|{last}")
    return feats


@dataclass(frozen=True)
class EndOfTurnModel:
    weights: dict[str, float]
    bias: float

    @classmethod
    def load(cls, path: str | Path | None = None) -> EndOfTurnModel:
        """The shipped table (inside the package) or one at ``path``."""
        try:
            if path is None:
                text = resources.files("agent").joinpath(MODEL_FILE).read_text()
            else:
                text = Path(path).read_text()
            data = json.loads(text)
            return cls({str(k): float(v) for k, v in data["weights"].items()}, float(data["bias"]))
        except (OSError, KeyError, TypeError, ValueError) as exc:
            where = path or f"agent/{MODEL_FILE}"
            raise EndOfTurnModelError(
                f"end-of-turn model {where} is missing or broken ({exc}); rebuild it with "
                "`python -m recipe.end_of_turn` or set endpoint.semantic = false"
            ) from exc

    def probability(self, transcript: str) -> float:
        """P(the user has finished their turn | these words)."""
        z = self.bias + sum(self.weights.get(f, 0.0) for f in features(words_of(transcript)))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def required_silence_for(probability: float, confident_ms: float, max_ms: float) -> float:
    """Silence to wait given P(finished): ``confident_ms`` when the words more likely end a turn than
    not, rising linearly to ``max_ms`` as that probability falls to 0.

    A likely-finished turn never waits longer than that: the reply is what it should wait for, and a
    premature end is merged back if the user goes on. Only words that sound cut off ("Tell me", p 0.36
    → 60 % of the range) buy the user more time.
    """
    p = min(1.0, max(0.0, probability))
    if p >= 0.5:
        return confident_ms
    return confident_ms + (max_ms - confident_ms) * (1.0 - p / 0.5)
