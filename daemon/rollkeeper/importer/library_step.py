"""The library part of a backup run: after the DCIM files, the phone's Photos library.

At most every ``[library] refresh_hours`` per phone (or when asked), after the photos of the
plug-in:

1. the library is snapshotted (:mod:`rollkeeper.library.snapshot`: copied only when its stat
   changed) and read (:mod:`rollkeeper.library.reader`);
2. the originals it names under ``PhotoData/CPLAssets`` and the edits it rendered are listed,
   recorded and copied like DCIM files (:mod:`.library_files`, then the same pipeline and
   placer, with the library's names and dates);
3. the read is applied: the sidecars are brought up to date (:mod:`rollkeeper.library.sidecars`,
   refused whole when suspect), the album folders rebuilt, and what the library says of each
   asset kept in the state (``status`` then names what is only in iCloud).

Nothing here can fail the DCIM part of the run: a library that is missing, torn, corrupt or of
an unknown schema is recorded as such (``library_reads``) and logged, and the run goes on.
Phone errors (unplugged, not answering), a stop request and an archive that cannot be written
end the run as they would anywhere else.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import structlog

from rollkeeper.domain.library import LibraryAsset, SidecarFacts, sidecar_facts
from rollkeeper.importer.group_placement import GroupPlacer
from rollkeeper.importer.hashing import new_hasher
from rollkeeper.importer.ledger import RunLedger
from rollkeeper.importer.library_files import LibraryFiles, LibraryFileSurvey, groups_to_copy
from rollkeeper.importer.library_records import library_asset, stored_asset
from rollkeeper.importer.pipeline import GroupPipeline
from rollkeeper.importer.plan import select_files
from rollkeeper.importer.settings import BackupSettings, LibraryRunSettings
from rollkeeper.library.album_folders import AlbumFolders
from rollkeeper.library.reader import LibraryRead, LibraryReader
from rollkeeper.library.schema import LibraryUnreadableError
from rollkeeper.library.sidecars import SidecarKeeper, SidecarOutcome
from rollkeeper.library.snapshot import LibrarySnapshots, SnapshotResult
from rollkeeper.ports import BackupStore, Clock, PhoneFiles
from rollkeeper.store.library import LibraryReadRecord, LibraryRepository
from rollkeeper.store.library_sidecars import SidecarRepository
from rollkeeper.store.records import parse_timestamp

log = structlog.get_logger("rollkeeper.library")

#: ``library_reads.outcome``.
APPLIED = "applied"
SUSPECT = "suspect"
UNREADABLE = "unreadable"


class LibraryStores(Protocol):
    """The state a library step writes: the library's tables and the sidecars'."""

    @property
    def library_repository(self) -> LibraryRepository: ...

    @property
    def sidecar_repository(self) -> SidecarRepository: ...


@dataclass(slots=True)
class LibraryOutcome:
    """What the library step did in one run."""

    ran: bool = False
    snapshot: str = ""
    outcome: str = ""
    detail: str = ""
    files_found: int = 0
    #: Library folders the phone refused to list (the run cannot be complete).
    unlistable: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)


def device_key(udid: str) -> str:
    """The folder name of a phone's snapshot: derived from its UDID, never the UDID itself."""
    hasher = new_hasher()
    hasher.update(udid.encode("utf-8", "surrogateescape"))
    return hasher.hexdigest()[:16]


class LibraryStep:
    """Runs the library part of one backup run (see the module docstring)."""

    def __init__(
        self,
        *,
        store: BackupStore,
        stores: LibraryStores,
        settings: BackupSettings,
        library: LibraryRunSettings,
        files: PhoneFiles,
        ledger: RunLedger,
        udid: str,
        device_name: str,
        clock: Clock,
        stop_requested: Callable[[], bool],
    ) -> None:
        self._store = store
        self._library = stores.library_repository
        self._sidecars = stores.sidecar_repository
        self._settings = settings
        self._options = library
        self._files = files
        self._ledger = ledger
        self._udid = udid
        self._device_name = device_name
        self._clock = clock
        self._stop_requested = stop_requested

    def due(self) -> bool:
        """Whether this run reads the library (``refresh_hours`` since the last read, or asked)."""
        if self._options.force_refresh:
            return True
        last = self._library.last_read(self._udid)
        if last is None:
            return True
        read_at = parse_timestamp(last.read_at)
        wait = timedelta(hours=self._options.refresh_hours)
        return read_at is None or self._clock() - read_at >= wait

    async def run(self) -> LibraryOutcome:
        """Snapshot, read, copy the library's files, apply the read (if due)."""
        outcome = LibraryOutcome()
        if not self.due():
            log.info("library_not_due", udid=self._udid)
            return outcome
        outcome.ran = True
        folder = self._options.snapshot_root / device_key(self._udid)
        snapshots = LibrarySnapshots(folder, self._options.max_bytes, self._clock)
        snapshot = await snapshots.refresh(self._files)
        outcome.snapshot = snapshot.outcome
        if snapshot.detail:
            log.warning("library_snapshot_problem", udid=self._udid, detail=snapshot.detail)
        if snapshot.database is None:
            return self._record(outcome, snapshot, UNREADABLE, snapshot.detail)
        try:
            read = await asyncio.to_thread(LibraryReader(snapshot.database).read)
        except LibraryUnreadableError as error:
            detail = f"not a Photos library rollkeeper can read: {error}"
            log.warning("library_unreadable", udid=self._udid, detail=detail)
            return self._record(outcome, snapshot, UNREADABLE, detail)
        outcome.degraded = list(read.degraded)
        await self._copy_library_files(read, outcome)
        try:
            verdict, detail, numbers = await self._apply(read)
        except (sqlite3.Error, OSError) as error:
            detail = f"applying the library read failed: {error}"
            log.error("library_apply_failed", udid=self._udid, detail=detail)
            return self._record(outcome, snapshot, UNREADABLE, detail, read)
        return self._record(outcome, snapshot, verdict, detail, read, numbers)

    # -- the files -----------------------------------------------------------------------------

    async def _copy_library_files(self, read: LibraryRead, outcome: LibraryOutcome) -> None:
        survey = LibraryFileSurvey(self._files, self._store, self._udid, self._clock)
        found = await survey.survey(read.assets)
        self._report_rejections(found)
        outcome.unlistable = list(found.unlistable)
        selection = select_files(found.present.values(), self._settings.file_filter)
        counts = self._ledger.counts
        outcome.files_found = len(found.present)
        counts.files_found += len(found.present)
        counts.files_already_archived += selection.already_archived
        counts.files_excluded += selection.excluded
        for file_id, status, reason in selection.status_changes:
            self._store.set_file_status(file_id, status, reason)
        planned = groups_to_copy(found.groups, selection.to_copy)
        self._ledger.add_totals(entry for _, entries in planned for entry in entries)
        placer = GroupPlacer(
            self._store,
            self._settings,
            self._ledger,
            self._udid,
            self._device_name,
            {**found.companions, **found.present},
            hints=found.hints,
        )
        pipeline = GroupPipeline(
            self._files,
            self._settings.archive_root,
            self._udid,
            self._ledger,
            placer,
            stop_requested=self._stop_requested,
            store=self._store,
        )
        await pipeline.copy(planned)

    def _report_rejections(self, found: LibraryFiles) -> None:
        for item in found.rejected:
            log.warning(
                "item_rejected",
                udid=self._udid,
                run_id=self._ledger.run_id,
                phone_path=item.phone_path,
                reason=item.reason,
                detail=item.detail,
            )
            self._store.add_run_failure(
                self._ledger.run_id, item.phone_path, item.reason, item.detail
            )
        self._ledger.counts.items_rejected += len(found.rejected)

    # -- applying the read ---------------------------------------------------------------------

    def _desired_sidecars(self, read: LibraryRead) -> dict[str, SidecarFacts]:
        """One sidecar per archived original of this phone's assets, with the assets of other
        phones stored as the same file (dedup) joining in."""
        archived = self._library.archive_paths(self._udid)
        by_file: dict[str, list[LibraryAsset]] = {}
        for asset in read.assets:
            path = asset.phone_path
            if path is not None and path in archived:
                by_file.setdefault(archived[path], []).append(asset)
        others = self._library.other_phones_assets(self._udid)
        return {
            path: sidecar_facts(assets + [library_asset(item) for item in others.get(path, [])])
            for path, assets in by_file.items()
        }

    async def _apply(self, read: LibraryRead) -> tuple[str, str, tuple[int, int, int, int]]:
        """Sidecars, then the assets in the state, then album folders; ``(outcome, detail,
        (written, left alone, dropping, total))``. A suspect read changes nothing. The state
        is written on this thread (its connection's), the files in worker threads."""
        numbers = (0, 0, 0, 0)
        details: list[str] = []
        blockers = [
            reason for reason in read.degraded if reason.startswith(("albums:", "favourites:"))
        ]
        if self._options.sidecars and blockers:
            details.append("sidecars not updated: " + "; ".join(blockers))
            log.warning("library_sidecars_skipped", udid=self._udid, reason=details[-1])
        elif self._options.sidecars:
            prepared = await self._write_sidecars(read)
            numbers = (
                prepared.written,
                len(prepared.left_alone),
                prepared.check.dropping,
                prepared.check.sidecars,
            )
            if prepared.refused:
                detail = (
                    f"this read would take albums or favourites from {prepared.check.dropping:,}"
                    f" of {prepared.check.sidecars:,} sidecars; it was not applied"
                )
                return SUSPECT, detail, numbers
        self._library.replace_assets(self._udid, (stored_asset(asset) for asset in read.assets))
        if self._options.album_folders:
            links = self._sidecars
            rebuilt = await asyncio.to_thread(
                AlbumFolders(self._settings.archive_root).rebuild,
                links.albums_by_archive_path(),
                links.album_links(),
            )
            links.record_album_links(rebuilt.recorded, rebuilt.forgotten)
            if rebuilt.problem:
                details.append(rebuilt.problem)
        self._library.settle_offloaded(self._udid)
        return APPLIED, "; ".join(details), numbers

    async def _write_sidecars(self, read: LibraryRead) -> SidecarOutcome:
        """Prepare (worker thread), record the versions (here), commit (worker thread)."""
        keeper = SidecarKeeper(self._settings.archive_root, self._options.max_sidecar_drop_percent)
        desired = self._desired_sidecars(read)
        prepared = await asyncio.to_thread(keeper.prepare, desired, self._sidecars.known_sidecars())
        if prepared.refused:
            return prepared
        try:
            self._sidecars.add_sidecar_versions(
                [
                    (write.relative_path, write.content_hash, write.facts)
                    for write in prepared.writes
                ]
                + prepared.adopted,
                self._clock(),
            )
        except BaseException:
            await asyncio.to_thread(keeper.discard, prepared)
            raise
        await asyncio.to_thread(keeper.commit, prepared)
        self._sidecars.replace_sidecar_notes(self._udid, prepared.left_alone, self._clock())
        return prepared

    def _record(
        self,
        outcome: LibraryOutcome,
        snapshot: SnapshotResult,
        verdict: str,
        detail: str,
        read: LibraryRead | None = None,
        numbers: tuple[int, int, int, int] = (0, 0, 0, 0),
    ) -> LibraryOutcome:
        outcome.outcome = verdict
        # The read's reason is often the snapshot's own (no library on the phone): said once.
        outcome.detail = "; ".join(
            dict.fromkeys(part for part in (snapshot.detail, detail) if part)
        )
        written, left_alone, dropping, total = numbers
        self._library.record_read(
            LibraryReadRecord(
                id=0,
                udid=self._udid,
                read_at="",
                snapshot=snapshot.outcome,
                snapshot_taken_at=snapshot.taken_at,
                outcome=verdict,
                detail=outcome.detail,
                generation=read.generation if read is not None else "",
                degraded=tuple(read.degraded) if read is not None else (),
                assets=len(read.assets) if read is not None else 0,
                sidecars_written=written,
                sidecars_left_alone=left_alone,
                sidecars_dropping=dropping,
                sidecars_total=total,
            ),
            self._clock(),
        )
        log.info(
            "library_read",
            udid=self._udid,
            snapshot=snapshot.outcome,
            outcome=verdict,
            assets=len(read.assets) if read is not None else 0,
            sidecars_written=written,
            sidecars_left_alone=left_alone,
            detail=outcome.detail,
        )
        return outcome
