"""Open a copy of the phone's Photos library as the untrusted file it is, and seal a fresh copy.

The database comes from the phone: its schema, its cells and its ``-wal`` are untrusted input.
:func:`open_untrusted` turns off what a hostile schema could use (``trusted_schema``: no
functions or virtual tables from views and triggers), checks cells as they are read
(``cell_size_check``), caps strings and blobs, and never memory-maps the file.

:func:`seal` turns a fresh copy (``Photos.sqlite`` + ``-wal`` + ``-shm``, in a work folder of
ours) into one self-contained file: ``PRAGMA quick_check``, then the WAL checkpointed into it
(counting the frames SQLite accepted, which must reach the last commit the WAL's headers show),
then rollback-journal mode, so the sealed file needs no ``-wal`` and is read read-only later.
The copied ``-shm`` is never trusted: SQLite's unix VFS resets a wal-index that no other
connection holds open and rebuilds it from the ``-wal`` (it is copied to keep the three files
together, as the phone has them).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

#: The longest string or blob a query of the library may return: titles and names are short.
MAXIMUM_VALUE_BYTES = 1_000_000


class SnapshotDamagedError(Exception):
    """A copy of the library that SQLite cannot use, or whose WAL lost frames."""


@dataclass(frozen=True, slots=True)
class SealedSnapshot:
    """What sealing found: SQLite's verdict and the WAL frames it took into the file."""

    quick_check: str
    wal_frames_used: int


def open_untrusted(path: Path, *, read_only: bool = True) -> sqlite3.Connection:
    """A connection to a copy of the library with every guard against hostile content on."""
    mode = "ro" if read_only else "rw"
    connection = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, isolation_level=None)
    try:
        connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAXIMUM_VALUE_BYTES)
        connection.execute("PRAGMA trusted_schema = OFF")
        connection.execute("PRAGMA cell_size_check = ON")
        connection.execute("PRAGMA mmap_size = 0")
        if read_only:
            connection.execute("PRAGMA query_only = ON")
    except BaseException:
        connection.close()
        raise
    return connection


def seal(database: Path, committed_frames: int) -> SealedSnapshot:
    """Check a fresh copy and fold its WAL into the database file (see the module docstring).

    ``committed_frames`` is the last commit frame the copied WAL's frame headers show
    (:func:`rollkeeper.library.wal.summarize`); SQLite accepting fewer means a frame's checksum
    broke (a torn copy). Raises :class:`SnapshotDamagedError` for any of these.
    """
    try:
        connection = open_untrusted(database, read_only=False)
    except sqlite3.Error as error:
        raise SnapshotDamagedError(f"cannot open the copy: {error}") from error
    try:
        verdict = str(connection.execute("PRAGMA quick_check").fetchone()[0])
        if verdict != "ok":
            raise SnapshotDamagedError(f"quick_check: {verdict[:300]}")
        mode = str(connection.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        used = 0
        if mode == "wal":
            # PASSIVE says how many frames the WAL holds for SQLite (TRUNCATE answers zeros);
            # leaving WAL mode below then folds the rest in and removes the -wal.
            busy, log_frames, _checkpointed = connection.execute(
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).fetchone()
            if busy:
                raise SnapshotDamagedError("the copy's WAL could not be checkpointed")
            used = int(log_frames)
            if used < committed_frames:
                raise SnapshotDamagedError(
                    f"SQLite used {used} WAL frames of the {committed_frames} committed ones"
                    " (a frame's checksum is broken)"
                )
        switched = connection.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        if str(switched).lower() != "delete":
            raise SnapshotDamagedError(f"cannot leave WAL mode (got {switched})")
    except sqlite3.DatabaseError as error:
        raise SnapshotDamagedError(str(error)) from error
    finally:
        connection.close()
    return SealedSnapshot(verdict, used)
