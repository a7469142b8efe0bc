"""Private files and folders: the state, the pair records and the logs are nobody else's.

Pair records hold the private key that lets a computer read the whole phone; pymobiledevice3
writes them with the process umask (0644 under the usual 022). The service therefore runs
under umask 077, and the helpers here make folders 0700 and files 0600 explicitly, so that the
result does not depend on the umask of whoever called first.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from rollkeeper.host.durability import fsync_folder

PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def set_private_umask() -> None:
    """Set the process umask to 077: every file the process creates is owner-only.

    Call it first thing in ``rollkeeper run``; it covers files made by libraries too
    (SQLite's journal and WAL, pymobiledevice3's pair records).
    """
    os.umask(PRIVATE_UMASK)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700, or make an existing one 0700; return it.

    Missing parents are created 0700 as well, so a fresh ``~/.local/state/rollkeeper`` does
    not leave an open ``state`` folder behind. An existing parent is left as it is: it is not
    ours. Raises ``NotADirectoryError`` when something other than a folder is in the way.
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        if current.is_symlink():
            # A dangling symlink: mkdir would fail with a confusing FileExistsError.
            raise NotADirectoryError(f"{current} is a broken symbolic link, not a folder")
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # another process made it meanwhile
            continue
        # The new name is durable only once its parent is synced (a power cut would otherwise
        # take back a state folder whose database the service already wrote into).
        fsync_folder(folder.parent)
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)
    return path


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a 0600 file, atomically.

    The bytes go to a new temporary file in the same folder (created 0600, never readable by
    others even for an instant), are fsynced, then renamed over ``path`` and the folder is
    fsynced: a crash leaves the old file or the new one, never a mix.
    """
    folder = path.parent
    # Unique per call: two threads saving the same file must not collide on O_EXCL.
    temporary = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(
        temporary,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
        PRIVATE_FILE_MODE,
    )
    try:
        try:
            # The mode argument is filtered by the umask; fchmod is not.
            os.fchmod(descriptor, PRIVATE_FILE_MODE)
            view = memoryview(data)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    fsync_dir(folder)


def make_private(path: Path) -> None:
    """Tighten an existing file to 0600 or folder to 0700 (e.g. a database made under umask 022)."""
    mode = PRIVATE_DIR_MODE if path.is_dir() else PRIVATE_FILE_MODE
    if stat.S_IMODE(path.stat().st_mode) != mode:
        path.chmod(mode)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename is durable only once its folder is synced)."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
