"""The open files of one AFC connection: FILE_OPEN, FILE_SEEK, FILE_TELL and FILE_CLOSE.

The phone is read-only: only the read mode opens, every writing mode is permission denied.
A host file is opened with ``O_NOFOLLOW`` on the path resolved inside the media root and must
be a regular file; the handle owns its descriptor until FILE_CLOSE or the connection's end. A
hostile entry (a fault) opens as bytes held in memory; a hostile symlink opens its target,
resolved like any other phone path. Handles per connection are bounded so a client cannot run
the host out of descriptors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import stat as stat_module
from dataclasses import dataclass

from rollkeeper.simulator.afc_errors import AfcRequestError, status_for_os_error
from rollkeeper.simulator.afc_faults import check_file_slots, check_permission
from rollkeeper.simulator.afc_paths import HostileTarget, MediaPaths
from rollkeeper.simulator.afc_protocol import SEEK_REQUEST, U64, FileOpenMode, Status, first_cstring
from rollkeeper.simulator.afc_sync_lock import SYNC_LOCK_PATH, is_sync_lock

#: Open handles per connection; more answers NO_RESOURCES (keeps host descriptors bounded).
MAX_OPEN_HANDLES = 256
#: The first handle number handed out on a connection (0 means failure in FILE_OPEN_RES).
FIRST_HANDLE = 1


class Source:
    """Where the bytes of an open handle come from."""

    def size(self) -> int:
        """The size of the file now (a host file may change while it is open)."""
        raise NotImplementedError

    async def read(self, offset: int, count: int) -> bytes:
        """Up to ``count`` bytes at ``offset``; fewer at the end."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds (a host descriptor)."""


class HostFile(Source):
    """A regular file under the media root, open read-only (the handle owns the descriptor)."""

    def __init__(self, descriptor: int) -> None:
        self.descriptor = descriptor
        if hasattr(os, "posix_fadvise"):
            # Clients read front to back: ask for aggressive read-ahead, so sendfile(2), which
            # runs on the event loop, mostly finds the bytes already in the page cache.
            with contextlib.suppress(OSError):
                os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_SEQUENTIAL)

    def size(self) -> int:
        """The file's size now, from its descriptor."""
        return os.fstat(self.descriptor).st_size

    async def read(self, offset: int, count: int) -> bytes:
        """``pread`` in a worker thread."""
        # A worker thread keeps a cold-cache disk read from stalling the simulator's event loop,
        # which also serves usbmuxd, lockdownd and the other phones.
        return await asyncio.to_thread(os.pread, self.descriptor, count, offset)

    def close(self) -> None:
        """Close the descriptor (once more is harmless)."""
        with contextlib.suppress(OSError):
            os.close(self.descriptor)


class MemoryFile(Source):
    """The content of a hostile entry: it exists only in the simulator."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def size(self) -> int:
        """The length of the content."""
        return len(self.content)

    async def read(self, offset: int, count: int) -> bytes:
        """A slice of the content."""
        return self.content[offset : offset + count]


@dataclass
class Handle:
    """An open file of one connection: its bytes, its fault key and the read position."""

    source: Source
    fault_key: str
    position: int = 0


class OpenFiles:
    """The handle table of one connection and the requests that work on it."""

    def __init__(self, paths: MediaPaths) -> None:
        self.paths = paths
        self.handles: dict[int, Handle] = {}
        self.next_handle = FIRST_HANDLE

    def open(self, payload: bytes) -> int:
        """FILE_OPEN: the new handle's number."""
        if len(payload) < U64.size:
            raise AfcRequestError(Status.INVALID_ARG)
        (mode,) = U64.unpack_from(payload)
        requested = first_cstring(payload[U64.size :])
        if mode == FileOpenMode.RW and is_sync_lock(requested):
            # The backup sync lock: a virtual empty file, so the media folder stays unchanged.
            return self._add(Handle(source=MemoryFile(b""), fault_key=SYNC_LOCK_PATH))
        if mode != FileOpenMode.RDONLY:
            writable = mode in {item.value for item in FileOpenMode}
            raise AfcRequestError(Status.PERM_DENIED if writable else Status.INVALID_ARG)
        if len(self.handles) >= MAX_OPEN_HANDLES:
            raise AfcRequestError(Status.NO_RESOURCES)
        check_file_slots(self.paths.phone.faults, len(self.handles))
        source, fault_key = self._open_source(requested, follow_links=1)
        return self._add(Handle(source=source, fault_key=fault_key))

    def _add(self, handle: Handle) -> int:
        if len(self.handles) >= MAX_OPEN_HANDLES:
            handle.source.close()
            raise AfcRequestError(Status.NO_RESOURCES)
        number = self.next_handle
        self.next_handle += 1
        self.handles[number] = handle
        return number

    def _open_source(self, requested: str, follow_links: int) -> tuple[Source, str]:
        target = self.paths.target(requested)
        if target.fault_key in self.paths.phone.faults.not_found:
            raise AfcRequestError(Status.OBJECT_NOT_FOUND)
        check_permission(self.paths.phone.faults, target.fault_key)
        if isinstance(target, HostileTarget):
            entry = target.entry
            if entry.kind == "S_IFDIR":
                raise AfcRequestError(Status.OBJECT_IS_DIR)
            if entry.kind == "S_IFLNK":
                # Opening a link opens its target, resolved like any other phone path (so an
                # absolute target such as /etc/passwd is looked up under the media root).
                if follow_links <= 0:
                    raise AfcRequestError(Status.OBJECT_NOT_FOUND)
                parent = posixpath.dirname(target.fault_key)
                link_path = posixpath.join(parent, entry.link_target)
                return self._open_source(link_path, follow_links - 1)
            return MemoryFile(entry.content), target.fault_key
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            descriptor = os.open(target.host_path, flags)
        except OSError as error:
            raise AfcRequestError(status_for_os_error(error)) from error
        try:
            mode = os.fstat(descriptor).st_mode
        except OSError as error:
            os.close(descriptor)
            raise AfcRequestError(status_for_os_error(error)) from error
        if not stat_module.S_ISREG(mode):
            os.close(descriptor)
            is_dir = stat_module.S_ISDIR(mode)
            raise AfcRequestError(Status.OBJECT_IS_DIR if is_dir else Status.INVALID_ARG)
        return HostFile(descriptor), target.fault_key

    def handle_number(self, payload: bytes) -> int:
        """The handle number a request starts with."""
        if len(payload) < U64.size:
            raise AfcRequestError(Status.INVALID_ARG)
        number: int = U64.unpack_from(payload)[0]
        return number

    def handle_for(self, payload: bytes) -> Handle:
        """The open handle a request names (INVALID_ARG if it is not open)."""
        handle = self.handles.get(self.handle_number(payload))
        if handle is None:
            raise AfcRequestError(Status.INVALID_ARG)
        return handle

    def seek(self, payload: bytes) -> None:
        """FILE_SEEK: move the handle's position (never before the start)."""
        if len(payload) < SEEK_REQUEST.size:
            raise AfcRequestError(Status.INVALID_ARG)
        handle = self.handle_for(payload)
        _number, whence, offset = SEEK_REQUEST.unpack_from(payload)
        if whence == os.SEEK_SET:
            base = 0
        elif whence == os.SEEK_CUR:
            base = handle.position
        elif whence == os.SEEK_END:
            try:
                base = handle.source.size()
            except OSError as error:
                raise AfcRequestError(status_for_os_error(error)) from error
        else:
            raise AfcRequestError(Status.INVALID_ARG)
        if base + offset < 0:
            raise AfcRequestError(Status.INVALID_ARG)
        handle.position = base + offset

    def close(self, payload: bytes) -> None:
        """FILE_CLOSE: release the handle and what it holds."""
        handle_number = self.handle_number(payload)
        handle = self.handles.pop(handle_number, None)
        if handle is None:
            raise AfcRequestError(Status.INVALID_ARG)
        handle.source.close()

    def close_all(self) -> None:
        """Release every handle (the connection is over)."""
        for handle in self.handles.values():
            handle.source.close()
        self.handles.clear()
