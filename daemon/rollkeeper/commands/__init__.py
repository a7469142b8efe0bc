"""One module per ``rollkeeper`` sub-command.

Each module exposes ``register(subparsers)``, which adds its parser and sets ``handler`` to a
function ``(args: argparse.Namespace) -> int`` returning the process exit code. Keeping commands
apart keeps :mod:`rollkeeper.cli` small and lets each command own its help text.
"""

from __future__ import annotations

import argparse


def positive_whole_number(text: str) -> int:
    """An argparse ``type`` for a count the user gives (``--limit``, ``--sample``): 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
