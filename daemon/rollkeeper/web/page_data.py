"""What the page shows beside the ``status --json`` document: photos, months, failing files.

``status --json`` is the page's truth about each phone and is served as it is
(:mod:`rollkeeper.web.feed`); this document adds what a picture needs and a terminal does not:
the newest photos of the archive (by archive id, for the thumbnails), archived photos per month
of capture for each phone, the files failing now with their reasons (the same query as
``history --json``'s ``failing_now``), and the words ``status`` uses for states and verdicts.

The phone's library counts per month are the other half of the chart: the photos of the
phone's Photos library (its last applied read, docs/library.md) by month of capture. Until the
library has been read every month's ``library`` is null and the page draws the archive alone
(a gap between the two only means something once both are known). :data:`LibraryMonths` is
the seam the tests replace.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rollkeeper import bootstrap
from rollkeeper.domain.files import MediaKind, extensions_of_kind
from rollkeeper.status.text import STATE_WORDS, VERDICT_WORDS
from rollkeeper.store.reports import Reports
from rollkeeper.store.state import StateDamagedError

#: Version of the page document; bumped when a field changes meaning or goes away.
PAGE_VERSION = 1
#: How many of the newest photos the strip shows.
RECENT_PHOTOS = 12
#: How many failing files are listed per phone (``history --failed`` lists them all).
FAILING_LISTED = 20

PHOTO_EXTENSIONS = extensions_of_kind(MediaKind.PHOTO)

#: The phone's photos per month of capture (``YYYY-MM`` -> count) as its Photos library says,
#: or None when the library has not been read.
LibraryMonths = Callable[[Reports, str], Mapping[str, int] | None]


def library_photo_months(reports: Reports, udid: str) -> Mapping[str, int] | None:
    """The library's photos per month of capture, counted by the archive's own photo kinds;
    None when the phone's library was never read."""
    return reports.library_photos_per_month(udid, PHOTO_EXTENSIONS)


def thumbnail_url(archive_id: str) -> str:
    """Where the page asks for the thumbnail of an archive id."""
    return f"/thumbnails/{archive_id}"


def month_rows(
    archived: list[tuple[str, int]], library: Mapping[str, int] | None
) -> list[dict[str, Any]]:
    """One row per month that either side knows, oldest first: archived photos and (when the
    library is read) the library's count; months with neither are filled with zeros between
    the first and the last so the chart's gaps are real gaps."""
    archived_by_month = dict(archived)
    known = set(archived_by_month) | set(library or {})
    months = _month_range(min(known), max(known)) if known else []
    return [
        {
            "month": month,
            "archived": archived_by_month.get(month, 0),
            "library": None if library is None else int(library.get(month, 0)),
        }
        for month in months
    ]


def _month_range(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last``; only the two ends when either is not a
    month (a capture date from a broken clock must not make the page loop)."""
    try:
        year, month = (int(part) for part in first.split("-"))
        last_year, last_month = (int(part) for part in last.split("-"))
    except ValueError:
        return sorted({first, last})
    if (last_year - year) * 12 + last_month - month > 12 * 200:
        return sorted({first, last})
    months = []
    while (year, month) <= (last_year, last_month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def page_document(
    state_path: Path, library_months: LibraryMonths = library_photo_months
) -> dict[str, Any]:
    """The page document (docs/web.md). Reads the state read-only; never raises for a missing
    or unreadable state (``error`` says why, and the lists are empty)."""
    document: dict[str, Any] = {
        "version": PAGE_VERSION,
        "recent_photos": [],
        "devices": [],
        "words": {"states": dict(STATE_WORDS), "verdicts": dict(VERDICT_WORDS)},
        "error": None,
    }
    if not state_path.exists():
        return document
    try:
        store = bootstrap.open_state_read_only(state_path)
    except (StateDamagedError, OSError) as error:
        document["error"] = str(error)
        return document
    try:
        reports = Reports.for_store(store)
        document["recent_photos"] = [
            {
                "id": entry.content_hash,
                "name": Path(entry.relative_path).name,
                "stored_at": entry.stored_at,
                "thumbnail": thumbnail_url(entry.content_hash),
            }
            for entry in reports.recently_stored(PHOTO_EXTENSIONS, RECENT_PHOTOS)
        ]
        document["devices"] = [
            _device(reports, device.udid, library_months) for device in store.devices()
        ]
    except sqlite3.Error as error:
        document["error"] = str(error)
    finally:
        store.close()
    return document


def _device(reports: Reports, udid: str, library_months: LibraryMonths) -> dict[str, Any]:
    library = library_months(reports, udid)
    return {
        "udid": udid,
        "months": month_rows(reports.archived_per_month(udid, PHOTO_EXTENSIONS), library),
        "library_read": library is not None,
        "failing_now": [
            {"phone_path": failed.phone_path, "size": failed.size, "reason": failed.reason}
            for failed in reports.failed_files(udid, FAILING_LISTED)
        ],
    }
