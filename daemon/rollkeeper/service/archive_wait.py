"""Wait for a missing archive to come back, then let the service back up the waiting phones.

A run that finds the archive unavailable (an unmounted disk) writes nothing and is recorded
failed; the phone stays attached. The service then waits here: on Linux the kernel tells when
the mount table changes (``/proc/self/mountinfo`` polls readable-priority, ``POLLPRI`` with
``POLLERR``, on every mount and unmount), so nothing is polled in a loop; a timer
(``[schedule] archive_recheck_seconds``) is the fallback where the platform does not tell
(macOS) or where the archive reappears without a mount (a folder made again). Re-plugging the
phone starts a run anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import sys
import threading
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("rollkeeper.service")

MOUNTINFO = "/proc/self/mountinfo"


class MountTableWatch:
    """Blocks until the mount table changes, a timeout passes, or :meth:`wake` is called.

    Linux only (``/proc/self/mountinfo``); elsewhere :meth:`wait` only times out.
    """

    def __init__(self, mountinfo: str = MOUNTINFO) -> None:
        self._wake_read, self._wake_write = os.pipe()
        self._file: int | None = None
        if sys.platform.startswith("linux"):
            try:
                self._file = os.open(mountinfo, os.O_RDONLY)
            except OSError:
                self._file = None
        self._lock = threading.Lock()

    @property
    def tells_mounts(self) -> bool:
        """Whether the platform tells of mount changes (else the timer alone)."""
        return self._file is not None

    def wait(self, timeout_seconds: float) -> bool:
        """Wait (in a worker thread); True when the mount table changed."""
        poller = select.poll()
        poller.register(self._wake_read, select.POLLIN)
        if self._file is not None:
            # The kernel flags a change as POLLPRI | POLLERR until the file is read again.
            os.lseek(self._file, 0, os.SEEK_SET)
            while os.read(self._file, 65536):
                pass
            poller.register(self._file, select.POLLPRI | select.POLLERR)
        events = poller.poll(max(0.0, timeout_seconds) * 1000)
        changed = False
        for descriptor, _mask in events:
            if descriptor == self._wake_read:
                os.read(self._wake_read, 64)
            else:
                changed = True
        return changed

    def wake(self) -> None:
        """End a :meth:`wait` in progress (the service is stopping)."""
        with self._lock, contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")

    def close(self) -> None:
        """Release the descriptors."""
        for descriptor in (self._file, self._wake_read, self._wake_write):
            if descriptor is not None:
                with contextlib.suppress(OSError):
                    os.close(descriptor)
        self._file = None


class ArchiveWaiter:
    """While the archive is unavailable: watch for it, and call ``on_back`` once it is there.

    ``is_available`` is the identity check (an awaitable: the state is read on the loop, the
    disk looked at in a thread); ``recheck_seconds`` says the timer fallback's period (asked
    each time, so a config reload applies).
    """

    def __init__(
        self,
        is_available: Callable[[], Awaitable[bool]],
        on_back: Callable[[], None],
        recheck_seconds: Callable[[], float] = lambda: 60.0,
        watch: MountTableWatch | None = None,
    ) -> None:
        self._is_available = is_available
        self._on_back = on_back
        self.recheck_seconds = recheck_seconds
        self._watch = watch or MountTableWatch()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def waiting(self) -> bool:
        """Whether an outage is being waited out now."""
        return self._task is not None and not self._task.done()

    def begin(self) -> None:
        """Start waiting (once: a second outage report while waiting changes nothing)."""
        if self.waiting or self._stopping:
            return
        log.info(
            "archive_wait_started",
            mount_events=self._watch.tells_mounts,
            recheck_seconds=self.recheck_seconds(),
        )
        self._task = asyncio.get_running_loop().create_task(self._wait())

    async def _wait(self) -> None:
        while not self._stopping:
            changed = await asyncio.to_thread(self._watch.wait, self.recheck_seconds())
            if self._stopping:
                return
            if await self._is_available():
                log.info("archive_available_again", via="mount" if changed else "timer")
                self._on_back()
                return

    async def stop(self) -> None:
        """Stop waiting and release the watch."""
        self._stopping = True
        self._watch.wake()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._watch.close()
