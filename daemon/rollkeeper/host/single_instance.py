"""One service per state database: an exclusive ``flock`` on ``<state db>.lock``.

Two services backing up into the same state would race for the same phone and the same
``.partial`` files. The lock is an advisory ``flock(2)`` on a small file next to the database,
holding the pid of its owner so that the refusal can say who holds it. The kernel drops the
lock when the holding process exits in any way, ``kill -9`` included, so a crash never leaves a
stale lock that a user would have to delete by hand; the file itself stays and is reused.

The descriptor is opened close-on-exec, so hook commands and other children started with
``subprocess`` do not inherit (and so cannot prolong) the lock. A child made by a bare
``fork()`` without ``exec`` would share it: the service does not do that.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

LOCK_FILE_MODE = 0o600


class AlreadyRunningError(Exception):
    """Another process holds the lock: a second service would race the first."""

    def __init__(self, lock_path: Path, holder_pid: int | None) -> None:
        self.lock_path = lock_path
        self.holder_pid = holder_pid
        holder = f"process {holder_pid}" if holder_pid is not None else "another process"
        super().__init__(
            f"rollkeeper is already running with this state: {holder} holds {lock_path}; "
            "stop it first (`systemctl --user stop rollkeeper`, or end that process)"
        )


class InstanceLock:
    """An exclusive, non-blocking lock on ``lock_path`` for the life of this process.

    Use :meth:`acquire` at start-up (it raises :class:`AlreadyRunningError` at once instead of
    waiting) and :meth:`release` at shutdown, or use it as a context manager.
    """

    def __init__(self, lock_path: Path) -> None:
        self.lock_path = lock_path
        self._descriptor: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._descriptor is not None

    def acquire(self) -> None:
        """Take the lock and write our pid into the file, or raise :class:`AlreadyRunningError`.

        The file is created 0600 (it sits with the private state). Acquiring twice through the
        same object is a no-op.
        """
        if self._descriptor is not None:
            return
        descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, LOCK_FILE_MODE)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise AlreadyRunningError(
                self.lock_path, InstanceLock.holder_pid(self.lock_path)
            ) from None
        except BaseException:
            os.close(descriptor)
            raise
        try:
            # A lock file created by an older umask keeps its mode: make it private again.
            os.fchmod(descriptor, LOCK_FILE_MODE)
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
        except BaseException:
            os.close(descriptor)
            raise
        self._descriptor = descriptor

    def release(self) -> None:
        """Give the lock up. The file stays (removing it would race a process about to lock it)."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)
        os.close(descriptor)  # closing the last descriptor drops the flock

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    @staticmethod
    def holder_pid(lock_path: Path) -> int | None:
        """The pid of the process holding the lock, or ``None`` when nobody holds it.

        This is how ``rollkeeper status`` tells whether the service runs. It probes with a
        shared non-blocking lock, so it never waits and never disturbs the holder. In the
        instant between a holder taking the lock and writing its pid, the pid is unknown and
        ``None`` is returned as well; use :meth:`is_held` where only "running or not" matters.
        """
        if not InstanceLock.is_held(lock_path):
            return None
        try:
            text = lock_path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    @staticmethod
    def is_held(lock_path: Path) -> bool:
        """True when some process holds the lock on ``lock_path`` right now."""
        try:
            descriptor = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            # Closing drops the probe's shared lock, if it got one.
            os.close(descriptor)
        return False
