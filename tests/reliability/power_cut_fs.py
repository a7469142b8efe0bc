"""A FUSE filesystem for tests that forgets, on command, everything not yet durable.

``python -m tests.reliability.power_cut_fs --store STORE --mount MOUNT`` serves ``STORE/tree``
at ``MOUNT``, passing every operation through while :class:`DurabilityModel` keeps what a power
cut would leave (see its module for the model). It talks on its standard streams, one line each:

* it prints ``mounted`` once the kernel has mounted it;
* ``writeback FOLDER`` (relative to the mount) makes that subtree durable (file contents and
  folder entries), as the kernel's writeback and a journal's commit may at any time; it
  answers ``written back N`` (files and folders that had something pending);
* ``cut`` (on stdin) is the power cut: from that instant every operation fails with ``EIO``
  (the disk is gone) and nothing more becomes durable; it answers ``cut files=N folders=M``
  (what the cut takes back);
* after it is unmounted (``fusermount3 -u MOUNT``) it rebuilds the tree as the cut left it
  when there was a cut, prints ``rebuilt files=... folders=... bytes=...`` (or ``unmounted``)
  and exits 0; a clean unmount keeps everything, as a clean unmount of a real disk does;
* end of stdin (the test process died) unmounts it, so a mount never outlives its test.

Writes are write-through (no ``writeback_cache``) and the page cache stays on (no
``direct_io``): each ``write()`` reaches this process before it returns, and pages written
through a shared ``mmap`` (SQLite's ``-shm``) reach it at writeback or ``fsync``, which the
kernel always does before it sends FSYNC. "Durable" is therefore decided here, at FSYNC and
FSYNCDIR, and nothing the kernel still holds survives a cut (the remount drops its cache).
Operations run one at a time (``-s``): the model sees them in the kernel's order.

``--no-hard-links`` refuses ``link(2)`` with ``EPERM``, as exFAT and FAT do, so that the code
path for such disks (rollkeeper then checks the name and renames) runs under the same model.
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import mfusepy  # type: ignore[import-untyped]

from tests.reliability.durability_model import DurabilityModel, list_entries

Result = TypeVar("Result")

#: Options of every mount: one thread, hard unlink (no .fuse_hidden renames the model would
#: see), inode numbers of the backing files, and unmount when this process dies.
MOUNT_OPTIONS: dict[str, Any] = {
    "foreground": True,
    "nothreads": True,
    "hard_remove": True,
    "use_ino": True,
    "auto_unmount": True,
    "fsname": "rollkeeper-power-cut",
}


def _operation(method: Callable[..., Result]) -> Callable[..., Result]:
    """Run one operation under the lock; after a cut, fail it with EIO."""

    @wraps(method)
    def guarded(self: PowerCutFilesystem, *arguments: Any) -> Result:
        with self._serial:
            if self.was_cut:
                raise mfusepy.FuseOSError(errno.EIO)
            return method(self, *arguments)

    return guarded


class PowerCutFilesystem(mfusepy.Operations):  # type: ignore[misc]
    """Passthrough to ``model.tree`` that tells the model before every change."""

    use_ns = True

    def __init__(self, model: DurabilityModel, hard_links: bool = True) -> None:
        self.model = model
        self.hard_links = hard_links
        self._serial = threading.Lock()
        self.was_cut = False

    def _real(self, path: str) -> Path:
        return self.model.tree / path.lstrip("/")

    def _open_flags(self, descriptor_flags: int) -> int:
        # O_APPEND would make pwrite ignore the kernel's offsets; O_TRUNC goes through the
        # model as a truncate.
        return descriptor_flags & ~(os.O_APPEND | os.O_TRUNC)

    def init(self, path: str) -> None:
        print("mounted", flush=True)

    # -- reading ------------------------------------------------------------------------------

    @_operation
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        if path is None and fh is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        status = os.lstat(self._real(path)) if path is not None else os.fstat(fh or 0)
        found = {
            key: getattr(status, key)
            for key in ("st_mode", "st_ino", "st_uid", "st_gid", "st_size", "st_nlink")
        }
        found.update(
            st_atime=status.st_atime_ns, st_mtime=status.st_mtime_ns, st_ctime=status.st_ctime_ns
        )
        if not stat.S_ISDIR(status.st_mode):
            found["st_nlink"] = max(1, status.st_nlink - 1)  # the model's own link
        return found

    @_operation
    def readdir(self, path: str, fh: int) -> list[tuple[str, dict[str, int], int]]:
        # With use_ino an entry needs its inode number: one of 0 is skipped by readdir(3).
        real = self._real(path)
        found = [(".", {"st_ino": real.lstat().st_ino, "st_mode": stat.S_IFDIR}, 0)]
        found.append(("..", {"st_ino": real.parent.lstat().st_ino, "st_mode": stat.S_IFDIR}, 0))
        for name, entry in list_entries(real).items():
            found.append((name, {"st_ino": entry.inode, "st_mode": entry.kind}, 0))
        return found

    @_operation
    def readlink(self, path: str) -> str:
        return os.readlink(self._real(path))

    @_operation
    def access(self, path: str, amode: int) -> int:
        if not os.access(self._real(path), amode, follow_symlinks=False):
            raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    @_operation
    def statfs(self, path: str) -> dict[str, int]:
        found = os.statvfs(self.model.tree)
        names = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files")
        return {name: getattr(found, name) for name in (*names, "f_ffree", "f_namemax")}

    @_operation
    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    # -- files --------------------------------------------------------------------------------

    @_operation
    def create(self, path: str, mode: int, flags: int) -> int:
        real = self._real(path)
        existed = os.path.lexists(real)
        if not existed:
            self.model.before_folder_change(real.parent)
        descriptor = os.open(real, self._open_flags(flags) | os.O_CREAT, mode)
        if not existed:
            self.model.file_created(real, descriptor)
        elif flags & os.O_TRUNC:
            self._truncate(descriptor, 0)
        return descriptor

    @_operation
    def open(self, path: str, flags: int) -> int:
        descriptor = os.open(self._real(path), self._open_flags(flags))
        if flags & os.O_TRUNC:
            self._truncate(descriptor, 0)
        return descriptor

    @_operation
    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        self.model.before_write(fh, offset, len(data))
        return os.pwrite(fh, data, offset)

    @_operation
    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        if fh:
            self._truncate(fh, length)
            return 0
        assert path is not None
        descriptor = os.open(self._real(path), os.O_WRONLY)
        try:
            self._truncate(descriptor, length)
        finally:
            os.close(descriptor)
        return 0

    def _truncate(self, descriptor: int, length: int) -> None:
        self.model.before_truncate(descriptor, length)
        os.ftruncate(descriptor, length)

    @_operation
    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        self.model.file_synced(fh)
        return 0

    @_operation
    def flush(self, path: str | None, fh: int) -> int:
        return 0

    def release(self, path: str | None, fh: int) -> int:
        # Closing never fails, cut or not: the descriptor is ours.
        os.close(fh)
        return 0

    # -- names --------------------------------------------------------------------------------

    @_operation
    def mkdir(self, path: str, mode: int) -> int:
        real = self._real(path)
        self.model.before_folder_change(real.parent)
        os.mkdir(real, mode)
        self.model.folder_created(real)
        return 0

    @_operation
    def rmdir(self, path: str) -> int:
        self.model.remove_folder(self._real(path))
        return 0

    @_operation
    def unlink(self, path: str) -> int:
        real = self._real(path)
        self.model.before_folder_change(real.parent)
        os.unlink(real)
        return 0

    @_operation
    def rename(self, old: str, new: str) -> int:
        source, target = self._real(old), self._real(new)
        if stat.S_ISDIR(source.lstat().st_mode):
            raise mfusepy.FuseOSError(errno.EXDEV)  # folder renames are not modelled
        self.model.before_folder_change(source.parent)
        self.model.before_folder_change(target.parent)
        os.rename(source, target)
        return 0

    @_operation
    def link(self, target: str, source: str) -> int:
        if not self.hard_links:
            raise mfusepy.FuseOSError(errno.EPERM)  # as exFAT and FAT answer link(2)
        new = self._real(target)
        self.model.before_folder_change(new.parent)
        os.link(self._real(source), new, follow_symlinks=False)
        return 0

    @_operation
    def symlink(self, target: str, source: str) -> int:
        new = self._real(target)
        self.model.before_folder_change(new.parent)
        os.symlink(source, new)
        self.model.file_created(new)
        return 0

    @_operation
    def opendir(self, path: str) -> int:
        return 0

    @_operation
    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        self.model.folder_synced(self._real(path))
        return 0

    # -- metadata (durable at once: not modelled) ---------------------------------------------

    @_operation
    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    @_operation
    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._real(path), uid, gid, follow_symlinks=False)
        return 0

    @_operation
    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if times is None:
            os.utime(self._real(path), follow_symlinks=False)
        else:
            os.utime(self._real(path), ns=times, follow_symlinks=False)
        return 0

    # -- control ------------------------------------------------------------------------------

    def write_back(self, folder: str) -> str:
        """Write back the files under ``folder`` (nothing after a cut: the disk is gone)."""
        with self._serial:
            written = 0 if self.was_cut else self.model.write_back(self._real(folder))
        return f"written back {written}"

    def power_cut(self) -> str:
        """The cut: take the lock (no operation is half done), then refuse everything."""
        with self._serial:
            self.was_cut = True
            files, folders = self.model.pending()
        return f"cut files={files} folders={folders}"


class _StrictRenameFUSE(mfusepy.FUSE):  # type: ignore[misc]
    """mfusepy drops rename's flags; refuse them (EINVAL) instead of ignoring NOREPLACE."""

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        if flags:
            return -errno.EINVAL
        return int(self.rename_fuse_2(old, new))


def _control(filesystem: PowerCutFilesystem, mount_point: Path) -> None:
    """Answer the test's commands; at end of input, unmount (the test is gone)."""
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "cut":
            print(filesystem.power_cut(), flush=True)
        elif command == "writeback":
            print(filesystem.write_back(argument), flush=True)
        else:
            print(f"unknown command {command!r}", flush=True)
    subprocess.run(["fusermount3", "-u", "-z", str(mount_point)], capture_output=True, check=False)


def main() -> int:
    """Mount, serve until unmounted, then rebuild the durable tree if there was a cut."""
    parser = argparse.ArgumentParser(prog="power_cut_fs", description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="backing folder (tree, links)")
    parser.add_argument("--mount", type=Path, required=True, help="mount point")
    parser.add_argument(
        "--no-hard-links", action="store_true", help="refuse link(2) with EPERM, as exFAT does"
    )
    arguments = parser.parse_args()
    model = DurabilityModel(arguments.store)
    model.adopt()
    filesystem = PowerCutFilesystem(model, hard_links=not arguments.no_hard_links)
    threading.Thread(target=_control, args=(filesystem, arguments.mount), daemon=True).start()
    _StrictRenameFUSE(filesystem, str(arguments.mount), **MOUNT_OPTIONS)
    if filesystem.was_cut:
        print(f"rebuilt {model.rebuild()}", flush=True)
    else:
        print("unmounted", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
