"""``rollkeeper archive init`` and ``rollkeeper forget``: the two on-purpose acts on the archive.

``init`` is the one way (besides the first run of an archive under the home folder) an archive
root and its marker are made: the user says "this folder is my archive". ``forget`` is how a
user says a file was removed from the archive on purpose: it is never restored, never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from rollkeeper.archive.identity import (
    filesystem_identity,
    read_marker,
    record,
    write_marker,
)
from rollkeeper.archive.locations import recorded_path
from rollkeeper.store.archive_truth import ArchiveTruthRepository

log = structlog.get_logger("rollkeeper.archive")


@dataclass(frozen=True, slots=True)
class InitOutcome:
    """What ``archive init`` did, in words, and whether it refused."""

    message: str
    refused: bool = False


def initialise_archive(root: Path, truth: ArchiveTruthRepository) -> InitOutcome:
    """Make ``root`` the archive of this state (creating it and its marker as needed).

    A folder that already carries the state's marker is left as it is (its file system is
    recorded again: the archive was moved to another disk on purpose). A marker with another
    id is refused: that folder is another archive. A folder without a marker gets one carrying
    the state's id when the state has one (this is the archive, its marker was lost), else a
    new id.
    """
    recorded = truth.recorded_identity()
    marker = read_marker(root) if root.is_dir() else None
    if marker is not None:
        if recorded is not None and marker.archive_id != recorded.archive_id:
            return InitOutcome(
                f"{root} is another archive (id {marker.archive_id}, made {marker.created_at});"
                f" this state's archive is {recorded.archive_id}: nothing changed",
                refused=True,
            )
        here = filesystem_identity(root)
        truth.record_identity(marker.archive_id, str(root), here, marker.created_at)
        return InitOutcome(f"{root} is already this state's archive (id {marker.archive_id})")
    created = not root.exists()
    if created:
        root.mkdir(mode=0o700, parents=True)
    made = write_marker(root, recorded.archive_id if recorded is not None else None)
    record(truth, root, made)
    log.info("archive_initialised", root=str(root), archive_id=made.archive_id, created=created)
    verb = "created" if created else "marked"
    return InitOutcome(f"{verb} the archive {root} (id {made.archive_id})")


def forget_file(root: Path, path: Path, truth: ArchiveTruthRepository) -> str | None:
    """Record that the archive file at ``path`` was removed on purpose; returns the recorded
    path, or None when rollkeeper does not vouch for any file there."""
    candidates = (
        [recorded_path(root, path)]
        if path.is_absolute()
        else [
            path.as_posix(),
            recorded_path(root, Path.cwd() / path),
        ]
    )
    for relative in candidates:
        content_hash = truth.recorded_hash(relative)
        if content_hash is not None:
            break
    else:
        return None
    truth.forget(relative, content_hash)
    log.info("archive_file_forgotten", path=relative)
    return relative
