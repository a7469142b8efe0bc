"""``rollkeeper freeable [--older-than 90d] [--device UDID] [--json]``: safe to delete on the phone.

Lists the photos and videos on the phone that rollkeeper has archived, verified within the last
scrub rotation and that are older than the cut-off, with their total size and the dates they
span, so that you can delete them in the Photos app with confidence. The rules are the pure
:mod:`rollkeeper.domain.freeable`; this module reads the state (read-only), checks that each
archive copy is there with its recorded size, and says the result.

rollkeeper never deletes anything on the phone itself: deleting over AFC corrupts the Photos
library. Favourites are left out once rollkeeper reads the Photos library; until then
:func:`unknown_favourites` is the seam that says "not known", and the listing says so too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from rollkeeper import bootstrap

#: Favourites of a phone (UDID -> the phone paths of favourite assets' files), or None when they
#: are not known: by default what the last applied read of its Photos library said.
FavouritesSource = Callable[[str], frozenset[str] | None]

ICLOUD_WARNING = (
    "With iCloud Photos on, deleting a photo on the phone deletes it from iCloud and from every "
    "device signed in: the archive (and the offsite copy, if you have one) is then the only copy."
)
NEVER_DELETES = (
    "rollkeeper never deletes anything on the phone (deleting over USB corrupts the Photos "
    "library): delete them in the Photos app, where Recently Deleted keeps them 30 days."
)
FAVOURITES_UNKNOWN = (
    "Favourites are not known yet (the phone's Photos library has not been read yet): the list "
    "may include favourites; check the Favourites album before you delete."
)

_REASON_WORDS = {
    "failed_verification": "failed their last verification (run `rollkeeper verify`)",
    "missing_or_changed_in_archive": "are missing or changed in the archive",
    "not_archived": "are not archived yet",
    "not_verified_within_rotation": "were not verified within the last scrub rotation",
    "favourite": "are favourites",
    "newer_than_cut_off": "are newer than the cut-off",
}

_AGE = re.compile(r"^\s*(\d+)\s*([dwy])\s*$")


def parse_age(text: str) -> timedelta:
    """``90d``, ``12w`` or ``1y`` (365 days) as a duration; argparse shows the error."""
    match = _AGE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age such as 90d, 12w or 1y")
    number, unit = int(match.group(1)), match.group(2)
    return timedelta(days=number * {"d": 1, "w": 7, "y": 365}[unit])


def unknown_favourites(udid: str) -> frozenset[str] | None:
    """Favourites are not known (a phone whose Photos library was never read)."""
    return None


def register(subparsers: Any) -> None:
    """Add ``freeable`` to the ``rollkeeper`` parser."""
    parser = subparsers.add_parser(
        "freeable",
        help="list phone photos that are safely archived and could be deleted on the phone",
        description=(
            "List the photos and videos on the phone that are archived, verified within the "
            "last scrub rotation ([schedule] scrub_rotation_weeks) and taken before the cut-off, "
            "with their total size and dates, so you can delete them in the Photos app. A photo "
            "is listed with all its files (Live Photo video, edit, sidecars) or not at all. "
            "rollkeeper itself never deletes anything on the phone."
        ),
    )
    parser.add_argument(
        "--older-than",
        type=parse_age,
        default=timedelta(days=90),
        metavar="AGE",
        help="only photos taken longer ago than this (90d, 12w, 1y; default 90d)",
    )
    parser.add_argument("--device", metavar="UDID", help="only this phone (UDID or name)")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Entry point from the command line."""
    return run_freeable(args, now=datetime.now(UTC), out=sys.stdout)


def run_freeable(
    args: argparse.Namespace,
    *,
    now: datetime,
    out: TextIO,
    favourites: FavouritesSource | None = None,
) -> int:
    """The command with its clock, output and favourites injected (tests); by default the
    favourites are those the state keeps from each phone's last applied library read."""
    from rollkeeper.domain.freeable import freeable_assets
    from rollkeeper.store import StateDamagedError
    from rollkeeper.store.archive_truth import LOST, OPEN

    config = bootstrap.load_command_config(args.config)
    if config is None:
        return 2
    archive_root = Path(config.archive.path)
    try:
        store = bootstrap.open_state_read_only(config)
    except FileNotFoundError:
        print("Nothing is archived yet: no backup has run.", file=out)
        return 0
    except StateDamagedError as error:
        print(f"rollkeeper: {error}", file=sys.stderr)
        return 1
    try:
        devices = {device.udid: device.name for device in store.devices()}
        udid = _chosen_device(args.device, devices)
        if args.device and udid is None:
            print(f"rollkeeper: no phone {args.device!r} is known", file=sys.stderr)
            return 2
        rows = store.archive_repository.present_files_with_copies(udid)
        # Files with an open or lost finding are in question: never offered (issue 13).
        in_question = {
            finding.relative_path for finding in store.archive_truth.findings([OPEN, LOST])
        }
        availability = bootstrap.archive_availability(store)(archive_root)
        if favourites is None:
            stored = {
                phone: store.library_repository.favourite_paths(phone)
                for phone in {row.udid for row in rows}
            }
            favourites = stored.__getitem__
    finally:
        store.close()
    if rows and not availability.available:
        print(
            f"rollkeeper: the archive is not there ({availability.reason}): nothing can be "
            "called safe to delete until it is",
            file=sys.stderr,
        )
        return 1
    known: dict[str, frozenset[str]] = {}
    for phone in {row.udid for row in rows}:
        found = favourites(phone)
        if found is not None:
            known[phone] = found
    favourites_known = bool(rows) and all(row.udid in known for row in rows)
    facts = [
        _facts(row, archive_root, known.get(row.udid), row.archive_path in in_question)
        for row in rows
    ]
    report = freeable_assets(
        facts,
        now=now,
        older_than=args.older_than,
        rotation=timedelta(weeks=config.schedule.scrub_rotation_weeks),
        favourites_known=favourites_known,
    )
    if args.json:
        json.dump(_document(report, devices, args.older_than), out, indent=2)
        out.write("\n")
    else:
        _print(report, devices, args.older_than, out)
    return 0


def _chosen_device(wanted: str | None, devices: dict[str, str]) -> str | None:
    if not wanted:
        return None
    if wanted in devices:
        return wanted
    named = [udid for udid, name in devices.items() if name == wanted]
    return named[0] if len(named) == 1 else None


def _facts(
    row: Any, archive_root: Path, favourites: frozenset[str] | None, in_question: bool = False
) -> Any:
    from rollkeeper.archive.locations import entry_location
    from rollkeeper.domain.freeable import PhoneFileFacts
    from rollkeeper.store.records import ARCHIVED, parse_timestamp

    taken = _capture_moment(row.capture_time) or datetime.fromtimestamp(
        row.birth_time_ns / 1e9, tz=UTC
    )
    archived = row.status == ARCHIVED and row.archive_path is not None and row.archived_size
    whole = False
    if archived and not in_question:
        location = Path(entry_location(archive_root, row.archive_path))
        try:
            whole = os.stat(location).st_size == row.archived_size
        except OSError:
            whole = False
    phone_path = f"{row.folder.rstrip('/')}/{row.name}"
    return PhoneFileFacts(
        udid=row.udid,
        folder=row.folder,
        name=row.name,
        size=row.size,
        taken_at=taken,
        archived=bool(archived),
        archive_path=row.archive_path,
        verified_at=parse_timestamp(row.verified_at),
        verify_failed_at=parse_timestamp(row.verify_failed_at),
        whole_in_archive=whole,
        favourite=None if favourites is None else phone_path in favourites,
    )


def _capture_moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _document(report: Any, devices: dict[str, str], older_than: timedelta) -> dict[str, Any]:
    span = report.span
    return {
        "older_than_days": older_than.days,
        "assets": [
            {
                "udid": asset.udid,
                "device_name": devices.get(asset.udid, ""),
                "folder": asset.folder,
                "taken_at": asset.taken_at.isoformat(),
                "bytes": asset.size,
                "files": [
                    {
                        "phone_path": item.phone_path,
                        "bytes": item.size,
                        "archive": item.archive_path,
                    }
                    for item in asset.files
                ],
            }
            for asset in report.assets
        ],
        "asset_count": len(report.assets),
        "file_count": report.file_count,
        "total_bytes": report.total_bytes,
        "first_taken_at": None if span is None else span[0].isoformat(),
        "last_taken_at": None if span is None else span[1].isoformat(),
        "held_back": report.held_back,
        "favourites_known": report.favourites_known,
        "warnings": [ICLOUD_WARNING, NEVER_DELETES]
        + ([] if report.favourites_known else [FAVOURITES_UNKNOWN]),
    }


def _print(report: Any, devices: dict[str, str], older_than: timedelta, out: TextIO) -> None:
    from rollkeeper.domain.display import printable
    from rollkeeper.domain.units import format_bytes

    write = out.write
    if not report.assets:
        write(f"Nothing is safe to free yet (taken more than {older_than.days} days ago, ")
        write("archived and verified).\n")
    else:
        first, last = report.span
        write(
            f"Safe to free on the phone: {len(report.assets):,} photos and videos "
            f"({report.file_count:,} files), {format_bytes(report.total_bytes)}, "
            f"taken {_day(first)} to {_day(last)}.\n"
        )
        for asset in report.assets:
            names = " + ".join(item.name for item in asset.files)
            phone = printable(devices.get(asset.udid, "") or asset.udid, 40)
            write(
                f"  {_day(asset.taken_at)}  {printable(asset.folder, 60)}/{printable(names, 120)}"
                f"  {format_bytes(asset.size)}  ({phone})\n"
            )
    for reason, count in report.held_back.items():
        write(f"Held back: {count:,} that {_REASON_WORDS.get(reason, reason)}.\n")
    if not report.favourites_known:
        write(FAVOURITES_UNKNOWN + "\n")
    write(ICLOUD_WARNING + "\n")
    write(NEVER_DELETES + "\n")
