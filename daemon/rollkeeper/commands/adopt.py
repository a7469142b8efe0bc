"""``rollkeeper adopt``: index a folder of photos copied earlier, so they are not stored twice."""

from __future__ import annotations

import argparse
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rollkeeper import bootstrap
from rollkeeper.archive.adopt import (
    AdoptReport,
    adopt_candidates,
    collect_candidates,
    folder_problem,
)
from rollkeeper.archive.console import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    byte_progress,
    fail,
    wants_progress,
)
from rollkeeper.domain.display import printable
from rollkeeper.domain.units import format_bytes
from rollkeeper.store import StateDamagedError

DESCRIPTION = """\
Index a folder of photos and videos you copied before rollkeeper (any layout, inside or
outside the archive folder), so that a backup finding the same content on the phone records it
as archived there instead of writing a second copy.

Nothing is moved, renamed or written in the folder: adopt reads each photo, video and .AAE
sidecar once to hash it and records it in the state database. Running it again only adds files
that are new since. Files already recorded (by a backup or an earlier adopt) are not touched.

What it costs: the folder is read once now. It does not make the next backup read less from the
phone: the phone offers no hashes, so each phone file is still read over USB once to be hashed;
what adopt saves is the writing and the disk space.

Afterwards `rollkeeper verify` also checks adopted files; an adopted folder outside the archive
must stay where it is (a moved file is reported missing).

adopt may run while the service runs, and the service goes on backing up: adopt takes no lock
and records each file in its own short transaction, which waits for the service's writes.
Should the state database stay busy beyond SQLite's wait (5 s), adopt stops with exit status
2; what it recorded until then stays recorded, and adopting again adds the rest.

Exit status: 0 done, 1 some files could not be adopted (listed), 2 the command could not run.
"""


def register(subparsers: Any) -> None:
    """Add ``adopt`` to the ``rollkeeper`` parser."""
    parser = subparsers.add_parser(
        "adopt",
        help="index a folder of photos copied earlier (never moves anything)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "path", metavar="PATH", help="the folder to index (and everything under it)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run_adopt)


def run_adopt(args: argparse.Namespace) -> int:
    """Handler of ``rollkeeper adopt``."""
    folder = Path(args.path).expanduser()
    problem = folder_problem(folder)
    if problem is not None:
        return fail(problem)
    config = bootstrap.load_command_config(args.config)
    if config is None:
        return EXIT_USAGE
    bootstrap.command_logging(config)
    try:
        store = bootstrap.open_state_for_writing(config)
    except StateDamagedError as error:
        return fail(str(error))
    report = AdoptReport(folder=str(folder.resolve()))
    try:
        candidates = collect_candidates(folder, Path(config.archive.path), report)
        with byte_progress(wants_progress(args.json), "adopting", report.bytes_found) as progress:
            adopt_candidates(store, candidates, report, progress=progress, now=datetime.now(UTC))
    except sqlite3.OperationalError as error:
        return fail(
            f"cannot write to the state database ({error}); the {len(report.adopted)} files"
            " adopted until then are recorded: adopt again to add the rest"
        )
    finally:
        store.close()
    exit_code = EXIT_FINDINGS if report.has_problems else EXIT_OK
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return exit_code

    # Paths are shown exactly (control characters escaped): the user looks for them.
    shown_folder = printable(report.folder, None, escape=True)
    print(
        f"Adopted {len(report.adopted)} files ({format_bytes(report.bytes_adopted)}) from"
        f" {shown_folder}; {report.already_indexed} were already indexed,"
        f" {report.duplicates} have the same content as a file already in the archive,"
        f" {report.not_media} are not photos or videos and were left alone."
    )
    for path in report.size_conflicts:
        print(
            f"CONFLICT   {printable(path, None, escape=True)}"
            " (recorded with another size; run `rollkeeper verify`)"
        )
    for path in report.changed_while_reading:
        print(
            f"BUSY       {printable(path, None, escape=True)}"
            " (changed while being read; adopt again when the copy is done)"
        )
    for path, reason in report.unreadable:
        shown_path = printable(path, None, escape=True)
        print(f"UNREADABLE {shown_path} ({printable(reason, None, escape=True)})")
    return exit_code
