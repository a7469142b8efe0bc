"""Move a finished ``.partial`` to its final name without ever replacing a file.

``os.rename`` silently replaces an existing target, so it is not used where a name could be
taken. A hard link fails with ``EEXIST`` instead, atomically, and then the partial's name is
removed: at every instant the final name holds nothing or the complete file. File systems
without hard links (exFAT, some network shares) fall back to check-then-rename, which is safe
here because the instance lock makes rollkeeper the only writer of its archive. The folder is
fsync'ed so the new name survives a power cut.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from rollkeeper.archive.boundary import make_archive_folders
from rollkeeper.host.durability import fsync_folder

#: errno values meaning "this file system cannot hard-link", not "the name is taken".
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV}
)


class PlacementError(Exception):
    """The final name is already taken: nothing was moved."""


def make_folders(folder: Path) -> None:
    """Create ``folder`` and its parents inside the archive, never the archive itself
    (:func:`~rollkeeper.archive.boundary.make_archive_folders`)."""
    make_archive_folders(folder)


def place_without_replacing(partial: Path, final: Path) -> None:
    """Give the fsync'ed ``partial`` the name ``final``; raise :class:`PlacementError` if taken."""
    make_folders(final.parent)
    try:
        os.link(partial, final)
    except FileExistsError as error:
        raise PlacementError(f"{final} already exists") from error
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(final):
            raise PlacementError(f"{final} already exists") from error
        os.rename(partial, final)
    else:
        os.unlink(partial)
    fsync_folder(final.parent)
    fsync_folder(partial.parent)
