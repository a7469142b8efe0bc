"""Read-only queries behind ``status``, ``history`` and ``audit``, over the state schema.

The SQL lives in the store's repositories (:mod:`rollkeeper.store.manifest`,
:mod:`~rollkeeper.store.runs`, :mod:`~rollkeeper.store.archive_files`,
:mod:`~rollkeeper.store.devices`); :class:`Reports` gathers the ones the commands read, on the
connection of a (usually read-only) :class:`~rollkeeper.store.state.StateStore`, so one command
sees one consistent snapshot and never blocks the service (WAL readers do not block writers).
Queries are aggregate or bounded (``LIMIT``): ``status`` on a 150k-file manifest must stay fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime

from rollkeeper.store.device_backups import DeviceBackupRecord
from rollkeeper.store.records import (
    ArchiveEntry,
    FailedFile,
    FileCounts,
    RunFailure,
    RunRecord,
    parse_timestamp,
)
from rollkeeper.store.state import StateStore

__all__ = [
    "FailedFile",
    "FileCounts",
    "Reports",
    "RunFailure",
    "parse_timestamp",
    "run_as_dict",
    "run_duration_seconds",
]


class Reports:
    """Read-only report queries on one store's connection."""

    def __init__(self, store: StateStore) -> None:
        self._manifest = store.manifest_repository
        self._runs = store.run_repository
        self._archive = store.archive_repository
        self._devices = store.device_repository
        self._device_backups = store.device_backup_repository
        self._library = store.library_repository

    @classmethod
    def for_store(cls, store: StateStore) -> Reports:
        """Queries on ``store``'s own connection (one snapshot with the store's own reads)."""
        return cls(store)

    def file_counts(self, udid: str) -> FileCounts:
        """How many files the phone showed at its last scan, archived, pending, failed, excluded."""
        return self._manifest.file_counts(udid)

    def archived_not_on_phone(self, udid: str) -> int:
        """Files of this phone the archive keeps that the phone no longer lists (deleted on the
        phone, or offloaded to iCloud): the archive is add-only, so they stay."""
        return self._manifest.count_archived_not_present(udid)

    def last_device_backup(self, udid: str) -> DeviceBackupRecord | None:
        """The newest device backup attempt of a phone (any outcome)."""
        return self._device_backups.last(udid)

    def last_completed_device_backup(self, udid: str) -> DeviceBackupRecord | None:
        """The newest completed device backup (snapshot) of a phone."""
        return self._device_backups.last_completed(udid)

    def last_finished_run(self, udid: str) -> RunRecord | None:
        """The newest run of a phone that has ended (any outcome but ``running``)."""
        return self._runs.last_finished_run(udid)

    def running_run(self, udid: str) -> RunRecord | None:
        """The run of a phone still marked ``running`` (under way, or left by a dead process)."""
        return self._runs.running_run(udid)

    def device_archive_size(self, udid: str) -> tuple[int, int]:
        """(files, bytes) in the archive that came from this phone (each archive file once)."""
        return self._archive.device_archive_size(udid)

    def failed_files(self, udid: str, limit: int = 1000) -> list[FailedFile]:
        """Files on the phone now whose copy failed, with the reason, by path."""
        return self._manifest.failed_files(udid, limit)

    def runs(
        self,
        udid: str | None = None,
        *,
        with_failures_only: bool = False,
        limit: int = 20,
    ) -> list[RunRecord]:
        """Runs, newest first; ``with_failures_only`` keeps failed runs and runs with failures."""
        return self._runs.runs(udid, with_failures_only=with_failures_only, limit=limit)

    def run_failures(self, run_ids: Iterable[int], limit_per_run: int = 1000) -> list[RunFailure]:
        """Failures recorded in the given runs, in the order they happened."""
        return self._runs.failures_of_runs(run_ids, limit_per_run)

    def unresolved_archive_paths(self, paths: Iterable[str], since: datetime) -> list[str]:
        """Of archive paths an archive check flagged at ``since``, those still in question: the
        database still vouches for them and they were not verified again after ``since`` (a
        later ``rollkeeper verify`` or scrub that matched them settles them)."""
        return self._archive.unresolved_archive_paths(paths, since)

    def recently_stored(self, extensions: Sequence[str], limit: int) -> list[ArchiveEntry]:
        """The newest archive records named ``*.EXT`` for one of ``extensions``, newest first,
        each content once (the status page's strip of the newest photos)."""
        return self._archive.recently_stored(extensions, limit)

    def archive_entry_by_hash(self, content_hash: str) -> ArchiveEntry | None:
        """Some archive record with this content, or None (the status page's thumbnails are
        asked for by content hash, never by a path from the URL)."""
        return self._archive.archive_entry_by_hash(content_hash)

    def library_photos_per_month(
        self, udid: str, extensions: Sequence[str]
    ) -> dict[str, int] | None:
        """The phone's Photos library's photos per month of capture, or None when its library
        was never read (:meth:`rollkeeper.store.library.LibraryRepository.photos_per_month`)."""
        return self._library.photos_per_month(udid, extensions)

    def archived_per_month(self, udid: str, extensions: Sequence[str]) -> list[tuple[str, int]]:
        """(``YYYY-MM``, count) of the phone's archived ``*.EXT`` files by month of capture,
        edit renders left out, oldest month first."""
        return self._manifest.archived_per_month(udid, extensions)

    def known_udids(self) -> list[str]:
        """Every phone in the database."""
        return self._devices.known_udids()


def run_duration_seconds(run: RunRecord) -> float | None:
    """How long a finished run took, or None while it runs."""
    started = parse_timestamp(run.started_at)
    finished = parse_timestamp(run.finished_at)
    if started is None or finished is None:
        return None
    return round((finished - started).total_seconds(), 3)


def run_as_dict(run: RunRecord) -> dict[str, object]:
    """A run as the JSON object of ``status --json`` and ``history --json`` (docs/status.md)."""
    values: dict[str, object] = asdict(run)
    values["duration_seconds"] = run_duration_seconds(run)
    return values
