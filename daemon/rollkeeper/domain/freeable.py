"""Which photos on the phone are safe to delete there: the rules of ``rollkeeper freeable``.

Pure: the facts come in as values, ``now`` is an argument. A photo in the Photos app is one
*asset* made of several files (the photo, its Live Photo video, its edit, the sidecars: one
group, :func:`~rollkeeper.domain.grouping.group_key`); deleting it deletes them all, so an asset
is listed only when every one of its files on the phone is:

* **archived** (the manifest says so and the archive record exists),
* **verified within the last scrub rotation** (``verified_at`` no older than
  ``scrub_rotation_weeks``) and **not in question** (no failed re-hash since that match),
* **there now, whole**: the archive file exists with its recorded size (the caller stats it),
* **older than the cut-off** (captured before ``now - older_than``; files without a capture
  date count by the phone's file time),
* and **not a favourite**, once rollkeeper reads the Photos library (until then favourites are
  unknown, and the listing says so).

rollkeeper itself never deletes anything on the phone: deleting over AFC corrupts the Photos
library, so the list is for the user to act on in the Photos app.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rollkeeper.domain.grouping import group_key

#: Why a file keeps its asset off the list (the ``--json`` ``held_back`` reasons).
NOT_ARCHIVED = "not_archived"
NOT_VERIFIED = "not_verified_within_rotation"
VERIFY_FAILED = "failed_verification"
NOT_IN_ARCHIVE = "missing_or_changed_in_archive"
TOO_NEW = "newer_than_cut_off"
FAVOURITE = "favourite"


@dataclass(frozen=True, slots=True)
class PhoneFileFacts:
    """One file on the phone and what rollkeeper knows of its copy."""

    udid: str
    folder: str
    name: str
    size: int
    #: When it was taken (capture time, else the phone's file time), aware.
    taken_at: datetime
    archived: bool
    #: The archive copy's path (None when not archived).
    archive_path: str | None = None
    verified_at: datetime | None = None
    verify_failed_at: datetime | None = None
    #: The archive file is there with its recorded size (checked by the caller).
    whole_in_archive: bool = False
    #: True or False once the Photos library is read; None while favourites are unknown.
    favourite: bool | None = None

    @property
    def phone_path(self) -> str:
        return f"{self.folder.rstrip('/')}/{self.name}"


@dataclass(frozen=True, slots=True)
class FreeableAsset:
    """One asset that is safe to delete on the phone: its files, size and date."""

    udid: str
    folder: str
    key: str
    files: tuple[PhoneFileFacts, ...]

    @property
    def size(self) -> int:
        return sum(item.size for item in self.files)

    @property
    def taken_at(self) -> datetime:
        return min(item.taken_at for item in self.files)


@dataclass(frozen=True, slots=True)
class FreeableReport:
    """The answer: the assets safe to free, and how many were held back and why."""

    assets: tuple[FreeableAsset, ...]
    #: Reason -> how many assets it held back (an asset counts once, by its first reason).
    held_back: dict[str, int] = field(default_factory=dict)
    favourites_known: bool = False

    @property
    def total_bytes(self) -> int:
        return sum(asset.size for asset in self.assets)

    @property
    def file_count(self) -> int:
        return sum(len(asset.files) for asset in self.assets)

    @property
    def span(self) -> tuple[datetime, datetime] | None:
        """The first and last capture dates of the assets listed (None when there are none)."""
        if not self.assets:
            return None
        dates = [asset.taken_at for asset in self.assets]
        return min(dates), max(dates)


def hold_back_reason(
    item: PhoneFileFacts, *, cut_off: datetime, verified_since: datetime
) -> str | None:
    """Why this file keeps its asset on the phone, or None when it is safe to free."""
    if not item.archived or item.archive_path is None:
        return NOT_ARCHIVED
    if item.verify_failed_at is not None and (
        item.verified_at is None or item.verify_failed_at >= item.verified_at
    ):
        return VERIFY_FAILED
    if item.verified_at is None or item.verified_at < verified_since:
        return NOT_VERIFIED
    if not item.whole_in_archive:
        return NOT_IN_ARCHIVE
    if item.favourite:
        return FAVOURITE
    if item.taken_at >= cut_off:
        return TOO_NEW
    return None


def freeable_assets(
    files: Iterable[PhoneFileFacts],
    *,
    now: datetime,
    older_than: timedelta,
    rotation: timedelta,
    favourites_known: bool,
) -> FreeableReport:
    """The assets every file of which is safe to free, oldest first."""
    cut_off = now - older_than
    verified_since = now - rotation
    groups: dict[tuple[str, str, str], list[PhoneFileFacts]] = {}
    for item in files:
        groups.setdefault((item.udid, item.folder, group_key(item.name)), []).append(item)
    assets: list[FreeableAsset] = []
    held_back: dict[str, int] = {}
    for (udid, folder, key), members in groups.items():
        reasons = _reasons(members, cut_off, verified_since)
        if reasons:
            held_back[reasons[0]] = held_back.get(reasons[0], 0) + 1
            continue
        ordered = tuple(sorted(members, key=lambda item: item.name))
        assets.append(FreeableAsset(udid=udid, folder=folder, key=key, files=ordered))
    assets.sort(key=lambda asset: (asset.taken_at, asset.folder, asset.key))
    return FreeableReport(tuple(assets), held_back, favourites_known)


#: Reasons in the order they are reported (the most serious first).
_ORDER = (VERIFY_FAILED, NOT_IN_ARCHIVE, NOT_ARCHIVED, NOT_VERIFIED, FAVOURITE, TOO_NEW)


def _reasons(
    members: Sequence[PhoneFileFacts], cut_off: datetime, verified_since: datetime
) -> list[str]:
    found = {
        reason
        for reason in (
            hold_back_reason(item, cut_off=cut_off, verified_since=verified_since)
            for item in members
        )
        if reason is not None
    }
    return [reason for reason in _ORDER if reason in found]
