"""One backup run of one phone: scan, plan, copy, verify, record — the heart of rollkeeper.

Like beets' importer, a run is a pipeline of small steps over groups of files:

1. :mod:`~rollkeeper.importer.reconcile` lists the phone and brings the manifest up to date,
   folder by folder (:mod:`~rollkeeper.importer.run_scan`: beside the copy);
2. :mod:`~rollkeeper.importer.plan` applies the filters and groups the files to copy (a Live
   Photo with its edit and sidecars), each folder as the scan records it
   (:mod:`~rollkeeper.importer.folder_stream`);
3. :mod:`~rollkeeper.importer.pipeline` copies every member into a ``.partial`` with its hash,
   downloading ahead while earlier groups are placed;
4. :mod:`~rollkeeper.importer.group_placement` dates each group, records content the archive
   already holds, gives names taken by other content the group's collision suffix, and moves
   each file into place without ever replacing anything, recorded in one transaction.

This module runs those steps and closes the run's row: a run is ``complete`` only when nothing
the phone holds is pending or failed. It talks to the phone and the store only through
:mod:`rollkeeper.ports`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from rollkeeper.archive.identity import ArchiveGuard, truth_knows_files
from rollkeeper.archive.presence import PresenceReport, placed_stats
from rollkeeper.device.errors import PhoneUnavailableError
from rollkeeper.domain.archive_state import ARCHIVE_UNAVAILABLE, ArchiveProblem, ArchiveState
from rollkeeper.importer.folder_stream import (
    GROUPS_PER_FOLDER_WHILE_SCANNING,
    FolderStream,
    by_folder,
)
from rollkeeper.importer.group_placement import ArchiveWriteError, GroupPlacer
from rollkeeper.importer.ledger import Progress, RunLedger
from rollkeeper.importer.library_records import StoredDates
from rollkeeper.importer.library_step import LibraryOutcome, LibraryStep, LibraryStores
from rollkeeper.importer.pipeline import DOWNLOAD_AHEAD_GROUPS, GroupPipeline, StopRequestedError
from rollkeeper.importer.reconcile import ManifestReconciler, ScanResult
from rollkeeper.importer.restore import ArchiveHealer
from rollkeeper.importer.run_scan import RunScan, count_scan, scan_beside_copy
from rollkeeper.importer.settings import BackupSettings
from rollkeeper.ports import BackupStore, Clock, PhoneConnection, system_clock
from rollkeeper.store.archive_truth import ArchiveTruthRepository
from rollkeeper.store.records import FAILED, PENDING, ManifestEntry, RunCounts

__all__ = [
    "ArchiveWriteError",
    "BackupRun",
    "BackupSettings",
    "Progress",
    "RunResult",
    "StopRequestedError",
]

log = structlog.get_logger("rollkeeper.backup")


@dataclass(slots=True)
class RunResult:
    """What a run ended with."""

    run_id: int
    udid: str
    device_name: str
    outcome: str
    counts: RunCounts
    error: str = ""
    #: Originals the phone's library says are only in iCloud (not archived), and a few names.
    originals_only_in_icloud: int = 0
    icloud_examples: tuple[str, ...] = ()
    #: What the library part of the run did (None: it has none).
    library: LibraryOutcome | None = None

    @property
    def complete(self) -> bool:
        """True only when every file found on the phone is archived or excluded."""
        return self.outcome == "complete"


class BackupRun:
    """Backs up one phone through an open session into the archive and the store."""

    def __init__(
        self,
        store: BackupStore,
        settings: BackupSettings,
        session: PhoneConnection,
        clock: Clock = system_clock,
        on_progress: Callable[[Progress], None] | None = None,
        full_rescan: bool = False,
        library: LibraryStores | None = None,
        archive_truth: ArchiveTruthRepository | None = None,
        archive_guard: ArchiveGuard | None = None,
    ) -> None:
        self._store = store
        #: The archive's identity and findings; None (the replay tests) skips the checks.
        self._archive_truth = archive_truth
        self._archive_guard = archive_guard or ArchiveGuard(settings.archive_root)
        #: What the availability check said at the start of this run (None: not asked).
        self.archive_state: ArchiveState | None = None
        #: Findings a failed copy left open in this run: the run cannot be complete.
        self._findings_left_open = 0
        self._library_stores = library
        #: What the library part of this run did, once it ran.
        self.library: LibraryOutcome | None = None
        self._settings = settings
        self._session = session
        self._clock = clock
        self._full_rescan = full_rescan
        self._udid = session.info.udid
        self._device_name = session.info.name
        self._ledger = RunLedger(store, self._udid, self._device_name, clock, on_progress)
        self.counts = self._ledger.counts
        #: What the scan cost (folders skipped on their summary, the rotating check's size,
        #: the requests), for the log and the benchmarks.
        self.scan_figures: dict[str, int] = {}
        self._stop_requested = False
        #: Folders the phone refused to list in this run (the run cannot be complete).
        self._unlistable_folders: list[str] = []
        #: Groups downloaded ahead of the one being placed (1: the next one only).
        self.download_ahead = DOWNLOAD_AHEAD_GROUPS
        #: Groups of each folder copied while the scan goes on (:mod:`.folder_stream`).
        self.groups_per_folder_while_scanning = GROUPS_PER_FOLDER_WHILE_SCANNING
        #: False: the whole scan before the first copy (what a run that heals always does).
        self.stream_first_scan = True

    @property
    def run_id(self) -> int:
        """The id of this run's row (0 until the run has started)."""
        return self._ledger.run_id

    def request_stop(self) -> None:
        """End the run after the file in flight (its partial is kept either way)."""
        self._stop_requested = True

    async def run(self) -> RunResult:
        """Run to the end; phone errors propagate after the run row is closed as interrupted."""
        info = self._session.info
        store = self._store
        store.record_device_seen(
            info.udid,
            name=info.name,
            product_type=info.product_type,
            product_version=info.product_version,
            now=self._clock(),
        )
        self._ledger.run_id = store.start_run(self._udid, self._clock())
        log.info("backup_started", udid=self._udid, run_id=self.run_id, device=self._device_name)
        if self._archive_truth is not None:
            unavailable = await self._check_archive()
            if unavailable is not None:
                return unavailable
        self._ledger.scan_started()
        try:
            await self._back_up()
        except StopRequestedError as error:
            return self._close_run("interrupted", str(error))
        except PhoneUnavailableError as error:
            self._close_run("interrupted", str(error))
            raise
        except ArchiveWriteError as error:
            result = self._close_run("failed", str(error))
            log.error("backup_failed", udid=self._udid, run_id=self.run_id, error=str(error))
            return result
        except BaseException as error:
            self._close_run("interrupted", f"{type(error).__name__}: {error}")
            raise
        return self._close_run(None, "")

    async def _check_archive(self) -> RunResult | None:
        """Ask whether the archive is there; when not, close the run as failed, having
        written nothing anywhere (docs/archive-truth.md)."""
        assert self._archive_truth is not None
        truth = self._archive_truth
        guard = self._archive_guard
        try:
            looked = await asyncio.to_thread(
                guard.look, truth.recorded_identity(), truth_knows_files(truth)
            )
            state = guard.settle(truth, looked)
        except OSError as error:
            state = ArchiveState(
                str(self._settings.archive_root),
                problem=ArchiveProblem.UNREADABLE,
                detail=error.strerror or str(error),
            )
        self.archive_state = state
        if state.available:
            return None
        log.error(
            "archive_unavailable",
            udid=self._udid,
            run_id=self.run_id,
            root=state.root,
            problem=state.problem.value if state.problem else "",
            reason=state.reason,
        )
        return self._close_run("failed", f"{ARCHIVE_UNAVAILABLE}: {state.reason}")

    async def _check_presence(self) -> tuple[ArchiveHealer, PresenceReport] | None:
        """Check that every file counted as archived is there (healing, if needed, waits
        for the scan); None when this run has no archive truth to check."""
        if self._archive_truth is None:
            return None
        healer = ArchiveHealer(
            self._archive_truth,
            self._store.set_file_status,
            self._store.add_run_failure,
            self._settings.archive_root,
            self._session.files,
            self._udid,
            self.run_id,
            self.counts,
            self._clock,
        )
        return healer, await healer.check()

    def _stamp_placed(self) -> None:
        """Record what lstat says of the files this run placed (the next check compares)."""
        truth = self._archive_truth
        if truth is None or self.archive_state is None or not self.archive_state.available:
            return
        if not (self.counts.files_copied or self.counts.files_deduplicated):
            return  # nothing placed: a nothing-new re-plug pays no second pass over the state
        paths = truth.unstamped_paths(self._udid)
        truth.record_placed_stats(placed_stats(self._settings.archive_root, paths))

    async def _back_up(self) -> None:
        """Check the archive, scan, select, group and copy: every step of the run between
        opening and closing.

        When nothing needs healing, the copy starts with the first folder the scan records
        (:func:`.run_scan.scan_beside_copy`); when something does, the whole scan comes first,
        then the healing, then the copy, as the healer needs the phone's files up to date and
        nothing may be copied before the archive is healed.
        """
        checked = await self._check_presence()
        healing = checked is not None and checked[1].needs_healing
        scanner = RunScan(
            ManifestReconciler(
                self._store,
                self._udid,
                self._clock,
                full_check_days=self._settings.full_check_days,
            ),
            self._session.files,
            self._store,
            self._udid,
            self.run_id,
            self._full_rescan,
        )
        present_by_path: dict[str, ManifestEntry] = {}
        stream = FolderStream(
            self._store,
            self._settings.file_filter,
            self._ledger,
            present_by_path,
            while_scanning=self.groups_per_folder_while_scanning,
        )
        placer = GroupPlacer(
            self._store,
            self._settings,
            self._ledger,
            self._udid,
            self._device_name,
            present_by_path,
            hints=(
                StoredDates(self._library_stores.library_repository, self._udid)
                if self._library_stores is not None
                else None
            ),
        )
        pipeline = GroupPipeline(
            self._session.files,
            self._settings.archive_root,
            self._udid,
            self._ledger,
            placer,
            stop_requested=lambda: self._stop_requested,
            download_ahead=self.download_ahead,
            store=self._store,
        )

        def scanned(scan: ScanResult) -> None:
            self.scan_figures = scanner.figures
            self._unlistable_folders = scan.unlistable_folders
            count_scan(self.counts, scan, stream)
            self._ledger.scan_finished()

        if healing or not self.stream_first_scan:
            scan = await scanner.scan()
            if checked is not None and healing:
                healer, report = checked
                await healer.heal(report)
                self._findings_left_open = healer.still_open
            for entries in by_folder(scan.present):
                stream.add_folder(entries[0].folder, entries)
            scanned(scan)
            stream.scan_done()
            await pipeline.copy(stream)
        else:
            scan = await scan_beside_copy(
                lambda keep_going: scanner.scan(stream.add_folder, keep_going),
                pipeline.copy(stream),
                stream,
                scanned,
                lambda: self._stop_requested,
            )
            log.info(
                "scan_streamed",
                udid=self._udid,
                run_id=self.run_id,
                groups_while_scanning=stream.groups_while_scanning,
            )
        if scan.stopped_early:
            raise StopRequestedError("rollkeeper is stopping")
        await self._library_part()

    async def _library_part(self) -> None:
        """After the DCIM files: the phone's Photos library (:mod:`.library_step`)."""
        options = self._settings.library
        if options is None or self._library_stores is None:
            return
        self.library = await LibraryStep(
            store=self._store,
            stores=self._library_stores,
            settings=self._settings,
            library=options,
            files=self._session.files,
            ledger=self._ledger,
            udid=self._udid,
            device_name=self._device_name,
            clock=self._clock,
            stop_requested=lambda: self._stop_requested,
        ).run()
        self._unlistable_folders.extend(self.library.unlistable)

    def _icloud_only(self) -> tuple[int, tuple[str, ...]]:
        """Settle unreadable files the library marks as only in iCloud (not pending: nothing
        on the phone to copy), then count the originals only in iCloud."""
        if self._library_stores is None:
            return 0, ()
        library = self._library_stores.library_repository
        library.settle_offloaded(self._udid)
        examples = library.cloud_only(self._udid, limit=20)
        return library.counts(self._udid).cloud_only, tuple(item.name for item in examples)

    def _close_run(self, outcome: str | None, error: str) -> RunResult:
        """Count what the phone holds now and write the run's row."""
        counts = self.counts
        self._stamp_placed()
        icloud_only, icloud_examples = self._icloud_only()
        statuses = self._store.status_counts(self._udid)
        counts.files_pending = statuses.get(PENDING, 0)
        counts.files_failed = statuses.get(FAILED, 0)
        counts.files_not_on_phone = self._store.count_archived_not_present(self._udid)
        if outcome is None:
            # A folder the phone would not list may hold anything: not "backed up".
            outcome = (
                "complete"
                if counts.files_pending == 0
                and counts.files_failed == 0
                and not self._unlistable_folders
                and self._findings_left_open == 0
                else "incomplete"
            )
        if outcome == "incomplete" and self._unlistable_folders and not error:
            refused = ", ".join(self._unlistable_folders[:3])
            error = f"the iPhone refused to list {refused}"
        self._store.finish_run(self.run_id, outcome, counts, error, self._clock())
        state = {"complete": "up_to_date", "incomplete": "error"}.get(outcome, "error")
        detail = (
            error
            if error
            else (
                ""
                if outcome == "complete"
                else f"{counts.files_failed} failed, {counts.files_pending} pending"
            )
        )
        if outcome != "interrupted":
            self._store.set_device_state(self._udid, state, detail, self._clock())
        log.info(
            "backup_finished",
            udid=self._udid,
            run_id=self.run_id,
            outcome=outcome,
            files_found=counts.files_found,
            files_copied=counts.files_copied,
            bytes_copied=counts.bytes_copied,
            files_failed=counts.files_failed,
            files_pending=counts.files_pending,
            files_restored=counts.files_restored,
            files_lost=counts.files_lost,
            originals_only_in_icloud=icloud_only,
        )
        return RunResult(
            run_id=self.run_id,
            udid=self._udid,
            device_name=self._device_name,
            outcome=outcome,
            counts=counts,
            error=error,
            originals_only_in_icloud=icloud_only,
            icloud_examples=icloud_examples,
            library=self.library,
        )
