"""Reconcile what the phone shows with the manifest: stat only what is new, record what was seen.

The phone side (:mod:`rollkeeper.device.scan`) lists the folders and stats the names it is given;
this module decides which names those are and brings the manifest up to date, through the
:class:`~rollkeeper.ports.ManifestStore` port.

A re-plug with nothing new costs one READ_DIR for ``/DCIM``, one per folder, and one canary stat:
names the last listing showed and that are already settled (archived or excluded) are not
stat'ed again. The canary (the first settled file of the phone still listed, stat'ed every time)
catches a phone that was erased and filled again under the same names, which a listing cannot
tell apart; then everything is stat'ed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

from rollkeeper.device.scan import (
    STAT_CONCURRENCY,
    PhoneStats,
    RejectedItem,
    list_media_folders,
)
from rollkeeper.domain.names import MEDIA_ROOT
from rollkeeper.ports import Clock, ManifestStore, PhoneFiles
from rollkeeper.store.records import ARCHIVED, EXCLUDED, ManifestEntry

log = structlog.get_logger("rollkeeper.scan")

#: Statuses that need no new stat while the name stays in the listing.
SETTLED_STATUSES = frozenset({ARCHIVED, EXCLUDED})


@dataclass(slots=True)
class ScanResult:
    """What the phone holds now, as manifest entries, plus what was refused."""

    folders: list[str] = field(default_factory=list)
    present: list[ManifestEntry] = field(default_factory=list)
    rejected: list[RejectedItem] = field(default_factory=list)
    #: Folders the phone refused to list: their manifest entries are left as they were.
    unlistable_folders: list[str] = field(default_factory=list)
    listing_requests: int = 0
    stat_requests: int = 0
    full_rescan: bool = False
    #: Present files of folders in which every file is archived: counted, not held, so a
    #: re-plug of a phone of 100,000 archived files does not keep 100,000 entries in memory.
    archived_folder_files: int = 0


def names_to_stat(
    names: list[str], known: Mapping[str, ManifestEntry], full_rescan: bool
) -> list[str]:
    """The listed names that need a stat, in listing order: all of them on a full rescan, else
    those the manifest does not have present or has not settled."""
    return [
        name
        for name in names
        if full_rescan or name not in known or known[name].status not in SETTLED_STATUSES
    ]


def canary_in(names: list[str], known: Mapping[str, ManifestEntry]) -> ManifestEntry | None:
    """The first settled entry of a folder (by name) that the listing still shows, if any."""
    listed = set(names)
    for name in sorted(known):
        entry = known[name]
        if name in listed and entry.status in SETTLED_STATUSES:
            return entry
    return None


class ManifestReconciler:
    """Scans one phone and brings its manifest in the store up to date."""

    def __init__(
        self,
        store: ManifestStore,
        udid: str,
        clock: Clock,
        stat_concurrency: int = STAT_CONCURRENCY,
    ) -> None:
        self._store = store
        self._udid = udid
        self._clock = clock
        self._stat_concurrency = stat_concurrency

    async def scan(self, files: PhoneFiles, full_rescan: bool = False) -> ScanResult:
        """List all media folders and bring the manifest up to date with the phone."""
        listing = await list_media_folders(files, self._udid)
        stats = PhoneStats(files, self._stat_concurrency)
        result = ScanResult(
            folders=list(listing.folders),
            rejected=listing.rejected,
            unlistable_folders=listing.unlistable,
            listing_requests=listing.requests,
            full_rescan=full_rescan,
        )
        if not full_rescan and await self._canary_changed(stats, listing.folders):
            log.warning("phone_content_reset_detected", udid=self._udid)
            result.full_rescan = True
        now = self._clock()
        for folder in self._store.known_folders(self._udid):
            # A folder the phone refused to list may still hold every file it held: only a
            # folder missing from /DCIM is gone. Library folders (PhotoData/CPLAssets, ...)
            # are the library step's to reconcile, not this listing's.
            if not folder.startswith(MEDIA_ROOT + "/"):
                continue
            if folder not in listing.folders and folder not in listing.unlistable:
                self._store.mark_folder_absent(self._udid, folder, now)
        for folder, names in listing.folders.items():
            await self._reconcile_folder(stats, folder, names, result)
        result.stat_requests = stats.requests
        return result

    async def _canary_changed(self, stats: PhoneStats, listings: dict[str, list[str]]) -> bool:
        """Stat the first settled file still listed; True if its identity changed."""
        for folder in sorted(listings):
            entry = canary_in(listings[folder], self._store.present_files(self._udid, folder))
            if entry is None:
                continue
            outcome = await stats.stat(folder, entry.name)
            return outcome.rejection != "" or (outcome.size, outcome.birth_time_ns) != (
                entry.size,
                entry.birth_time_ns,
            )
        return False

    async def _reconcile_folder(
        self, stats: PhoneStats, folder: str, names: list[str], result: ScanResult
    ) -> None:
        now = self._clock()
        known = self._store.present_files(self._udid, folder)
        listed = set(names)
        gone = [name for name in known if name not in listed]
        if gone:
            self._store.mark_absent(self._udid, folder, gone, now)
        observed, rejected = await stats.stat_folder(
            folder, names_to_stat(names, known, result.full_rescan)
        )
        result.rejected.extend(rejected)
        if observed:
            self._store.observe_files(
                self._udid,
                folder,
                [
                    (item.name, item.size, item.birth_time_ns, item.modified_time_ns)
                    for item in observed
                ],
                now,
            )
        self._store.touch_present(self._udid, folder, now)
        # Nothing observed and nothing gone: the entries read above are still the folder's
        # (a re-plug with nothing new reads each folder's manifest once, not twice).
        refreshed = self._store.present_files(self._udid, folder) if observed or gone else known
        if refreshed and all(entry.status == ARCHIVED for entry in refreshed.values()):
            result.archived_folder_files += len(refreshed)
            return
        result.present.extend(refreshed[name] for name in sorted(refreshed))
