"""What a run has done so far: its counts, its progress, and each file's failure or record.

One :class:`RunLedger` per run is shared by the steps of the run (the download pipeline and
the placement of groups), so every count and every progress report goes through one place and
is written to the store the same way whichever step made it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from rollkeeper.domain.health import SCANNING_DETAIL, STATE_BACKING_UP
from rollkeeper.domain.layout import CaptureDate
from rollkeeper.importer.hashing import HASH_ALGORITHM
from rollkeeper.ports import BackupStore, Clock
from rollkeeper.store.records import FAILED, ManifestEntry, RunCounts

log = structlog.get_logger("rollkeeper.backup")

#: How often byte progress within a file is saved for ``status`` (once per file otherwise).
PROGRESS_SAVE_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a run has come; reported after every file."""

    udid: str
    device_name: str
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    current: str = ""
    #: The scan is still going on: the totals are what was found so far (no ETA yet).
    scanning: bool = False


class RunLedger:
    """The counts and progress of one run, kept in step with the store."""

    def __init__(
        self,
        store: BackupStore,
        udid: str,
        device_name: str,
        clock: Clock,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self._store = store
        self._udid = udid
        self._device_name = device_name
        self._clock = clock
        self._on_progress = on_progress
        self.counts = RunCounts()
        self.run_id = 0
        self.files_total = 0
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0
        self._current = ""
        self._progress_saved_at = 0.0
        #: The scan is still going on (the totals grow as its folders arrive).
        self.scanning = False

    def scan_started(self) -> None:
        """The scan begins: ``status`` says the totals are what was found so far."""
        self.scanning = True
        self._store.set_device_state(self._udid, STATE_BACKING_UP, SCANNING_DETAIL, self._clock())

    def scan_finished(self) -> None:
        """The scan is over: the totals are the run's; progress is told at once."""
        self.scanning = False
        self._store.set_device_state(self._udid, STATE_BACKING_UP, "", self._clock())
        self.publish_progress(self._current)

    def set_totals(self, entries: Iterable[ManifestEntry]) -> None:
        """The files this run has to copy (what the progress counts towards)."""
        listed = list(entries)
        self.files_total = len(listed)
        self.bytes_total = sum(entry.size for entry in listed)

    def add_totals(self, entries: Iterable[ManifestEntry]) -> None:
        """More files for this run to copy (the library's, found after the DCIM files)."""
        listed = list(entries)
        self.files_total += len(listed)
        self.bytes_total += sum(entry.size for entry in listed)

    def count_bytes(self, amount: int) -> None:
        """Bytes of the file in flight arrived (saved for ``status`` at most once a second)."""
        self.bytes_done += amount
        now = time.monotonic()
        if now - self._progress_saved_at >= PROGRESS_SAVE_INTERVAL_SECONDS:
            # Within a large video, ``status`` still sees bytes move (and can give an ETA).
            self._progress_saved_at = now
            self._save_progress()
        self._notify_progress(self._current)

    def fail(self, entry: ManifestEntry, reason: str, detail: str) -> None:
        """One file failed in this run: logged, marked failed, remembered in the run."""
        log.warning(
            "file_failed",
            udid=self._udid,
            run_id=self.run_id,
            phone_path=entry.phone_path,
            reason=reason,
            detail=detail,
        )
        self._store.set_file_status(entry.id, FAILED, reason)
        self._store.add_run_failure(self.run_id, entry.phone_path, reason, detail)
        self.files_done += 1

    def record_archived(
        self,
        entry: ManifestEntry,
        relative_path: str,
        content_hash: str,
        capture: CaptureDate,
        origin: str,
    ) -> None:
        """One file is in the archive at ``relative_path`` (complete on disk): record it."""
        self._store.record_archived(
            entry.id,
            relative_path=relative_path,
            content_hash=content_hash,
            hash_algorithm=HASH_ALGORITHM,
            size=entry.size,
            origin=origin,
            capture_time=capture.local.isoformat(),
            capture_source=capture.source,
            now=self._clock(),
        )
        self.files_done += 1
        self.publish_progress("")

    def start_file(self, current: str) -> None:
        """A file's download begins: the caller hears at once, the store at most once a
        second (each record saves the counts; a save here per file was one SQLite commit per
        file, most of a small file's cost)."""
        self._current = current
        now = time.monotonic()
        if now - self._progress_saved_at >= PROGRESS_SAVE_INTERVAL_SECONDS:
            self._progress_saved_at = now
            self._save_progress()
        self._notify_progress(current)

    def publish_progress(self, current: str) -> None:
        """Store the progress (for ``status``) and tell the caller; once per file."""
        self._current = current
        self._save_progress()
        self._notify_progress(current)

    def _save_progress(self) -> None:
        self._store.set_device_progress(
            self._udid, self.files_done, self.files_total, self.bytes_done, self.bytes_total
        )

    def _notify_progress(self, current: str) -> None:
        if self._on_progress is not None:
            with contextlib.suppress(Exception):
                self._on_progress(
                    Progress(
                        udid=self._udid,
                        device_name=self._device_name,
                        files_done=self.files_done,
                        files_total=self.files_total,
                        bytes_done=self.bytes_done,
                        bytes_total=self.bytes_total,
                        current=current,
                        scanning=self.scanning,
                    )
                )
