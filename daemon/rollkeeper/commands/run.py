"""``rollkeeper run``: the service in the foreground (what systemd and launchd start)."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "run the backup service in the foreground (what the systemd unit / launchd agent starts)"

DESCRIPTION = """\
Run the backup service in the foreground until SIGTERM or Ctrl-C.

It listens to usbmuxd for iPhones being plugged in; each attached phone is backed up into the
archive about two seconds after it appears (once unlocked and trusted), and again whenever it
is plugged in. Logs go to standard error (a console format on a terminal, JSON lines
otherwise). SIGHUP reloads the config; the config file is also watched for edits.

Only one service may use a state database at a time: a second `rollkeeper run` refuses.
"""


def register(subparsers: Any) -> None:
    """Add the ``run`` command."""
    parser = subparsers.add_parser(
        "run",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the service with the config named by ``--config`` (or found the usual way)."""
    from rollkeeper.service.runtime import run_service

    return run_service(args.config)
