"""The SQLite state of rollkeeper: phones, the manifest of their files, the archive, and runs.

One :class:`StateStore` wraps one connection (:class:`~rollkeeper.store.database.Database`) and
composes one repository per table group: :attr:`~StateStore.device_repository` (``devices``),
:attr:`~StateStore.manifest_repository` (``phone_files``), :attr:`~StateStore.archive_repository`
(``archive_files``), :attr:`~StateStore.run_repository` (``runs``, ``run_failures``) and
:attr:`~StateStore.offsite_repository` (``offsite_runs``). Its own
methods are the ones the service, the importer and the commands call; writes that span two table
groups (recording a file as archived, closing a complete run) are one transaction here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from rollkeeper.store.archive_files import ArchiveFileRepository
from rollkeeper.store.archive_truth import ArchiveTruthRepository
from rollkeeper.store.database import Database, StateDamagedError
from rollkeeper.store.device_backups import DeviceBackupRepository
from rollkeeper.store.devices import DeviceRepository
from rollkeeper.store.library import LibraryRepository
from rollkeeper.store.library_sidecars import SidecarRepository
from rollkeeper.store.manifest import ManifestRepository
from rollkeeper.store.offsite_runs import OffsiteRunRepository
from rollkeeper.store.phone_folders import CheckedFile, FolderSummary, PhoneFolderRepository
from rollkeeper.store.records import (
    ARCHIVED,
    EXCLUDED,
    FAILED,
    PENDING,
    ArchiveEntry,
    DeviceRecord,
    ManifestEntry,
    RunCounts,
    RunRecord,
    utc_now_text,
)
from rollkeeper.store.runs import RunRepository

__all__ = [
    "ARCHIVED",
    "EXCLUDED",
    "FAILED",
    "PENDING",
    "ArchiveEntry",
    "DeviceRecord",
    "ManifestEntry",
    "RunCounts",
    "RunRecord",
    "StateDamagedError",
    "StateStore",
    "utc_now_text",
]


class StateStore:
    """rollkeeper's state in one SQLite file (WAL mode, numbered migrations)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.path = database.path
        self.read_only = database.read_only
        self.device_repository = DeviceRepository(database)
        self.manifest_repository = ManifestRepository(database)
        self.folder_repository = PhoneFolderRepository(database)
        self.archive_repository = ArchiveFileRepository(database)
        self.run_repository = RunRepository(database)
        self.device_backup_repository = DeviceBackupRepository(database)
        self.offsite_repository = OffsiteRunRepository(database)
        self.library_repository = LibraryRepository(database)
        self.sidecar_repository = SidecarRepository(database)
        self.archive_truth = ArchiveTruthRepository(database)

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, read_only: bool = False) -> StateStore:
        """Open (creating and migrating if needed) the state database at ``path``.

        The folder is created 0700 and the file 0600: the manifest says what is on the phone.
        Read-only opens never create or migrate anything; they fail if the file is missing.
        Raises :class:`StateDamagedError` when the file is not a usable database, and
        :class:`~rollkeeper.store.migrations.StateTooNewError` when a newer rollkeeper made it.
        """
        return cls(Database.open(path, read_only=read_only))

    def close(self) -> None:
        """Close the connection (checkpointing the WAL when this is the last writer)."""
        self._database.close()

    def integrity_check(self, *, quick: bool = False) -> str:
        """``PRAGMA integrity_check``'s verdict (``quick``: ``quick_check``'s): ``"ok"`` or the
        first problem found."""
        return self._database.integrity_check(quick=quick)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write: committed on success, rolled back on any exception."""
        with self._database.transaction():
            yield

    # -- devices ---------------------------------------------------------------------------

    def record_device_seen(
        self,
        udid: str,
        *,
        name: str | None = None,
        product_type: str | None = None,
        product_version: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Note that a phone is attached now; remember its name, model and iOS version."""
        self.device_repository.record_device_seen(
            udid, name=name, product_type=product_type, product_version=product_version, now=now
        )

    def set_device_state(
        self, udid: str, state: str, detail: str = "", now: datetime | None = None
    ) -> None:
        """Record what a phone is doing now (``connected``, ``waiting_for_trust`` ...)."""
        self.device_repository.set_device_state(udid, state, detail, now)

    def set_device_progress(
        self, udid: str, files_done: int, files_total: int, bytes_done: int, bytes_total: int
    ) -> None:
        """Record how far the current backup of a phone has come (for ``status``)."""
        self.device_repository.set_device_progress(
            udid, files_done, files_total, bytes_done, bytes_total
        )

    def device(self, udid: str) -> DeviceRecord | None:
        """One phone's record, or None if never seen."""
        return self.device_repository.device(udid)

    def devices(self) -> list[DeviceRecord]:
        """Every phone ever seen, most recently seen first."""
        return self.device_repository.devices()

    def mark_all_devices_disconnected(self, now: datetime | None = None) -> None:
        """At start-up nothing is attached yet: clear states left by a previous process."""
        self.device_repository.mark_all_devices_disconnected(now)

    # -- the manifest ----------------------------------------------------------------------

    def present_files(self, udid: str, folder: str) -> dict[str, ManifestEntry]:
        """The files the phone's last listing of ``folder`` showed, by name."""
        return self.manifest_repository.present_files(udid, folder)

    def known_folders(self, udid: str) -> list[str]:
        """Folders of the phone with at least one present file in the manifest."""
        return self.manifest_repository.known_folders(udid)

    def mark_absent(
        self, udid: str, folder: str, names: Iterable[str], now: datetime | None = None
    ) -> int:
        """Mark files of ``folder`` that the phone no longer lists; returns how many."""
        return self.manifest_repository.mark_absent(udid, folder, names, now)

    def mark_folder_absent(self, udid: str, folder: str, now: datetime | None = None) -> int:
        """The whole folder is gone from the phone: mark all its files absent."""
        return self.manifest_repository.mark_folder_absent(udid, folder, now)

    def observe_file(
        self,
        udid: str,
        folder: str,
        name: str,
        size: int,
        birth_time_ns: int,
        modified_time_ns: int,
        now: datetime | None = None,
    ) -> ManifestEntry:
        """Record one stat'ed phone file as present; return its manifest entry."""
        return self.manifest_repository.observe_file(
            udid, folder, name, size, birth_time_ns, modified_time_ns, now
        )

    def observe_files(
        self,
        udid: str,
        folder: str,
        files: Iterable[tuple[str, int, int, int]],
        now: datetime | None = None,
    ) -> None:
        """Record stat'ed phone files ``(name, size, birth_time_ns, modified_time_ns)`` as
        present, in one transaction (another identity under a present name retires the old)."""
        self.manifest_repository.observe_files(udid, folder, files, now)

    def touch_present(self, udid: str, folder: str, now: datetime | None = None) -> None:
        """Stamp every present file of a folder as seen now (one statement, not one per file)."""
        self.manifest_repository.touch_present(udid, folder, now)

    # -- folder summaries and the rotating check (store/phone_folders.py) ------------------

    def folder_summaries(self, udid: str) -> dict[str, FolderSummary]:
        """Every folder summary of a phone, by folder, in one query."""
        return self.folder_repository.folder_summaries(udid)

    def record_folder_summaries(
        self, udid: str, summaries: Iterable[FolderSummary], now: datetime | None = None
    ) -> None:
        """Write the summaries of folders scanned in full (one transaction)."""
        with self._database.transaction():
            self.folder_repository.record_folder_summaries(udid, summaries, now)

    def touch_folders(self, udid: str, folders: list[str], now: datetime | None = None) -> None:
        """Stamp folders whose summary still holds as seen now (one transaction)."""
        with self._database.transaction():
            self.folder_repository.touch_folders(udid, folders, now)

    def forget_folders(self, udid: str, folders: list[str]) -> None:
        """Drop the summaries of folders gone from the phone."""
        with self._database.transaction():
            self.folder_repository.forget_folders(udid, folders)

    def least_recently_checked(self, udid: str, limit: int) -> list[CheckedFile]:
        """Up to ``limit`` settled present files, least recently stat'ed first."""
        return self.folder_repository.least_recently_checked(udid, limit)

    def mark_checked(self, file_ids: list[int], now: datetime | None = None) -> None:
        """The files were stat'ed now and matched the manifest (one transaction)."""
        with self._database.transaction():
            self.folder_repository.mark_checked(file_ids, now)

    def full_check_at(self, udid: str) -> str | None:
        """When every file of the phone was last stat'ed, or None."""
        return self.folder_repository.full_check_at(udid)

    def record_full_check(self, udid: str, now: datetime | None = None) -> None:
        """Every file of the phone was stat'ed now."""
        self.folder_repository.record_full_check(udid, now)

    def set_file_status(self, file_id: int, status: str, failure_reason: str = "") -> None:
        """Mark a manifest entry pending, failed (with a reason) or excluded."""
        self.manifest_repository.set_file_status(file_id, status, failure_reason)

    def record_archived(
        self,
        file_id: int,
        *,
        relative_path: str,
        content_hash: str,
        hash_algorithm: str,
        size: int,
        origin: str,
        capture_time: str | None,
        capture_source: str | None,
        now: datetime | None = None,
    ) -> None:
        """In one transaction: the archive holds ``relative_path`` and the phone file is archived.

        Called after the file is fsync'ed under its final name (or found there with the same
        content), so the database never vouches for a file that is not complete on disk.
        """
        stamp = utc_now_text(now)
        with self._database.transaction():
            self.archive_repository.add_stored(
                relative_path, content_hash, hash_algorithm, size, origin, stamp
            )
            self.manifest_repository.mark_archived(
                file_id,
                relative_path=relative_path,
                content_hash=content_hash,
                capture_time=capture_time,
                capture_source=capture_source,
                stamp=stamp,
            )

    def manifest(
        self, udid: str | None = None, *, present_only: bool = False
    ) -> list[ManifestEntry]:
        """Manifest entries, optionally for one phone and only those on the phone now."""
        return self.manifest_repository.manifest(udid, present_only=present_only)

    def count_archived_not_present(self, udid: str) -> int:
        """Archived files of a phone that its last listing no longer showed (counted in SQL)."""
        return self.manifest_repository.count_archived_not_present(udid)

    def status_counts(self, udid: str) -> dict[str, int]:
        """How many present files of a phone are in each status."""
        return self.manifest_repository.status_counts(udid)

    # -- the archive -----------------------------------------------------------------------

    def archive_entry(self, relative_path: str) -> ArchiveEntry | None:
        """The archive record at a path, or None when rollkeeper does not vouch for it."""
        return self.archive_repository.archive_entry(relative_path)

    def archive_entry_by_hash(self, content_hash: str) -> ArchiveEntry | None:
        """Some archive file with this content, or None."""
        return self.archive_repository.archive_entry_by_hash(content_hash)

    def archive_entries(self) -> list[ArchiveEntry]:
        """Every archive record, by path."""
        return self.archive_repository.archive_entries()

    def add_archive_entry(
        self,
        relative_path: str,
        content_hash: str,
        hash_algorithm: str,
        size: int,
        origin: str,
        now: datetime | None = None,
    ) -> None:
        """Vouch for a file found in the archive (adopted, or rebuilt after lost state)."""
        self.archive_repository.add_archive_entry(
            relative_path, content_hash, hash_algorithm, size, origin, now
        )

    def mark_verified(self, relative_path: str, now: datetime | None = None) -> None:
        """Note that a file was re-hashed and matched."""
        self.archive_repository.mark_verified(relative_path, now)

    def archive_size(self) -> tuple[int, int]:
        """(files, bytes) the archive holds according to the database."""
        return self.archive_repository.archive_size()

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, udid: str, now: datetime | None = None) -> int:
        """Open a run row for a phone; returns its id."""
        return self.run_repository.start_run(udid, now)

    def finish_run(
        self,
        run_id: int,
        outcome: str,
        counts: RunCounts,
        error: str = "",
        now: datetime | None = None,
    ) -> None:
        """Close a run with its outcome and counts; a complete run also updates its phone."""
        stamp = utc_now_text(now)
        with self._database.transaction():
            self.run_repository.write_outcome(run_id, outcome, counts, error, stamp)
            if outcome == "complete":
                self.device_repository.mark_complete(run_id, stamp)
        # A closed run is what `status` and the next run trust: make it durable now.
        self._database.checkpoint()

    def add_run_failure(self, run_id: int, phone_path: str, reason: str, detail: str = "") -> None:
        """Remember why one file (or rejected item) failed in a run."""
        self.run_repository.add_run_failure(run_id, phone_path, reason, detail)

    def run_failures(self, run_id: int) -> list[tuple[str, str, str]]:
        """(phone path, reason, detail) of each failure in a run."""
        return self.run_repository.run_failures(run_id)

    def runs(self, udid: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The latest runs, newest first."""
        return self.run_repository.runs(udid, limit=limit)

    def close_unfinished_runs(self, now: datetime | None = None) -> int:
        """Runs left 'running' by a process that died are 'interrupted'; returns how many."""
        return self.run_repository.close_unfinished_runs(now)
