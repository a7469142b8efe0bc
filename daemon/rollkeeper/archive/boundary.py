"""Creating folders inside the archive without ever creating the archive itself.

Before issue 13 the transfer and placement code made their folders with ``mkdir(parents=True)``
and so would make the archive root too: on an unmounted disk's empty mount point, a run filled
the system disk. Folders are now made only below a folder that is the archive (it holds the
working folder, ``.rollkeeper``) or inside one; otherwise :class:`ArchiveGoneError` (an
``OSError`` with ``ENOENT``, so the importer's write errors stop the run the usual way).
"""

from __future__ import annotations

import errno
from pathlib import Path

from rollkeeper.archive.locations import WORKING_FOLDER_NAME
from rollkeeper.host.durability import fsync_folder


class ArchiveGoneError(FileNotFoundError):
    """The folder to create is not inside an existing archive (its disk went away)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(
            errno.ENOENT, "the archive folder is gone (is its disk mounted?)", str(folder)
        )


def _inside_archive(existing: Path) -> bool:
    """Whether ``existing`` (a folder that exists) is an archive root or inside one."""
    for candidate in (existing, *existing.parents):
        if (candidate / WORKING_FOLDER_NAME).is_dir():
            return True
    return False


def make_archive_folders(folder: Path, *, private: bool = False) -> None:
    """Create ``folder`` and its missing parents, but only inside an existing archive. Each
    new entry's parent is fsync'ed, except with ``private``: the working folder's (0700)
    partial folders, made without an fsync as before."""
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    if not missing:
        return
    # The working folder itself may be made in an existing folder (a run with no archive
    # guard: the replay tests, the benchmarks); the guarded run has made it with the marker.
    top = missing[-1]
    if not (_inside_archive(current) or (top.name == WORKING_FOLDER_NAME and current.is_dir())):
        raise ArchiveGoneError(folder)
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700 if private else 0o777)
        except FileExistsError:
            continue
        if not private:
            # A final name's folder must survive a power cut; the working folder's need not
            # (a partial lost with its folder is copied again), so it costs no fsync.
            fsync_folder(path.parent)
