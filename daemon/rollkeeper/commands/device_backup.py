"""``rollkeeper device-backup``: make a full device backup (a new snapshot) now.

The command form of the attended rule: the user is there, so it runs whatever ``every_hours``
says and even when ``[device_backup] enabled`` is false. It takes the instance lock, like
``backup-now``, so it never runs beside the service's photo import of the same phone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from rollkeeper import bootstrap

HELP = "make a full device backup (a point-in-time snapshot) now, with a progress bar"

DESCRIPTION = """\
Make a full device backup of an attached iPhone now: what Finder's "Back Up Now" makes (apps'
data, messages, settings, and the camera roll unless iCloud Photos is on), kept as a new
snapshot beside the earlier ones. From iOS 16.1 the iPhone asks for its passcode first: enter
it on the phone. See docs/device-backup.md for restoring.

Exit status: 0 when a snapshot completed; 1 otherwise (no phone, locked, passcode not entered,
disk full, unplugged); 2 on a usage error.
"""


def register(subparsers: Any) -> None:
    """Add the ``device-backup`` command."""
    parser = subparsers.add_parser(
        "device-backup",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--device", metavar="UDID", help="the phone to back up (default: the one attached)"
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Load the config, take the instance lock, make one device backup."""
    config = bootstrap.load_command_config(args.config)
    if config is None:
        return 1
    from rollkeeper.device_backup.command import device_backup_now
    from rollkeeper.host.logs import configure_logging

    configure_logging(config.logging.level, config.logging.format)
    show_progress = not args.json and sys.stderr.isatty()
    result = asyncio.run(device_backup_now(config, args.device, show_progress=show_progress))
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(result["summary"])
    return 0 if result["outcome"] == "completed" else 1
