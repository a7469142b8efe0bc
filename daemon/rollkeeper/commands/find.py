"""``rollkeeper find``: where in the archive is IMG_1234, or everything captured on a day."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rollkeeper import bootstrap
from rollkeeper.archive.console import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, fail
from rollkeeper.archive.find import FindQueryError, build_query
from rollkeeper.archive.locations import entry_location
from rollkeeper.domain.display import printable
from rollkeeper.store import StateDamagedError
from rollkeeper.store.archive_queries import find_phone_files

DESCRIPTION = """\
Look up phone files in rollkeeper's records and print where each is in the archive, one path
per line (ready for xargs or a file manager).

  rollkeeper find IMG_1234               the photo, its Live Photo video, its edit and sidecars
  rollkeeper find IMG_1234.HEIC          exactly that name
  rollkeeper find 'IMG_12*'              a glob (quote it so the shell leaves it alone)
  rollkeeper find --date 2024-07         everything captured in July 2024 (local time of capture)
  rollkeeper find IMG_0001 --device UDID only from one phone (names repeat across phones)

Names are matched without regard to case. The same name can match several files: the phone
restarts at IMG_0001 after IMG_9999, and a new phone starts again. Files not archived yet
(pending or failed) are listed on stderr with their status; --json lists everything with the
phone folder, size, capture time and where that time came from.

Exit status: 0 something was found, 1 nothing matched, 2 the command could not run.
"""


def register(subparsers: Any) -> None:
    """Add ``find`` to the ``rollkeeper`` parser."""
    parser = subparsers.add_parser(
        "find",
        help="print archive paths of phone files by name (IMG_1234) or capture date",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "name",
        nargs="?",
        metavar="NAME_OR_GLOB",
        help="a phone file name (IMG_1234, IMG_1234.HEIC) or a glob ('IMG_12*')",
    )
    parser.add_argument("--device", metavar="UDID", help="only files from this phone")
    parser.add_argument(
        "--date", metavar="YYYY[-MM[-DD]]", help="only files captured then (local time of capture)"
    )
    parser.add_argument("--json", action="store_true", help="print the matches as JSON")
    parser.set_defaults(handler=run_find)


def run_find(args: argparse.Namespace) -> int:
    """Handler of ``rollkeeper find``."""
    try:
        query = build_query(args.name, args.device, args.date)
    except FindQueryError as error:
        return fail(str(error))
    config = bootstrap.load_command_config(args.config)
    if config is None:
        return EXIT_USAGE
    bootstrap.command_logging(config)
    archive_root = Path(config.archive.path)
    try:
        store = bootstrap.open_state_read_only(config)
    except FileNotFoundError:
        return fail(f"{config.state.path}: no state database yet (no backup has run)")
    except StateDamagedError as error:
        return fail(str(error))
    try:
        matches = find_phone_files(
            store,
            name_globs=query.name_globs,
            udid=query.udid,
            capture_date_prefix=query.capture_date_prefix,
        )
    finally:
        store.close()
    exit_code = EXIT_OK if matches else EXIT_FINDINGS
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "udid": match.udid,
                        "device_name": match.device_name,
                        "phone_path": f"{match.folder}/{match.name}",
                        "name": match.name,
                        "size": match.size,
                        "status": match.status,
                        "on_phone": match.present,
                        "capture_time": match.capture_time,
                        "capture_source": match.capture_source,
                        "content_hash": match.content_hash,
                        "archive_path": None
                        if match.archive_path is None
                        else str(entry_location(archive_root, match.archive_path)),
                    }
                    for match in matches
                ],
                indent=2,
            )
        )
        return exit_code

    # Paths are shown exactly (control characters escaped): the user looks for them.
    for match in matches:
        if match.archive_path is not None:
            print(printable(entry_location(archive_root, match.archive_path), None, escape=True))
        else:
            phone_path = printable(f"{match.folder}/{match.name}", None, escape=True)
            device = printable(match.device_name or match.udid, None, escape=True)
            print(
                f"{phone_path} on {device}: {match.status}, not in the archive yet",
                file=sys.stderr,
            )
    if not matches:
        print("rollkeeper: nothing matched", file=sys.stderr)
    return exit_code
