"""How should ASR, TTS and the LM share this machine's CPU cores? Measure, don't guess.

    python -m benchmarks.cpu_split [--reps 7] [--json out/bench/cpu_split.json]

For each configuration it times (median of ``--reps`` after 2 warm-up runs; configurations are
measured round-robin so a drifting background load affects them alike):
- ASR final pass (fixed window) on a ~2.6 s utterance, CTranslate2 intra threads 1 / 2
  (plus the standard 30 s ``transcribe()`` alone, for comparison);
- TTS time to first audio (first clause of a reply), onnxruntime threads 1 / 2, spinning on / off;
each alone and while another thread runs torch matmuls with ``torch.set_num_threads(k)``, k = 1 / 2
(a stand-in for the LM). The load thread's matmul rate is recorded too: a stage that "wins" by
starving the LM is not a win.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from agent.report import cpu_model

REPLY = "Sure, it is five past two right now, and the sun is still shining outside."
UTTERANCE = "Please turn off the lights in the kitchen."


class TorchLoad:
    """Background matmuls shaped like a small LM layer (activations 256×384 @ 384×1536)."""

    def __init__(self, threads: int) -> None:
        import torch

        self.threads = threads
        self._torch = torch
        self._stop = threading.Event()
        self.count = 0  # matmuls done so far (read by the measuring thread)
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        torch = self._torch
        torch.set_num_threads(self.threads)
        a = torch.randn(256, 384)
        b = torch.randn(384, 1536)
        with torch.inference_mode():
            while not self._stop.is_set():
                torch.mm(a, b)
                self.count += 1

    def __enter__(self) -> TorchLoad:
        self._thread = threading.Thread(target=self._run, name="torch-load", daemon=True)
        self._thread.start()
        time.sleep(0.3)  # let it reach steady state
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()


def load_alone_rate(threads: int, seconds: float = 1.5) -> float:
    with TorchLoad(threads) as load:
        c0, t0 = load.count, time.perf_counter()
        time.sleep(seconds)
        return (load.count - c0) / (time.perf_counter() - t0)


@dataclass
class Config:
    stage: str
    threads: int
    spinning: bool | None
    fn: Callable[[], float]  # returns the stage's own latency in ms
    loads: tuple[int, ...] = (0, 1, 2)
    times: dict[int, list[float]] = field(default_factory=lambda: {0: [], 1: [], 2: []})
    rates: dict[int, list[float]] = field(default_factory=lambda: {1: [], 2: []})


def run_interleaved(
    configs: list[Config], reps: int, base_rate: dict[int, float], gap_s: float = 0.1
) -> None:
    """Round-robin over configurations so a drifting background load hits them all alike.

    ``gap_s`` between calls lets spinning worker threads of the previous call go idle.
    """
    for load_threads in (0, 1, 2):
        ctx: contextlib.AbstractContextManager = (
            TorchLoad(load_threads) if load_threads else contextlib.nullcontext()
        )
        with ctx as load:
            for _ in range(reps):
                for cfg in configs:
                    if load_threads not in cfg.loads:
                        continue
                    time.sleep(gap_s)
                    c0, t0 = (load.count if load else 0), time.perf_counter()
                    cfg.times[load_threads].append(cfg.fn())
                    if load:
                        rate = (load.count - c0) / (time.perf_counter() - t0)
                        cfg.rates[load_threads].append(rate / base_rate[load_threads])


def cpu_busy_fraction(seconds: float = 1.0) -> float | None:
    """Share of all cores busy over ``seconds`` (other tenants' processes are invisible to ps)."""

    def snap() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields), idle

    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
    except (OSError, IndexError, ValueError):
        return None
    return round(1.0 - (i1 - i0) / max(1, t1 - t0), 3)


def machine_info() -> dict:
    cpu = cpu_model()
    import ctranslate2
    import onnxruntime
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "ctranslate2": ctranslate2.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "loadavg_start": list(os.getloadavg()),
        "cpu_busy_before": cpu_busy_fraction(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU thread split of ASR / TTS / LM on this machine")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args(argv)

    from agent.asr import SAMPLE_RATE, SpeechRecognizer
    from agent.tts import Synthesizer

    info = machine_info()
    if info["cpu_busy_before"] is not None and info["cpu_busy_before"] > 0.1:
        print(
            f"WARNING: the CPU was {info['cpu_busy_before']:.0%} busy before starting; numbers are contended"
        )

    # Test speech from the piper voice itself (16 kHz, 200 ms of silence either side).
    maker = Synthesizer(sample_rate=SAMPLE_RATE, threads=2, warmup=False)
    pad = np.zeros(int(0.2 * SAMPLE_RATE), dtype=np.float32)
    utterance = np.concatenate([pad, maker.synthesize(UTTERANCE), pad])
    del maker

    base_rate = {k: load_alone_rate(k) for k in (1, 2)}
    print(
        f"torch load alone: {base_rate[1]:.0f} matmul/s (1 thread), {base_rate[2]:.0f} matmul/s (2 threads)"
    )

    asr_models = {t: SpeechRecognizer(cpu_threads=t) for t in (1, 2)}
    print(
        f"ASR utterance {utterance.size / SAMPLE_RATE:.2f} s → {asr_models[2].transcribe(utterance).text!r}"
    )
    tts_models = {(t, sp): Synthesizer(threads=t, spinning=sp) for t in (1, 2) for sp in (False, True)}
    first_clause = tts_models[(2, False)].clauses(REPLY)[0]

    def asr_final(asr: SpeechRecognizer) -> Callable[[], float]:
        return lambda: asr.transcribe(utterance).decode_ms

    def asr_standard(asr: SpeechRecognizer) -> Callable[[], float]:
        return lambda: asr.transcribe_standard(utterance).decode_ms

    def tts_first(tts: Synthesizer) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            gen = tts.stream(REPLY)
            next(gen)
            gen.close()  # only the first clause is synthesized
            return (time.perf_counter() - t0) * 1000

        return run

    configs = [Config("asr_final", t, None, asr_final(m)) for t, m in asr_models.items()]
    configs += [Config("asr_std", t, None, asr_standard(m), loads=(0,)) for t, m in asr_models.items()]
    configs += [Config("tts_first", t, sp, tts_first(m)) for (t, sp), m in tts_models.items()]
    for cfg in configs:  # warm-up, not recorded
        for _ in range(2):
            cfg.fn()
    run_interleaved(configs, args.reps, base_rate)

    rows: list[dict] = []
    for cfg in configs:
        for load in cfg.loads:
            times = cfg.times[load]
            rates = cfg.rates.get(load, [])
            rows.append(
                {
                    "stage": cfg.stage,
                    "threads": cfg.threads,
                    "spinning": cfg.spinning,
                    "load_threads": load,
                    "median_ms": round(statistics.median(times), 1),
                    "min_ms": round(min(times), 1),
                    "max_ms": round(max(times), 1),
                    "n": len(times),
                    "load_rate_rel": round(statistics.median(rates), 3) if rates else None,
                }
            )

    print(f"\nTTS first clause: {first_clause!r}")
    print("medians in ms; [LM-load matmul rate during the call, relative to the load running alone]\n")
    header = f"{'stage':10} {'thr':>3} {'spin':>4} | {'alone':>7} | {'+torch x1':>15} | {'+torch x2':>15}"
    print(header)
    print("-" * len(header))
    for cfg in configs:
        cells = []
        for load in (0, 1, 2):
            r = next((r for r in rows if r["stage"] == cfg.stage and r["threads"] == cfg.threads
                      and r["spinning"] == cfg.spinning and r["load_threads"] == load), None)  # fmt: skip
            if r is None:
                cells.append(f"{'-':>15}" if load else f"{'-':>7}")
            elif load == 0:
                cells.append(f"{r['median_ms']:7.1f}")
            else:
                cells.append(f"{r['median_ms']:7.1f} [{r['load_rate_rel']:4.0%}]")
        spin = "-" if cfg.spinning is None else ("on" if cfg.spinning else "off")
        print(f"{cfg.stage:10} {cfg.threads:>3} {spin:>4} | " + " | ".join(cells))

    info["loadavg_end"] = list(os.getloadavg())
    info["cpu_busy_after"] = cpu_busy_fraction()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "benchmark": "cpu_split",
            "date": datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(
                [Path(sys.executable).name, "-m", "benchmarks.cpu_split", *(argv or sys.argv[1:])]
            ),
            "machine": info,
            "utterance": {"text": UTTERANCE, "seconds": round(utterance.size / SAMPLE_RATE, 2)},
            "tts_first_clause": first_clause,
            "torch_load_alone_matmul_per_s": {str(k): round(v, 1) for k, v in base_rate.items()},
            "results": rows,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
