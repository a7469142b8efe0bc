"""Idle I/O priority for the calling thread, where the operating system offers one.

The scrub reads the whole archive over weeks; it must not make the desktop sluggish or slow a
backup that is running. Both Linux and macOS can lower the I/O priority of one *thread*, which
is what we want: the scrub hashes in a worker thread (``asyncio.to_thread``) and that thread
goes back to the shared pool afterwards, so the previous priority is restored on exit.

* Linux: ``ioprio_set(IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE)`` through ``syscall(2)``
  (what ``ionice -c 3`` does; ``who = 0`` is the calling thread). The idle class only takes
  effect under the BFQ (or old CFQ) I/O scheduler; with ``mq-deadline`` or ``none``, the
  default for NVMe and many SSDs, it is accepted and ignored, and the byte bound per run is
  what keeps the scrub polite.
* macOS: ``setiopolicy_np(IOPOL_TYPE_DISK, IOPOL_SCOPE_THREAD, IOPOL_THROTTLE)``, the policy
  Time Machine's background work uses. Written from Apple's man page and not yet run on a Mac.
* Elsewhere, or if the call fails (a seccomp filter, an unknown CPU architecture): nothing is
  changed and the context reports ``"unavailable"``.
"""

from __future__ import annotations

import ctypes
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

log = structlog.get_logger(__name__)

#: ``ioprio_set``/``ioprio_get`` syscall numbers per Linux architecture (from the kernel's
#: syscall tables; there is no libc wrapper).
_LINUX_IOPRIO_SYSCALLS: dict[str, tuple[int, int]] = {
    "x86_64": (251, 252),
    "aarch64": (30, 31),
    "arm64": (30, 31),
    "riscv64": (30, 31),
    "i386": (289, 290),
    "i686": (289, 290),
    "armv7l": (314, 315),
    "ppc64le": (273, 274),
    "s390x": (282, 283),
}
_IOPRIO_WHO_PROCESS = 1
_IOPRIO_CLASS_SHIFT = 13
_IOPRIO_CLASS_IDLE = 3
#: The encoded idle priority (class 3, level 0), as ``ioprio_get`` returns it.
LINUX_IDLE_PRIORITY = _IOPRIO_CLASS_IDLE << _IOPRIO_CLASS_SHIFT

_IOPOL_TYPE_DISK = 0
_IOPOL_SCOPE_THREAD = 1
_IOPOL_THROTTLE = 3


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def linux_io_priority() -> int | None:
    """The calling thread's encoded I/O priority on Linux (None elsewhere or on failure)."""
    numbers = _LINUX_IOPRIO_SYSCALLS.get(platform.machine())
    if not sys.platform.startswith("linux") or numbers is None:
        return None
    value = int(_libc().syscall(numbers[1], _IOPRIO_WHO_PROCESS, 0))
    return None if value < 0 else value


def _linux_set(priority: int) -> bool:
    numbers = _LINUX_IOPRIO_SYSCALLS[platform.machine()]
    return int(_libc().syscall(numbers[0], _IOPRIO_WHO_PROCESS, 0, priority)) == 0


@contextmanager
def idle_io_priority() -> Iterator[str]:
    """Run the body at idle I/O priority in this thread; yields what was applied.

    Yields ``"idle"`` (Linux), ``"throttle"`` (macOS) or ``"unavailable"``. The previous
    priority is put back on exit, even when the body raises.
    """
    if sys.platform.startswith("linux"):
        previous = linux_io_priority()
        if previous is None or not _linux_set(LINUX_IDLE_PRIORITY):
            log.info("io_priority_unavailable", platform=sys.platform, machine=platform.machine())
            yield "unavailable"
            return
        try:
            yield "idle"
        finally:
            _linux_set(previous)
        return
    if sys.platform == "darwin":
        libc = _libc()
        previous = int(libc.getiopolicy_np(_IOPOL_TYPE_DISK, _IOPOL_SCOPE_THREAD))
        if previous < 0 or libc.setiopolicy_np(
            _IOPOL_TYPE_DISK, _IOPOL_SCOPE_THREAD, _IOPOL_THROTTLE
        ):
            log.info("io_priority_unavailable", platform=sys.platform)
            yield "unavailable"
            return
        try:
            yield "throttle"
        finally:
            libc.setiopolicy_np(_IOPOL_TYPE_DISK, _IOPOL_SCOPE_THREAD, previous)
        return
    yield "unavailable"
