"""The scan of one run, and the scan run as a task beside the copy (a first backup streams).

:class:`RunScan` runs :class:`~rollkeeper.importer.reconcile.ManifestReconciler` for a run and,
once it is done, sets what the run learnt from it: the figures for the log and the benchmarks,
the rejected items, and the counts (files found, already archived, excluded).

:func:`scan_beside_copy` runs the scan and the copy side by side: the scan hands each folder to
a :class:`~rollkeeper.importer.folder_stream.FolderStream` the copy reads. How each can end:

* the scan is done: the stream hands the copy the groups it held back, the copy finishes;
* the scan fails (an unplug): the stream hands nothing more, the copy finishes the groups it
  already took (their files are placed, not lost), then the scan's own error is raised — a
  phone error, which the job ends as "unplugged", never wrapped in an exception group;
* the copy fails (the archive cannot be written): the scan is told to stop after the folders
  in flight (its requests are not cut off halfway), then the copy's error is raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from rollkeeper.device.errors import PhoneUnavailableError
from rollkeeper.importer.folder_stream import FolderStream
from rollkeeper.importer.reconcile import ManifestReconciler, OnFolder, ScanResult
from rollkeeper.ports import BackupStore, PhoneFiles
from rollkeeper.store.records import RunCounts

log = structlog.get_logger("rollkeeper.backup")


class RunScan:
    """The scan of one run: reconcile the manifest, then record what the run learnt."""

    def __init__(
        self,
        reconciler: ManifestReconciler,
        files: PhoneFiles,
        store: BackupStore,
        udid: str,
        run_id: int,
        full_rescan: bool,
    ) -> None:
        self._reconciler = reconciler
        self._files = files
        self._store = store
        self._udid = udid
        self._run_id = run_id
        self._full_rescan = full_rescan
        #: What the scan cost, for the log and the benchmarks (set when it is done).
        self.figures: dict[str, int] = {}

    async def scan(
        self, on_folder: OnFolder | None = None, keep_going: Callable[[], bool] | None = None
    ) -> ScanResult:
        """Scan the phone (each folder told to ``on_folder`` as it is recorded)."""
        scan = await self._reconciler.scan(
            self._files,
            full_rescan=self._full_rescan,
            on_folder=on_folder,
            keep_going=keep_going or (lambda: True),
        )
        self.figures = {
            "unchanged_folders": scan.unchanged_folders,
            "rotating_checks": scan.rotating_checks,
            "listing_requests": scan.listing_requests,
            "folder_stat_requests": scan.folder_stat_requests,
            "stat_requests": scan.stat_requests,
        }
        log.info("scan_finished", udid=self._udid, run_id=self._run_id, **self.figures)
        self._report_rejections(scan)
        return scan

    def _report_rejections(self, scan: ScanResult) -> None:
        for item in scan.rejected:
            log.warning(
                "item_rejected",
                udid=self._udid,
                run_id=self._run_id,
                phone_path=item.phone_path,
                reason=item.reason,
                detail=item.detail,
            )
            self._store.add_run_failure(self._run_id, item.phone_path, item.reason, item.detail)


def count_scan(counts: RunCounts, scan: ScanResult, stream: FolderStream) -> None:
    """The run's counts from a finished scan and what the filters made of its folders."""
    counts.items_rejected = len(scan.rejected)
    counts.files_found = len(scan.present) + scan.archived_folder_files
    counts.files_already_archived += scan.archived_folder_files + stream.already_archived
    counts.files_already_archived -= counts.files_restored
    counts.files_excluded += stream.excluded


def _first_error(*errors: BaseException | None) -> BaseException | None:
    """The error to end the run with: a phone error first (the job handles an unplug), else
    the first there is."""
    present = [error for error in errors if error is not None]
    for error in present:
        if isinstance(error, PhoneUnavailableError):
            return error
    return present[0] if present else None


async def scan_beside_copy(
    scan: Callable[[Callable[[], bool]], Coroutine[Any, Any, ScanResult]],
    copy: Coroutine[Any, Any, None],
    stream: FolderStream,
    on_scanned: Callable[[ScanResult], None],
    stop_requested: Callable[[], bool],
) -> ScanResult:
    """Run ``scan(keep_going)`` and ``copy`` side by side (see the module's docstring);
    ``on_scanned`` hears the scan's result as soon as it is done, before the copy ends."""
    copy_task: asyncio.Future[None] = asyncio.ensure_future(copy)

    def keep_going() -> bool:
        return not copy_task.done() and not stop_requested()

    scan_task: asyncio.Future[ScanResult] = asyncio.ensure_future(scan(keep_going))
    try:
        scan_error: BaseException | None = None
        try:
            result = await scan_task
        except Exception as error:  # noqa: BLE001 - raised below, once the copy has ended
            scan_error = error
            stream.close()
        else:
            on_scanned(result)
            stream.scan_done()
        copy_error: BaseException | None = None
        try:
            await copy_task
        except Exception as error:  # noqa: BLE001 - raised below (a phone error first)
            copy_error = error
    except asyncio.CancelledError:
        copy_task.cancel()
        scan_task.cancel()
        await asyncio.gather(copy_task, scan_task, return_exceptions=True)
        raise
    first = _first_error(scan_error, copy_error)
    if first is not None:
        raise first
    return result
