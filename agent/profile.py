"""``quickturn profile``: run the real pipeline over WAVs in simulated real time and report stage times."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from .events import EventBus
from .report import build_report, turn_row, write_csv, write_json
from .simulate import InputError, ScriptRunner, load_items


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", help="a WAV file or a folder of WAVs (optional manifest.json with reference text)")
    p.add_argument("--json", metavar="OUT", help="write the report as JSON")
    p.add_argument("--csv", metavar="OUT", help="write per-turn rows as CSV")


async def _profile(cfg, services, items) -> tuple[list[dict], ScriptRunner]:
    runner = ScriptRunner(cfg, services, EventBus(), record=False)
    results = await runner.run(items)
    rows = [
        turn_row(report, runner.events, r.item.file.name, r.item.text) for r in results for report in r.reports
    ]
    return rows, runner


def main(args, console, load_config, load_services) -> int:
    if not args.input:
        console.print("[red]error:[/red] --input PATH is required")
        return 2
    cfg = load_config(args)
    try:
        items = load_items(Path(args.input))
    except InputError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    services = load_services(cfg, console)
    rows, _ = asyncio.run(_profile(cfg, services, items))
    report = build_report(cfg, rows, {"input": args.input, "mode": "profile"})
    if args.json:
        write_json(report, args.json)
    if args.csv:
        write_csv(rows, args.csv)
    for key, s in report["summary"].items():
        if isinstance(s, dict):
            console.print(f"{key:20s} {s}")
    return 0
