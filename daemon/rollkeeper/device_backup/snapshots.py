"""Point-in-time device backups: one folder per completed backup, unchanged files shared.

Layout under the ``[device_backup] path`` folder::

    <udid>/2026-06-10T08-30-00Z/<udid>/Info.plist, Manifest.db, 3b/3b29...   a snapshot
    <udid>/2026-06-10T08-30-00Z/rollkeeper-snapshot.json                     its summary
    <udid>/.in-progress/<udid>/...                                           the working copy

Each snapshot folder is itself a backup folder that idevicebackup2, pymobiledevice3 and Finder
restore from (they look for ``<folder>/<udid>/Manifest.plist``). A backup starts by making the
working copy from the newest snapshot: every file is a reflink (where the filesystem has them)
or a hard link, except the three small plists the backup client rewrites in place, which are
copied. The client only ever replaces files by rename (:mod:`.safe_link`), so no snapshot's
bytes change after it completes. Completion fsyncs what this run wrote, writes the summary and
renames the working copy to its snapshot name: a snapshot exists whole or not at all. A backup
that stopped half-way leaves only the working copy, which the next backup discards and makes
again from the last snapshot (the phone then sends what changed since that one). Old
snapshots are pruned to ``keep`` only after a new one completes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import structlog

from rollkeeper.device_backup.safe_link import PARTIAL_SUFFIX

log = structlog.get_logger(__name__)

WORKING_NAME = ".in-progress"
SUMMARY_NAME = "rollkeeper-snapshot.json"
#: Rewritten in place by the backup client (``open("wb")``, ``touch``): copied, never linked.
COPIED_FILES = frozenset({"Info.plist", "Status.plist", "Manifest.plist"})
#: linux/fs.h FICLONE: share a file's extents (btrfs, XFS, bcachefs).
_FICLONE = 0x40049409


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    """What ``rollkeeper-snapshot.json`` says about one completed snapshot."""

    udid: str
    snapshot_id: str
    started_at: str
    finished_at: str
    files: int
    bytes: int
    encrypted: bool
    camera_roll_files: int
    files_received: int
    bytes_received: int
    #: Bytes of files that share no storage with the previous snapshot (new inodes).
    added_bytes: int
    link_mode: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A completed snapshot on disk."""

    udid: str
    snapshot_id: str
    folder: Path
    summary: SnapshotSummary | None

    @property
    def backup_folder(self) -> Path:
        """The ``<udid>`` folder inside it (Manifest.plist, Manifest.db, blobs)."""
        return self.folder / self.udid


def snapshot_id_for(moment: datetime) -> str:
    """A snapshot's folder name: its completion time in UTC, sortable, no colons."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")


class SnapshotFolder:
    """The snapshots of every phone under one device-backup folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def phone_folder(self, udid: str) -> Path:
        """``<root>/<udid>`` (the UDID is checked before it becomes a path)."""
        if not udid or "/" in udid or udid.startswith(".") or "\x00" in udid:
            raise ValueError(f"not a usable UDID: {udid!r}")
        return self.root / udid

    def working_folder(self, udid: str) -> Path:
        """The backup folder the client writes into: ``<root>/<udid>/.in-progress``."""
        return self.phone_folder(udid) / WORKING_NAME

    def snapshots(self, udid: str) -> list[Snapshot]:
        """Completed snapshots of a phone, oldest first."""
        folder = self.phone_folder(udid)
        if not folder.is_dir():
            return []
        found = []
        for entry in sorted(folder.iterdir(), key=lambda path: path.name):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            found.append(Snapshot(udid, entry.name, entry, read_summary(entry)))
        return found

    def phones(self) -> list[str]:
        """UDIDs with a folder here."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def latest(self, udid: str) -> Snapshot | None:
        """The newest completed snapshot, if any."""
        found = self.snapshots(udid)
        return found[-1] if found else None

    def begin(self, udid: str) -> tuple[Path, str]:
        """Make a fresh working copy from the newest snapshot; (backup folder, link mode).

        A working copy left by a stopped backup is discarded first: it may hold the phone's
        half-sent state, and the newest snapshot is the one consistent starting point.
        """
        working = self.working_folder(udid)
        if working.exists():
            log.info("device_backup_discarding_working_copy", udid=udid, path=str(working))
            shutil.rmtree(working)
        target = working / udid
        target.mkdir(parents=True, mode=0o700)
        latest = self.latest(udid)
        mode = "none"
        if latest is not None and latest.backup_folder.is_dir():
            mode = clone_tree(latest.backup_folder, target)
        return working, mode

    def complete(self, udid: str, summary: SnapshotSummary, written: Iterable[Path]) -> Snapshot:
        """Flush, describe and rename the working copy into a snapshot; prune nothing yet."""
        working = self.working_folder(udid)
        remove_partials(working)
        flush(written, working / udid)
        final = self.phone_folder(udid) / summary.snapshot_id
        suffix = 1
        while final.exists():
            # Two backups finished within one second: the later one gets a suffix.
            suffix += 1
            final = self.phone_folder(udid) / f"{summary.snapshot_id}-{suffix}"
        summary = replace(summary, snapshot_id=final.name)
        summary_path = working / SUMMARY_NAME
        summary_path.write_text(json.dumps(asdict(summary), indent=2) + "\n")
        _fsync_path(summary_path)
        _fsync_path(working)
        os.rename(working, final)
        _fsync_path(final.parent)
        return Snapshot(udid, summary.snapshot_id, final, summary)

    def prune(self, udid: str, keep: int) -> list[str]:
        """Delete the oldest completed snapshots beyond ``keep``; the ids deleted."""
        found = self.snapshots(udid)
        doomed = found[: max(0, len(found) - max(1, keep))]
        for snapshot in doomed:
            shutil.rmtree(snapshot.folder)
            log.info("device_backup_pruned", udid=udid, snapshot=snapshot.snapshot_id)
        return [snapshot.snapshot_id for snapshot in doomed]


def read_summary(folder: Path) -> SnapshotSummary | None:
    """A snapshot's summary, or None if it has none we can read."""
    try:
        data = json.loads((folder / SUMMARY_NAME).read_text())
        return SnapshotSummary(**data)
    except (OSError, ValueError, TypeError):
        return None


def clone_tree(source: Path, target: Path) -> str:
    """Share every file of ``source`` into ``target``: "reflink", "hardlink" or "copy"."""
    mode = "reflink"
    for folder, subfolders, names in os.walk(source):
        relative = Path(folder).relative_to(source)
        destination_folder = target / relative
        destination_folder.mkdir(exist_ok=True, mode=0o700)
        for name in subfolders:
            (destination_folder / name).mkdir(exist_ok=True, mode=0o700)
        for name in names:
            if name.endswith(PARTIAL_SUFFIX):
                continue
            origin = Path(folder) / name
            destination = destination_folder / name
            if relative == Path(".") and name in COPIED_FILES:
                shutil.copyfile(origin, destination)
                continue
            mode = _share(origin, destination, mode)
    return mode


def _share(origin: Path, destination: Path, mode: str) -> str:
    """Reflink while the filesystem allows it, else hard link, else copy."""
    if mode == "reflink":
        try:
            _reflink(origin, destination)
            return mode
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY):
                raise
            mode = "hardlink"
    if mode == "hardlink":
        try:
            os.link(origin, destination)
            return mode
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.EMLINK, errno.EXDEV, errno.EOPNOTSUPP):
                raise
            mode = "copy"
    shutil.copyfile(origin, destination)
    return mode


def _reflink(origin: Path, destination: Path) -> None:
    with origin.open("rb") as source:
        descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.ioctl(descriptor, _FICLONE, source.fileno())
        except OSError:
            os.close(descriptor)
            destination.unlink(missing_ok=True)
            raise
        os.close(descriptor)


def remove_partials(folder: Path) -> None:
    """Delete the temporary files a stopped transfer left."""
    for path in folder.rglob(f"*{PARTIAL_SUFFIX}"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def flush(written: Iterable[Path], backup_folder: Path) -> None:
    """fsync the files this run wrote (and the metadata), then their folders."""
    folders = {backup_folder}
    paths = set(written) | {backup_folder / name for name in ("Manifest.db", *COPIED_FILES)}
    for path in paths:
        if path.is_file():
            _fsync_path(path)
            folders.add(path.parent)
    for folder in folders:
        _fsync_path(folder)


def _fsync_path(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def tree_usage(folder: Path, seen: set[tuple[int, int]] | None = None) -> int:
    """Bytes of storage under ``folder`` counting each inode once (``seen`` carries over)."""
    seen = set() if seen is None else seen
    total = 0
    for current, _subfolders, names in os.walk(folder):
        for name in names:
            info = os.lstat(os.path.join(current, name))
            key = (info.st_dev, info.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += info.st_blocks * 512
    return total
