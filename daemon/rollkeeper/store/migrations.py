"""Numbered schema migrations for the state database, applied in order at open.

``PRAGMA user_version`` holds the number of the last migration applied. A migration is only ever
appended to this list, never edited once released: an existing database walks forward through
every step it has not seen.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

#: Each entry is one migration; index 0 takes the database from version 0 to 1, and so on.
MIGRATIONS: tuple[str, ...] = (
    # 1: phones, the manifest of phone files, the archive's content, runs and their failures.
    """
    CREATE TABLE devices (
        udid TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        product_type TEXT NOT NULL DEFAULT '',
        product_version TEXT NOT NULL DEFAULT '',
        first_seen_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        -- what the phone is doing now: disconnected, connected, backing_up, up_to_date,
        -- waiting_for_unlock, waiting_for_trust, trust_denied, error
        state TEXT NOT NULL DEFAULT 'disconnected',
        state_detail TEXT NOT NULL DEFAULT '',
        state_changed_at TEXT NOT NULL,
        progress_files_done INTEGER NOT NULL DEFAULT 0,
        progress_files_total INTEGER NOT NULL DEFAULT 0,
        progress_bytes_done INTEGER NOT NULL DEFAULT 0,
        progress_bytes_total INTEGER NOT NULL DEFAULT 0,
        last_complete_run_id INTEGER,
        last_complete_at TEXT
    );

    -- Content stored in the archive: one row per file on disk that rollkeeper vouches for.
    CREATE TABLE archive_files (
        relative_path TEXT PRIMARY KEY,
        content_hash TEXT NOT NULL,
        hash_algorithm TEXT NOT NULL,
        size INTEGER NOT NULL,
        origin TEXT NOT NULL,             -- backup | adopted | rebuilt
        stored_at TEXT NOT NULL,
        verified_at TEXT
    );
    CREATE INDEX archive_files_by_hash ON archive_files (content_hash);

    -- The manifest: one row per phone file identity (udid, folder, name, size, birth time).
    CREATE TABLE phone_files (
        id INTEGER PRIMARY KEY,
        udid TEXT NOT NULL,
        folder TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        birth_time_ns INTEGER NOT NULL,
        modified_time_ns INTEGER NOT NULL,
        status TEXT NOT NULL,             -- pending | archived | failed | excluded
        present INTEGER NOT NULL,         -- 1 while the phone's last listing showed it
        archive_path TEXT,                -- archive_files.relative_path once archived
        content_hash TEXT,
        capture_time TEXT,
        capture_source TEXT,
        failure_reason TEXT NOT NULL DEFAULT '',
        first_seen_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        archived_at TEXT,
        UNIQUE (udid, folder, name, size, birth_time_ns)
    );
    CREATE INDEX phone_files_by_folder ON phone_files (udid, folder, present);
    CREATE INDEX phone_files_by_hash ON phone_files (content_hash);

    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        udid TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        -- running | complete | incomplete | failed | interrupted
        outcome TEXT NOT NULL DEFAULT 'running',
        files_found INTEGER NOT NULL DEFAULT 0,
        files_copied INTEGER NOT NULL DEFAULT 0,
        bytes_copied INTEGER NOT NULL DEFAULT 0,
        files_already_archived INTEGER NOT NULL DEFAULT 0,
        files_deduplicated INTEGER NOT NULL DEFAULT 0,
        files_excluded INTEGER NOT NULL DEFAULT 0,
        files_failed INTEGER NOT NULL DEFAULT 0,
        files_pending INTEGER NOT NULL DEFAULT 0,
        files_not_on_phone INTEGER NOT NULL DEFAULT 0,
        items_rejected INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX runs_by_device ON runs (udid, started_at);

    CREATE TABLE run_failures (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        phone_path TEXT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX run_failures_by_run ON run_failures (run_id);
    """,
    # 2: device backups (mobilebackup2 snapshots): one row per attempt, how it ended and,
    # for a completed one, its snapshot. Feature: device backups (issue 21).
    """
    CREATE TABLE device_backups (
        id INTEGER PRIMARY KEY,
        udid TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        -- running, completed, passcode_timeout, disk_full, unplugged, failed
        outcome TEXT NOT NULL DEFAULT 'running',
        -- plug_in or command
        trigger TEXT NOT NULL DEFAULT 'plug_in',
        snapshot_id TEXT,
        files INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        added_bytes INTEGER NOT NULL DEFAULT 0,
        files_received INTEGER NOT NULL DEFAULT 0,
        -- 1 encrypted, 0 not, NULL unknown (no backup got far enough to say)
        encrypted INTEGER,
        camera_roll_files INTEGER,
        error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX device_backups_by_phone ON device_backups (udid, started_at);
    """,
    # 3 (issue 19): offsite copies, and what "safe to free on the phone" needs to know.
    """
    -- Offsite copies: one row per run of the offsite engine (restic or rclone) on the archive.
    CREATE TABLE offsite_runs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,               -- copy | check
        engine TEXT NOT NULL,             -- restic | rclone
        destination TEXT NOT NULL,        -- the repository or remote, any password taken out
        trigger TEXT NOT NULL,            -- backup (after a complete backup) | command
        started_at TEXT NOT NULL,
        finished_at TEXT,
        -- running | complete | failed | skipped (archive unavailable) | interrupted
        outcome TEXT NOT NULL DEFAULT 'running',
        exit_code INTEGER,
        snapshot_id TEXT NOT NULL DEFAULT '',
        bytes_added INTEGER,
        files_new INTEGER,
        error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX offsite_runs_by_kind ON offsite_runs (kind, id);

    -- Safe to free: the last time a re-hash (scrub, verify) found the file missing, changed or
    -- unreadable. A file in question is never called safe to delete from the phone.
    ALTER TABLE archive_files ADD COLUMN verify_failed_at TEXT;
    """,
    # 4: the phone's Photos library (issue 16): what each phone's last applied library read
    # said of its assets, every read of it, and every sidecar version rollkeeper wrote.
    """
    CREATE TABLE library_assets (
        udid TEXT NOT NULL,
        uuid TEXT NOT NULL,
        -- where the original is on the phone (/DCIM/100APPLE, /PhotoData/CPLAssets/group5),
        -- NULL when the library puts it anywhere rollkeeper does not copy from
        phone_folder TEXT,
        phone_name TEXT,
        original_filename TEXT,
        created_utc TEXT,                 -- ZDATECREATED as ISO 8601 UTC
        utc_offset_seconds INTEGER,       -- the asset's own time zone, when known
        favorite INTEGER NOT NULL DEFAULT 0,
        hidden INTEGER NOT NULL DEFAULT 0,
        trashed INTEGER NOT NULL DEFAULT 0,  -- in Recently Deleted
        original_local INTEGER,           -- 1 on the phone, 0 only in iCloud, NULL not said
        albums TEXT NOT NULL DEFAULT '[]',   -- JSON list of user album titles
        PRIMARY KEY (udid, uuid)
    );
    CREATE INDEX library_assets_by_file ON library_assets (udid, phone_folder, phone_name);

    -- One row per library read: the snapshot used, and whether it was applied.
    CREATE TABLE library_reads (
        id INTEGER PRIMARY KEY,
        udid TEXT NOT NULL,
        read_at TEXT NOT NULL,
        snapshot TEXT NOT NULL,           -- unchanged | copied | fallback | unavailable
        snapshot_taken_at TEXT,
        -- applied | suspect (refused: it would drop albums or favourites) | unreadable
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        generation TEXT NOT NULL DEFAULT '',
        degraded TEXT NOT NULL DEFAULT '[]',  -- JSON list of features left out, with why
        assets INTEGER NOT NULL DEFAULT 0,
        sidecars_written INTEGER NOT NULL DEFAULT 0,
        sidecars_left_alone INTEGER NOT NULL DEFAULT 0,
        sidecars_dropping INTEGER NOT NULL DEFAULT 0,
        sidecars_total INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX library_reads_by_phone ON library_reads (udid, id);

    -- Every version of every sidecar rollkeeper wrote (the file is relative_path + '.xmp').
    CREATE TABLE library_sidecars (
        relative_path TEXT NOT NULL,
        version INTEGER NOT NULL,
        content_hash TEXT NOT NULL,       -- BLAKE3 of the bytes written
        facts TEXT NOT NULL,              -- JSON: uuids, albums, favourite, hidden, deleted, date
        written_at TEXT NOT NULL,
        PRIMARY KEY (relative_path, version)
    );

    -- Sidecars the last read of a phone left alone (another tool edited them), and why.
    CREATE TABLE library_sidecar_notes (
        udid TEXT NOT NULL,
        relative_path TEXT NOT NULL,
        reason TEXT NOT NULL,
        noted_at TEXT NOT NULL,
        PRIMARY KEY (udid, relative_path)
    );

    -- The links rollkeeper made under Albums/ ([library] album_folders): only these are ever
    -- removed when an album changes.
    CREATE TABLE library_album_links (
        link_path TEXT PRIMARY KEY,       -- relative to the archive: Albums/<title>/<name>
        target_path TEXT NOT NULL,        -- the archived file it shows, relative
        kind TEXT NOT NULL                -- hard | symbolic
    );
    """,
    # 5 (issue 15): folder summaries, so a re-plug with nothing new reads no file's row and
    # still notices a photo replaced under its old name; a rotating re-check of settled files.
    """
    -- What each phone folder's last listing showed: the folder's own stat (GET_FILE_INFO on
    -- the folder: st_mtime, st_nlink, st_size; NULL when the phone left one out), a BLAKE2b
    -- fingerprint of its sorted checked names, and how many present manifest rows it holds.
    -- last_seen_at is kept here per folder rather than stamped on every file of it.
    CREATE TABLE phone_folders (
        udid TEXT NOT NULL,
        folder TEXT NOT NULL,
        stat_mtime_ns INTEGER,
        stat_nlink INTEGER,
        stat_size INTEGER,
        names_fingerprint TEXT NOT NULL,
        file_count INTEGER NOT NULL,
        last_seen_at TEXT NOT NULL,
        PRIMARY KEY (udid, folder)
    );

    -- When this identity was last stat'ed on the phone (NULL: not since this migration, so
    -- first in the rotating check's order).
    ALTER TABLE phone_files ADD COLUMN checked_at TEXT;
    -- The rotating check: settled present files, least recently checked first.
    CREATE INDEX phone_files_check_order ON phone_files (udid, checked_at, id)
        WHERE present = 1 AND status IN ('archived', 'excluded');
    -- Whether a folder holds a present file that is not archived (an empty answer means the
    -- folder can be skipped): one index probe per folder, no row read.
    CREATE INDEX phone_files_not_archived ON phone_files (udid, folder)
        WHERE present = 1 AND status != 'archived';

    -- When every file of the phone was last stat'ed (a first scan, --full-rescan, or the
    -- periodic full check of schedule.full_check_days).
    ALTER TABLE devices ADD COLUMN full_check_at TEXT;
    """,
    # 6 (issue 13): "backed up" is what the archive holds. The archive's identity (the marker
    # in its working folder), what each placed file looked like on disk, findings about files
    # that went missing or were damaged, and the restored and lost counts of each run.
    """
    -- The archive this state belongs to: the id its marker carries, and its file system.
    CREATE TABLE archive_identity (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        archive_id TEXT NOT NULL,
        root TEXT NOT NULL,               -- the archive folder when the id was recorded
        filesystem TEXT NOT NULL,         -- uuid:..., fsid:... or dev:MAJOR:MINOR
        created_at TEXT NOT NULL,         -- when the marker was made
        recorded_at TEXT NOT NULL
    );

    -- What lstat said of the file right after it was placed (NULL: placed before issue 13,
    -- or adopted; the first presence check records them).
    ALTER TABLE archive_files ADD COLUMN placed_mtime_ns INTEGER;
    ALTER TABLE archive_files ADD COLUMN placed_ctime_ns INTEGER;

    -- Files of the archive found missing, resized or damaged, and what became of them.
    CREATE TABLE archive_findings (
        relative_path TEXT PRIMARY KEY,
        kind TEXT NOT NULL,               -- missing | resized | damaged | forgotten
        -- open | restored | followed (moved: the record follows the file) | lost | forgotten
        state TEXT NOT NULL,
        content_hash TEXT NOT NULL,       -- the recorded hash the restored copy must have
        detail TEXT NOT NULL DEFAULT '',
        quarantine_path TEXT,             -- where the damaged copy went (working folder)
        found_at TEXT NOT NULL,
        closed_at TEXT,
        run_id INTEGER                    -- the run that closed it
    );
    CREATE INDEX archive_findings_by_state ON archive_findings (state);

    ALTER TABLE runs ADD COLUMN files_restored INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN files_lost INTEGER NOT NULL DEFAULT 0;
    """,
)


class StateTooNewError(RuntimeError):
    """The database was written by a newer rollkeeper: its schema version is beyond ours.

    Not :class:`~rollkeeper.store.database.StateDamagedError`: the file is fine, and moving it
    aside (what is done with a damaged one) would lose what the newer version recorded.
    """

    def __init__(self, found_version: int, supported_version: int, path: Path | None) -> None:
        where = f"{path}: " if path is not None else ""
        super().__init__(
            f"{where}the state database has schema version {found_version}, newer than this "
            f"rollkeeper understands ({supported_version}); upgrade rollkeeper"
        )
        self.found_version = found_version
        self.supported_version = supported_version
        self.path = path


def current_version() -> int:
    """The schema version this program writes: the number of migrations it knows."""
    return len(MIGRATIONS)


def schema_version(connection: sqlite3.Connection) -> int:
    """The number of migrations this database has had applied."""
    row = connection.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def refuse_newer(connection: sqlite3.Connection, path: Path | None = None) -> int:
    """The database's schema version; :class:`StateTooNewError` when it is beyond ours.

    Called before anything is written (even the switch to WAL mode), so a database of a newer
    rollkeeper is left exactly as it was.
    """
    found = schema_version(connection)
    if found > len(MIGRATIONS):
        raise StateTooNewError(found, len(MIGRATIONS), path)
    return found


def migrate(connection: sqlite3.Connection, path: Path | None = None) -> int:
    """Apply every migration the database has not seen, each in its own transaction.

    Returns the resulting version. A database newer than this program is refused
    (:class:`StateTooNewError`, naming ``path`` when given) rather than written to, because its
    meaning is unknown to us.
    """
    current = refuse_newer(connection, path)
    for number in range(current, len(MIGRATIONS)):
        script = f"BEGIN;\n{MIGRATIONS[number]}\nPRAGMA user_version = {number + 1};\nCOMMIT;"
        try:
            connection.executescript(script)
        except BaseException:
            if connection.in_transaction:
                connection.rollback()
            raise
    return schema_version(connection)
