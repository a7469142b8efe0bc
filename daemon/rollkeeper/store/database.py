"""The one SQLite connection behind a state store: opening, migrating, transactions, statements.

Every repository of this package runs its SQL through one :class:`Database`, so a process has
one connection (one writer, one transaction scope) however many table groups it touches. The
service owns a read-write database on its event loop thread; ``status``, ``history`` and friends
open their own read-only one, which in WAL mode never blocks the service.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rollkeeper.host.durability import fsync_folder
from rollkeeper.host.permissions import ensure_private_dir
from rollkeeper.store.migrations import migrate, refuse_newer

#: Statement parameters: positional, as every query of the package writes them.
Parameters = Sequence[object]


class StateDamagedError(Exception):
    """The state database exists but cannot be used (corrupt, truncated, not a database)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: the state database is damaged: {reason}")
        self.path = path
        self.reason = reason


class Database:
    """One SQLite connection (WAL mode, numbered migrations) and the statements run on it."""

    def __init__(self, connection: sqlite3.Connection, path: Path, read_only: bool) -> None:
        self._connection = connection
        self.path = path
        self.read_only = read_only
        #: Transactions open on this connection (an inner one is a savepoint of the outer).
        self._transaction_depth = 0
        #: A checkpoint was asked for inside a transaction: made once it commits.
        self._checkpoint_after_commit = False

    @classmethod
    def open(cls, path: Path, *, read_only: bool = False) -> Database:
        """Open (creating and migrating if needed) the state database at ``path``.

        The folder is created 0700 and the file 0600: the manifest says what is on the phone.
        Read-only opens never create or migrate anything; they fail if the file is missing.
        Raises :class:`StateDamagedError` when the file is not a usable database, and
        :class:`~rollkeeper.store.migrations.StateTooNewError` when a newer rollkeeper made it.
        """
        if read_only:
            if not path.exists():
                raise FileNotFoundError(f"{path}: no state database yet (no backup has run)")
            uri = f"file:{path}?mode=ro"
            connection = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5.0)
        else:
            if not path.parent.exists():
                # Created 0700, each new folder synced into its parent; an existing folder is
                # left as it is (it may be shared, and it is not ours).
                ensure_private_dir(path.parent)
            if not path.exists():
                path.touch(mode=0o600)
                # The new file's name must be durable before anything is recorded in it: a
                # power cut would otherwise take back the whole database (its records were
                # synced into a file whose name never reached the disk).
                fsync_folder(path.parent)
            path.chmod(0o600)
            connection = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        try:
            connection.execute("PRAGMA busy_timeout = 5000")
            if not read_only:
                refuse_newer(connection, path)
                mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StateDamagedError(path, f"cannot switch to WAL mode (got {mode})")
                # Files are fsync'ed before they are recorded; a record lost to a power cut is
                # recovered by hashing the file already at its place (see the importer).
                connection.execute("PRAGMA synchronous = NORMAL")
                connection.execute("PRAGMA foreign_keys = ON")
                migrate(connection, path)
            else:
                connection.execute("PRAGMA query_only = ON")
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as error:
            connection.close()
            raise StateDamagedError(path, str(error)) from error
        except UnicodeDecodeError as error:
            # SQLite quoted the damaged bytes in its message ("malformed database schema ...
            # near <garbage>"), and Python could not decode that message: damaged all the same.
            connection.close()
            raise StateDamagedError(path, _undecodable_message(error)) from error
        except BaseException:
            connection.close()
            raise
        return cls(connection, path, read_only)

    def close(self) -> None:
        """Close the connection (checkpointing the WAL when this is the last writer)."""
        self._connection.close()

    def checkpoint(self) -> None:
        """Copy the WAL into the database file, syncing both (``PRAGMA wal_checkpoint``).

        With ``synchronous = NORMAL`` a commit is durable only at the next checkpoint; the
        store calls this when a run closes, so a finished run's records survive a power cut
        (one fsync per run, not one per file). PASSIVE: it never waits for readers. Inside a
        transaction (another phone's batch of records, on the service's one connection) a
        checkpoint cannot run: it runs right after that transaction commits.
        """
        if self._transaction_depth:
            self._checkpoint_after_commit = True
            return
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def integrity_check(self, *, quick: bool = False) -> str:
        """``PRAGMA integrity_check``'s verdict: ``"ok"`` or the first problem found.

        ``quick``: ``PRAGMA quick_check``, which reads every page and checks the b-trees but not
        that every index matches its table (O(N) instead of O(N log N): a fraction of the time
        at 100,000 rows). A file damaged badly enough (e.g. truncated) makes the check itself
        fail with "database disk image is malformed": that is a verdict too, not a crash.
        """
        pragma = "quick_check" if quick else "integrity_check"
        try:
            return str(self._connection.execute(f"PRAGMA {pragma}").fetchone()[0])
        except sqlite3.DatabaseError as error:
            return str(error)
        except UnicodeDecodeError as error:
            return _undecodable_message(error)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write: committed on success, rolled back on any exception.

        Inside another transaction of this connection (the importer records a whole group of
        placed files in one, and the per-file records inside it open their own), it is a
        savepoint: its own writes roll back alone on an exception, and commit with the outer
        transaction, never before.
        """
        if self._transaction_depth:
            yield from self._savepoint()
            return
        self._connection.execute("BEGIN IMMEDIATE")
        self._transaction_depth = 1
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        else:
            self._connection.execute("COMMIT")
        finally:
            self._transaction_depth = 0
        if self._checkpoint_after_commit:
            self._checkpoint_after_commit = False
            self.checkpoint()

    def _savepoint(self) -> Iterator[None]:
        name = f"nested_{self._transaction_depth}"
        self._connection.execute(f"SAVEPOINT {name}")
        self._transaction_depth += 1
        try:
            yield
        except BaseException:
            self._connection.execute(f"ROLLBACK TO {name}")
            self._connection.execute(f"RELEASE {name}")
            raise
        else:
            self._connection.execute(f"RELEASE {name}")
        finally:
            self._transaction_depth -= 1

    def execute(self, statement: str, parameters: Parameters = ()) -> sqlite3.Cursor:
        """Run one statement; the cursor gives its rows (or ``rowcount`` / ``lastrowid``)."""
        return self._connection.execute(statement, parameters)

    def executemany(self, statement: str, rows: Iterable[Parameters]) -> sqlite3.Cursor:
        """Run one statement once per row of parameters (one prepared statement)."""
        return self._connection.executemany(statement, rows)


def _undecodable_message(error: UnicodeDecodeError) -> str:
    """SQLite's message about a damaged file, when it quotes bytes that are not UTF-8."""
    quoted = error.object if isinstance(error.object, bytes) else b""
    return quoted.decode("utf-8", errors="replace") or "the database is malformed"
