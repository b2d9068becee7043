"""Barge-in with echo cancellation on, through the real pipeline (issue 19, part 4).

A room in simulation: the agent's reply comes back into the microphone through an echo path (150 ms,
gain 0.3, a 400 ms reverberant tail) or through none, and the echo canceller is on, as in ``talk``.
The user (espeak-ng, another voice than the agent's piper) speaks over the reply: the reply must stop
and the words must be transcribed. With nobody speaking, the agent must not interrupt itself on
its own echo. Real models, simulated real time; the assertions hold whatever the timing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent.config import load_config
from agent.events import BargeIn, LatencyReport, PlaybackFinished
from agent.pipeline import Services
from agent.simulate import EchoPath, ScriptItem, ScriptRunner
from agent.wer import word_error_rate
from audio.espeak import espeak_speech
from audio.formats import write_wav

DEMO = Path(__file__).resolve().parents[2] / "demo"
QUESTION = json.loads((DEMO / "manifest.json").read_text())
QUESTION = next(e for e in QUESTION if e["file"] == "11_space.wav")
INTERRUPTION = "Hold on, what time is it right now?"
ROOM = EchoPath(delay_ms=150, gain=0.3, reverb_ms=400)


@pytest.fixture(scope="module")
def cfg():
    return load_config(overrides=["lm.min_tokens=24"])  # replies of a few seconds, to talk over


@pytest.fixture(scope="module")
def services(cfg):
    return Services.load(cfg)


@pytest.fixture(scope="module")
def interruption(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("echo") / "hold_on.wav"
    x = espeak_speech(INTERRUPTION, 16000, words_per_minute=160)
    write_wav(path, 0.06 * x / float((x**2).mean() ** 0.5), 16000)  # the demo clips' level
    return path


def run(cfg, services, items, echo):
    runner = ScriptRunner(cfg, services, echo=echo, echo_cancellation=True)
    asyncio.run(runner.run(items))
    return runner


@pytest.mark.parametrize("echo", [ROOM, None], ids=["echo-150ms-reverb", "no-echo-path"])
def test_speech_over_the_echoed_reply_barges_in_and_is_transcribed(cfg, services, interruption, echo):
    items = [
        ScriptItem(DEMO / QUESTION["file"], QUESTION["text"]),
        ScriptItem(interruption, INTERRUPTION, "barge_in", 1200.0),
    ]
    runner = run(cfg, services, items, echo)
    barges = [e for e in runner.events if isinstance(e, BargeIn)]
    reports = [e for e in runner.events if isinstance(e, LatencyReport)]
    assert len(barges) == 1, barges  # the user's speech, once; never the agent's echo
    first = reports[0]
    assert first.interrupted and barges[0].turn == first.turn
    heard = [r.transcript for r in reports if r.turn > first.turn]
    assert heard and word_error_rate(INTERRUPTION, heard[0]) <= 0.25, heard


def test_the_agent_does_not_interrupt_itself_on_its_echo(cfg, services):
    runner = run(cfg, services, [ScriptItem(DEMO / QUESTION["file"], QUESTION["text"])], ROOM)
    assert not [e for e in runner.events if isinstance(e, BargeIn)]
    reports = [e for e in runner.events if isinstance(e, LatencyReport)]
    assert len(reports) == 1 and not reports[0].interrupted
    played = [e for e in runner.events if isinstance(e, PlaybackFinished)]
    assert played and played[0].heard_s > 2.0  # the reply played to its end, over its own echo
    assert not runner.pipeline.aec.bypassed  # and the echo path was seen as one
