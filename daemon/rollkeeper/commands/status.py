"""``rollkeeper status [--json] [--check]``: is everything backed up, and if not, why not.

Works whether or not the service runs: it reads the state database read-only (WAL readers
never block the service), probes the service's instance lock without taking it, and loads the
config to say whether it is usable. The words come from :mod:`rollkeeper.domain.health`, so status
never says "backed up" unless the last run was complete and nothing on the phone is pending or
failed. Gathering, the JSON document (docs/status.md) and the text are :mod:`rollkeeper.status`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from rollkeeper.status.document import status_as_dict
from rollkeeper.status.gather import gather_status
from rollkeeper.status.text import render_text

DESCRIPTION = """\
Show whether the phones rollkeeper knows are backed up, what each is doing now, and anything
that needs you: a service that is not running, a broken config, failed files, a phone not
backed up for too long. Works whether or not the service runs.

A phone is "backed up" only when its last backup run was complete and nothing the phone showed
at its last scan is pending or failed.

--check prints one line and exits 0 (OK), 1 (warning: a phone not backed up for
stale_after_days, failed files, Trust refused) or 2 (critical: the last run failed, the service
is not running, the config is broken, the archive check found damaged files), for cron, Nagios
or Uptime Kuma. --json shows everything for scripts (docs/status.md).
"""


def run_status(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str],
    now: datetime,
    out: TextIO,
) -> int:
    """The command with its world injected (environment, clock, output) for tests."""
    report = gather_status(getattr(args, "config", None), environ, now)
    if args.json:
        json.dump(status_as_dict(report), out, indent=2)
        out.write("\n")
    elif args.check:
        out.write(report.check.summary + "\n")
    else:
        render_text(report, out)
    return report.check.exit_code if args.check else 0


def handle(args: argparse.Namespace) -> int:
    """Entry point from the command line."""
    return run_status(args, environ=os.environ, now=datetime.now(UTC), out=sys.stdout)


def register(subparsers: Any) -> None:
    """Add ``status`` to the ``rollkeeper`` command line."""
    parser = subparsers.add_parser(
        "status",
        help="is everything backed up? (works with or without the service running)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the status as JSON for scripts (shape: docs/status.md)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="print one line and exit 0 OK, 1 warning, 2 critical (for monitoring)",
    )
    parser.set_defaults(handler=handle)
