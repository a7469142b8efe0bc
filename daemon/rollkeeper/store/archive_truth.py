"""The tables behind "backed up is what the archive holds" (issue 13, docs/archive-truth.md).

``archive_identity`` holds the id of the archive this state belongs to (its marker carries the
same id); ``archive_files.placed_mtime_ns``/``placed_ctime_ns`` what ``lstat`` said of a file
right after it was placed (the presence check compares them); ``archive_findings`` the files
found missing, resized or damaged, and what became of each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rollkeeper.store.database import Database
from rollkeeper.store.records import (
    MANIFEST_COLUMNS,
    ManifestEntry,
    manifest_entry,
    utc_now_text,
)

#: Finding states: still to be dealt with, and the ways a finding closes.
OPEN = "open"
RESTORED = "restored"
FOLLOWED = "followed"
LOST = "lost"
FORGOTTEN = "forgotten"


@dataclass(frozen=True, slots=True)
class RecordedIdentity:
    """The archive the state belongs to, as recorded."""

    archive_id: str
    root: str
    filesystem: str
    created_at: str
    recorded_at: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One file of the archive that was found missing, resized or damaged."""

    relative_path: str
    kind: str
    state: str
    content_hash: str
    detail: str
    quarantine_path: str | None
    found_at: str
    closed_at: str | None
    run_id: int | None


FINDING_COLUMNS = ", ".join(Finding.__slots__)

#: (relative path, size, placed mtime ns, placed ctime ns, last re-hash failed, on the phone).
PlacedRow = tuple[str, int, int | None, int | None, int, int]


@dataclass(frozen=True, slots=True)
class PlacedFile:
    """An archived file a phone's manifest points to, with what was recorded when placed."""

    relative_path: str
    #: The recorded hash; empty as :meth:`ArchiveTruthRepository.placed_files` reads it.
    content_hash: str
    size: int
    placed_mtime_ns: int | None
    placed_ctime_ns: int | None
    #: The last re-hash (scrub, verify) failed after the last match: damaged until shown not.
    verify_failed: bool
    #: The phone's last listing still shows a file archived at this path.
    on_phone: bool


class ArchiveTruthRepository:
    """Reads and writes of the archive identity, placed stats and findings."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- identity ----------------------------------------------------------------------------

    def recorded_identity(self) -> RecordedIdentity | None:
        """The archive recorded for this state, or None before the first marker."""
        row = self._database.execute(
            "SELECT archive_id, root, filesystem, created_at, recorded_at FROM archive_identity"
        ).fetchone()
        return None if row is None else RecordedIdentity(*row)

    def record_identity(
        self,
        archive_id: str,
        root: str,
        filesystem: str,
        created_at: str,
        now: datetime | None = None,
    ) -> None:
        """Remember (or replace) the archive this state belongs to."""
        self._database.execute(
            "INSERT INTO archive_identity (singleton, archive_id, root, filesystem, created_at,"
            " recorded_at) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (singleton) DO UPDATE SET"
            " archive_id = excluded.archive_id, root = excluded.root,"
            " filesystem = excluded.filesystem, created_at = excluded.created_at,"
            " recorded_at = excluded.recorded_at",
            (archive_id, root, filesystem, created_at, utc_now_text(now)),
        )

    # -- placed stats ------------------------------------------------------------------------

    def record_placed_stats(self, stats: Iterable[tuple[str, int, int]]) -> None:
        """(relative path, mtime ns, ctime ns) as ``lstat`` saw each file once placed."""
        rows = [(mtime, ctime, path) for path, mtime, ctime in stats]
        if not rows:
            return
        with self._database.transaction():
            self._database.executemany(
                "UPDATE archive_files SET placed_mtime_ns = ?, placed_ctime_ns = ?"
                " WHERE relative_path = ?",
                rows,
            )

    def placed_rows(self, udid: str) -> list[PlacedRow]:
        """Every archive file a phone's archived manifest entries point to, as plain rows
        (:data:`PlacedRow`; a path archived from two phone files comes twice, and adopted
        files outside the archive, absolute paths, come too: the caller skips them).

        Plain rows, no hash, no GROUP BY: at 100,000 files the check builds a record only for
        the few files in question (bench/presence.py), and reads their hashes then
        (:meth:`recorded_hash`)."""
        return self._database.execute(
            "SELECT af.relative_path, af.size, af.placed_mtime_ns, af.placed_ctime_ns,"
            " af.verify_failed_at IS NOT NULL AND (af.verified_at IS NULL"
            " OR af.verify_failed_at > af.verified_at), pf.present"
            " FROM phone_files pf JOIN archive_files af ON af.relative_path = pf.archive_path"
            " WHERE pf.udid = ? AND pf.status = 'archived'",
            (udid,),
        ).fetchall()

    def phone_file_for(self, udid: str, relative_path: str) -> ManifestEntry | None:
        """A file the phone's last listing shows, archived at ``relative_path``, or None."""
        row = self._database.execute(
            f"SELECT {MANIFEST_COLUMNS} FROM phone_files WHERE udid = ? AND archive_path = ?"
            " AND status = 'archived' AND present = 1 ORDER BY id LIMIT 1",
            (udid, relative_path),
        ).fetchone()
        return None if row is None else manifest_entry(row)

    def unstamped_paths(self, udid: str) -> list[str]:
        """A phone's archived files with no placed stats yet (placed by this run, adopted,
        or from before issue 13)."""
        rows = self._database.execute(
            "SELECT DISTINCT af.relative_path FROM phone_files pf JOIN archive_files af"
            " ON af.relative_path = pf.archive_path WHERE pf.udid = ? AND pf.status = 'archived'"
            " AND af.placed_mtime_ns IS NULL AND substr(af.relative_path, 1, 1) != '/'",
            (udid,),
        )
        return [str(row[0]) for row in rows]

    def move_record(self, old_path: str, new_path: str) -> None:
        """The file at ``old_path`` is now at ``new_path`` (moved by the user): the archive
        record and every manifest entry pointing at it follow, in one transaction."""
        with self._database.transaction():
            self._database.execute(
                "UPDATE archive_files SET relative_path = ? WHERE relative_path = ?",
                (new_path, old_path),
            )
            self._database.execute(
                "UPDATE phone_files SET archive_path = ? WHERE archive_path = ?",
                (new_path, old_path),
            )

    def mark_verified_now(self, relative_path: str, now: datetime | None = None) -> None:
        """The file was re-hashed and matched (clears a scrub's verify failure)."""
        self._database.execute(
            "UPDATE archive_files SET verified_at = ? WHERE relative_path = ?",
            (utc_now_text(now), relative_path),
        )

    def sample_paths(self, count: int) -> list[str]:
        """Up to ``count`` recorded paths inside the archive (the first by path)."""
        rows = self._database.execute(
            "SELECT relative_path FROM archive_files WHERE substr(relative_path, 1, 1) != '/'"
            " ORDER BY relative_path LIMIT ?",
            (count,),
        )
        return [str(row[0]) for row in rows]

    def recorded_hash(self, relative_path: str) -> str | None:
        """The recorded hash of the archive file at a path (None: not vouched for)."""
        row = self._database.execute(
            "SELECT content_hash FROM archive_files WHERE relative_path = ?", (relative_path,)
        ).fetchone()
        return None if row is None else str(row[0])

    def tracked_paths(self) -> set[str]:
        """Every path the archive records (to tell a moved file from a recorded one)."""
        return {
            str(row[0]) for row in self._database.execute("SELECT relative_path FROM archive_files")
        }

    # -- findings ----------------------------------------------------------------------------

    def open_finding(
        self, relative_path: str, kind: str, content_hash: str, detail: str, now: datetime | None
    ) -> None:
        """Record a finding (a closed one at the same path is opened again; a forgotten path
        stays forgotten)."""
        self._database.execute(
            "INSERT INTO archive_findings (relative_path, kind, state, content_hash, detail,"
            " found_at) VALUES (?, ?, 'open', ?, ?, ?) ON CONFLICT (relative_path) DO UPDATE SET"
            " kind = excluded.kind, state = 'open', content_hash = excluded.content_hash,"
            " detail = excluded.detail, found_at = excluded.found_at, closed_at = NULL,"
            " run_id = NULL WHERE archive_findings.state NOT IN ('forgotten', 'open')",
            (relative_path, kind, content_hash, detail, utc_now_text(now)),
        )

    def set_quarantine(self, relative_path: str, quarantine_path: str) -> None:
        """Where the damaged copy of a finding's file was moved."""
        self._database.execute(
            "UPDATE archive_findings SET quarantine_path = ? WHERE relative_path = ?",
            (quarantine_path, relative_path),
        )

    def close_finding(
        self,
        relative_path: str,
        state: str,
        run_id: int | None,
        detail: str = "",
        now: datetime | None = None,
    ) -> None:
        """Close (or, for ``lost``, settle) the finding at a path."""
        self._database.execute(
            "UPDATE archive_findings SET state = ?, closed_at = ?, run_id = ?,"
            " detail = CASE WHEN ? = '' THEN detail ELSE ? END WHERE relative_path = ?"
            " AND state != 'forgotten'",
            (state, utc_now_text(now), run_id, detail, detail, relative_path),
        )

    def forget(self, relative_path: str, content_hash: str, now: datetime | None = None) -> None:
        """The user removed this file on purpose: never restore it, never call it lost.

        In one transaction the finding is recorded as ``forgotten`` and the archive record is
        dropped (rollkeeper no longer vouches for the file, so ``verify`` and the scrub do not
        report it missing); the phone's manifest entries stay archived, so it is not copied
        again.
        """
        stamp = utc_now_text(now)
        with self._database.transaction():
            self._database.execute(
                "INSERT INTO archive_findings (relative_path, kind, state, content_hash,"
                " found_at, closed_at, detail) VALUES (?, 'forgotten', 'forgotten', ?, ?, ?,"
                " 'removed on purpose (rollkeeper forget)') ON CONFLICT (relative_path) DO"
                " UPDATE SET state = 'forgotten', closed_at = excluded.closed_at,"
                " detail = excluded.detail",
                (relative_path, content_hash, stamp, stamp),
            )
            self._database.execute(
                "DELETE FROM archive_files WHERE relative_path = ?", (relative_path,)
            )

    def phone_path_of(self, udid: str, relative_path: str) -> str:
        """The phone path of a phone file archived at ``relative_path`` (empty: none)."""
        row = self._database.execute(
            "SELECT folder, name FROM phone_files WHERE udid = ? AND archive_path = ?"
            " ORDER BY present DESC, id LIMIT 1",
            (udid, relative_path),
        ).fetchone()
        return "" if row is None else f"{str(row[0]).rstrip('/')}/{row[1]}"

    def finding(self, relative_path: str) -> Finding | None:
        """The finding at a path, if any."""
        row = self._database.execute(
            f"SELECT {FINDING_COLUMNS} FROM archive_findings WHERE relative_path = ?",
            (relative_path,),
        ).fetchone()
        return None if row is None else Finding(*row)

    def findings(self, states: Iterable[str] | None = None) -> list[Finding]:
        """Findings in the given states (all when None), by path."""
        query = f"SELECT {FINDING_COLUMNS} FROM archive_findings"
        parameters: list[str] = []
        if states is not None:
            parameters = list(states)
            query += f" WHERE state IN ({', '.join('?' for _ in parameters)})"
        query += " ORDER BY relative_path"
        return [Finding(*row) for row in self._database.execute(query, parameters)]

    def finding_counts(self) -> dict[str, int]:
        """How many findings are in each state."""
        rows = self._database.execute(
            "SELECT state, count(*) FROM archive_findings GROUP BY state"
        ).fetchall()
        return {str(state): int(count) for state, count in rows}

    def unsettled_paths(self) -> set[str]:
        """Paths the presence check must leave alone or that are not backed up: forgotten,
        open or lost."""
        rows = self._database.execute(
            "SELECT relative_path FROM archive_findings WHERE state IN ('open', 'lost',"
            " 'forgotten')"
        )
        return {str(row[0]) for row in rows}
