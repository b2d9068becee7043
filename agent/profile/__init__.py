"""``quickturn profile``: where every millisecond of a turn goes.

The real pipeline (the same ``VoicePipeline`` as talk/serve) runs over WAVs in simulated real time
(``run``) or on a live microphone (``live``); the events it emits anyway are recorded (``recorder``)
and turned into per-turn stage times and spans afterwards (``agent.latency``, ``timeline``). Outputs:
terminal tables (``table``), JSON/CSV (``agent.report`` schema), a waterfall + CDF plot (``plot``), a
Chrome/Perfetto trace (``trace``); sweeps and baselines (``variants``) and report comparison
(``compare``).
"""

from __future__ import annotations

from .args import add_arguments


def main(args, console, load_config, load_services) -> int:
    """``quickturn profile`` (imported on use: the pipeline and torch load only when it runs)."""
    from .command import main as command_main

    return command_main(args, console, load_config, load_services)


__all__ = ["add_arguments", "main"]
