"""``quickturn demo``: a scripted multi-turn conversation from the WAVs in ``demo/``, no mic needed.

Runs the whole pipeline in simulated real time (greeting, name, time, weekday, a mid-sentence pause,
a user fact and its recall, a request it cannot do with a barge-in over its reply, a joke with a
backchannel over it, goodbye), prints each turn with its stage times and voice-to-voice latency, and writes the reply
audio, a two-channel recording of the whole conversation, and (``--json``) a report in the same
schema as ``quickturn profile --json``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from audio.formats import write_wav
from audio.resample import resample

from .config import QuickturnConfig
from .events import BargeIn, BargeInIgnored, Event, EventBus, LatencyReport
from .pipeline import Services
from .report import build_report, turn_row, write_json
from .simulate import ScriptRunner, load_items

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"


def _print_event(console, event: Event) -> None:
    if isinstance(event, LatencyReport):
        s = event.stages_ms
        v2v = f"{event.v2v_ms:.0f} ms" if event.v2v_ms is not None else "—"
        console.print(f"[bold]turn {event.turn}[/bold]  user: [cyan]{event.transcript!r}[/cyan]")
        console.print(
            f"         agent: [green]{event.reply!r}[/green]{'  (interrupted)' if event.interrupted else ''}"
        )
        parts = [
            f"{k.removesuffix('_ms')} {s[k]:.0f}"
            for k in ("endpoint_ms", "asr_final_ms", "lm_ms", "tts_first_chunk_ms", "output_ms")
            if k in s
        ]
        console.print(f"         ms: {', '.join(parts)}  [bold]V2V {v2v}[/bold]")
    elif isinstance(event, BargeIn):
        console.print(
            f"[yellow]barge-in[/yellow]: reply stopped after {event.heard_s:.2f} s "
            f"(heard: {event.heard_text!r}); output silent within {event.stop_ms:.0f} ms"
        )
    elif isinstance(event, BargeInIgnored):
        console.print(f"[dim]ignored {event.reason}: {event.text!r}[/dim]")


def conversation_wav(
    mic_frames: list[tuple[float, np.ndarray]], runner: ScriptRunner, rate: int
) -> np.ndarray:
    """Stereo timeline of the session: left = what the user said, right = what the agent played."""
    if not mic_frames:
        return np.zeros((0, 2), np.float32)
    t0 = mic_frames[0][0] - len(mic_frames[0][1]) / rate
    t_end = mic_frames[-1][0]
    speaker = runner.speaker
    played = speaker.recorded()
    out_len = int((t_end - t0) * rate) + rate
    out = np.zeros((out_len, 2), np.float32)
    for t, frame in mic_frames:
        start = int((t - t0) * rate) - len(frame)
        if start >= 0 and start + len(frame) <= out_len:
            out[start : start + len(frame), 0] = frame
    pos = 0
    for block in list(speaker.timeline):
        chunk = played[pos : pos + block.samples]
        pos += block.samples
        audio = resample(chunk, speaker.sample_rate, rate)
        start = int((block.t - t0) * rate)
        end = min(out_len, start + len(audio))
        if start >= 0 and end > start:
            out[start:end, 1] = audio[: end - start]
    return out


async def run_demo(
    cfg: QuickturnConfig,
    services: Services,
    folder: Path,
    out_dir: Path | None,
    json_path: Path | None,
    console,
) -> dict:
    items = load_items(folder)
    bus = EventBus()
    bus.subscribe(lambda e: _print_event(console, e))
    runner = ScriptRunner(cfg, services, bus)
    runner.pipeline.keep_reply_audio = True
    results = await runner.run(items)
    rows = []
    for result in results:
        for report in result.reports:
            rows.append(turn_row(report, runner.events, result.item.file.name, result.item.text))
    report = build_report(cfg, rows, {"input": str(folder), "mode": "demo"})
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for turn, chunks in runner.pipeline.reply_audio.items():
            if chunks:
                write_wav(
                    out_dir / f"reply_turn{turn:02d}.wav",
                    np.concatenate([c.samples for c in chunks]),
                    chunks[0].sample_rate,
                )
        stereo = conversation_wav(runner.mic_frames, runner, cfg.audio.sample_rate)
        write_wav(out_dir / "conversation.wav", stereo, cfg.audio.sample_rate)
    if json_path is not None:
        write_json(report, json_path)
    return report


def run(
    cfg: QuickturnConfig,
    services: Services,
    folder: Path,
    out_dir: Path | None,
    json_path: Path | None,
    console,
) -> dict:
    return asyncio.run(run_demo(cfg, services, folder, out_dir, json_path, console))
