"""Adopt a folder of photos copied before rollkeeper: index it, never move or rename anything.

Each media file under the folder is hashed and recorded in ``archive_files`` with origin
``adopted``. When a later backup meets a phone file with the same content, the importer records
it as archived at the adopted path and writes nothing. The cost: AFC offers no hashes, so every
phone file is still read once over USB to be hashed; only the writing (and the disk space) is
saved.

Where a row points: relative to the archive root when the adopted file is inside the archive
folder, else its absolute path (see :mod:`rollkeeper.archive.locations`).

Idempotent: a path that already has a row is left exactly as it is (not even re-hashed), so a
second adopt of the same folder adds nothing, and adopting can never overwrite the hash the
importer recorded for one of its own files (which would hide damage from ``verify``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import structlog

from rollkeeper.archive.locations import recorded_path, walk_files
from rollkeeper.archive.verify import ProgressCallback, hash_with_progress
from rollkeeper.importer.hashing import HASH_ALGORITHM
from rollkeeper.store.state import StateStore

log = structlog.get_logger(__name__)

#: The origin recorded for adopted files.
ADOPTED = "adopted"

#: What an iPhone's camera roll holds (and what image tools export from it). Anything else
#: (documents, thumbnails databases, editor project files) is counted and left alone.
MEDIA_EXTENSIONS = frozenset(
    {
        ".heic",
        ".heif",
        ".hif",
        ".jpg",
        ".jpeg",
        ".png",
        ".gif",
        ".tif",
        ".tiff",
        ".dng",
        ".webp",
        ".avif",
        ".mov",
        ".mp4",
        ".m4v",
        ".3gp",
        ".aae",
    }
)


@dataclass(frozen=True, slots=True)
class AdoptCandidate:
    """A media file found under the folder, and the key it would be recorded under."""

    path: Path
    recorded_path: str
    size: int


@dataclass(slots=True)
class AdoptReport:
    """What an adopt did."""

    folder: str
    files_found: int = 0
    bytes_found: int = 0
    not_media: int = 0
    adopted: list[str] = field(default_factory=list)
    bytes_adopted: int = 0
    already_indexed: int = 0
    duplicates: int = 0
    size_conflicts: list[str] = field(default_factory=list)
    changed_while_reading: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def has_problems(self) -> bool:
        """True when some files could not be adopted and need a look."""
        return bool(self.size_conflicts or self.changed_while_reading or self.unreadable)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary (``rollkeeper adopt --json``)."""
        return {
            "folder": self.folder,
            "files_found": self.files_found,
            "bytes_found": self.bytes_found,
            "not_media": self.not_media,
            "adopted": len(self.adopted),
            "adopted_paths": list(self.adopted),
            "bytes_adopted": self.bytes_adopted,
            "already_indexed": self.already_indexed,
            "duplicates": self.duplicates,
            "size_conflicts": list(self.size_conflicts),
            "changed_while_reading": list(self.changed_while_reading),
            "unreadable": [{"path": path, "error": error} for path, error in self.unreadable],
            "ok": not self.has_problems,
        }


def is_media(path: Path) -> bool:
    """True for file names with a photo, video or sidecar extension (any case)."""
    return path.suffix.lower() in MEDIA_EXTENSIONS


def collect_candidates(
    folder: Path, archive_root: Path, report: AdoptReport
) -> list[AdoptCandidate]:
    """Walk the folder (no symlinks, no clutter, not the importer's working folder)."""
    candidates = []
    for path in walk_files(folder, skip_working_folder_of=archive_root):
        if not is_media(path):
            report.not_media += 1
            continue
        try:
            size = path.stat().st_size
        except OSError as error:
            report.unreadable.append((str(path), error.strerror or type(error).__name__))
            continue
        candidates.append(AdoptCandidate(path, recorded_path(archive_root, path), size))
        report.files_found += 1
        report.bytes_found += size
    return candidates


def adopt_candidates(
    store: StateStore,
    candidates: Iterable[AdoptCandidate],
    report: AdoptReport,
    *,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> AdoptReport:
    """Hash each candidate that has no row yet and record it as adopted."""
    for candidate in candidates:
        reported = 0

        def counted(done: int) -> None:
            nonlocal reported
            reported += done
            if progress is not None:
                progress(done)

        try:
            _adopt_one(store, candidate, report, now, counted)
        finally:
            # Skipped or shorter files still move the bar by their listed size.
            if progress is not None and reported < candidate.size:
                progress(candidate.size - reported)
    log.info(
        "adopt_finished",
        folder=report.folder,
        adopted=len(report.adopted),
        already_indexed=report.already_indexed,
        duplicates=report.duplicates,
        problems=len(report.size_conflicts)
        + len(report.changed_while_reading)
        + len(report.unreadable),
    )
    return report


def _adopt_one(
    store: StateStore,
    candidate: AdoptCandidate,
    report: AdoptReport,
    now: datetime | None,
    progress: ProgressCallback,
) -> None:
    existing = store.archive_entry(candidate.recorded_path)
    if existing is not None:
        report.already_indexed += 1
        if existing.size != candidate.size:
            # The row is what the archive vouches for; a different size on disk is damage
            # or an edit, for verify to report, never something adopt papers over.
            report.size_conflicts.append(candidate.recorded_path)
        return
    try:
        before = candidate.path.stat()
        content_hash = hash_with_progress(candidate.path, progress)
        after = candidate.path.stat()
    except OSError as error:
        report.unreadable.append((candidate.recorded_path, error.strerror or type(error).__name__))
        log.warning("adopt_unreadable", path=candidate.recorded_path, error=str(error))
        return
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or (
        after.st_size != candidate.size
    ):
        # Something is still writing the file (a copy in progress): a hash of a moving target
        # would vouch for content that is not there. Adopting again later picks it up.
        report.changed_while_reading.append(candidate.recorded_path)
        log.warning("adopt_changed_while_reading", path=candidate.recorded_path)
        return
    if store.archive_entry_by_hash(content_hash) is not None:
        report.duplicates += 1
    store.add_archive_entry(
        candidate.recorded_path, content_hash, HASH_ALGORITHM, after.st_size, ADOPTED, now
    )
    report.adopted.append(candidate.recorded_path)
    report.bytes_adopted += after.st_size
    log.debug("file_adopted", path=candidate.recorded_path, bytes=after.st_size)


def adopt_folder(
    store: StateStore,
    archive_root: Path,
    folder: Path,
    *,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> AdoptReport:
    """Index every media file under ``folder`` (see the module docstring); returns a report."""
    report = AdoptReport(folder=str(folder.resolve()))
    candidates = collect_candidates(folder, archive_root, report)
    return adopt_candidates(store, candidates, report, progress=progress, now=now)


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be adopted, as one line, or None when it can."""
    if not folder.exists():
        return f"{folder}: no such folder"
    if not folder.is_dir():
        return f"{folder}: not a folder (adopt indexes a folder and everything under it)"
    if not os.access(folder, os.R_OK | os.X_OK):
        return f"{folder}: cannot be read"
    return None
