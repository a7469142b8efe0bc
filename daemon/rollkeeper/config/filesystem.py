"""The config's checks against the file system, without pydantic: may this user write there?

The schema's path types (:mod:`.field_types`, :mod:`.offsite_settings`) call these while the
loader validates; the validated-config cache (:mod:`.cache`) calls them again on every use of a
cached config, since a folder writable yesterday may not be today. Each returns why the path
cannot be used, or None.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be used (or created) for writing by this user, or ``None``.

    Walks up to the nearest part of the path that exists: it must be a folder we may write
    in. A regular file where a folder is expected is caught here (this also works as root,
    where permission bits do not stop anything).
    """
    existing = folder
    while not os.path.lexists(existing):
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        if existing == folder:
            return f"'{folder}' is a file, not a folder"
        return f"'{existing}' is a file, not a folder, so '{folder}' cannot be created"
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == folder:
            return f"'{folder}' is not writable by this user"
        return f"'{existing}' is not writable by this user, so '{folder}' cannot be created"
    return None


def archive_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` can never be the archive folder, or ``None``: only a file in its place
    (or above it). A missing folder, or one not writable now, is not a config error but the
    archive's runtime state (an unmounted disk, a privacy setting): the run and ``status``
    say so (docs/archive-truth.md), and the service starts and waits for the disk."""
    existing = folder
    while not os.path.lexists(existing):
        if existing.parent == existing:
            return None
        existing = existing.parent
    if existing.is_dir():
        return None
    if existing == folder:
        return f"'{folder}' is a file, not a folder"
    return f"'{existing}' is a file, not a folder, so '{folder}' cannot be created"


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be written (or created) as a file by this user, or ``None``."""
    if path.is_dir():
        return f"'{path}' is a folder; name a file inside it"
    return folder_problem(path.parent)


def secret_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot serve as a file of secrets (a password, credentials), or ``None``:
    it must be a readable regular file that nobody else may read."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return f"'{path}': {error.strerror or error}"
    if not stat.S_ISREG(mode):
        return f"'{path}' is not a file"
    if not os.access(path, os.R_OK):
        return f"'{path}' is not readable by this user"
    if mode & 0o077:
        return f"'{path}' holds secrets but others may read it; make it private: chmod 600 '{path}'"
    return None


#: Kind of check -> the check (the names the cache stores).
CHECKS = {
    "archive": archive_folder_problem,
    "folder": folder_problem,
    "file": file_problem,
    "secret": secret_file_problem,
}
