"""Re-hash archived files against the hashes recorded when they were stored.

Three kinds of finding:

* **missing**: the database vouches for a file that is not on disk (deleted, moved by hand, a
  disk that is not mounted);
* **changed**: the file is there but its size or content hash differs (bit rot, an editor that
  saved over the original, a sync tool that replaced it);
* **untracked**: a file in the archive folder that rollkeeper does not vouch for (copied in by
  hand, or left by another tool). Not an error: ``rollkeeper adopt`` can index it.

Verification only ever reads the archive. The one thing it writes is ``verified_at`` in the
state database, for files that matched, so the scrub knows what was checked when.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rollkeeper.archive.locations import SIDECAR_SUFFIX, entry_location, walk_file_paths
from rollkeeper.importer.hashing import HASH_ALGORITHM, READ_CHUNK_BYTES, new_hasher
from rollkeeper.store.state import ArchiveEntry

#: Outcomes of checking one archived file.
OK = "ok"
MISSING = "missing"
CHANGED = "changed"
UNREADABLE = "unreadable"
UNSUPPORTED_ALGORITHM = "unsupported_algorithm"

#: Called after each file with the bytes just checked (for progress bars).
ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class EntryCheck:
    """What re-hashing one archived file found."""

    relative_path: str
    outcome: str
    expected_size: int
    actual_size: int | None = None
    expected_hash: str = ""
    actual_hash: str | None = None
    detail: str = ""

    @property
    def is_problem(self) -> bool:
        """True for anything but a match (missing, changed, unreadable, unknown algorithm)."""
        return self.outcome != OK


@dataclass(slots=True)
class VerifyReport:
    """The result of one verification pass."""

    checked: int = 0
    bytes_checked: int = 0
    matched: list[str] = field(default_factory=list)
    missing: list[EntryCheck] = field(default_factory=list)
    changed: list[EntryCheck] = field(default_factory=list)
    unreadable: list[EntryCheck] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)

    @property
    def has_damage(self) -> bool:
        """True when any file the archive vouches for is missing, changed or unreadable."""
        return bool(self.missing or self.changed or self.unreadable)

    def add(self, check: EntryCheck) -> None:
        """File one check under its outcome."""
        self.checked += 1
        if check.actual_size is not None and check.outcome in (OK, CHANGED):
            self.bytes_checked += check.actual_size
        if check.outcome == OK:
            self.matched.append(check.relative_path)
        elif check.outcome == MISSING:
            self.missing.append(check)
        elif check.outcome == CHANGED:
            self.changed.append(check)
        else:
            self.unreadable.append(check)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary (``rollkeeper verify --json``)."""

        def describe(check: EntryCheck) -> dict[str, object]:
            return {
                "path": check.relative_path,
                "outcome": check.outcome,
                "expected_size": check.expected_size,
                "actual_size": check.actual_size,
                "expected_hash": check.expected_hash,
                "actual_hash": check.actual_hash,
                "detail": check.detail,
            }

        return {
            "checked": self.checked,
            "bytes_checked": self.bytes_checked,
            "matched": len(self.matched),
            "missing": [describe(check) for check in self.missing],
            "changed": [describe(check) for check in self.changed],
            "unreadable": [describe(check) for check in self.unreadable],
            "untracked": list(self.untracked),
            "ok": not self.has_damage,
        }


def hash_with_progress(path: Path, progress: ProgressCallback | None = None) -> str:
    """Hash a file like :func:`~rollkeeper.importer.hashing.hash_file`, reporting each chunk read.

    Progress per chunk, not per file, so a bar over a 4 GB video still moves.
    """
    hasher = new_hasher()
    with path.open("rb", buffering=0) as stream:
        while chunk := stream.read(READ_CHUNK_BYTES):
            hasher.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return hasher.hexdigest()


def check_entry(
    archive_root: Path, entry: ArchiveEntry, progress: ProgressCallback | None = None
) -> EntryCheck:
    """Re-hash one archived file and compare it with its record. Reads, never writes.

    A size mismatch is reported as changed without reading the file (cheap, and certain).
    ``progress`` is told about exactly ``entry.size`` bytes in all, whatever the outcome, so a
    bar over the sum of recorded sizes ends full.
    """
    reported = 0

    def counted(done: int) -> None:
        nonlocal reported
        reported += done
        if progress is not None:
            progress(done)

    check = _check_entry(archive_root, entry, counted)
    if progress is not None and reported != entry.size:
        progress(entry.size - reported)
    return check


def _check_entry(archive_root: Path, entry: ArchiveEntry, progress: ProgressCallback) -> EntryCheck:
    location = entry_location(archive_root, entry.relative_path)
    base = EntryCheck(
        relative_path=entry.relative_path,
        outcome=OK,
        expected_size=entry.size,
        expected_hash=entry.content_hash,
    )
    if entry.hash_algorithm != HASH_ALGORITHM:
        return _replace(base, UNSUPPORTED_ALGORITHM, detail=f"recorded with {entry.hash_algorithm}")
    try:
        status = location.stat()
    except FileNotFoundError:
        return _replace(base, MISSING)
    except NotADirectoryError:
        # A parent folder was replaced by a file: the recorded file cannot be there.
        return _replace(base, MISSING, detail="a parent folder is not a folder")
    except OSError as error:
        return _replace(base, UNREADABLE, detail=f"{type(error).__name__}: {error.strerror}")
    if not location.is_file():
        return _replace(base, CHANGED, actual_size=status.st_size, detail="not a regular file")
    if status.st_size != entry.size:
        return _replace(base, CHANGED, actual_size=status.st_size, detail="size differs")
    try:
        actual_hash = hash_with_progress(location, progress)
    except FileNotFoundError:
        return _replace(base, MISSING, detail="vanished while being read")
    except OSError as error:
        return _replace(
            base,
            UNREADABLE,
            actual_size=status.st_size,
            detail=f"{type(error).__name__}: {error.strerror}",
        )
    if actual_hash != entry.content_hash:
        return _replace(
            base,
            CHANGED,
            actual_size=status.st_size,
            actual_hash=actual_hash,
            detail="hash differs",
        )
    return _replace(base, OK, actual_size=status.st_size, actual_hash=actual_hash)


def _replace(
    check: EntryCheck,
    outcome: str,
    *,
    actual_size: int | None = None,
    actual_hash: str | None = None,
    detail: str = "",
) -> EntryCheck:
    return EntryCheck(
        relative_path=check.relative_path,
        outcome=outcome,
        expected_size=check.expected_size,
        actual_size=actual_size,
        expected_hash=check.expected_hash,
        actual_hash=actual_hash,
        detail=detail,
    )


def check_entries(
    archive_root: Path,
    entries: Iterable[ArchiveEntry],
    progress: ProgressCallback | None = None,
) -> list[EntryCheck]:
    """Check each entry in turn (the slow, I/O-bound part: run it off the event loop)."""
    return [check_entry(archive_root, entry, progress) for entry in entries]


def find_untracked(archive_root: Path, tracked: Iterable[str]) -> list[str]:
    """Files in the archive folder no ``archive_files`` row vouches for, as relative paths.

    Skips the importer's ``.rollkeeper`` working folder, the ``Albums/`` views, the XMP sidecar
    beside each tracked file (``IMG_1.HEIC.xmp``: rollkeeper's metadata), OS clutter
    (``.DS_Store`` ...) and symlinks. The root is resolved once and walked without following
    links, so each relative path is already in the form the records use.
    """
    tracked_set = set(tracked)
    untracked: list[str] = []
    if not archive_root.is_dir():
        return untracked
    resolved_root = archive_root.resolve()
    prefix_length = len(os.path.join(str(resolved_root), ""))
    for path in walk_file_paths(str(resolved_root), skip_working_folder_of=resolved_root):
        key = path[prefix_length:]
        if os.sep != "/":
            key = key.replace(os.sep, "/")
        if key in tracked_set:
            continue
        if key.endswith(SIDECAR_SUFFIX) and key[: -len(SIDECAR_SUFFIX)] in tracked_set:
            continue
        untracked.append(key)
    return untracked


def build_report(checks: Sequence[EntryCheck], untracked: Sequence[str]) -> VerifyReport:
    """Gather checks and untracked files into one report."""
    report = VerifyReport()
    for check in checks:
        report.add(check)
    report.untracked.extend(untracked)
    return report


def archive_is_reachable(archive_root: Path) -> bool:
    """True when the archive folder exists, can be listed and is not empty.

    Call it only when the database vouches for files in the archive. When it is false (a disk
    that is not mounted, leaving no folder or an empty mount point), every file would be
    reported missing; callers say the one true thing once instead.
    """
    try:
        with os.scandir(archive_root) as entries:
            return any(True for _ in entries)
    except OSError:
        return False
