"""Is every file counted as "already in the archive" really there? One ``lstat`` per file.

Before a run calls a file archived, its archive copy is looked at: it exists as a regular file
with the size, mtime and ctime recorded right after it was placed. A same-size rewrite in place
changes the ctime (nothing but the kernel sets it), so a file whose stats moved is hashed
(:class:`Suspect`) before it is called damaged; silent bit rot that leaves the stats alone is
the scrub's to find (:mod:`.scrub`), and a file whose last re-hash failed is hashed again here
too, so a scrub finding is healed on the next plug-in.

Paths are joined as strings and stat'ed without ``Path`` objects: at 100,000 files the check is
the cost of the syscalls (bench/presence.py).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rollkeeper.store.archive_truth import PlacedFile

#: Finding kinds.
MISSING = "missing"
RESIZED = "resized"
DAMAGED = "damaged"


@dataclass(frozen=True, slots=True)
class Suspect:
    """A file whose stats changed or whose last re-hash failed: hash it before judging."""

    placed: PlacedFile
    why: str


@dataclass(slots=True)
class PresenceReport:
    """What the presence check saw of one phone's archived files."""

    checked: int = 0
    #: Not there (or not a regular file any more).
    missing: list[PlacedFile] = field(default_factory=list)
    #: There with another size: damaged without hashing.
    resized: list[tuple[PlacedFile, int]] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)
    #: (relative path, mtime ns, ctime ns) of files with no recorded stats yet.
    to_stamp: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def problems(self) -> int:
        """Files that are certainly not as placed (suspects not counted)."""
        return len(self.missing) + len(self.resized)


def check_presence(
    root: Path, placed: Iterable[PlacedFile], skip: frozenset[str] | set[str] = frozenset()
) -> PresenceReport:
    """``lstat`` every placed file under ``root`` (paths in ``skip`` — forgotten ones — are
    left alone) and sort them: fine, missing, resized, suspect, or never stamped."""
    report = PresenceReport()
    prefix = str(root) + os.sep
    lstat = os.lstat
    for item in placed:
        if item.relative_path in skip:
            continue
        report.checked += 1
        try:
            status = lstat(prefix + item.relative_path)
        except (FileNotFoundError, NotADirectoryError):
            report.missing.append(item)
            continue
        if not stat.S_ISREG(status.st_mode):
            report.missing.append(item)
            continue
        if status.st_size != item.size:
            report.resized.append((item, status.st_size))
            continue
        if item.placed_mtime_ns is None or item.placed_ctime_ns is None:
            report.to_stamp.append((item.relative_path, status.st_mtime_ns, status.st_ctime_ns))
            if item.verify_failed:
                report.suspects.append(Suspect(item, "the last re-hash failed"))
            continue
        if status.st_mtime_ns != item.placed_mtime_ns or status.st_ctime_ns != item.placed_ctime_ns:
            report.suspects.append(Suspect(item, "changed since it was placed"))
        elif item.verify_failed:
            report.suspects.append(Suspect(item, "the last re-hash failed"))
    return report


def placed_stats(root: Path, relative_paths: Iterable[str]) -> list[tuple[str, int, int]]:
    """(path, mtime ns, ctime ns) of each regular file among ``relative_paths`` now."""
    stamped: list[tuple[str, int, int]] = []
    prefix = str(root) + os.sep
    for path in relative_paths:
        try:
            status = os.lstat(prefix + path)
        except OSError:
            continue
        if stat.S_ISREG(status.st_mode):
            stamped.append((path, status.st_mtime_ns, status.st_ctime_ns))
    return stamped
