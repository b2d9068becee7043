"""``quickturn`` command line: demo, talk, serve, profile, bench.

Every subcommand takes ``--config FILE`` (repeatable; default: the shipped ``agent/defaults.toml``) and
``--set section.key=value`` overrides, so any config field can be changed from the command line.
Errors go to stderr as ``error: ...``; exit codes are listed in ``agent/errors.py`` (and ``--help``).
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
import time
from pathlib import Path

from .errors import CommandError, UsageError

# Set before torch/onnxruntime load: idle OpenMP workers sleep instead of spinning, so the ASR, LM
# and TTS thread pools do not steal the 2 cores from each other between calls.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

PIPED_WIDTH = 200  # columns for tables when stdout is a pipe or file (rich would cut them at 80)

EXIT_CODES = """exit codes: 0 done; 1 failed while running (a model, an audio device); 2 the request cannot
run as given (options, config, input files, port, device), found before any model loads; 130 Ctrl-C.
Errors are printed to stderr as "error: ..."."""


def _console():
    from rich.console import Console

    # Not a terminal (a pipe, a file, CI): no 80-column cut; COLUMNS, when set, wins as rich reads it.
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, width=PIPED_WIDTH if wide else None)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("quickturn")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help="TOML config (repeatable; default: the shipped agent/defaults.toml)",
    )
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
        raise UsageError(f"config: {exc}") from None


def _load_services(cfg, console, reply_kind: str = "diffusion"):
    from dlm_core import DLMError

    from .pipeline import Services

    t0 = time.perf_counter()
    with console.status("loading and warming models (ASR, LM, TTS)…"):
        try:
            services = Services.load(cfg, reply_kind)
        except (DLMError, FileNotFoundError, ValueError, RuntimeError) as exc:
            raise CommandError(str(exc)) from None
    drafts = getattr(services.reply, "drafts_state", None)
    console.print(
        f"[dim]models ready in {time.perf_counter() - t0:.1f} s "
        f"(LM: {services.reply.name}{f', {drafts}' if drafts else ''}, ASR: {services.asr.device}, "
        f"TTS: {services.tts.device})[/dim]"
    )
    return services


def _demo_folder(arg: str | None) -> Path:
    from .demo import DEMO_DIR

    if arg:
        return Path(arg)
    if not DEMO_DIR.is_dir():  # an installed quickturn: the clips live in the source repository
        raise UsageError(
            "the demo clips are not installed with the package; give a folder of recordings with "
            "--input FOLDER (the source repository's demo/ folder holds the scripted conversation, "
            "demo/make_demo_audio.py renders it again)"
        )
    return DEMO_DIR


def cmd_demo(args) -> int:
    from .simulate import InputError, load_clip, load_items

    console = _console()
    cfg = _load_config(args)
    folder = _demo_folder(args.input)
    try:  # every clip is read now: a bad folder or file fails before the models load
        for item in load_items(folder):
            load_clip(item, cfg.audio.sample_rate)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    from .demo import run

    services = _load_services(cfg, console)
    out = Path(args.out) if args.out else None
    try:
        report = run(cfg, services, folder, out, Path(args.json) if args.json else None, console)
    except InputError as exc:
        raise CommandError(str(exc)) from None
    s = report["summary"]
    v2v = s["v2v_ms"]
    wer = (
        f"ASR word error rate {s['wer']:.1%}"
        if "wer" in s
        else "no reference transcripts (manifest.json), so no word error rate"
    )
    console.print(
        f"\n[bold]{s['turns']} turns[/bold]: V2V p50 {v2v['p50']} ms, p95 {v2v['p95']} ms; {wer}; "
        f"{s['discarded_speculations']} speculative replies discarded; {s['interrupted']} interrupted"
    )
    if out is not None:
        console.print(f"reply audio and conversation.wav in {out}/")
    if args.json:
        console.print(f"report: {args.json}")
    return 0


def cmd_talk(args) -> int:
    from audio.devices import AudioDeviceError

    from .talk import list_devices_text, run_talk

    console = _console()
    if args.list_devices:
        try:
            console.print(list_devices_text(), markup=False)
        except AudioDeviceError as exc:
            raise CommandError(str(exc)) from None
        return 0
    cfg = _load_config(args)
    if args.input_device is not None:
        cfg.audio.input_device = args.input_device
    if args.output_device is not None:
        cfg.audio.output_device = args.output_device
    if args.no_aec:
        cfg.audio.echo_cancellation = False
    return run_talk(cfg, console, lambda: _load_services(cfg, console), duration_s=args.duration)


def check_port(host: str, port: int) -> None:
    """Can the server listen on host:port? Asked before the models load (seconds), not after.

    Binds and closes a socket the way asyncio's server does (SO_REUSEADDR), so a port held by a
    running server fails here while one in TIME_WAIT does not. Port 0 (any free port) always works.
    """
    if port == 0:
        return
    fix = "pick another with --port N (0 = any free port), or stop what is using it"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host}:{port}: unknown address ({exc.strerror})") from None
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(addr)
            except OSError as exc:
                why = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                raise UsageError(f"cannot listen on {host}:{port}: {why}; {fix}") from None


def check_bind(host: str, api_key: str, insecure: bool) -> None:
    """No API key: only loopback, unless asked for in so many words. Asked before the models load."""
    from .realtime.security import bind_problem

    problem = bind_problem(host, api_key, insecure)
    if problem is not None:
        raise UsageError(problem)


def cmd_serve(args) -> int:
    from .realtime.server import ServerError, run_serve

    console = _console()
    cfg = _load_config(args)
    if args.host is not None:
        cfg.server.host = args.host
    if args.port is not None:
        cfg.server.port = args.port
    if args.insecure:
        cfg.server.insecure = True
    if not 0 <= cfg.server.port <= 65535:
        raise UsageError(f"port {cfg.server.port} is out of range (0-65535)")
    check_bind(cfg.server.host, cfg.server.api_key, cfg.server.insecure)
    check_port(cfg.server.host, cfg.server.port)
    try:
        return run_serve(cfg, console, lambda: _load_services(cfg, console))
    except ServerError as exc:
        raise UsageError(str(exc)) from None


def cmd_profile(args) -> int:
    from .profile import main as profile_main

    return profile_main(args, _console(), _load_config, _load_services)


def cmd_bench(args) -> int:
    from .bench import run

    cfg = _load_config(args)
    return run(args, cfg, _console(), ["quickturn", "bench", *args.argv])


DEMO_HELP = """Play a scripted multi-turn conversation through the whole pipeline (ASR -> LM -> TTS) in
simulated real time, no microphone needed: greeting, name, time, a mid-sentence pause, a fact and
its recall, a barge-in, a backchannel, goodbye. Prints each turn with its stage times and
voice-to-voice latency; writes the reply audio and a two-channel recording of the conversation."""
DEMO_EPILOG = """examples:
  quickturn demo                                  # the scripted conversation (a checkout's demo/)
  quickturn demo --input my_clips/ --out out/mine # your recordings (WAV, MP3, FLAC, OGG), in name order
  quickturn demo --json out/demo/report.json --set lm.steps=4
"""
TALK_HELP = """Talk to the assistant on your microphone and speaker. Echo cancellation lets you interrupt
it on speakers (barge-in); use --no-aec with headphones. Ctrl-C quits."""
TALK_EPILOG = """examples:
  quickturn talk --list-devices                   # PortAudio devices, and PulseAudio/PipeWire ones
  quickturn talk                                  # the system's default microphone and speaker
  quickturn talk --input-device 2 --output-device "USB Audio"
  quickturn talk --input-device pulse:alsa_input.usb-mic.analog-stereo --no-aec
  quickturn talk --set agent.name=Ada --set mqtt.enabled=true --duration 60
"""
SERVE_HELP = """Serve a WebSocket voice API shaped like the OpenAI Realtime API (GA events): clients send
PCM16 audio, get transcripts, reply text and reply audio back. Ctrl-C stops it."""
SERVE_EPILOG = """examples:
  quickturn serve                                 # ws://127.0.0.1:8765
  quickturn serve --host 0.0.0.0 --port 9000 --set server.api_key=secret
  quickturn serve --host 0.0.0.0 --insecure       # no key beyond loopback: only on a trusted network
  quickturn serve --port 0                        # any free port (printed on start)
"""


def _sub(sub, name: str, help_: str, description: str | None = None, epilog: str | None = None):
    p = sub.add_parser(
        name,
        help=help_,
        description=description or help_,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="quickturn",
        description="A local voice agent whose turns feel instant.",
        epilog="`quickturn COMMAND --help` shows each command's options and examples.\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _sub(sub, "demo", "scripted conversation through the whole pipeline", DEMO_HELP, DEMO_EPILOG)
    p.add_argument(
        "--input", help="folder of recordings (+ manifest.json); default: a checkout's demo/ folder"
    )
    p.add_argument("--out", default="out/demo", help="where reply audio and conversation.wav go")
    p.add_argument("--json", metavar="OUT", help="write a report (same schema as profile --json)")
    p.set_defaults(func=cmd_demo)

    p = _sub(sub, "talk", "live voice assistant on your microphone and speaker", TALK_HELP, TALK_EPILOG)
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    p.add_argument("--input-device", help="microphone: index, (part of a) name, or pulse:SOURCE")
    p.add_argument("--output-device", help="speaker: index, (part of a) name, or pulse:SINK")
    p.add_argument("--no-aec", action="store_true", help="disable echo cancellation (headphones)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = Ctrl-C)")
    p.set_defaults(func=cmd_talk)

    p = _sub(
        sub, "serve", "WebSocket voice API shaped like the OpenAI Realtime API", SERVE_HELP, SERVE_EPILOG
    )
    p.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: server.port, 8765; 0 = any port)")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without server.api_key (anyone who can reach it can use it)",
    )
    p.set_defaults(func=cmd_serve)

    from .profile import add_arguments as profile_arguments

    p = _sub(sub, "profile", "where every millisecond of a turn goes")
    profile_arguments(p)
    p.set_defaults(func=cmd_profile)

    from .bench import add_arguments as bench_arguments

    p = _sub(sub, "bench", "dLM engine benchmark: diffusion vs autoregressive reply time")
    bench_arguments(p)
    p.set_defaults(func=cmd_bench)
    return ap


def _interrupted() -> int:
    """Ctrl-C: a short line, no traceback, exit 130 at once (model loading threads are not waited for)."""
    sys.stdout.flush()
    sys.stderr.write("\ninterrupted\n")
    sys.stderr.flush()
    os._exit(130)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv[1:]  # as typed after the command (bench records it)
        return args.func(args)
    except CommandError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        return _interrupted()


if __name__ == "__main__":
    sys.exit(main())
