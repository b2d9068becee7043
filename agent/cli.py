"""``quickturn`` command line: demo, talk, serve, profile, bench.

Every subcommand takes ``--config FILE`` (repeatable; default configs/default.toml) and
``--set section.key=value`` overrides, so any config field can be changed from the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# Set before torch/onnxruntime load: idle OpenMP workers sleep instead of spinning, so the ASR, LM
# and TTS thread pools do not steal the 2 cores from each other between calls.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="append", metavar="FILE", help="TOML config (repeatable)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config field, e.g. --set lm.steps=4",
    )


def _load_config(args):
    from .config import ConfigError, load_config

    try:
        return load_config(args.config, args.set)
    except ConfigError as exc:
        raise SystemExit(f"config error: {exc}") from None


def _load_services(cfg, console, reply_kind: str = "diffusion"):
    from dlm_core import DLMError

    from .pipeline import Services

    t0 = time.perf_counter()
    with console.status("loading and warming models (ASR, LM, TTS)…"):
        try:
            services = Services.load(cfg, reply_kind)
        except (DLMError, FileNotFoundError, ValueError, RuntimeError) as exc:
            raise SystemExit(f"error: {exc}") from None
    console.print(
        f"[dim]models ready in {time.perf_counter() - t0:.1f} s "
        f"(LM: {services.reply.name}, ASR: {services.asr.device}, TTS: {services.tts.device})[/dim]"
    )
    return services


def cmd_demo(args) -> int:
    from .demo import DEMO_DIR, run
    from .simulate import InputError

    console = _console()
    cfg = _load_config(args)
    services = _load_services(cfg, console)
    folder = Path(args.input) if args.input else DEMO_DIR
    out = Path(args.out) if args.out else None
    try:
        report = run(cfg, services, folder, out, Path(args.json) if args.json else None, console)
    except InputError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    s = report["summary"]
    v2v = s["v2v_ms"]
    console.print(
        f"\n[bold]{s['turns']} turns[/bold]: V2V p50 {v2v['p50']} ms, p95 {v2v['p95']} ms; "
        f"ASR word error rate {s.get('wer', float('nan')):.1%}; "
        f"{s['discarded_speculations']} speculative replies discarded; {s['interrupted']} interrupted"
    )
    if out is not None:
        console.print(f"reply audio and conversation.wav in {out}/")
    if args.json:
        console.print(f"report: {args.json}")
    return 0


def cmd_talk(args) -> int:
    from .talk import list_devices_text, run_talk

    console = _console()
    if args.list_devices:
        try:
            console.print(list_devices_text())
        except Exception as exc:
            console.print(f"[red]error:[/red] {exc}")
            return 2
        return 0
    cfg = _load_config(args)
    if args.input_device is not None:
        cfg.audio.input_device = args.input_device
    if args.output_device is not None:
        cfg.audio.output_device = args.output_device
    if args.no_aec:
        cfg.audio.echo_cancellation = False
    return run_talk(cfg, console, lambda: _load_services(cfg, console), duration_s=args.duration)


def cmd_serve(args) -> int:
    from .realtime.server import run_serve

    console = _console()
    cfg = _load_config(args)
    if args.host is not None:
        cfg.server.host = args.host
    if args.port is not None:
        cfg.server.port = args.port
    return run_serve(cfg, console, lambda: _load_services(cfg, console))


def cmd_profile(args) -> int:
    from .profile import main as profile_main

    return profile_main(args, _console(), _load_config, _load_services)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="quickturn", description="A local voice agent whose turns feel instant."
    )
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="scripted conversation from demo/ WAVs through the whole pipeline")
    _common(p)
    p.add_argument("--input", help="folder of WAVs (+ manifest.json); default: the bundled demo/")
    p.add_argument("--out", default="out/demo", help="where reply audio and conversation.wav go")
    p.add_argument("--json", metavar="OUT", help="write a report (same schema as profile --json)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("talk", help="live voice assistant on your microphone and speaker")
    _common(p)
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    p.add_argument("--input-device", help="microphone (index or name)")
    p.add_argument("--output-device", help="speaker (index or name)")
    p.add_argument("--no-aec", action="store_true", help="disable echo cancellation (headphones)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = Ctrl-C)")
    p.set_defaults(func=cmd_talk)

    p = sub.add_parser("serve", help="WebSocket voice API shaped like the OpenAI Realtime API (GA events)")
    _common(p)
    p.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: server.port, 8765; 0 = any port)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("profile", help="where every millisecond of a turn goes")
    _common(p)
    from .profile import add_arguments

    add_arguments(p)
    p.set_defaults(func=cmd_profile)

    sub.add_parser("bench", help="dLM engine benchmark (benchmarks/lm_bench.py; quickturn bench --help)")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own options: quickturn bench --help lists them
        from benchmarks.lm_bench import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
