"""Is the archive there? Asked before every offsite copy.

A disk that is not mounted leaves an empty folder (or none) where the archive was; copying that
would make an empty snapshot, and with a retention policy it could even push the real snapshots
out. So a copy runs only when :func:`archive_availability` says yes.

The service's check is the archive identity check (:mod:`rollkeeper.archive.identity`: the
marker, its id, the file system), built by ``bootstrap.archive_availability(store)`` and passed
through :data:`ArchiveCheck`. :func:`archive_availability` below is the plain fallback for an
``OffsiteJob`` built without it (tests of the job itself): the folder exists, is a folder, and
holds something besides rollkeeper's working folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rollkeeper.archive.locations import WORKING_FOLDER_NAME


@dataclass(frozen=True, slots=True)
class ArchiveAvailability:
    """Whether the archive can be copied, and if not, why not (words for people)."""

    available: bool
    reason: str = ""


#: The question the offsite job asks about the archive root.
ArchiveCheck = Callable[[Path], ArchiveAvailability]


def archive_availability(root: Path) -> ArchiveAvailability:
    """The archive at ``root`` exists, is a folder, and is not empty."""
    if not root.exists():
        return ArchiveAvailability(False, f"{root} does not exist (is its disk mounted?)")
    if not root.is_dir():
        return ArchiveAvailability(False, f"{root} is not a folder")
    try:
        with os.scandir(root) as entries:
            empty = not any(entry.name != WORKING_FOLDER_NAME for entry in entries)
    except OSError as error:
        return ArchiveAvailability(False, f"{root} cannot be read: {error.strerror or error}")
    if empty:
        return ArchiveAvailability(False, f"{root} is empty (is its disk mounted?)")
    return ArchiveAvailability(True)
