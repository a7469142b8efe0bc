"""A disk a test can cut the power of: the power-cut filesystem in its own process.

:class:`PowerCutDisk` mounts :mod:`tests.reliability.power_cut_fs` on ``ROOT/disk`` (backing
folder ``ROOT/store``), cuts the power on command, and unmounts and mounts again, which is when
everything not durable at the cut is gone. It is a context manager that never leaves a mount
behind: it unmounts on the way out whatever happened, and the filesystem process unmounts
itself if the test process dies (its stdin closes) or is itself killed (``auto_unmount``).

:func:`missing_for_fuse` says what a machine lacks to mount it; :func:`require_fuse` turns that
into a skip outside CI and a failure in CI (``CI`` set), so the campaign never passes there
without having run.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

import pytest

#: The repository's root: the filesystem process imports ``tests.reliability``.
REPOSITORY = Path(__file__).resolve().parents[2]
#: Ceiling for mounting, a cut's answer and unmounting (a loaded 2-core CI machine).
CONTROL_TIMEOUT_SECONDS = 60.0


def missing_for_fuse() -> str:
    """Empty when this machine can mount the power-cut filesystem, else what it lacks."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing (no FUSE in this kernel or container)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK) and shutil.which("fusermount3") is None:
        return "/dev/fuse is not usable by this user and fusermount3 is missing (Debian: fuse3)"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing (Debian package fuse3)"
    try:
        import mfusepy  # type: ignore[import-untyped]  # noqa: F401
    except (ImportError, OSError, AttributeError) as error:
        return f"the mfusepy binding cannot load libfuse3 ({error}; Debian package fuse3)"
    return ""


def require_fuse() -> None:
    """Skip (outside CI) or fail (in CI) a test that needs the power-cut filesystem."""
    missing = missing_for_fuse()
    if not missing:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the power-cut tests, but {missing}")
    pytest.skip(f"power-cut filesystem unavailable: {missing}")


def is_mounted(mount_point: Path) -> bool:
    """Whether something is mounted on ``mount_point`` (per /proc/self/mounts)."""
    target = str(mount_point.resolve())
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        return any(line.split()[1] == target for line in mounts if line.strip())


def sync_folder(folder: Path) -> None:
    """fsync a folder: the test's own setup is made durable, as an installer's would be."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class PowerCutDisk:
    """The power-cut filesystem of ``root``: mount, cut, unmount (see the module docstring)."""

    def __init__(self, root: Path, *, hard_links: bool = True) -> None:
        self.hard_links = hard_links
        self.store = root / "store"
        self.mount_point = root / "disk"
        #: The filesystem process's stderr (a file: a full pipe would stall the filesystem).
        self.log_path = root / "power-cut-fs.log"
        self.store.mkdir(parents=True, exist_ok=True)
        self.mount_point.mkdir(parents=True, exist_ok=True)
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.cut_reports: list[str] = []
        self.rebuild_reports: list[str] = []

    def __enter__(self) -> PowerCutDisk:
        self.mount()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def process_id(self) -> int | None:
        """The filesystem process's pid while mounted."""
        return None if self._process is None else self._process.pid

    def mount(self) -> None:
        """Start the filesystem process and wait until the kernel has mounted it."""
        assert self._process is None, "already mounted"
        self._lines = queue.Queue()
        with self.log_path.open("a") as log:
            self._process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "tests.reliability.power_cut_fs"),
                    *("--store", str(self.store), "--mount", str(self.mount_point)),
                    *(() if self.hard_links else ("--no-hard-links",)),
                ],
                cwd=REPOSITORY,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
            )
        threading.Thread(target=self._read, args=(self._process, self._lines), daemon=True).start()
        self._expect("mounted")

    def cut(self) -> str:
        """Cut the power now: nothing more becomes durable, every operation fails with EIO."""
        process = self._running()
        assert process.stdin is not None
        process.stdin.write("cut\n")
        process.stdin.flush()
        report = self._expect("cut ")
        self.cut_reports.append(report)
        return report

    def write_back(self, folder: str) -> str:
        """Make the subtree ``folder`` (relative to the mount) durable, contents and entries,
        as the kernel's writeback and a journal's commit may at any time (its own name in its
        parent excepted)."""
        process = self._running()
        assert process.stdin is not None
        process.stdin.write(f"writeback {folder}\n")
        process.stdin.flush()
        return self._expect("written back ")

    def unmount(self) -> str:
        """Unmount (the files must be closed) and wait for the filesystem process to end.

        Returns its last word: ``rebuilt ...`` after a cut, else ``unmounted``.
        """
        process = self._running()
        result = subprocess.run(
            ["fusermount3", "-u", str(self.mount_point)], capture_output=True, text=True
        )
        if result.returncode != 0 and is_mounted(self.mount_point):
            raise AssertionError(f"cannot unmount {self.mount_point}: {result.stderr.strip()}")
        last = self._expect("rebuilt ", "unmounted")
        code = process.wait(timeout=CONTROL_TIMEOUT_SECONDS)
        self._process = None
        if code != 0:
            raise AssertionError(f"power-cut filesystem exited {code}: {self._log_tail()}")
        if last.startswith("rebuilt "):
            self.rebuild_reports.append(last)
        return last

    def remount(self) -> str:
        """Unmount and mount again: the state a power cut left is what the next run sees."""
        last = self.unmount()
        self.mount()
        return last

    def close(self) -> None:
        """Unmount whatever state things are in; never leave a mount or a process behind."""
        process = self._process
        self._process = None
        if process is not None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the filesystem process unmounts itself at end of input
        if is_mounted(self.mount_point):
            subprocess.run(
                ["fusermount3", "-u", "-z", str(self.mount_point)], capture_output=True, check=False
            )
        if process is not None:
            try:
                process.wait(timeout=CONTROL_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=CONTROL_TIMEOUT_SECONDS)

    def _running(self) -> subprocess.Popen[str]:
        if self._process is None:
            raise AssertionError("the power-cut filesystem is not mounted")
        return self._process

    @staticmethod
    def _read(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def _expect(self, *prefixes: str) -> str:
        """The next line of the filesystem process, which must start with one of ``prefixes``."""
        process = self._running()
        try:
            line = self._lines.get(timeout=CONTROL_TIMEOUT_SECONDS)
        except queue.Empty:
            line = None
            reason = f"no answer within {CONTROL_TIMEOUT_SECONDS} s"
        else:
            reason = "it ended" if line is None else f"it said {line!r}"
        if line is None or not line.startswith(prefixes):
            if line is None and process.poll() is not None:
                reason += f": {self._log_tail()}"
            raise AssertionError(f"power-cut filesystem: expected {prefixes}, {reason}")
        return line

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""
