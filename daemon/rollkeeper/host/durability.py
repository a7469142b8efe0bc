"""Making bytes and folder entries durable: the ``fsync`` calls the whole program uses.

A new file, a rename or a link is on the disk only once its folder has been fsync'ed (ext4 with
default options, and the power-cut model of ``tests/reliability``). The importer calls
:func:`fsync_folder` after each placement (or once per folder for a group of placements), the
state store after creating its database, and the private-folder helper after each folder it
creates, so that none of them can vanish in a power cut after the program went on as if it
were there.

:func:`start_writeback` asks the kernel to begin writing a range of a file to the disk *now*,
without waiting (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``): called every few MiB while a
file arrives, it keeps the disk busy during the download, so the ``fsync`` that makes the file
durable finds little left to write. It guarantees nothing by itself (no metadata, no disk
cache flush) and is only ever followed by a real :func:`fsync_descriptor`. Where the call does
not exist (macOS, the BSDs, Windows) it does nothing: the final fsync then writes the whole
file, which is correct, only slower.

:func:`fsync_descriptor` is ``fsync(2)``, except on macOS, where ``fsync`` only hands the data
to the drive (which may keep it in its volatile cache across a power cut) and
``fcntl(F_FULLFSYNC)`` is what asks the drive to write it to the medium: there it is used,
falling back to ``fsync`` on file systems that refuse it (some network shares, FAT on USB).
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import ctypes.util
import errno
import fcntl
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

#: ``SYNC_FILE_RANGE_WRITE`` from <linux/fs.h>: start writing the range's dirty pages, no wait.
SYNC_FILE_RANGE_WRITE = 2


def _linux_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` through ctypes (the ``os`` module has no wrapper), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    call: Callable[[int, int, int, int], int] = function
    return call


_sync_file_range = getattr(os, "sync_file_range", None) or _linux_sync_file_range()


def writeback_supported() -> bool:
    """True where :func:`start_writeback` really starts the disk writing (Linux)."""
    return _sync_file_range is not None


def start_writeback(descriptor: int, offset: int, length: int) -> None:
    """Start writing ``length`` bytes at ``offset`` of an open file to the disk; do not wait.

    A hint, never a guarantee: a file system that refuses it (some FUSE and network file
    systems) leaves the work to the final fsync, so errors other than a bad descriptor are
    ignored.
    """
    function = _sync_file_range
    if function is None or length <= 0:
        return
    if function(descriptor, offset, length, SYNC_FILE_RANGE_WRITE) != 0:
        code = ctypes.get_errno()
        if code == errno.EBADF:
            raise OSError(code, os.strerror(code))


def fsync_descriptor(descriptor: int) -> None:
    """Make an open file's bytes durable: ``F_FULLFSYNC`` on macOS, ``fsync`` elsewhere."""
    full_fsync = getattr(fcntl, "F_FULLFSYNC", None)
    if full_fsync is not None:
        try:
            fcntl.fcntl(descriptor, full_fsync)
            return
        except OSError:
            pass  # not supported by this file system: fsync is the best it offers
    os.fsync(descriptor)


def fsync_file(path: Path) -> None:
    """Make a file's bytes durable (fsync applies to the file, whichever descriptor asks)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fsync_descriptor(descriptor)
    finally:
        os.close(descriptor)


#: Folders whose fsync the current batch of placements makes once at its end (see below).
_deferred_folders: contextvars.ContextVar[set[Path] | None] = contextvars.ContextVar(
    "deferred_folder_syncs", default=None
)


@contextlib.contextmanager
def deferred_folder_syncs() -> Iterator[set[Path]]:
    """Collect the folders :func:`fsync_folder` is asked for, instead of fsync'ing each.

    For the importer's batches (:mod:`rollkeeper.importer.group_durability`): every
    placement of the batch asks for its folders as usual, and the caller fsyncs each folder of
    the returned set once, before it records anything. It applies to this context (the task
    and the worker threads it starts with ``asyncio.to_thread``), nowhere else.
    """
    folders: set[Path] = set()
    token = _deferred_folders.set(folders)
    try:
        yield folders
    finally:
        _deferred_folders.reset(token)


def fsync_folder(folder: Path) -> None:
    """Make a folder's entries durable (no-op where folders cannot be opened, e.g. Windows);
    inside :func:`deferred_folder_syncs`, note the folder for the caller to fsync instead."""
    deferred = _deferred_folders.get()
    if deferred is not None:
        deferred.add(folder)
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
