"""How should ASR, TTS and the LM share this machine's CPU cores? Measure, don't guess.

    python -m benchmarks.cpu_split [--reps 7] [--json out/bench/cpu_split.json]

For each configuration it times (median of ``--reps`` after 2 warm-up runs):
- ASR final pass (fixed window) on a ~2.5 s utterance, CTranslate2 intra threads 1 / 2
  (plus the standard 30 s ``transcribe()`` once, for comparison);
- TTS time to first audio (first clause of a reply), onnxruntime threads 1 / 2, spinning on / off;
each alone and while another thread runs torch matmuls with ``torch.set_num_threads(k)``, k = 1 / 2
(a stand-in for the LM). The load thread's matmul rate is recorded too: a stage that "wins" by
starving the LM is not a win.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPLY = "Sure, it is five past two right now, and the sun is still shining outside."
UTTERANCE = "Please turn off the lights in the kitchen."


class TorchLoad:
    """Background matmuls shaped like a small LM layer (activations 256×384 @ 384×1536)."""

    def __init__(self, threads: int) -> None:
        import torch

        self.threads = threads
        self._torch = torch
        self._stop = threading.Event()
        self._count = 0
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._t1 = 0.0

    def _run(self) -> None:
        torch = self._torch
        torch.set_num_threads(self.threads)
        a = torch.randn(256, 384)
        b = torch.randn(384, 1536)
        with torch.inference_mode():
            while not self._stop.is_set():
                torch.mm(a, b)
                self._count += 1

    def __enter__(self) -> TorchLoad:
        self._thread = threading.Thread(target=self._run, name="torch-load", daemon=True)
        self._thread.start()
        time.sleep(0.3)  # let it reach steady state
        self._count, self._t0 = 0, time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._t1 = time.perf_counter()
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    @property
    def rate(self) -> float:
        """Matmuls per second while the stage was being measured."""
        return self._count / max(1e-9, self._t1 - self._t0)


def load_alone_rate(threads: int, seconds: float = 1.5) -> float:
    with TorchLoad(threads) as load:
        time.sleep(seconds)
    return load.rate


def measure(fn: Callable[[], float], reps: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    return [fn() for _ in range(reps)]


def run_config(fn: Callable[[], float], reps: int, load_threads: int) -> tuple[list[float], float | None]:
    if load_threads == 0:
        return measure(fn, reps), None
    with TorchLoad(load_threads) as load:
        times = measure(fn, reps)
    return times, load.rate


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
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
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
    rows: list[dict] = []
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

    def add(
        stage: str, threads: int, spinning: bool | None, load: int, times: list[float], rate: float | None
    ):
        rows.append(
            {
                "stage": stage,
                "threads": threads,
                "spinning": spinning,
                "load_threads": load,
                "median_ms": round(statistics.median(times), 1),
                "min_ms": round(min(times), 1),
                "max_ms": round(max(times), 1),
                "n": len(times),
                "load_rate_rel": None if rate is None else round(rate / base_rate[load], 3),
            }
        )
        r = rows[-1]
        extra = "" if rate is None else f"  LM-load at {r['load_rate_rel']:.0%} of its solo rate"
        print(
            f"{stage:10} threads={threads} spin={spinning!s:5} load={load}: {r['median_ms']:7.1f} ms{extra}"
        )

    for threads in (1, 2):
        asr = SpeechRecognizer(cpu_threads=threads)
        text = asr.transcribe(utterance).text
        if threads == 1:
            print(f"ASR utterance {utterance.size / SAMPLE_RATE:.2f} s → {text!r}")

        def asr_final(asr: SpeechRecognizer = asr) -> float:
            return asr.transcribe(utterance).decode_ms

        def asr_standard(asr: SpeechRecognizer = asr) -> float:
            return asr.transcribe_standard(utterance).decode_ms

        for load in (0, 1, 2):
            add("asr_final", threads, None, load, *run_config(asr_final, args.reps, load))
        add("asr_std", threads, None, 0, *run_config(asr_standard, max(3, args.reps // 2), 0))
        del asr

    for threads in (1, 2):
        for spinning in (False, True):
            tts = Synthesizer(threads=threads, spinning=spinning)
            first_clause = tts.clauses(REPLY)[0]

            def tts_first(tts: Synthesizer = tts) -> float:
                t0 = time.perf_counter()
                gen = tts.stream(REPLY)
                next(gen)
                gen.close()
                return (time.perf_counter() - t0) * 1000

            for load in (0, 1, 2):
                add("tts_first", threads, spinning, load, *run_config(tts_first, args.reps, load))
            del tts

    print(f"\nTTS first clause: {first_clause!r}; medians in ms (LM-load rate vs solo in brackets)\n")
    header = f"{'stage':10} {'thr':>3} {'spin':>5} | {'alone':>7} | {'+torch×1':>16} | {'+torch×2':>16}"
    print(header)
    print("-" * len(header))
    keys = sorted(
        {(r["stage"], r["threads"], r["spinning"]) for r in rows}, key=lambda k: (k[0], k[1], str(k[2]))
    )
    for stage, threads, spinning in keys:
        cells = []
        for load in (0, 1, 2):
            r = next(
                (
                    r
                    for r in rows
                    if (r["stage"], r["threads"], r["spinning"], r["load_threads"])
                    == (stage, threads, spinning, load)
                ),
                None,
            )
            if r is None:
                cells.append(f"{'-':>16}" if load else f"{'-':>7}")
            elif load == 0:
                cells.append(f"{r['median_ms']:7.1f}")
            else:
                cells.append(f"{r['median_ms']:7.1f} [{r['load_rate_rel']:5.0%}]  ")
        spin = "-" if spinning is None else ("on" if spinning else "off")
        print(f"{stage:10} {threads:>3} {spin:>5} | " + " | ".join(cells))

    info["loadavg_end"] = list(os.getloadavg())
    info["cpu_busy_after"] = cpu_busy_fraction()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "benchmark": "cpu_split",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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
