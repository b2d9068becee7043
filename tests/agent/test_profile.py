"""``quickturn profile`` end to end: the real pipeline (real ASR, reply model, TTS, VAD) over bundled
demo WAVs in simulated real time, then every output checked against the raw events of that run.

Models load once for the module. The test config asks for short replies (``lm.max_tokens``) to keep
playback — and so the test — short, and for at least a few reply tokens (``lm.min_tokens``) so every
turn has a spoken reply, whatever the current checkpoint of the embedded model says.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from agent.cli import _load_config, build_parser
from agent.config import load_config
from agent.errors import CommandError
from agent.events import EndpointCommitted, FirstReplySample, SpeechStarted
from agent.latency import STAGES
from agent.pipeline import Services
from agent.profile import main as profile_main
from agent.profile.command import profile_items, write_outputs
from agent.profile.compare import compare
from agent.profile.live import check_devices, live_variant_run, run_live
from agent.profile.run import build_profile_report
from agent.profile.table import print_report
from agent.profile.timeline import TRACKS
from agent.profile.variants import asr_load_key, build_variants
from agent.simulate import load_items

DEMO = Path(__file__).resolve().parents[2] / "demo"
FILES = ("01_greeting.wav", "02_your_name.wav", "05_mid_sentence_pause.wav")  # 05 pauses mid-sentence
OVERRIDES = ["lm.max_tokens=16", "lm.min_tokens=4"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# -- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cfg():
    return load_config(None, OVERRIDES)


@pytest.fixture(scope="module")
def services(cfg) -> Services:
    return Services.load(cfg)  # the default embedded model: a missing one fails with ModelLoadError


@pytest.fixture(scope="module")
def demo_subset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo_subset")
    manifest = [e for e in json.loads((DEMO / "manifest.json").read_text()) if e["file"] in FILES]
    for e in manifest:
        shutil.copy(DEMO / e["file"], folder / e["file"])
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def profiled(cfg, services, demo_subset, tmp_path_factory):
    """One real profile run: the report, its raw events, the files written and the terminal output."""
    out = tmp_path_factory.mktemp("profile_out")
    items = load_items(demo_subset)
    variants, reference, _ = build_variants(cfg, [], [])
    console = Console(file=io.StringIO(), width=160)
    report, runs = profile_items(
        cfg, services, items, variants, reference, 1, console, {"input": str(demo_subset)}
    )
    names = (
        ("json", "r.json"),
        ("csv", "r.csv"),
        ("plot", "r.png"),
        ("trace", "t.json"),
        ("markdown", "r.md"),
    )
    paths = {k: out / n for k, n in names}
    write_outputs(report, *(str(paths[k]) for k, _ in names))
    print_report(console, report)
    return report, runs[0].events, paths, console.file.getvalue()


def _turn_events(events, turn):
    return [e for e in events if e.turn == turn]


# -- one run: every field present and consistent ---------------------------------------------------------
def test_report_has_every_field(profiled, cfg) -> None:
    report, _, _, _ = profiled
    assert set(report) == {"meta", "turns", "summary", "variants"}
    m = report["meta"]
    for key in ("date", "machine", "git_commit", "versions", "config", "profiling_overhead", "load_average"):
        assert key in m, key
    assert m["machine"]["cpu"] and m["machine"]["cores"] >= 1 and "gpu" in m["machine"]
    assert m["versions"]["python"] and "torch" in m["versions"]
    assert m["config"]["lm"]["max_tokens"] == cfg.lm.max_tokens
    turns = report["turns"]
    assert [t["file"] for t in turns] == list(FILES)  # one turn per clip, in manifest order
    for t in turns:
        for key in (
            "file",
            "transcript",
            "reply",
            "v2v_ms",
            "lm_steps",
            "lm_tokens",
            "timeline",
            "wer",
            *STAGES,
        ):
            assert key in t, key
        assert t["transcript"] and t["reply"]
        assert t["lm_steps"] == cfg.lm.steps and 0 < t["lm_tokens"] <= cfg.lm.max_tokens
    # the ASR heard the demo sentences (reference texts from manifest.json → WER)
    assert report["summary"]["wer"] < 0.35
    assert "what's your name" in turns[1]["transcript"].lower()
    # 05 has a 700 ms pause mid-sentence: speculation started in it was thrown away, and counted
    assert turns[2]["discarded_speculations"] >= 1 and turns[2]["discarded_ms"] > 0
    assert report["summary"]["discarded_speculations"] >= 1


def test_stage_times_match_the_events(profiled, cfg) -> None:
    report, events, _, _ = profiled
    spoken = [t for t in report["turns"] if t["v2v_ms"] is not None]
    assert len(spoken) >= 2
    for t in spoken:
        evs = _turn_events(events, t["turn"])
        commit = next(e for e in evs if isinstance(e, EndpointCommitted))
        sample = next(e for e in evs if isinstance(e, FirstReplySample))
        # V2V is exactly the last voiced frame → first reply sample at the output
        assert t["v2v_ms"] == pytest.approx((sample.t - commit.last_voiced_t) * 1e3, abs=0.01)
        assert t["endpoint_ms"] >= cfg.endpoint.hangover_ms  # the hangover is silence actually waited
        assert 0 < t["asr_final_ms"] < t["reply_ready_ms"] <= t["v2v_ms"] + 0.01
        assert t["output_ms"] >= 0 and t["tts_first_chunk_ms"] > 0 and t["lm_ms"] > 0
        assert t["lm_ms_per_step"] > 0 and t["lm_prefill_ms"] >= 0


def test_every_span_lies_inside_its_turn(profiled) -> None:
    report, events, _, _ = profiled
    for t in report["turns"]:
        evs = _turn_events(events, t["turn"])
        start = next(e for e in evs if isinstance(e, SpeechStarted)).audio_start_t
        end = max(e.t for e in evs)
        tl = t["timeline"]
        tracks = set()
        for s in tl["spans"]:
            a, b = tl["t0"] + s["start_ms"] / 1e3, tl["t0"] + s["end_ms"] / 1e3
            assert s["end_ms"] >= s["start_ms"], s
            assert start - 5e-4 <= a and b <= end + 5e-4, (t["turn"], s)
            tracks.add(s["track"])
        assert {"turn", "user audio", "VAD+endpoint", "ASR", "LM", "TTS"} <= tracks
        if t["v2v_ms"] is not None:
            v2v = next(s for s in tl["spans"] if s["name"] == "voice-to-voice")
            assert v2v["start_ms"] == 0 and v2v["end_ms"] == pytest.approx(t["v2v_ms"], abs=0.02)
            first_tts = min(
                s["end_ms"] for s in tl["spans"] if s["track"] == "TTS" and not s.get("discarded")
            )
            assert first_tts == pytest.approx(t["reply_ready_ms"], abs=0.02)


def test_summary_statistics_are_consistent(profiled) -> None:
    report, _, _, _ = profiled
    s = report["summary"]
    assert s["turns"] == len(report["turns"])
    for key in STAGES:
        vals = [t[key] for t in report["turns"] if t[key] is not None]
        st = s[key]
        assert set(st) == {"p50", "p95", "p99", "mean", "n"} and st["n"] == len(vals)
        if vals:
            assert min(vals) - 0.01 <= st["p50"] <= st["p95"] <= st["p99"] <= max(vals) + 0.01
            assert min(vals) - 0.01 <= st["mean"] <= max(vals) + 0.01
    assert s["v2v_ms"]["n"] >= 2
    (block,) = report["variants"]
    assert block["reference"] and block["summary"]["v2v_ms"] == s["v2v_ms"]
    assert block["v2v_ratio_to_reference"]["p50"] == 1.0


def test_profiling_overhead_is_measured_and_small(profiled) -> None:
    report, _, _, _ = profiled
    o = report["meta"]["profiling_overhead"]
    assert o["turns"] == len(report["turns"]) and o["events"] > 5 * o["turns"]
    assert o["per_turn_us"]["n"] == o["turns"] and o["per_turn_us"]["mean"] > 0
    assert o["percent_of_v2v"]["max"] < 1.0 and o["within_1_percent"] is True
    assert all(t["profiling_us"] > 0 for t in report["turns"])


# -- output files ------------------------------------------------------------------------------------------
def test_json_and_csv_files(profiled) -> None:
    report, _, paths, _ = profiled
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(report))
    with paths["csv"].open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(report["turns"])
    assert {"file", "transcript", "reply", "v2v_ms", *STAGES} <= set(rows[0]) and "timeline" not in rows[0]
    assert [float(r["v2v_ms"]) for r in rows if r["v2v_ms"]] == [
        t["v2v_ms"] for t in report["turns"] if t["v2v_ms"] is not None
    ]


def test_markdown_table(profiled) -> None:
    report, _, paths, _ = profiled
    md = paths["markdown"].read_text()
    v2v = report["summary"]["v2v_ms"]
    assert "| stage (ms) | p50 | p95 | p99 | mean | n |" in md
    assert f"| **{v2v['p50']:.0f}** | **{v2v['p95']:.0f}** | **{v2v['p99']:.0f}**" in md
    assert report["meta"]["machine"]["cpu"] in md


def test_plot_is_a_png(profiled) -> None:
    _, _, paths, _ = profiled
    data = paths["plot"].read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000


def test_trace_is_valid_chrome_trace_json(profiled) -> None:
    report, _, paths, _ = profiled
    trace = json.loads(paths["trace"].read_text())
    events = trace["traceEvents"]
    assert isinstance(events, list) and trace["displayTimeUnit"] == "ms"
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"user audio", "VAD+endpoint", "ASR", "LM", "TTS", "playback"} <= names
    assert names <= {*TRACKS, *(f"{t} (2)" for t in TRACKS)}
    spans = [e for e in events if e["ph"] == "X"]
    assert spans and all(e["ph"] in ("X", "M", "i") for e in events)
    for e in spans:
        assert {"name", "cat", "ph", "ts", "dur", "pid", "tid", "args"} <= set(e)
        assert isinstance(e["ts"], int | float) and e["ts"] >= 0 and e["dur"] >= 0
    for e in (e for e in events if e["ph"] == "i"):
        assert {"name", "ts", "pid", "tid", "s"} <= set(e)
    turns = {e["args"]["turn"]: e for e in spans if e["name"].startswith("turn ")}
    assert sorted(turns) == [t["turn"] for t in report["turns"]]
    for e in spans:  # every span inside its turn (1 µs rounding)
        turn = turns[e["args"]["turn"]]
        assert turn["ts"] - 1 <= e["ts"] and e["ts"] + e["dur"] <= turn["ts"] + turn["dur"] + 1, e
    # within a thread, spans are disjoint or nested (what trace viewers need)
    by_thread: dict[tuple[int, int], list[dict]] = {}
    for e in spans:
        by_thread.setdefault((e["pid"], e["tid"]), []).append(e)
    for group in by_thread.values():
        group.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: list[float] = []
        for e in group:
            while stack and stack[-1] <= e["ts"]:
                stack.pop()
            assert not stack or e["ts"] + e["dur"] <= stack[-1] + 0.11, e
            stack.append(e["ts"] + e["dur"])


def test_terminal_table(profiled) -> None:
    report, _, _, text = profiled
    for word in (
        "p50",
        "p95",
        "p99",
        "mean",
        "V2V",
        "endpoint",
        "ASR final",
        "TTS first clause",
        "profiling overhead",
    ):
        assert word in text, word
    assert "01_greeting.wav" in text
    assert f"{report['summary']['v2v_ms']['p50']:.0f}" in text


# -- sweeps and compare, through the command line ----------------------------------------------------------
def _run_cli(argv: list[str], services=None) -> tuple[int, str]:
    args = build_parser().parse_args(["profile", *argv])
    console = Console(file=io.StringIO(), width=160)

    def load_services(cfg, console):
        if services is None:
            raise AssertionError("models must not load for this command")
        return services

    try:
        code = profile_main(args, console, _load_config, load_services)
    except CommandError as exc:  # the CLI prints "error: <message>" and exits with its code
        return exc.code, f"{console.file.getvalue()}error: {exc}"
    return code, console.file.getvalue()


def test_sweep_gives_one_block_per_value_and_compare(services, profiled, tmp_path) -> None:
    out = tmp_path / "sweep.json"
    sets = [x for o in OVERRIDES for x in ("--set", o)]
    code, text = _run_cli(
        ["--input", str(DEMO / FILES[0]), "--sweep", "lm.steps=4,8", "--json", str(out), *sets], services
    )
    assert code == 0, text
    report = json.loads(out.read_text())
    blocks = report["variants"]
    assert [b["name"] for b in blocks] == ["lm.steps=4", "lm.steps=8"]
    assert [b["reference"] for b in blocks] == [False, True]  # the config's own value is the reference
    assert report["summary"]["variant"] == "lm.steps=8"
    assert blocks[1]["v2v_ratio_to_reference"]["p50"] == 1.0
    for b, steps in zip(blocks, (4, 8)):
        rows = [t for t in report["turns"] if t["variant"] == b["name"]]
        assert len(rows) == b["summary"]["turns"] == 1
        assert rows[0]["lm_steps"] == steps  # the reply model really ran with the swept value
        v2v = b["summary"]["v2v_ms"]
        if v2v["n"]:
            ratio = round(v2v["p50"] / report["summary"]["v2v_ms"]["p50"], 3)
            assert b["v2v_ratio_to_reference"]["p50"] == ratio
    assert not [n for n in report["meta"]["notes"] if "loaded" in n]  # models reused, none reloaded
    assert "variants" in text and "lm.steps=4" in text and "×p50" in text

    # compare: the full profile above (A) with this sweep's reference variant (B)
    a_path = profiled[2]["json"]
    code, text = _run_cli(["compare", str(a_path), str(out)])
    assert code == 0, text
    assert "v2v_ms" in text and "B/A p50" in text and "same config" in text
    result = compare(json.loads(a_path.read_text()), report, Console(file=io.StringIO()))
    a50, b50 = profiled[0]["summary"]["v2v_ms"]["p50"], report["summary"]["v2v_ms"]["p50"]
    assert result["v2v_p50_ratio"] == round(b50 / a50, 3)


# -- bad input: clear errors, before any model loads --------------------------------------------------------
def test_a_sweep_over_any_asr_load_field_gets_its_own_recognizer() -> None:
    base = load_config(None)
    key = asr_load_key(base)
    for override in ("asr.window_s=8", "asr.threads=2", "asr.beam_size=2", "asr.compute_type=float32"):
        assert asr_load_key(load_config(None, overrides=[override])) != key, override
    for override in ("asr.partial_interval_ms=500", "asr.partials=false"):  # read per utterance
        assert asr_load_key(load_config(None, overrides=[override])) == key, override


def test_bad_inputs_give_clear_errors(tmp_path) -> None:
    def err(argv: list[str]) -> str:
        code, text = _run_cli(argv)  # load_services would raise: nothing may load
        assert code == 2, text
        assert "error:" in text
        return " ".join(text.split())

    assert "input not found" in err(["--input", str(tmp_path / "nope")])
    (tmp_path / "notes.txt").write_text("hello")
    assert "no audio files" in err(["--input", str(tmp_path)]) and "notes.txt" in err(
        ["--input", str(tmp_path)]
    )
    assert "is not an audio file" in err(["--input", str(tmp_path / "notes.txt")])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.wav").write_bytes(b"RIFF0000WAVEjunk")
    assert "a.wav" in err(["--input", str(broken)])
    man = tmp_path / "man"
    man.mkdir()
    shutil.copy(DEMO / FILES[0], man / FILES[0])
    (man / "manifest.json").write_text(json.dumps([{"file": FILES[0], "text": "hi"}, {"file": "gone.wav"}]))
    assert "names a missing file" in err(["--input", str(man)]) and "gone.wav" in err(["--input", str(man)])
    (man / "manifest.json").write_text("{not json")
    assert "invalid JSON" in err(["--input", str(man)])
    wav = str(DEMO / FILES[0])
    assert "unknown key lm.stepz" in err(["--input", wav, "--sweep", "lm.stepz=1,2"])
    assert "expected a number" in err(["--input", wav, "--sweep", "lm.steps=4,many"])
    assert "section.key=v1" in err(["--input", wav, "--sweep", "steps"])
    assert "unknown" in err(["--input", wav, "--baseline", "gpt"])
    assert "*.png" in err(["--input", wav, "--plot", str(tmp_path / "p.jpg")])
    assert "--input PATH" in err([])
    live = err(
        ["--live", "--set", "audio.input_device=no-such-mic"]
    )  # wording depends on the machine's devices
    assert "--live needs a microphone" in live and "input device" in live
    assert "not found" in err(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    (tmp_path / "x.json").write_text("[1, 2]")
    assert "not a quickturn profile" in err(["compare", str(tmp_path / "x.json"), str(tmp_path / "x.json")])
    assert "usage" in err(["compare", str(tmp_path / "x.json")])


# -- live: a microphone session through a private PulseAudio server --------------------------------------
@pytest.mark.audio_stack
def test_live_profile_through_pulseaudio(pulse, cfg, services) -> None:
    live_cfg = copy.deepcopy(cfg)
    live_cfg.audio.input_device = live_cfg.audio.output_device = "pulse"
    devices = check_devices(live_cfg)

    def speak() -> None:
        time.sleep(0.5)  # the mic is capturing: ask the question into the virtual microphone
        subprocess.run(["paplay", "--device=micsrc", str(DEMO / FILES[1])], capture_output=True, timeout=30)

    def on_listening() -> None:
        threading.Thread(target=speak, daemon=True).start()

    live = asyncio.run(
        run_live(live_cfg, services, devices, duration_s=60, max_turns=1, on_listening=on_listening)
    )
    assert live.stopped_by == "1 turns" and not live.errors
    variant, run = live_variant_run(live_cfg, live, services.reply.name)
    report = build_profile_report(live_cfg, [run], [variant], 0, {"mode": "profile-live"})
    (row,) = report["turns"]
    assert row["file"] == "live" and "your name" in row["transcript"].lower()
    evs = _turn_events(live.events, row["turn"])
    commit = next(e for e in evs if isinstance(e, EndpointCommitted))
    sample = next(e for e in evs if isinstance(e, FirstReplySample))
    assert row["v2v_ms"] == pytest.approx((sample.t - commit.last_voiced_t) * 1e3, abs=0.01)
    assert report["summary"]["v2v_ms"]["n"] == 1 and report["meta"]["mode"] == "profile-live"
    assert report["meta"]["profiling_overhead"]["within_1_percent"]
