"""``rollkeeper forget PATH``: a file was removed from the archive on purpose."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rollkeeper import bootstrap

DESCRIPTION = """\
Say that an archived file was deleted from the archive on purpose. rollkeeper checks on every
run that each archived file is still there; one that is missing is copied again from the phone
(restored), or, when the phone no longer has it, reported as lost. A forgotten file is neither:
it is never copied again and never reported. PATH is the file's path in the archive (relative
to the archive folder, or absolute).
"""


def register(subparsers: Any) -> None:
    """Add ``forget`` to the ``rollkeeper`` parser."""
    parser = subparsers.add_parser(
        "forget",
        help="a file was deleted from the archive on purpose: never restore it",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="archive file(s) to forget")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Handler of ``rollkeeper forget``."""
    from rollkeeper.archive.setup import forget_file
    from rollkeeper.store import StateDamagedError

    config = bootstrap.load_command_config(args.config)
    if config is None:
        return 2
    bootstrap.command_logging(config)
    root = Path(config.archive.path)
    try:
        store = bootstrap.open_state_for_writing(config)
    except StateDamagedError as error:
        print(f"rollkeeper: {error}", file=sys.stderr)
        return 1
    unknown = 0
    try:
        for given in args.paths:
            forgotten = forget_file(root, Path(given), store.archive_truth)
            if forgotten is None:
                print(f"rollkeeper: {given}: rollkeeper does not vouch for it", file=sys.stderr)
                unknown += 1
            else:
                print(f"forgotten: {forgotten} (never restored, never reported as lost)")
    finally:
        store.close()
    return 1 if unknown else 0
