"""Options of ``quickturn profile`` (no heavy imports: ``quickturn --help`` stays quick)."""

from __future__ import annotations

import argparse

DESCRIPTION = """Run the real pipeline over recorded speech in simulated real time (or on a live
microphone) and show where every millisecond of each turn goes: tables, JSON/CSV, a plot, a trace."""
EPILOG = """examples:
  quickturn profile --input demo --json out/profile/demo.json --plot out/profile/demo.png --trace out/profile/trace.json
  quickturn profile --input demo --sweep lm.steps=4,8,16 --repeat 2
  quickturn profile --input demo --baseline ar
  quickturn profile --live --duration 60 --json out/profile/live.json
  quickturn profile compare out/profile/a.json out/profile/b.json
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = DESCRIPTION
    p.epilog = EPILOG
    p.add_argument(
        "compare", nargs="*", metavar="compare A.json B.json", help="compare two reports instead of profiling"
    )
    p.add_argument(
        "--input",
        help="an audio file (WAV, or MP3/FLAC/OGG via soundfile) or a folder of them "
        "(manifest.json with reference texts → WER)",
    )
    p.add_argument(
        "--live", action="store_true", help="profile a microphone session instead (audio.* devices)"
    )
    p.add_argument(
        "--duration", type=float, default=0.0, help="--live: stop after this many seconds (0 = Ctrl-C)"
    )
    p.add_argument("--turns", type=int, default=0, help="--live: stop after this many finished turns")
    p.add_argument("--json", metavar="OUT", help="write the report (meta, turns, summary, variants) as JSON")
    p.add_argument("--csv", metavar="OUT", help="write one row per turn as CSV")
    p.add_argument("--plot", metavar="OUT.png", help="per-turn waterfall + V2V CDF (PNG)")
    p.add_argument("--trace", metavar="OUT.json", help="Chrome/Perfetto trace (open in ui.perfetto.dev)")
    p.add_argument("--markdown", metavar="OUT.md", help="the summary tables as Markdown (for docs)")
    p.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="SECTION.KEY=V1,V2,…",
        help="run once per value of a config field (repeatable: cartesian product; "
        "';' separates values that contain commas)",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="ar|teacher",
        help="also run with a baseline reply model: ar = the same weights decoded "
        "autoregressively (+ the SmolLM2 teacher when installed); teacher = SmolLM2 only",
    )
    p.add_argument(
        "--no-teacher", action="store_true", help="--baseline ar: skip the SmolLM2 teacher even if installed"
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="rounds over the input; variants interleave per round"
    )
