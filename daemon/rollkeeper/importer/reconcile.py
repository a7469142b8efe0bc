"""Reconcile what the phone shows with the manifest: stat what may have changed, record it.

The phone side (:mod:`rollkeeper.device.scan`) lists the folders and stats the names it is given;
this module decides which names those are and brings the manifest up to date, through the
:class:`~rollkeeper.ports.ScanStore` port.

A re-plug with nothing new costs one READ_DIR for ``/DCIM``, one READ_DIR and one GET_FILE_INFO
per folder (sent together), and the rotating check's slice of stats (sent together with the
listing): a folder whose own stat and listing fingerprint are as its summary recorded, and
whose files are all archived, reads no manifest row (:mod:`.folder_summaries`). A folder whose
stat or listing changed (a photo replaced under the same name moves the folder's ``st_mtime``;
a phone erased and filled again moves every folder's) has every file stat'ed and compared
with the manifest: another size or birth time under a known name is a new file, copied and
kept beside the old one.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog

from rollkeeper.device.scan import (
    MediaListing,
    ObservedFile,
    PhoneStats,
    RejectedItem,
    list_media_folders,
)
from rollkeeper.domain.folder_summary import FolderStat, names_fingerprint
from rollkeeper.domain.names import MEDIA_ROOT
from rollkeeper.importer.folder_summaries import (
    DEFAULT_FULL_CHECK_DAYS,
    RotatingCheck,
    folder_unchanged,
    full_check_is_due,
    new_summary,
)
from rollkeeper.ports import Clock, PhoneFiles, ScanStore
from rollkeeper.store.phone_folders import FolderSummary
from rollkeeper.store.records import ARCHIVED, EXCLUDED, ManifestEntry

log = structlog.get_logger("rollkeeper.scan")

#: Statuses that need no new stat while the name stays in the listing.
SETTLED_STATUSES = frozenset({ARCHIVED, EXCLUDED})
#: Folders whose stats are in flight at once when folders are compared file by file. Each
#: folder is one batch of the port's ``stat_many``, which windows its own requests
#: (``device.afc_batch.WINDOW``, two windows each), so this bounds the requests in flight.
FOLDERS_IN_FLIGHT = 3
#: A folder's stats: the regular files, and what was refused.
FolderStats = tuple[list[ObservedFile], list[RejectedItem]]
#: Told each compared folder's present entries (sorted by name) as soon as the folder is
#: recorded; a folder whose files are all archived is not told (nothing in it to copy).
OnFolder = Callable[[str, list[ManifestEntry]], None]


def _keep_going() -> bool:
    return True


@dataclass(slots=True)
class ScanResult:
    """What the phone holds now, as manifest entries, plus what was refused."""

    folders: list[str] = field(default_factory=list)
    present: list[ManifestEntry] = field(default_factory=list)
    rejected: list[RejectedItem] = field(default_factory=list)
    #: Folders the phone refused to list: their manifest entries are left as they were.
    unlistable_folders: list[str] = field(default_factory=list)
    #: READ_DIR requests, GET_FILE_INFO of the folders themselves, and of files (the
    #: rotating check's slice included).
    listing_requests: int = 0
    folder_stat_requests: int = 0
    stat_requests: int = 0
    full_rescan: bool = False
    #: Folders skipped on their summary (no manifest read), and the rotating check's size.
    unchanged_folders: int = 0
    rotating_checks: int = 0
    #: Present files of folders in which every file is archived: counted, not held, so a
    #: re-plug of a phone of 100,000 archived files does not keep 100,000 entries in memory.
    archived_folder_files: int = 0
    #: ``keep_going`` said stop before every folder was compared (the scan is not whole).
    stopped_early: bool = False


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


class ManifestReconciler:
    """Scans one phone and brings its manifest in the store up to date."""

    def __init__(
        self,
        store: ScanStore,
        udid: str,
        clock: Clock,
        full_check_days: float = DEFAULT_FULL_CHECK_DAYS,
    ) -> None:
        self._store = store
        self._udid = udid
        self._clock = clock
        self._full_check_days = full_check_days

    async def scan(
        self,
        files: PhoneFiles,
        full_rescan: bool = False,
        *,
        on_folder: OnFolder | None = None,
        keep_going: Callable[[], bool] = _keep_going,
    ) -> ScanResult:
        """List all media folders and bring the manifest up to date with the phone.

        ``on_folder`` hears each compared folder as soon as it is recorded (what lets a first
        backup copy while the scan goes on); ``keep_going`` is asked before each folder's
        stats are sent: once it says no, the folders in flight are finished and the scan ends
        (``stopped_early``).
        """
        now = self._clock()
        summaries = self._store.folder_summaries(self._udid)
        if not full_rescan and full_check_is_due(
            self._store, self._udid, now, self._full_check_days
        ):
            log.info("full_check_due", udid=self._udid)
            full_rescan = True
        stats = PhoneStats(files)
        check = (
            RotatingCheck()
            if full_rescan
            else RotatingCheck.pick(
                self._store, self._udid, sum(item.file_count for item in summaries.values())
            )
        )
        listing, _ = await asyncio.gather(
            list_media_folders(files, self._udid, stat_folders=True), check.run(stats)
        )
        result = ScanResult(
            folders=list(listing.folders),
            rejected=listing.rejected,
            unlistable_folders=listing.unlistable,
            listing_requests=listing.requests,
            folder_stat_requests=listing.folder_stat_requests,
            full_rescan=full_rescan,
            rotating_checks=len(check.files),
        )
        self._forget_gone_folders(listing, summaries)
        unchanged: list[str] = []
        to_compare: list[tuple[str, list[str], FolderStat | None, bool]] = []
        for folder, names in listing.folders.items():
            stat = listing.folder_stats.get(folder)
            fingerprint = names_fingerprint(names)
            summary = summaries.get(folder)
            if (
                summary is not None
                and not full_rescan
                and folder not in check.changed_folders
                and folder_unchanged(summary, stat, names, fingerprint)
            ):
                unchanged.append(folder)
                result.archived_folder_files += summary.file_count
                continue
            stat_all = (
                full_rescan
                or folder in check.changed_folders
                or summary is None
                or summary.stat != stat
                or summary.names_fingerprint != fingerprint
            )
            to_compare.append((folder, names, stat, stat_all))
        await self._compare_folders(stats, to_compare, result, on_folder, keep_going)
        # A folder the phone would not list (or not compared) was not checked: the full check
        # is not done.
        self._record(
            check, unchanged, full_rescan and not listing.unlistable and not result.stopped_early
        )
        result.unchanged_folders = len(unchanged)
        result.stat_requests = stats.requests
        return result

    def _forget_gone_folders(
        self, listing: MediaListing, summaries: dict[str, FolderSummary]
    ) -> None:
        """Mark the files of folders gone from ``/DCIM`` absent, and drop their summaries.

        A folder the phone refused to list may still hold every file it held: only a folder
        missing from /DCIM is gone. Library folders (PhotoData/CPLAssets, ...) are the library
        step's to reconcile, not this listing's.
        """
        now = self._clock()
        # Every folder with present rows has a summary once one scan has recorded them (each
        # is written as soon as its folder is compared); before that, ask the manifest.
        known = set(summaries) if summaries else set(self._store.known_folders(self._udid))
        gone = [
            folder
            for folder in sorted(known)
            if folder.startswith(MEDIA_ROOT + "/")
            and folder not in listing.folders
            and folder not in listing.unlistable
        ]
        for folder in gone:
            self._store.mark_folder_absent(self._udid, folder, now)
        if gone:
            self._store.forget_folders(self._udid, gone)

    def _record(
        self,
        check: RotatingCheck,
        unchanged: list[str],
        full_rescan: bool,
    ) -> None:
        """Write what the scan learnt: one row per folder, one per file of the slice."""
        now = self._clock()
        if check.matched:
            self._store.mark_checked(check.matched, now)
        if unchanged:
            self._store.touch_folders(self._udid, unchanged, now)
        if full_rescan:
            self._store.record_full_check(self._udid, now)

    async def _compare_folders(
        self,
        stats: PhoneStats,
        folders: list[tuple[str, list[str], FolderStat | None, bool]],
        result: ScanResult,
        on_folder: OnFolder | None,
        keep_going: Callable[[], bool],
    ) -> None:
        """Compare folders with their manifest, each folder recorded, in order, as soon as its
        stats are in.

        The first folder's stats go out alone, so that it arrives (and its copy can start)
        as soon as the link allows; then :data:`FOLDERS_IN_FLIGHT` folders' stats are in
        flight at once, so the requests never drain between folders. A phone error ends the
        scan with that error itself (not wrapped in a group): the caller handles an unplug.
        """
        waiting = iter(folders)
        started: collections.deque[
            tuple[
                str,
                list[str],
                FolderStat | None,
                dict[str, ManifestEntry],
                asyncio.Task[FolderStats],
            ]
        ] = collections.deque()

        def start_next() -> bool:
            item = next(waiting, None)
            if item is None:
                return False
            folder, names, stat, stat_all = item
            known = self._store.present_files(self._udid, folder)
            task = asyncio.ensure_future(
                stats.stat_folder(folder, names_to_stat(names, known, stat_all))
            )
            started.append((folder, names, stat, known, task))
            return True

        try:
            if keep_going():
                start_next()
            while started:
                folder, names, stat, known, task = started[0]
                observed, rejected = await task
                started.popleft()
                while len(started) < FOLDERS_IN_FLIGHT and keep_going() and start_next():
                    pass
                result.rejected.extend(rejected)
                present, to_hear = self._record_folder(folder, names, known, observed, result)
                # Recorded at once, so that every folder with present rows has a summary
                # even when the phone is unplugged halfway through the scan.
                self._store.record_folder_summaries(
                    self._udid, [new_summary(folder, stat, names, present)], self._clock()
                )
                if on_folder is not None and to_hear:
                    on_folder(folder, to_hear)
        finally:
            for *_, task in started:
                task.cancel()
            if started:
                await asyncio.gather(*(task for *_, task in started), return_exceptions=True)
        result.stopped_early = next(waiting, None) is not None

    def _record_folder(
        self,
        folder: str,
        names: list[str],
        known: dict[str, ManifestEntry],
        observed: list[ObservedFile],
        result: ScanResult,
    ) -> tuple[int, list[ManifestEntry]]:
        """Bring one folder's manifest up to date; returns how many present rows it holds,
        and those added to ``result.present`` (none when every file is archived)."""
        now = self._clock()
        listed = set(names)
        gone = [name for name in known if name not in listed]
        if gone:
            self._store.mark_absent(self._udid, folder, gone, now)
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
        # Nothing observed and nothing gone: the entries read above are still the folder's
        # (a re-plug with nothing new reads each folder's manifest once, not twice).
        refreshed = self._store.present_files(self._udid, folder) if observed or gone else known
        if refreshed and all(entry.status == ARCHIVED for entry in refreshed.values()):
            result.archived_folder_files += len(refreshed)
            return len(refreshed), []
        entries = [refreshed[name] for name in sorted(refreshed)]
        result.present.extend(entries)
        return len(refreshed), entries
