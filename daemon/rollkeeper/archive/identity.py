"""The archive's identity marker, and the one check of whether the archive is there.

An archive carries a marker in its working folder (``.rollkeeper/archive.json``: an archive id,
when it was made, the format version and the file system it was made on), and the state
database records the same id. Before anything is called archived — every run, ``status``, the
scrub, the offsite copy — :func:`check_archive` looks: the root exists, is a folder we may
write, and carries the recorded id on the recorded file system. Anything else is "archive not
available", told apart by :class:`~rollkeeper.domain.archive_state.ArchiveProblem`, and nothing
is written (an unmounted disk's empty mount point must never become a fresh, empty archive on
the system disk).

The marker and the root are created only on purpose (:func:`initialise_archive`: ``rollkeeper
archive init``), or by the first run of a new archive whose path is under the home folder on
the home's own file system (:func:`may_create_implicitly`).
"""

from __future__ import annotations

import errno
import json
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rollkeeper.archive.locations import WORKING_FOLDER_NAME
from rollkeeper.domain.archive_state import (
    REMOVABLE_MEDIA_ROOTS,
    ArchiveProblem,
    ArchiveState,
)
from rollkeeper.host.durability import fsync_folder
from rollkeeper.store.archive_truth import ArchiveTruthRepository, RecordedIdentity


def _log_info(event: str, **fields: str) -> None:
    """Log lazily: ``status`` imports this module and must not pay for structlog."""
    import structlog

    structlog.get_logger("rollkeeper.archive").info(event, **fields)


MARKER_NAME = "archive.json"
MARKER_FORMAT = 1
#: How many recorded files an archive from before markers must show to be recognised.
UPGRADE_SAMPLE = 20


@dataclass(frozen=True, slots=True)
class Marker:
    """What an archive's marker says."""

    archive_id: str
    created_at: str
    format_version: int
    filesystem: str


def marker_path(root: Path) -> Path:
    """Where the marker of the archive at ``root`` is."""
    return root / WORKING_FOLDER_NAME / MARKER_NAME


def read_marker(root: Path) -> Marker | None:
    """The marker at ``root``, or None when there is none; OSError (EACCES...) propagates,
    and a marker that is not ours raises ValueError."""
    try:
        text = marker_path(root).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    document = json.loads(text)
    if not isinstance(document, dict) or not isinstance(document.get("archive_id"), str):
        raise ValueError("the marker holds no archive id")
    return Marker(
        archive_id=document["archive_id"],
        created_at=str(document.get("created_at", "")),
        format_version=int(document.get("format_version", MARKER_FORMAT)),
        filesystem=str(document.get("filesystem", "")),
    )


def filesystem_identity(path: Path) -> str:
    """The identity of the file system holding ``path``: its UUID where Linux names one
    (``/dev/disk/by-uuid``), else the kernel's file system id, else the device number.

    The device number alone can change between plug-ins of a USB disk; the UUID does not.
    """
    status = os.stat(path)
    if sys.platform.startswith("linux"):
        by_uuid = _uuid_of_device(status.st_dev)
        if by_uuid:
            return f"uuid:{by_uuid}"
    try:
        fsid = os.statvfs(path).f_fsid
    except (OSError, AttributeError):
        fsid = 0
    if fsid:
        return f"fsid:{fsid:x}"
    return f"dev:{os.major(status.st_dev)}:{os.minor(status.st_dev)}"


def filesystems_differ(recorded: str, here: str) -> bool:
    """Whether two file system identities name different disks for certain: only two UUIDs
    are compared. A device number (and the kernel's file system id of FUSE, tmpfs, XFS, FAT,
    derived from it) changes from one mount of the same disk to the next, and a container may
    see no ``/dev/disk/by-uuid``: those never refuse an archive whose marker matches."""
    return recorded.startswith("uuid:") and here.startswith("uuid:") and recorded != here


def _uuid_of_device(device: int) -> str:
    """The UUID udev gives the block device numbered ``device`` (empty when none)."""
    folder = Path("/dev/disk/by-uuid")
    try:
        links = list(folder.iterdir())
    except OSError:
        return ""
    for link in links:
        try:
            if os.stat(link).st_rdev == device:
                return link.name
        except OSError:
            continue
    return ""


def may_create_implicitly(root: Path, home: Path | None = None) -> bool:
    """Whether the first run may make the archive at ``root`` without being asked.

    Never under a removable-media root (an empty folder there is an unmounted disk's mount
    point). Under the home folder, only when the nearest existing parent is on the home's
    file system. Elsewhere, only a folder that already exists (made on purpose).
    """
    home = home if home is not None else Path.home()
    if any(root == Path(prefix) or root.is_relative_to(prefix) for prefix in REMOVABLE_MEDIA_ROOTS):
        return False
    if root.is_dir() and not root.is_relative_to(home):
        # A folder made on purpose outside the home and the removable-media roots (/srv,
        # /data, a test's folder): the user's word that this is where the archive goes.
        return True
    if not root.is_relative_to(home) or root == home:
        return False
    existing = root.parent
    while not existing.exists():
        if existing == home:
            return False
        existing = existing.parent
    try:
        return os.stat(existing).st_dev == os.stat(home).st_dev
    except OSError:
        return False


def write_marker(root: Path, archive_id: str | None = None) -> Marker:
    """Write a marker into the (existing) archive folder at ``root``: a new id unless one is
    given. Written to a temporary name, fsync'ed and renamed (never a half marker)."""
    working = root / WORKING_FOLDER_NAME
    if not working.exists():
        working.mkdir(mode=0o700)
        fsync_folder(root)
    marker = Marker(
        archive_id=archive_id or uuid.uuid4().hex,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        format_version=MARKER_FORMAT,
        filesystem=filesystem_identity(root),
    )
    document = {
        "archive_id": marker.archive_id,
        "created_at": marker.created_at,
        "format_version": marker.format_version,
        "filesystem": marker.filesystem,
        "about": "rollkeeper's archive marker: the state database names this archive by its id",
    }
    temporary = working / (MARKER_NAME + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        json.dump(document, stream, indent=2)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, marker_path(root))
    fsync_folder(working)
    return marker


def record(truth: ArchiveTruthRepository, root: Path, marker: Marker) -> None:
    """Make the state database name the archive that ``marker`` names."""
    truth.record_identity(marker.archive_id, str(root), marker.filesystem, marker.created_at)


class ArchiveGuard:
    """The availability check of one archive root against one state database."""

    def __init__(self, root: Path, home: Path | None = None) -> None:
        self.root = root
        self._home = home

    def check(self, truth: ArchiveTruthRepository, *, writing: bool = False) -> ArchiveState:
        """Is the archive there? With ``writing`` (a backup run), a new archive may be made
        (:func:`may_create_implicitly`) and the identity recorded; without it nothing is
        written anywhere (``status``, the scrub, the offsite copy)."""
        state = self.look(truth.recorded_identity(), truth_knows_files(truth))
        return self.settle(truth, state) if writing else state

    def look(self, recorded: RecordedIdentity | None, known_paths: list[str]) -> ArchiveState:
        """The disk side of :meth:`check` (no database: callable from a worker thread)."""
        return check_archive(self.root, recorded, known_paths)

    def settle(self, truth: ArchiveTruthRepository, state: ArchiveState) -> ArchiveState:
        """Make a new archive's marker, or record a found one, where that is allowed."""
        return self._settle(truth, state)

    def _settle(self, truth: ArchiveTruthRepository, state: ArchiveState) -> ArchiveState:
        root = self.root
        if state.problem is ArchiveProblem.NEW and state.marker_id:
            # A marked archive and a state that names none (a new state, lost state).
            found = read_marker(root)
            if found is None:
                return state
            record(truth, root, found)
            _log_info("archive_identity_adopted", root=str(root), archive_id=found.archive_id)
            return ArchiveState(root=str(root), archive_id=found.archive_id)
        made: Marker | None = None
        if state.problem is ArchiveProblem.NEW and may_create_implicitly(root, self._home):
            if not root.exists():
                root.mkdir(mode=0o700, parents=True)
            made = write_marker(root)
            _log_info("archive_created", root=str(root), archive_id=made.archive_id)
        elif state.problem is ArchiveProblem.UPGRADE:
            made = write_marker(root)
            _log_info("archive_marker_added", root=str(root), archive_id=made.archive_id)
        if made is None:
            return state
        record(truth, root, made)
        return ArchiveState(root=str(root), archive_id=made.archive_id)


def truth_knows_files(truth: ArchiveTruthRepository) -> list[str]:
    """Up to :data:`UPGRADE_SAMPLE` recorded paths inside the archive (empty: none)."""
    return truth.sample_paths(UPGRADE_SAMPLE)


def check_archive(
    root: Path, recorded: RecordedIdentity | None, known_paths: list[str]
) -> ArchiveState:
    """What is at ``root``, against what the state recorded; writes nothing."""
    where = str(root)
    try:
        os.stat(root)
    except FileNotFoundError:
        parent_missing = not root.parent.exists()
        if recorded is None and not known_paths:
            return ArchiveState(where, problem=ArchiveProblem.NEW, parent_missing=parent_missing)
        return ArchiveState(
            where, problem=ArchiveProblem.MISSING_ROOT, parent_missing=parent_missing
        )
    except PermissionError as error:
        return _not_allowed(where, error)
    except OSError as error:
        return ArchiveState(where, problem=ArchiveProblem.UNREADABLE, detail=_words(error))
    if not os.path.isdir(root):
        return ArchiveState(where, problem=ArchiveProblem.NOT_A_FOLDER)
    try:
        marker = read_marker(root)
    except PermissionError as error:
        return _not_allowed(where, error)
    except (OSError, ValueError) as error:
        detail = _words(error) if isinstance(error, OSError) else str(error)
        return ArchiveState(where, problem=ArchiveProblem.UNREADABLE, detail=detail)
    if not os.access(root, os.W_OK | os.X_OK):
        return ArchiveState(where, problem=ArchiveProblem.NOT_WRITABLE)
    return _compare(root, marker, recorded, known_paths)


def _compare(
    root: Path,
    marker: Marker | None,
    recorded: RecordedIdentity | None,
    known_paths: list[str],
) -> ArchiveState:
    where = str(root)
    if marker is None:
        if recorded is not None:
            return ArchiveState(where, problem=ArchiveProblem.MISSING_MARKER)
        if known_paths:
            if any(os.path.lexists(root / path) for path in known_paths):
                return ArchiveState(where, problem=ArchiveProblem.UPGRADE)
            return ArchiveState(where, problem=ArchiveProblem.MISSING_MARKER)
        return ArchiveState(where, problem=ArchiveProblem.NEW)
    if recorded is None:
        return ArchiveState(where, problem=ArchiveProblem.NEW, marker_id=marker.archive_id)
    if marker.archive_id != recorded.archive_id:
        return ArchiveState(
            where,
            problem=ArchiveProblem.OTHER_ARCHIVE,
            archive_id=recorded.archive_id,
            marker_id=marker.archive_id,
            detail=marker.created_at,
        )
    here = filesystem_identity(root)
    if filesystems_differ(recorded.filesystem, here):
        return ArchiveState(
            where,
            problem=ArchiveProblem.OTHER_FILESYSTEM,
            archive_id=recorded.archive_id,
            marker_id=marker.archive_id,
            detail=f"{here}, recorded {recorded.filesystem}",
        )
    return ArchiveState(where, archive_id=recorded.archive_id)


def _not_allowed(where: str, error: OSError) -> ArchiveState:
    return ArchiveState(where, problem=ArchiveProblem.NOT_ALLOWED, detail=_words(error))


def _words(error: OSError) -> str:
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return error.strerror or str(error)
