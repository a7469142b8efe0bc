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

from rollkeeper.store.archive_truth import PlacedFile, PlacedRow

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

    @property
    def needs_healing(self) -> bool:
        """Whether anything is missing, resized or suspect (the healer has work to do)."""
        return bool(self.missing or self.resized or self.suspects)


def check_presence(
    root: Path, placed: Iterable[PlacedRow], skip: frozenset[str] | set[str] = frozenset()
) -> PresenceReport:
    """``lstat`` every placed file under ``root`` once (paths in ``skip`` — forgotten ones —
    and absolute paths are left alone) and sort them: fine, missing, resized, suspect, or
    never stamped. A :class:`PlacedFile` is made only for the files in question."""
    report = PresenceReport()
    prefix = str(root) + os.sep
    lstat = os.lstat
    is_regular = stat.S_ISREG
    seen: set[str] = set()
    for row in placed:
        path, size, mtime, ctime, verify_failed, _present = row
        if path in seen or path in skip or path[:1] == "/":
            continue
        seen.add(path)
        try:
            status = lstat(prefix + path)
        except (FileNotFoundError, NotADirectoryError):
            report.missing.append(_placed(row))
            continue
        if not is_regular(status.st_mode):
            report.missing.append(_placed(row))
        elif status.st_size != size:
            report.resized.append((_placed(row), status.st_size))
        elif mtime is None or ctime is None:
            report.to_stamp.append((path, status.st_mtime_ns, status.st_ctime_ns))
            if verify_failed:
                report.suspects.append(Suspect(_placed(row), "the last re-hash failed"))
        elif status.st_mtime_ns != mtime or status.st_ctime_ns != ctime:
            report.suspects.append(Suspect(_placed(row), "changed since it was placed"))
        elif verify_failed:
            report.suspects.append(Suspect(_placed(row), "the last re-hash failed"))
    report.checked = len(seen)
    return report


def _placed(row: PlacedRow) -> PlacedFile:
    path, size, mtime, ctime, verify_failed, present = row
    return PlacedFile(path, "", size, mtime, ctime, bool(verify_failed), bool(present))


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
