"""``rollkeeper backup-now``: back up the phones attached now, once, in the foreground.

Exit status 0 means every file found on every phone backed up is in the archive with a verified
hash (or excluded by a filter); anything else is non-zero with a summary saying what is missing
and why. The service must not be running at the same time (it would back the phones up itself).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from rollkeeper import bootstrap

HELP = "back up the iPhones attached now, once, with a progress bar"

DESCRIPTION = """\
Back up the iPhones attached now, once, then exit.

Exit status: 0 when every file found on the phone is in the archive with a verified hash (or
excluded by a filter); 1 when something is missing (failed or pending files, a locked or
untrusted phone, no phone attached), with a summary of what and why; 2 on a usage error.

The iPhone must be unlocked and must trust this computer: the first time, it asks "Trust This
Computer?" — tap Trust and run the command again.
"""

EXIT_COMPLETE = 0
EXIT_INCOMPLETE = 1


def register(subparsers: Any) -> None:
    """Add the ``backup-now`` command."""
    parser = subparsers.add_parser(
        "backup-now",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--device",
        metavar="UDID",
        action="append",
        default=None,
        help="back up only this phone (UDID or name; may be repeated)",
    )
    parser.add_argument(
        "--full-rescan",
        action="store_true",
        help="stat every file on the phone instead of only the names not seen before",
    )
    parser.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="also write a redacted recording of what the phone answers to FILE (names as "
        "shapes, contents as sizes and hashes), to replay in rollkeeper's tests",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar, even on a terminal"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Load the config, take the instance lock, back up, summarise."""
    config = bootstrap.load_command_config(args.config)
    if config is None:
        return EXIT_INCOMPLETE
    from rollkeeper.host.logs import configure_logging

    configure_logging(config.logging.level, config.logging.format)
    from rollkeeper.service.backup_once import back_up_attached

    show_progress = not args.json and not args.no_progress and sys.stderr.isatty()
    outcome = asyncio.run(
        back_up_attached(
            config,
            devices=args.device,
            full_rescan=args.full_rescan,
            show_progress=show_progress,
            record=args.record,
        )
    )
    if args.json:
        print(json.dumps(outcome.as_dict(), indent=2, sort_keys=True))
    else:
        for line in outcome.summary_lines():
            print(line)
    return EXIT_COMPLETE if outcome.complete else EXIT_INCOMPLETE
