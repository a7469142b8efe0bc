"""The SQLite state of rollkeeper: phones, the manifest of their files, the archive, and runs.

One :class:`StateStore` wraps one connection. The service owns a read-write store on its event
loop thread; ``status``, ``history`` and friends open their own read-only store, which in WAL mode
never blocks the service. Every write that must be atomic (recording a file as archived) is one
transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rollkeeper.store.migrations import migrate

#: Phone file statuses in the manifest.
PENDING = "pending"
ARCHIVED = "archived"
FAILED = "failed"
EXCLUDED = "excluded"


class StateDamagedError(Exception):
    """The state database exists but cannot be used (corrupt, truncated, not a database)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: the state database is damaged: {reason}")
        self.path = path
        self.reason = reason


def utc_now_text(moment: datetime | None = None) -> str:
    """An aware UTC timestamp as ISO 8601 text, the one format the database stores."""
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A phone rollkeeper has seen, and what it is doing now."""

    udid: str
    name: str
    product_type: str
    product_version: str
    first_seen_at: str
    last_seen_at: str
    state: str
    state_detail: str
    state_changed_at: str
    progress_files_done: int
    progress_files_total: int
    progress_bytes_done: int
    progress_bytes_total: int
    last_complete_run_id: int | None
    last_complete_at: str | None


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One phone file identity and what became of it."""

    id: int
    udid: str
    folder: str
    name: str
    size: int
    birth_time_ns: int
    modified_time_ns: int
    status: str
    present: bool
    archive_path: str | None
    content_hash: str | None
    failure_reason: str

    @property
    def phone_path(self) -> str:
        """The full phone-side path."""
        return f"{self.folder}/{self.name}"


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """A file in the archive that rollkeeper vouches for."""

    relative_path: str
    content_hash: str
    hash_algorithm: str
    size: int
    origin: str
    stored_at: str
    verified_at: str | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One backup run of one phone."""

    id: int
    udid: str
    started_at: str
    finished_at: str | None
    outcome: str
    files_found: int
    files_copied: int
    bytes_copied: int
    files_already_archived: int
    files_deduplicated: int
    files_excluded: int
    files_failed: int
    files_pending: int
    files_not_on_phone: int
    items_rejected: int
    error: str


@dataclass(slots=True)
class RunCounts:
    """What a run did, filled in as it goes and written when it ends."""

    files_found: int = 0
    files_copied: int = 0
    bytes_copied: int = 0
    files_already_archived: int = 0
    files_deduplicated: int = 0
    files_excluded: int = 0
    files_failed: int = 0
    files_pending: int = 0
    files_not_on_phone: int = 0
    items_rejected: int = 0


_DEVICE_COLUMNS = ", ".join(DeviceRecord.__slots__)
_MANIFEST_COLUMNS = (
    "id, udid, folder, name, size, birth_time_ns, modified_time_ns, status, present, "
    "archive_path, content_hash, failure_reason"
)
_ARCHIVE_COLUMNS = ", ".join(ArchiveEntry.__slots__)
_RUN_COLUMNS = ", ".join(RunRecord.__slots__)


def _manifest_entry(row: sqlite3.Row | tuple[object, ...]) -> ManifestEntry:
    values = tuple(row)
    return ManifestEntry(
        id=int(values[0]),
        udid=str(values[1]),
        folder=str(values[2]),
        name=str(values[3]),
        size=int(values[4]),
        birth_time_ns=int(values[5]),
        modified_time_ns=int(values[6]),
        status=str(values[7]),
        present=bool(values[8]),
        archive_path=None if values[9] is None else str(values[9]),
        content_hash=None if values[10] is None else str(values[10]),
        failure_reason=str(values[11]),
    )


class StateStore:
    """rollkeeper's state in one SQLite file (WAL mode, numbered migrations)."""

    def __init__(self, connection: sqlite3.Connection, path: Path, read_only: bool) -> None:
        self._connection = connection
        self.path = path
        self.read_only = read_only

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, read_only: bool = False) -> StateStore:
        """Open (creating and migrating if needed) the state database at ``path``.

        The folder is created 0700 and the file 0600: the manifest says what is on the phone.
        Read-only opens never create or migrate anything; they fail if the file is missing.
        Raises :class:`StateDamagedError` when the file is not a usable database.
        """
        if read_only:
            if not path.exists():
                raise FileNotFoundError(f"{path}: no state database yet (no backup has run)")
            uri = f"file:{path}?mode=ro"
            connection = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5.0)
        else:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.exists():
                path.touch(mode=0o600)
            path.chmod(0o600)
            connection = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        try:
            connection.execute("PRAGMA busy_timeout = 5000")
            if not read_only:
                mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StateDamagedError(path, f"cannot switch to WAL mode (got {mode})")
                # Files are fsync'ed before they are recorded; a record lost to a power cut is
                # recovered by hashing the file already at its place (see the importer).
                connection.execute("PRAGMA synchronous = NORMAL")
                connection.execute("PRAGMA foreign_keys = ON")
                migrate(connection)
            else:
                connection.execute("PRAGMA query_only = ON")
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as error:
            connection.close()
            raise StateDamagedError(path, str(error)) from error
        except BaseException:
            connection.close()
            raise
        return cls(connection, path, read_only)

    def close(self) -> None:
        """Close the connection (checkpointing the WAL when this is the last writer)."""
        self._connection.close()

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``'s verdict: ``"ok"`` or the first problem found.

        A file damaged badly enough (e.g. truncated) makes the check itself fail with
        "database disk image is malformed": that is a verdict too, not a crash.
        """
        try:
            return str(self._connection.execute("PRAGMA integrity_check").fetchone()[0])
        except sqlite3.DatabaseError as error:
            return str(error)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write: committed on success, rolled back on any exception."""
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

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
        stamp = utc_now_text(now)
        self._connection.execute(
            "INSERT INTO devices (udid, first_seen_at, last_seen_at, state_changed_at)"
            " VALUES (?, ?, ?, ?)"
            " ON CONFLICT (udid) DO UPDATE SET last_seen_at = excluded.last_seen_at",
            (udid, stamp, stamp, stamp),
        )
        for column, value in (
            ("name", name),
            ("product_type", product_type),
            ("product_version", product_version),
        ):
            if value is not None:
                self._connection.execute(
                    f"UPDATE devices SET {column} = ? WHERE udid = ?",
                    (value, udid),
                )

    def set_device_state(
        self, udid: str, state: str, detail: str = "", now: datetime | None = None
    ) -> None:
        """Record what a phone is doing now (``connected``, ``waiting_for_trust`` ...)."""
        stamp = utc_now_text(now)
        self._connection.execute(
            "INSERT INTO devices (udid, first_seen_at, last_seen_at, state_changed_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (udid) DO NOTHING",
            (udid, stamp, stamp, stamp),
        )
        self._connection.execute(
            "UPDATE devices SET state = ?, state_detail = ?, state_changed_at = ? WHERE udid = ?",
            (state, detail, stamp, udid),
        )

    def set_device_progress(
        self, udid: str, files_done: int, files_total: int, bytes_done: int, bytes_total: int
    ) -> None:
        """Record how far the current backup of a phone has come (for ``status``)."""
        self._connection.execute(
            "UPDATE devices SET progress_files_done = ?, progress_files_total = ?,"
            " progress_bytes_done = ?, progress_bytes_total = ? WHERE udid = ?",
            (files_done, files_total, bytes_done, bytes_total, udid),
        )

    def device(self, udid: str) -> DeviceRecord | None:
        """One phone's record, or None if never seen."""
        row = self._connection.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE udid = ?", (udid,)
        ).fetchone()
        return None if row is None else DeviceRecord(*row)

    def devices(self) -> list[DeviceRecord]:
        """Every phone ever seen, most recently seen first."""
        rows = self._connection.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY last_seen_at DESC"
        ).fetchall()
        return [DeviceRecord(*row) for row in rows]

    def mark_all_devices_disconnected(self, now: datetime | None = None) -> None:
        """At start-up nothing is attached yet: clear states left by a previous process."""
        self._connection.execute(
            "UPDATE devices SET state = 'disconnected', state_detail = '', state_changed_at = ?"
            " WHERE state != 'disconnected'",
            (utc_now_text(now),),
        )

    # -- the manifest ----------------------------------------------------------------------

    def present_files(self, udid: str, folder: str) -> dict[str, ManifestEntry]:
        """The files the phone's last listing of ``folder`` showed, by name."""
        rows = self._connection.execute(
            f"SELECT {_MANIFEST_COLUMNS} FROM phone_files"
            " WHERE udid = ? AND folder = ? AND present = 1",
            (udid, folder),
        ).fetchall()
        return {str(row[3]): _manifest_entry(row) for row in rows}

    def known_folders(self, udid: str) -> list[str]:
        """Folders of the phone with at least one present file in the manifest."""
        rows = self._connection.execute(
            "SELECT DISTINCT folder FROM phone_files WHERE udid = ? AND present = 1", (udid,)
        ).fetchall()
        return sorted(str(row[0]) for row in rows)

    def mark_absent(
        self, udid: str, folder: str, names: Iterable[str], now: datetime | None = None
    ) -> int:
        """Mark files of ``folder`` that the phone no longer lists; returns how many."""
        stamp = utc_now_text(now)
        count = 0
        for name in names:
            cursor = self._connection.execute(
                "UPDATE phone_files SET present = 0, last_seen_at = ?"
                " WHERE udid = ? AND folder = ? AND name = ? AND present = 1",
                (stamp, udid, folder, name),
            )
            count += cursor.rowcount
        return count

    def mark_folder_absent(self, udid: str, folder: str, now: datetime | None = None) -> int:
        """The whole folder is gone from the phone: mark all its files absent."""
        cursor = self._connection.execute(
            "UPDATE phone_files SET present = 0, last_seen_at = ?"
            " WHERE udid = ? AND folder = ? AND present = 1",
            (utc_now_text(now), udid, folder),
        )
        return cursor.rowcount

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
        self.observe_files(udid, folder, [(name, size, birth_time_ns, modified_time_ns)], now)
        row = self._connection.execute(
            f"SELECT {_MANIFEST_COLUMNS} FROM phone_files WHERE udid = ? AND folder = ?"
            " AND name = ? AND size = ? AND birth_time_ns = ?",
            (udid, folder, name, size, birth_time_ns),
        ).fetchone()
        return _manifest_entry(row)

    def observe_files(
        self,
        udid: str,
        folder: str,
        files: Iterable[tuple[str, int, int, int]],
        now: datetime | None = None,
    ) -> None:
        """Record stat'ed phone files ``(name, size, birth_time_ns, modified_time_ns)`` as
        present, in one transaction.

        A name that was present with another identity (size or birth time) is a different file
        (IMG_9999 rolled over to IMG_0001): the old identity is marked absent and kept.
        """
        stamp = utc_now_text(now)
        insert = (
            "INSERT INTO phone_files (udid, folder, name, size, birth_time_ns,"
            " modified_time_ns, status, present, first_seen_at, last_seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 'pending', 1, ?, ?)"
            " ON CONFLICT (udid, folder, name, size, birth_time_ns)"
            " DO UPDATE SET present = 1, last_seen_at = excluded.last_seen_at"
        )
        listed = list(files)
        with self.transaction():
            present = {
                str(row[0])
                for row in self._connection.execute(
                    "SELECT name FROM phone_files WHERE udid = ? AND folder = ? AND present = 1",
                    (udid, folder),
                )
            }
            seen: dict[str, int] = {}
            for name, *_ in listed:
                seen[name] = seen.get(name, 0) + 1
            # A name no present row has, listed once, has no old identity to retire: such
            # files (all of them on a first scan) are inserted in one executemany.
            fresh = [item for item in listed if item[0] not in present and seen[item[0]] == 1]
            self._connection.executemany(
                insert,
                (
                    (udid, folder, name, size, birth_time_ns, modified_time_ns, stamp, stamp)
                    for name, size, birth_time_ns, modified_time_ns in fresh
                ),
            )
            for name, size, birth_time_ns, modified_time_ns in listed:
                if name not in present and seen[name] == 1:
                    continue
                self._connection.execute(
                    "UPDATE phone_files SET present = 0 WHERE udid = ? AND folder = ? AND name = ?"
                    " AND present = 1 AND NOT (size = ? AND birth_time_ns = ?)",
                    (udid, folder, name, size, birth_time_ns),
                )
                self._connection.execute(
                    insert,
                    (udid, folder, name, size, birth_time_ns, modified_time_ns, stamp, stamp),
                )

    def touch_present(self, udid: str, folder: str, now: datetime | None = None) -> None:
        """Stamp every present file of a folder as seen now (one statement, not one per file)."""
        self._connection.execute(
            "UPDATE phone_files SET last_seen_at = ? WHERE udid = ? AND folder = ? AND present = 1",
            (utc_now_text(now), udid, folder),
        )

    def set_file_status(self, file_id: int, status: str, failure_reason: str = "") -> None:
        """Mark a manifest entry pending, failed (with a reason) or excluded."""
        self._connection.execute(
            "UPDATE phone_files SET status = ?, failure_reason = ? WHERE id = ?",
            (status, failure_reason, file_id),
        )

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
        with self.transaction():
            self._connection.execute(
                "INSERT INTO archive_files (relative_path, content_hash, hash_algorithm, size,"
                " origin, stored_at, verified_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (relative_path) DO NOTHING",
                (relative_path, content_hash, hash_algorithm, size, origin, stamp, stamp),
            )
            self._connection.execute(
                "UPDATE phone_files SET status = 'archived', archive_path = ?, content_hash = ?,"
                " capture_time = ?, capture_source = ?, failure_reason = '', archived_at = ?"
                " WHERE id = ?",
                (relative_path, content_hash, capture_time, capture_source, stamp, file_id),
            )

    def manifest(
        self, udid: str | None = None, *, present_only: bool = False
    ) -> list[ManifestEntry]:
        """Manifest entries, optionally for one phone and only those on the phone now."""
        query = f"SELECT {_MANIFEST_COLUMNS} FROM phone_files WHERE 1 = 1"
        parameters: list[object] = []
        if udid is not None:
            query += " AND udid = ?"
            parameters.append(udid)
        if present_only:
            query += " AND present = 1"
        query += " ORDER BY udid, folder, name"
        return [_manifest_entry(row) for row in self._connection.execute(query, parameters)]

    def count_archived_not_present(self, udid: str) -> int:
        """Archived files of a phone that its last listing no longer showed (counted in SQL,
        not by loading every entry of the manifest)."""
        row = self._connection.execute(
            "SELECT count(*) FROM phone_files WHERE udid = ? AND present = 0"
            " AND status = 'archived'",
            (udid,),
        ).fetchone()
        return int(row[0])

    def status_counts(self, udid: str) -> dict[str, int]:
        """How many present files of a phone are in each status."""
        rows = self._connection.execute(
            "SELECT status, count(*) FROM phone_files"
            " WHERE udid = ? AND present = 1 GROUP BY status",
            (udid,),
        ).fetchall()
        return {str(status): int(count) for status, count in rows}

    # -- the archive -----------------------------------------------------------------------

    def archive_entry(self, relative_path: str) -> ArchiveEntry | None:
        """The archive record at a path, or None when rollkeeper does not vouch for it."""
        row = self._connection.execute(
            f"SELECT {_ARCHIVE_COLUMNS} FROM archive_files WHERE relative_path = ?",
            (relative_path,),
        ).fetchone()
        return None if row is None else ArchiveEntry(*row)

    def archive_entry_by_hash(self, content_hash: str) -> ArchiveEntry | None:
        """Some archive file with this content, or None."""
        row = self._connection.execute(
            f"SELECT {_ARCHIVE_COLUMNS} FROM archive_files WHERE content_hash = ?"
            " ORDER BY relative_path LIMIT 1",
            (content_hash,),
        ).fetchone()
        return None if row is None else ArchiveEntry(*row)

    def archive_entries(self) -> list[ArchiveEntry]:
        """Every archive record, by path."""
        rows = self._connection.execute(
            f"SELECT {_ARCHIVE_COLUMNS} FROM archive_files ORDER BY relative_path"
        ).fetchall()
        return [ArchiveEntry(*row) for row in rows]

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
        stamp = utc_now_text(now)
        self._connection.execute(
            "INSERT INTO archive_files (relative_path, content_hash, hash_algorithm, size, origin,"
            " stored_at, verified_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (relative_path) DO UPDATE SET content_hash = excluded.content_hash,"
            " hash_algorithm = excluded.hash_algorithm, size = excluded.size,"
            " verified_at = excluded.verified_at",
            (relative_path, content_hash, hash_algorithm, size, origin, stamp, stamp),
        )

    def mark_verified(self, relative_path: str, now: datetime | None = None) -> None:
        """Note that a file was re-hashed and matched."""
        self._connection.execute(
            "UPDATE archive_files SET verified_at = ? WHERE relative_path = ?",
            (utc_now_text(now), relative_path),
        )

    def archive_size(self) -> tuple[int, int]:
        """(files, bytes) the archive holds according to the database."""
        row = self._connection.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM archive_files"
        ).fetchone()
        return int(row[0]), int(row[1])

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, udid: str, now: datetime | None = None) -> int:
        """Open a run row for a phone; returns its id."""
        cursor = self._connection.execute(
            "INSERT INTO runs (udid, started_at) VALUES (?, ?)", (udid, utc_now_text(now))
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

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
        with self.transaction():
            self._connection.execute(
                "UPDATE runs SET finished_at = ?, outcome = ?, files_found = ?, files_copied = ?,"
                " bytes_copied = ?, files_already_archived = ?, files_deduplicated = ?,"
                " files_excluded = ?, files_failed = ?, files_pending = ?,"
                " files_not_on_phone = ?, items_rejected = ?, error = ? WHERE id = ?",
                (
                    stamp,
                    outcome,
                    counts.files_found,
                    counts.files_copied,
                    counts.bytes_copied,
                    counts.files_already_archived,
                    counts.files_deduplicated,
                    counts.files_excluded,
                    counts.files_failed,
                    counts.files_pending,
                    counts.files_not_on_phone,
                    counts.items_rejected,
                    error,
                    run_id,
                ),
            )
            if outcome == "complete":
                self._connection.execute(
                    "UPDATE devices SET last_complete_run_id = ?, last_complete_at = ?"
                    " WHERE udid = (SELECT udid FROM runs WHERE id = ?)",
                    (run_id, stamp, run_id),
                )

    def add_run_failure(self, run_id: int, phone_path: str, reason: str, detail: str = "") -> None:
        """Remember why one file (or rejected item) failed in a run."""
        self._connection.execute(
            "INSERT INTO run_failures (run_id, phone_path, reason, detail) VALUES (?, ?, ?, ?)",
            (run_id, phone_path, reason, detail),
        )

    def run_failures(self, run_id: int) -> list[tuple[str, str, str]]:
        """(phone path, reason, detail) of each failure in a run."""
        rows = self._connection.execute(
            "SELECT phone_path, reason, detail FROM run_failures WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        ).fetchall()
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def runs(self, udid: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The latest runs, newest first."""
        query = f"SELECT {_RUN_COLUMNS} FROM runs"
        parameters: list[object] = []
        if udid is not None:
            query += " WHERE udid = ?"
            parameters.append(udid)
        query += " ORDER BY id DESC LIMIT ?"
        parameters.append(limit)
        return [RunRecord(*row) for row in self._connection.execute(query, parameters)]

    def close_unfinished_runs(self, now: datetime | None = None) -> int:
        """Runs left 'running' by a process that died are 'interrupted'; returns how many."""
        cursor = self._connection.execute(
            "UPDATE runs SET outcome = 'interrupted', finished_at = ? WHERE outcome = 'running'",
            (utc_now_text(now),),
        )
        return cursor.rowcount
