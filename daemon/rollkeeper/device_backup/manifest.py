"""Reading a device backup folder: what it holds, whether it is encrypted, whether it is whole.

A backup folder (``<snapshot>/<udid>``) holds ``Manifest.plist`` (``IsEncrypted``, the phone's
identity), ``Status.plist`` (``SnapshotState``: "finished" once the phone said so),
``Manifest.db`` (table ``Files``: fileID, domain, relativePath, flags, file) and the files at
``fileID[:2]/fileID``. An encrypted backup's Manifest.db is itself encrypted, so without the
password we count and check the stored files only. Everything read here came from the phone:
a malformed plist or database is a reason the backup does not verify, never a crash.
"""

from __future__ import annotations

import contextlib
import plistlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

CAMERA_ROLL_DOMAIN = "CameraRollDomain"
#: Manifest.db ``flags``: 1 file, 2 folder, 4 symlink.
FLAG_FILE = 1


@dataclass(frozen=True, slots=True)
class BackupContents:
    """What a backup folder says about itself."""

    encrypted: bool
    finished: bool
    #: Files listed in Manifest.db (None when it cannot be read: encrypted or damaged).
    listed_files: int | None
    camera_roll_files: int | None
    #: Files stored under ``xx/fileID`` and their bytes (what is really on disk).
    stored_files: int
    stored_bytes: int
    problems: tuple[str, ...] = ()


def read_plist(path: Path) -> dict[str, object]:
    """A plist's top-level dictionary, or {} if it is missing or not a dictionary plist."""
    try:
        value = plistlib.loads(path.read_bytes())
    except (OSError, plistlib.InvalidFileException, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def is_encrypted(backup_folder: Path) -> bool:
    """Manifest.plist says the phone encrypted this backup ("Encrypt local backup")."""
    return bool(read_plist(backup_folder / "Manifest.plist").get("IsEncrypted", False))


def listed_files(backup_folder: Path) -> list[tuple[str, str, str]] | None:
    """(fileID, domain, relativePath) of every file in Manifest.db; None if unreadable."""
    database = backup_folder / "Manifest.db"
    if not database.is_file():
        return None
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        return None
    try:
        rows = connection.execute(
            "SELECT fileID, domain, relativePath FROM Files WHERE flags = ?", (FLAG_FILE,)
        ).fetchall()
    except sqlite3.DatabaseError:
        return None
    finally:
        connection.close()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def stored_files(backup_folder: Path) -> tuple[int, int]:
    """Count and bytes of the files under the two-character folders."""
    count = 0
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for folder in backup_folder.iterdir():
            if len(folder.name) != 2 or not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.is_file() and not path.name.startswith("."):
                    count += 1
                    total += path.stat().st_size
    return count, total


def inspect_backup(backup_folder: Path) -> BackupContents:
    """Read a backup folder and check it is whole: every listed file is stored."""
    problems: list[str] = []
    manifest = read_plist(backup_folder / "Manifest.plist")
    if not manifest:
        problems.append("Manifest.plist is missing or unreadable")
    status = read_plist(backup_folder / "Status.plist")
    finished = status.get("SnapshotState") == "finished"
    if not finished:
        problems.append(f"Status.plist says {status.get('SnapshotState')!r}, not 'finished'")
    encrypted = bool(manifest.get("IsEncrypted", False))
    stored_count, stored_bytes = stored_files(backup_folder)
    rows = None if encrypted else listed_files(backup_folder)
    camera = None
    if rows is not None:
        camera = sum(1 for _id, domain, _path in rows if domain == CAMERA_ROLL_DOMAIN)
        missing = [
            file_id
            for file_id, _d, _p in rows
            if not (backup_folder / file_id[:2] / file_id).is_file()
        ]
        if missing:
            problems.append(f"{len(missing)} listed files are not stored (first {missing[0]})")
    elif not encrypted:
        problems.append("Manifest.db is missing or unreadable")
    return BackupContents(
        encrypted=encrypted,
        finished=finished,
        listed_files=None if rows is None else len(rows),
        camera_roll_files=camera,
        stored_files=stored_count,
        stored_bytes=stored_bytes,
        problems=tuple(problems),
    )
