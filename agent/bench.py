"""``quickturn bench``: latency of the fixed-step diffusion LM against an autoregressive baseline.

    quickturn bench --device cpu|cuda [--quick] [--json OUT] [--model PATH] [--real-size]
    python -m benchmarks.lm_bench ...   # the same, from a checkout (what `make bench` runs)

The options live here (no torch import, so ``quickturn --help`` is quick); the timing itself is in
``agent/bench_timing.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .config import QuickturnConfig

DESCRIPTION = """Time whole replies of the diffusion LM engine for block lengths 16/32/64 and 4-32
denoising steps, against the same weights decoded autoregressively (and, on a GPU, eager against
CUDA graphs)."""
EPILOG = """examples:
  quickturn bench --quick                         # the embedded model on this CPU, a few settings
  quickturn bench --device cuda --quick --json out/bench/lm_cuda.json
  quickturn bench --set lm.model_path=path/to/dllm --runs 20
  quickturn bench --real-size                     # also random weights at 1.5B size (CPU: slow)

--config/--set: lm.model_path picks the model and lm.device the device (--model/--device win).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = DESCRIPTION
    p.epilog = EPILOG
    p.add_argument(
        "--device", choices=["cpu", "cuda"], help="where to time (default: lm.device; auto = cuda if present)"
    )
    p.add_argument("--quick", action="store_true", help="fewer settings (what `make gpu-check` runs)")
    p.add_argument("--json", type=Path, help="write the full report here")
    p.add_argument(
        "--model",
        help="a model folder (default: lm.model_path, else the embedded model, else random weights)",
    )
    p.add_argument(
        "--real-size",
        dest="real_size",
        action="store_true",
        default=None,
        help="also time random weights at Fast_dLLM_v2-1.5B / LLaDA-8B size (default on CUDA)",
    )
    p.add_argument("--no-real-size", dest="real_size", action="store_false")
    p.add_argument("--runs", type=int, default=0, help="timed runs per setting (default 50; CPU --quick 10)")
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--reply-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")


def run(args: argparse.Namespace, cfg: QuickturnConfig, console, argv: list[str]) -> int:
    from .bench_timing import run as run_timing

    return run_timing(args, cfg, console, argv)
