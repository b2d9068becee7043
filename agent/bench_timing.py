"""Latency of the fixed-step diffusion LM against an autoregressive baseline (``quickturn bench``).

Options and examples: ``agent/bench.py`` (``quickturn bench --help``); this module does the timing.

For every block length L ∈ {16, 32, 64} and steps S ∈ {4, 8, 16, 32} (S ≤ L) it times whole replies of
``--reply-tokens`` tokens through ``DiffusionEngine.generate_ids`` (prefill of a ``--prompt-tokens``
prompt included, the cache reset before every run, EOS banned so every reply has the same length):
per-reply p50/p99 over ``--runs`` runs, ms per forward, tokens per denoising forward. In the same run
the autoregressive baseline (``dlm_core.ar.ar_generate``: same weights, causal mask, greedy, one token
per forward) writes the same number of tokens, giving AR time / diffusion time. On CUDA each setting
runs eagerly and through CUDA graphs ("graph-block": one graph per block, "graph-step": one step
replayed S times), giving eager time / graph time.

Models: ``--model PATH`` (any family dlm_core loads), else ``lm.model_path`` of the config, else the
embedded model folder (``agent/embedded/model``) if present, else random weights with its dimensions (hidden 256, 8 layers,
4 heads, 2 kv heads, FFN 768, vocab 8192). Real-size timing uses random weights at the dimensions of
Fast_dLLM_v2-1.5B and LLaDA-8B: on by default on CUDA, ``--real-size`` on CPU (1.5B only; LLaDA-8B
needs ~32 GB in fp32). Aligned-block models (Fast-dLLM v2, SDAR) only run L = their block size.

The JSON records the machine (CPU model, cores, GPU), torch version, date and the exact command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from tokenizers import Tokenizer
from tokenizers.models import WordLevel

from dlm_core import Constraints, DecodeOptions, DiffusionEngine, ModelConfig, load_model
from dlm_core.ar import ar_generate
from dlm_core.families import FAMILIES
from dlm_core.loader import LoadedModel
from dlm_core.model import Transformer
from dlm_core.tokenizer import ChatTokenizer

from .config import QuickturnConfig
from .errors import UsageError
from .reply import EMBEDDED_MODEL as EMBEDDED
from .report import cpu_model

STEPS = (4, 8, 16, 32)
BLOCKS = (16, 32, 64)

EMBEDDED_DIMS = dict(
    hidden_size=256, num_layers=8, num_heads=4, num_kv_heads=2, intermediate_size=768, vocab_size=8192
)
REAL_SIZES: dict[str, dict[str, Any]] = {
    "fast_dllm_v2_1.5b (random)": dict(
        vocab_size=151936,
        hidden_size=1536,
        num_layers=28,
        num_heads=12,
        num_kv_heads=2,
        intermediate_size=8960,
        rope_theta=1e6,
        rms_norm_eps=1e-6,
        qkv_bias=True,
        tie_word_embeddings=True,
        attention="block_causal",
        block_size=32,
        gen_block_size=32,
        shift_logits=True,
        ar_block_start=True,
        max_position_embeddings=4096,
        mask_token_id=151665,
        eos_token_ids=(151645, 151643),
        pad_token_id=151643,
        family="fast_dllm_v2",
    ),
    "llada_8b (random)": dict(
        vocab_size=126464,
        hidden_size=4096,
        num_layers=32,
        num_heads=32,
        num_kv_heads=32,
        intermediate_size=12288,
        rope_theta=500000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        attention="full",
        block_size=1,
        gen_block_size=32,
        max_position_embeddings=4096,
        mask_token_id=126336,
        eos_token_ids=(126081, 126348),
        pad_token_id=126081,
        family="llada",
    ),
}


@dataclass
class Case:
    name: str
    loaded: LoadedModel
    blocks: tuple[int, ...]
    steps: tuple[int, ...]
    runs: int


# -- models --------------------------------------------------------------------------------------------------


def _word_tokenizer(vocab_size: int) -> Tokenizer:
    """A real (if meaningless) tokenizer covering every id, so random-weight models run through the engine."""
    return Tokenizer(WordLevel({f"<{i}>": i for i in range(vocab_size)}, unk_token="<0>"))


def random_model(
    name: str, fields: dict[str, Any], device: str, dtype: torch.dtype, seed: int = 0
) -> LoadedModel:
    cfg = ModelConfig(**fields)
    model = Transformer.empty(cfg, device=device, dtype=dtype)
    torch.manual_seed(seed)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() == 1:
                p.fill_(1.0) if pname.endswith("weight") else p.zero_()
            else:
                p.normal_(0.0, 0.02)
    model.eval()
    family = FAMILIES[cfg.family]
    return LoadedModel(model, ChatTokenizer(_word_tokenizer(cfg.vocab_size), family), cfg, family, Path(name))


def embedded_fields() -> dict[str, Any]:
    v = EMBEDDED_DIMS["vocab_size"]
    return dict(
        **EMBEDDED_DIMS, mask_token_id=v - 1, pad_token_id=v - 2, eos_token_ids=(v - 3,), block_size=1
    )


def n_params(model: Transformer) -> int:
    return sum(p.numel() for p in model.parameters())


# -- timing --------------------------------------------------------------------------------------------------


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _stats(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {
        "p50": statistics.median(s),
        "p99": s[min(len(s) - 1, round(0.99 * (len(s) - 1)))],
        "mean": statistics.fmean(s),
        "min": s[0],
    }


def time_diffusion(
    engine: DiffusionEngine, prompt: list[int], reply: int, block: int, steps: int, runs: int, device: str
) -> dict[str, Any]:
    cfg = engine.cfg
    no_stop = Constraints(banned_ids=tuple(sorted({*cfg.eos_token_ids, cfg.pad_token_id})))
    # The ceiling: every block spends all S steps (early exit saves what the content allows, measured
    # in the pipeline by `quickturn profile --sweep lm.early_exit=true,false`).
    options = DecodeOptions(
        max_tokens=reply, steps=steps, block_len=block, constraints=no_stop, early_exit=False
    )
    for _ in range(3):  # warm-up (and lazy graph capture)
        engine.reset()
        engine.generate_ids(prompt, options)
    total, per_forward, prefill = [], [], []
    result = None
    for _ in range(runs):
        engine.reset()
        _sync(device)
        t0 = time.perf_counter()
        result = engine.generate_ids(prompt, options)
        _sync(device)
        ms = (time.perf_counter() - t0) * 1e3
        commits = len(result.blocks) - 1
        total.append(ms)
        prefill.append(result.prefill_ms)
        per_forward.append((ms - result.prefill_ms) / (result.forwards + commits))
    assert result is not None
    return {
        "reply_ms": _stats(total),
        "ms_per_forward": statistics.median(per_forward),
        "prefill_ms": statistics.median(prefill),
        "tokens": len(result.token_ids),
        "denoise_forwards": result.forwards,
        "commit_forwards": len(result.blocks) - 1,
        "tokens_per_forward": result.tokens_per_forward,
    }


def time_ar(model: Transformer, prompt: list[int], reply: int, runs: int, device: str) -> dict[str, Any]:
    for _ in range(3):
        ar_generate(model, prompt, reply)
    total = []
    for _ in range(runs):
        _sync(device)
        t0 = time.perf_counter()
        out = ar_generate(model, prompt, reply)
        _sync(device)
        total.append((time.perf_counter() - t0) * 1e3)
    assert len(out) == reply
    return {"reply_ms": _stats(total), "ms_per_token": statistics.median(total) / reply, "tokens": reply}


def run_case(case: Case, device: str, prompt_len: int, reply: int, console: Console) -> dict[str, Any]:
    lm, cfg = case.loaded, case.loaded.config
    gen = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, cfg.vocab_size, (prompt_len,), generator=gen)
    prompt = torch.where(prompt == cfg.mask_token_id, prompt.new_tensor(1), prompt).tolist()
    max_context = prompt_len + reply + 64
    modes = ["eager", "graph-block", "graph-step"] if device.startswith("cuda") else ["eager"]
    rows: list[dict[str, Any]] = []
    for mode in modes:
        engine = DiffusionEngine(
            lm,
            max_context=max_context,
            use_cuda_graphs=mode != "eager",
            graph_mode="step" if mode == "graph-step" else "block",
        )
        for block in case.blocks:
            for steps in case.steps:
                if steps > block:
                    continue
                t0 = time.perf_counter()
                row = {"mode": mode, "block_len": block, "steps": steps}
                row.update(time_diffusion(engine, prompt, reply, block, steps, case.runs, device))
                rows.append(row)
                console.log(
                    f"{case.name} {mode} L={block} S={steps}: p50 {row['reply_ms']['p50']:.1f} ms "
                    f"({time.perf_counter() - t0:.1f} s)"
                )
        if engine.graphs is not None:
            engine.graphs.reset()  # free this mode's graphs before the next
    ar = time_ar(lm.model, prompt, reply, case.runs, device)
    console.log(f"{case.name} AR: p50 {ar['reply_ms']['p50']:.1f} ms")
    eager = {(r["block_len"], r["steps"]): r for r in rows if r["mode"] == "eager"}
    for r in rows:
        r["ar_over_diffusion"] = ar["reply_ms"]["p50"] / r["reply_ms"]["p50"]
        if r["mode"] != "eager":
            r["eager_over_graph"] = (
                eager[(r["block_len"], r["steps"])]["reply_ms"]["p50"] / r["reply_ms"]["p50"]
            )
    return {
        "name": case.name,
        "family": cfg.family,
        "params": n_params(lm.model),
        "dtype": str(next(lm.model.parameters()).dtype).replace("torch.", ""),
        "config": {k: v for k, v in cfg.to_dict().items() if k not in ("eos_token_ids",)},
        "runs": case.runs,
        "prompt_tokens": prompt_len,
        "reply_tokens": reply,
        "diffusion": rows,
        "ar": ar,
    }


# -- reporting -----------------------------------------------------------------------------------------------


def machine_info(device: str) -> dict[str, Any]:
    cpu = cpu_model()
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda
        )
    with contextlib.suppress(OSError):
        info["load_average"] = os.getloadavg()
    return info


def print_table(console: Console, report: dict[str, Any]) -> None:
    for case in report["models"]:
        ar = case["ar"]
        table = Table(
            title=f"{case['name']} — {case['params'] / 1e6:.1f}M params, {case['dtype']}, "
            f"{case['reply_tokens']} tokens after a {case['prompt_tokens']}-token prompt, "
            f"{case['runs']} runs; AR baseline p50 {ar['reply_ms']['p50']:.1f} ms "
            f"({ar['ms_per_token']:.2f} ms/token)"
        )
        for col in (
            "mode",
            "L",
            "S",
            "reply p50 ms",
            "reply p99 ms",
            "ms/forward",
            "tok/fwd",
            "AR/diff",
            "eager/graph",
        ):
            table.add_column(col, justify="right")
        for r in case["diffusion"]:
            table.add_row(
                r["mode"],
                str(r["block_len"]),
                str(r["steps"]),
                f"{r['reply_ms']['p50']:.1f}",
                f"{r['reply_ms']['p99']:.1f}",
                f"{r['ms_per_forward']:.2f}",
                f"{r['tokens_per_forward']:.2f}",
                f"{r['ar_over_diffusion']:.2f}",
                f"{r['eager_over_graph']:.2f}" if "eager_over_graph" in r else "—",
            )
        console.print(table)


# -- main ----------------------------------------------------------------------------------------------------


def build_cases(args: argparse.Namespace, device: str, model: str, console: Console) -> Iterator[Case]:
    """Models are built one at a time, so a real-size model is freed before the next is allocated."""
    quick = args.quick
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    runs = args.runs or (50 if device.startswith("cuda") or not quick else 10)
    small_steps = STEPS if not (quick and device == "cpu") else (4, 8)
    small_blocks = BLOCKS if not (quick and device == "cpu") else (32,)
    path = Path(model) if model else (EMBEDDED if (EMBEDDED / "config.json").is_file() else None)
    if path is not None:
        lm = load_model(path, device=device, dtype=dtype)
        name = f"{path} ({lm.config.family})"
    else:
        lm = random_model("embedded-size (random)", embedded_fields(), device, dtype)
        name = lm.path.name
    blocks = (lm.config.block_size,) if lm.config.aligned_blocks else small_blocks
    yield Case(name, lm, blocks, small_steps, runs)
    del lm
    real = device.startswith("cuda") if args.real_size is None else args.real_size
    if real:
        for rname, fields in REAL_SIZES.items():
            if device == "cpu" and fields["hidden_size"] > 2048:
                console.log(f"skipping {rname} on CPU (needs ~32 GB in fp32)")
                continue
            steps = (8,) if quick and "llada" in rname else ((4, 8) if quick else STEPS)
            blocks = (32,) if quick or fields["attention"] == "block_causal" else BLOCKS
            yield Case(
                rname,
                random_model(rname, fields, device, dtype),
                blocks,
                steps,
                args.runs or (20 if quick else 50),
            )


def run(args: argparse.Namespace, cfg: QuickturnConfig, console: Console, argv: list[str]) -> int:
    """Time every case, print the tables, write ``--json``. ``argv``: the command as typed (recorded)."""
    device = args.device or cfg.lm.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise UsageError(f"bench runs on cpu or cuda, not lm.device={device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda but torch sees no CUDA device")
    model = args.model or cfg.lm.model_path
    if model and not (Path(model) / "config.json").is_file():
        raise UsageError(f"no model folder at {model} (it needs a config.json)")
    if args.runs < 0 or args.prompt_tokens < 1 or args.reply_tokens < 1:
        raise UsageError("--runs must be >= 0, --prompt-tokens and --reply-tokens >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": " ".join(shlex.quote(a) for a in argv),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch": torch.__version__,
        "device": device,
        "machine": machine_info(device),
        "models": [],
    }
    with torch.inference_mode():
        for case in build_cases(args, device, model, console):
            report["models"].append(run_case(case, device, args.prompt_tokens, args.reply_tokens, console))
            del case  # drop the model before the next one is built
            if device == "cuda":
                torch.cuda.empty_cache()
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print_table(console, report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        console.log(f"wrote {args.json}")
    return 0
