"""What ``status`` shows of a phone's Photos library: its last read, how many of its photos are
archived, and which originals are only in iCloud, by name and date (from the state alone: the
phone need not be attached)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from rollkeeper.domain.display import printable
from rollkeeper.store.library import CloudOnlyAsset, LibraryCounts, LibraryReadRecord
from rollkeeper.store.state import StateStore

#: Originals only in iCloud listed by name in ``status --json`` (the count is always whole).
JSON_LIMIT = 1000
#: ... and in the text.
TEXT_LIMIT = 10
#: What the summary of a backup and ``status`` advise when originals are only in iCloud.
ICLOUD_ADVICE = "turn on Download and Keep Originals, or fetch them with icloudpd"


@dataclass(frozen=True, slots=True)
class LibraryStatus:
    """One phone's library as ``status`` shows it."""

    last_read: LibraryReadRecord | None
    counts: LibraryCounts
    #: The first :data:`JSON_LIMIT` originals only in iCloud, by name.
    icloud_only: list[CloudOnlyAsset] = field(default_factory=list)
    #: Sidecars the last read left alone (another tool edited them), with why.
    sidecars_left_alone: list[tuple[str, str]] = field(default_factory=list)

    @property
    def suspect(self) -> bool:
        """The last read was refused: it would have taken albums or favourites away."""
        return self.last_read is not None and self.last_read.outcome == "suspect"


def library_status(store: StateStore, udid: str) -> LibraryStatus | None:
    """The phone's library status, or None when no library of it was ever read."""
    library = store.library_repository
    last = library.last_read(udid)
    if last is None:
        return None
    return LibraryStatus(
        last_read=last,
        counts=library.counts(udid),
        icloud_only=library.cloud_only(udid, limit=JSON_LIMIT),
        sidecars_left_alone=store.sidecar_repository.sidecar_notes(udid),
    )


def local_capture_text(item: CloudOnlyAsset) -> str | None:
    """The asset's capture time in its own zone, ISO 8601 with its offset when known."""
    if not item.created_utc:
        return None
    try:
        moment = datetime.fromisoformat(item.created_utc)
    except ValueError:
        return None
    if item.utc_offset_seconds is None:
        return moment.isoformat(timespec="seconds")
    offset = timedelta(seconds=item.utc_offset_seconds)
    return moment.astimezone(timezone(offset)).isoformat(timespec="seconds")


def summary_words(status: LibraryStatus) -> str:
    """``8,000 of 30,000 photos archived; 22,000 originals only in iCloud``."""
    counts = status.counts
    words = f"{counts.archived:,} of {counts.assets:,} photos archived"
    if counts.cloud_only:
        words += f"; {counts.cloud_only:,} originals only in iCloud"
    return words


def library_as_dict(status: LibraryStatus | None) -> dict[str, Any] | None:
    """The phone's ``library`` object of ``status --json`` (docs/status.md)."""
    if status is None:
        return None
    last = status.last_read
    return {
        "assets": status.counts.assets,
        "archived": status.counts.archived,
        "last_read": None
        if last is None
        else {
            "at": last.read_at,
            "snapshot": last.snapshot,
            "snapshot_taken_at": last.snapshot_taken_at,
            "outcome": last.outcome,
            "detail": last.detail,
            "generation": last.generation,
            "degraded": list(last.degraded),
            "sidecars_written": last.sidecars_written,
            "sidecars_left_alone": last.sidecars_left_alone,
            "sidecars_dropping": last.sidecars_dropping,
            "sidecars": last.sidecars_total,
        },
        "sidecars_left_alone": [
            {"path": path + ".xmp", "reason": reason} for path, reason in status.sidecars_left_alone
        ],
    }


def icloud_only_as_dict(status: LibraryStatus | None) -> dict[str, Any]:
    """``originals_only_in_icloud`` of ``status --json``: the count and each one by name."""
    if status is None:
        return {"count": 0, "known": False, "items": []}
    return {
        "count": status.counts.cloud_only,
        "known": True,
        "items": [
            {
                "name": item.name,
                "uuid": item.uuid,
                "phone_path": item.phone_path,
                "captured_at": local_capture_text(item),
                "reason": item.reason,
            }
            for item in status.icloud_only
        ],
        "advice": ICLOUD_ADVICE if status.counts.cloud_only else "",
    }


def verdict_words(words: str, status: LibraryStatus | None) -> str:
    """The phone's verdict as ``status`` prints it: never just "backed up" while originals
    are only in iCloud ("6 of 8 photos archived; 2 originals only in iCloud (backed up on the
    phone)")."""
    if status is None or not status.counts.cloud_only:
        return words
    return f"{summary_words(status)} ({words} on the phone)"


def render_library(
    status: LibraryStatus | None, field: Callable[[str, str], None], write: Callable[[str], Any]
) -> None:
    """The library lines of a phone in ``status`` (none before its library was read): the last
    read, the originals only in iCloud (the first few by name and date), the sidecars left
    alone."""
    if status is None:
        return
    last = status.last_read
    if last is not None:
        # "applied, 2026-11-26 11:52 UTC (ZASSET (iOS 14 or later)): ..."
        words = f"{last.outcome}, {last.read_at[:16].replace('T', ' ')} UTC"
        if last.generation:
            words += f" ({printable(last.generation, 60)})"
        if last.detail:
            words += f": {printable(last.detail, 300)}"
        field("Photos library", words)
        for reason in last.degraded:
            write(f"    left out: {printable(reason, 200)}\n")
    if status.counts.cloud_only:
        field(
            "Only in iCloud",
            f"{status.counts.cloud_only:,} originals are not on the phone: {ICLOUD_ADVICE}",
        )
        for item in status.icloud_only[:TEXT_LIMIT]:
            when = local_capture_text(item) or "date unknown"
            write(f"    {printable(item.name, 120)}  {when}\n")
        if status.counts.cloud_only > TEXT_LIMIT:
            more = status.counts.cloud_only - TEXT_LIMIT
            write(f"    ... and {more:,} more (status --json)\n")
    if status.sidecars_left_alone:
        field(
            "Sidecars",
            f"{len(status.sidecars_left_alone):,} edited by another program, left alone",
        )
