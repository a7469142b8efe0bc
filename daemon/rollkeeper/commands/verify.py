"""``rollkeeper verify``: re-hash archived files against the hashes recorded when stored."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rollkeeper import bootstrap
from rollkeeper.archive.console import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    byte_progress,
    fail,
    wants_progress,
)
from rollkeeper.archive.locations import entry_location
from rollkeeper.archive.verify import (
    VerifyReport,
    archive_is_reachable,
    build_report,
    check_entries,
    find_untracked,
)
from rollkeeper.commands import positive_whole_number
from rollkeeper.domain.display import printable
from rollkeeper.domain.units import format_bytes
from rollkeeper.store import StateDamagedError, StateStore
from rollkeeper.store.archive_queries import (
    entries_stored_since,
    mark_verified_many,
    mark_verify_failed_many,
    sample_entries,
)
from rollkeeper.store.state import ArchiveEntry

DESCRIPTION = """\
Re-read archived files and compare them with the BLAKE3 hashes recorded when they were stored.

Reports three things:
  missing    the archive vouches for a file that is not there (deleted, moved, disk not mounted)
  changed    the file is there but its size or content differs (bit rot, an editor saved over it)
  untracked  a file in the archive folder rollkeeper does not vouch for (copied in by hand);
             not an error: `rollkeeper adopt FOLDER` indexes such files

verify never modifies the archive; it only notes in the state database when each file last
matched (the weekly scrub uses that to check the oldest first). It reads every selected byte,
so --all on a large archive takes as long as reading the disk (about 100-200 MB/s on a USB
hard disk). The untracked check lists the whole archive folder whatever the selection.

verify may run while the service runs, and the service goes on backing up: verify takes no
lock, reads and hashes on a read-only connection, and notes the matches at the end in short
transactions (1,000 files each) that wait for the service's writes. Should the state database
stay busy beyond SQLite's wait (5 s), the report and exit status are the same; only those notes
are left out (the scrub then checks those files again sooner), and verify says so.

Exit status: 0 everything selected matched, 1 something is missing, changed or unreadable,
2 the command could not run (config, state or arguments).
"""

#: Untracked files listed in text output before "... and N more" (--json lists all).
UNTRACKED_SHOWN = 50
#: Matches noted per transaction: each holds the database's write lock for milliseconds, so
#: the service's writes never queue behind a verify of the whole archive.
STAMPS_PER_TRANSACTION = 1000


def register(subparsers: Any) -> None:
    """Add ``verify`` to the ``rollkeeper`` parser."""
    parser = subparsers.add_parser(
        "verify",
        help="re-hash archived files; report missing, changed and untracked ones",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument(
        "--all", action="store_true", help="check every archived file (the default)"
    )
    selection.add_argument(
        "--sample",
        metavar="N",
        type=positive_whole_number,
        help="check N files chosen at random (a quick health check)",
    )
    selection.add_argument(
        "--since",
        metavar="DATE",
        type=_since_date,
        help="check files stored on or after DATE (YYYY-MM-DD, local time)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run_verify)


def _since_date(text: str) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write YYYY-MM-DD") from None
    # Local midnight, as the user means "since Tuesday"; compared in UTC with stored_at.
    return datetime(day.year, day.month, day.day).astimezone()


def _select(store: StateStore, args: argparse.Namespace) -> list[ArchiveEntry]:
    if args.sample is not None:
        return sample_entries(store, args.sample)
    if args.since is not None:
        return entries_stored_since(store, args.since)
    return store.archive_entries()


def run_verify(args: argparse.Namespace) -> int:
    """Handler of ``rollkeeper verify``."""
    config = bootstrap.load_command_config(args.config)
    if config is None:
        return EXIT_USAGE
    bootstrap.command_logging(config)
    archive_root = Path(config.archive.path)
    try:
        store = bootstrap.open_state_read_only(config)
    except FileNotFoundError:
        report = VerifyReport()
        if archive_is_reachable(archive_root):
            report.untracked.extend(find_untracked(archive_root, ()))
        return _print(report, args.json, archive_root, note="no backup has run yet")
    except StateDamagedError as error:
        return fail(str(error))
    try:
        entries = _select(store, args)
        inside = [entry for entry in entries if not Path(entry.relative_path).is_absolute()]
        if inside and not archive_is_reachable(archive_root):
            return fail(
                f"{archive_root}: the archive folder is missing, empty or unreadable"
                f" (is its disk mounted?); {len(entries)} archived files were not checked"
            )
        with byte_progress(
            wants_progress(args.json), "verifying", sum(entry.size for entry in entries)
        ) as progress:
            checks = check_entries(archive_root, entries, progress)
        tracked = [entry.relative_path for entry in store.archive_entries()]
        report = build_report(checks, find_untracked(archive_root, tracked))
        lost = {finding.relative_path for finding in store.archive_truth.findings(["lost"])}
    finally:
        store.close()
    failed = [
        check.relative_path for check in (*report.missing, *report.changed, *report.unreadable)
    ]
    _note_matches(bootstrap.state_path(config), report.matched, failed)
    return _print(report, args.json, archive_root, lost=lost)


def _note_matches(state_path: Path, matched: list[str], failed: Sequence[str] = ()) -> None:
    """Stamp the files that matched as just verified (the scrub checks the oldest first), and
    the ones that did not as failed (``freeable`` never lists those), in short transactions on
    a writing connection that may share the database with the service.

    A database that stays busy costs only the stamps, said on stderr: the report stands.
    """
    if not matched and not failed:
        return
    now = datetime.now(UTC)
    try:
        store = bootstrap.open_state_for_writing(state_path)
    except (StateDamagedError, sqlite3.Error) as error:
        _stamps_skipped(len(matched), error)
        return
    try:
        start = 0
        mark_verify_failed_many(store, failed, now)
        for start in range(0, len(matched), STAMPS_PER_TRANSACTION):
            mark_verified_many(store, matched[start : start + STAMPS_PER_TRANSACTION], now)
    except sqlite3.Error as error:
        _stamps_skipped(len(matched) - start, error)
    finally:
        store.close()


def _stamps_skipped(count: int, error: Exception) -> None:
    print(
        f"rollkeeper: {count} matching files could not be noted as verified ({error}); the"
        " scheduled scrub will check them again sooner. The report below is complete.",
        file=sys.stderr,
    )


def _print(
    report: VerifyReport,
    as_json: bool,
    archive_root: Path,
    note: str = "",
    lost: frozenset[str] | set[str] = frozenset(),
) -> int:
    exit_code = EXIT_FINDINGS if report.has_damage else EXIT_OK
    if as_json:
        document = report.as_dict()
        document["archive"] = str(archive_root)
        document["lost"] = sorted(lost)
        if note:
            document["note"] = note
        print(json.dumps(document, indent=2))
        return exit_code
    if note:
        print(f"Nothing to verify: {note}.")
    else:
        print(
            f"Checked {report.checked} files ({format_bytes(report.bytes_checked)}):"
            f" {len(report.matched)} match, {len(report.missing)} missing,"
            f" {len(report.changed)} changed, {len(report.unreadable)} unreadable."
        )

    # Archive paths are shown exactly (control characters escaped): the user looks for them.
    for check in report.missing:
        location = printable(entry_location(archive_root, check.relative_path), None, escape=True)
        tag = "LOST      " if check.relative_path in lost else "MISSING   "
        print(f"{tag} {location}")
    for check in report.changed:
        location = printable(entry_location(archive_root, check.relative_path), None, escape=True)
        print(f"CHANGED    {location} ({check.detail})")
    for check in report.unreadable:
        location = printable(entry_location(archive_root, check.relative_path), None, escape=True)
        print(f"UNREADABLE {location} ({printable(check.detail, None, escape=True)})")
    for path in report.untracked[:UNTRACKED_SHOWN]:
        print(f"UNTRACKED  {printable(entry_location(archive_root, path), None, escape=True)}")
    if len(report.untracked) > UNTRACKED_SHOWN:
        print(
            f"... and {len(report.untracked) - UNTRACKED_SHOWN} more untracked (--json lists all)"
        )
    if report.untracked:
        print(
            f"{len(report.untracked)} untracked files: rollkeeper does not vouch for them;"
            " `rollkeeper adopt FOLDER` indexes them."
        )
    return exit_code
