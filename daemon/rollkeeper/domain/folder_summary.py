"""When a phone folder's last listing still vouches for its files, and how much is re-checked.

A re-plug learns what changed on the phone from each folder's own stat (GET_FILE_INFO on the
folder: on APFS ``st_mtime`` moves and ``st_nlink`` counts entries whenever an entry is added,
removed or renamed) and a fingerprint of its sorted names. A photo deleted and another saved
under the same name (``IMG_0003.JPG`` replaced) leaves the names alone but moves the folder's
``st_mtime``: the folder is then stat'ed file by file. What a folder stat cannot see (a file
rewritten in place) is left to the rotating check (:func:`rotating_slice_size`, least recently
checked first) and the full check (:func:`full_check_due`). Together they give the bound
documented in docs/architecture.md: a file replaced in place is found within
:data:`ROTATION_PLUG_INS` scans or ``schedule.full_check_days`` days, whichever comes first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Every settled file is re-stat'ed at least once in this many scans.
ROTATION_PLUG_INS = 50
#: The smallest rotating slice: a small phone is re-checked faster than every 50 scans.
MINIMUM_SLICE = 64


@dataclass(frozen=True, slots=True)
class FolderStat:
    """The phone's stat of a folder: the fields that change when an entry is added, removed
    or renamed (None: the phone left the field out, or the stat failed)."""

    mtime_ns: int | None = None
    nlink: int | None = None
    size: int | None = None

    @property
    def complete(self) -> bool:
        """Every field was sent: only then can an unchanged stat vouch for the folder."""
        return self.mtime_ns is not None and self.nlink is not None and self.size is not None


def names_fingerprint(names: list[str]) -> str:
    """A fingerprint of a folder's checked names, independent of their listing order."""
    # Names never hold NUL (checked before they get here): joined, they hash in one call.
    joined = "\0".join(sorted(names)).encode("utf-8", "surrogateescape")
    return hashlib.blake2b(joined, digest_size=16).hexdigest()


def rotating_slice_size(settled_files: int) -> int:
    """How many settled files a scan re-stats: at least ``max(64, files / 50)`` (rounded up),
    so that every file has had its turn within :data:`ROTATION_PLUG_INS` scans."""
    return max(MINIMUM_SLICE, -(-settled_files // ROTATION_PLUG_INS))


def full_check_due(last_full_check: datetime | None, now: datetime, period_days: float) -> bool:
    """Whether every file must be stat'ed now: never done, or done ``period_days`` ago."""
    return last_full_check is None or now - last_full_check >= timedelta(days=period_days)
