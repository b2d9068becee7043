"""Errors that end a ``quickturn`` command: the CLI prints ``error: <message>`` to stderr and exits.

Exit codes, like argparse: 2 when what was asked cannot run as given (options, config, input files,
a port in use, an unknown device), found before any model loads; 1 when something fails while running
(a model that will not load, an audio device that stops, no turn finished); 130 on Ctrl-C.
"""

from __future__ import annotations


class CommandError(Exception):
    """A runtime failure: exit 1."""

    code = 1


class UsageError(CommandError):
    """The request cannot run as given: exit 2 (as argparse does for bad options)."""

    code = 2
