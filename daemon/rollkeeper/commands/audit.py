"""``rollkeeper audit [--device UDID] [--json] [--hash]``: the evidence behind "backed up".

The command line only: what the audit does is :mod:`rollkeeper.audit`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from rollkeeper import bootstrap
from rollkeeper.audit.document import audit_as_dict
from rollkeeper.audit.gather import AuditError, audit_attached
from rollkeeper.audit.text import render_text

EXIT_COMPLETE = 0
EXIT_INCOMPLETE = 1
EXIT_CANNOT_AUDIT = 2

DESCRIPTION = """\
Check, with the phone attached, what became of every photo and video on it: archived (the
file is in the archive with the recorded size), pending, failed (and why), excluded by a filter,
or an original not on the phone at all (iCloud "Optimize iPhone Storage", read from the phone's
Photos library where it can be; "unknown" where it cannot).

The phone is listed afresh, every file stat'ed: this is the evidence behind "backed up". The
audit only reads and may run while the service runs.

Exit status: 0 only when nothing on the phone is pending or failed and every archived file is
in place; 1 otherwise; 2 when the audit could not run (no phone, locked, not trusted, broken
config).
"""


def run_audit(args: argparse.Namespace, *, environ: Mapping[str, str], out: TextIO) -> int:
    """The command with its environment and output injected."""
    config = bootstrap.load_command_config(getattr(args, "config", None), environ)
    if config is None:
        return EXIT_CANNOT_AUDIT
    from rollkeeper.host.logs import configure_logging

    # Log events of the libraries and adapters go to standard error, warnings and worse only,
    # so that standard output stays the report (and valid JSON with --json).
    level = config.logging.level if config.logging.level in ("warning", "error") else "warning"
    configure_logging(level, config.logging.format, sys.stderr)
    try:
        audits = asyncio.run(audit_attached(config, args.device, args.hash))
    except AuditError as error:
        sys.stderr.write(f"rollkeeper audit: {error}\n")
        return EXIT_CANNOT_AUDIT
    if args.json:
        json.dump(audit_as_dict(audits), out, indent=2)
        out.write("\n")
    else:
        render_text(audits, out)
    return EXIT_COMPLETE if all(audit.complete for audit in audits) else EXIT_INCOMPLETE


def handle(args: argparse.Namespace) -> int:
    """Entry point from the command line."""
    os.umask(0o077)  # the copy of the phone's Photos library is private data
    return run_audit(args, environ=os.environ, out=sys.stdout)


def register(subparsers: Any) -> None:
    """Add ``audit`` to the ``rollkeeper`` command line."""
    parser = subparsers.add_parser(
        "audit",
        help="with the phone attached: what of it is backed up, pending, failed, excluded",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--device",
        metavar="UDID",
        default=None,
        help="only this attached phone (UDID, or its name as rollkeeper last saw it)",
    )
    parser.add_argument(
        "--hash",
        action="store_true",
        help="also re-hash every archived file and compare with the recorded hash (slow)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=handle)
