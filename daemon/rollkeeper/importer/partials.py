"""Where a download's bytes wait before they are placed: one work folder per phone, one work
file per phone file identity. Both names are derived (hashes), never device-supplied, so a
hostile phone's names cannot reach outside the archive's working folder; a file of the same
identity finds its earlier partial by name and resumes it.
"""

from __future__ import annotations

import os
from pathlib import Path

from rollkeeper.archive.locations import WORKING_FOLDER_NAME
from rollkeeper.importer.hashing import new_hasher
from rollkeeper.store.records import ManifestEntry


def _text_hash(text: str) -> str:
    hasher = new_hasher()
    hasher.update(text.encode("utf-8", "surrogateescape"))
    return hasher.hexdigest()


def partial_folder(archive_root: Path, udid: str) -> Path:
    """The folder of one phone's work files; its name is derived, never device-supplied."""
    return archive_root / WORKING_FOLDER_NAME / "partial" / _text_hash(udid)[:16]


def partial_path(archive_root: Path, udid: str, entry: ManifestEntry) -> Path:
    """The work file of one phone file identity; its name is derived, never device-supplied."""
    return partial_folder(archive_root, udid) / partial_name(udid, entry)


def partial_name(udid: str, entry: ManifestEntry) -> str:
    """The name of :func:`partial_path` in :func:`partial_folder`."""
    identity = f"{udid}\0{entry.folder}\0{entry.name}\0{entry.size}\0{entry.birth_time_ns}"
    return f"{_text_hash(identity)[:40]}.partial"


def names_in(folder: Path) -> frozenset[str]:
    """The names in ``folder``; none when it does not exist (yet)."""
    try:
        return frozenset(os.listdir(folder))
    except FileNotFoundError:
        return frozenset()
