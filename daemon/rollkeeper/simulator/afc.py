"""The simulated phone's AFC server: a read-only media folder served over the real AFC protocol.

A connection reaches :meth:`AfcServer.serve` after usbmuxd Connect and lockdownd StartService
``com.apple.afc`` (no TLS, as on a real phone). The server answers READ_DIR, GET_FILE_INFO,
GET_DEVINFO, FILE_OPEN (read modes), READ, FILE_SEEK, FILE_TELL and FILE_CLOSE from
``phone.media_root``; every operation that would change the phone answers permission denied,
and unknown operations answer "not supported" instead of crashing.

Why it is built this way:

* Requests are handled one at a time in arrival order, each reply echoing the request's
  ``packet_num``. A client may keep many requests in flight (pymobiledevice3 11.45 registers a
  future per packet number and routes every reply to it), so pipelining works; the order of
  replies carries no meaning. A stuck READ (fault) is simply never answered, so the requests
  behind it are still served.
* READ streams from disk without holding the file: ``sendfile(2)`` from the host file to the
  client's socket, or, where that is unavailable, 1 MiB pieces read with ``os.pread`` in a worker
  thread. Memory stays flat however large the file and however much the client asks for.
* Every path is resolved strictly inside the media root: ``..`` is refused, and a host symlink
  whose target lies outside the root is "not found". Files are opened with ``O_NOFOLLOW`` on the
  resolved path and must be regular files. Hostile entries (faults) are produced from
  :class:`~rollkeeper.simulator.phone.HostileEntry` values and never touch the host.
* Faults and counters live in :class:`~rollkeeper.simulator.phone.PhoneState`, read at each request,
  so a test can change them while a transfer runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import posixpath
import stat as stat_module
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import structlog

from rollkeeper.simulator.afc_protocol import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    READ_REQUEST,
    SEEK_REQUEST,
    U64,
    WRITE_OPERATIONS,
    FileOpenMode,
    Operation,
    Status,
    cstring_list,
    first_cstring,
    header,
    key_value_list,
    operation_name,
    packet,
    status_packet,
)
from rollkeeper.simulator.afc_throttle import PHONE_BUCKETS, TokenBucket
from rollkeeper.simulator.phone import HostileEntry, PhoneState

log = structlog.get_logger(__name__)

#: Requests carry a path or a few integers; anything bigger is a write (refused) or garbage.
MAX_REQUEST_PAYLOAD = 1024 * 1024
#: A header whose length is beyond this cannot be AFC (the client's writes are at most 1 GiB).
MAX_PACKET_LENGTH = 1 << 32
#: READ payload is streamed from disk in pieces of this size.
READ_PIECE_BYTES = 1024 * 1024
#: Open handles per connection; more answers NO_RESOURCES (keeps host descriptors bounded).
MAX_OPEN_HANDLES = 256
#: The first handle number handed out on a connection (0 means failure in FILE_OPEN_RES).
FIRST_HANDLE = 1

_IFMT_NAMES = {
    stat_module.S_IFREG: "S_IFREG",
    stat_module.S_IFDIR: "S_IFDIR",
    stat_module.S_IFLNK: "S_IFLNK",
    stat_module.S_IFIFO: "S_IFIFO",
    stat_module.S_IFCHR: "S_IFCHR",
    stat_module.S_IFBLK: "S_IFBLK",
    stat_module.S_IFSOCK: "S_IFSOCK",
}


def grown_bytes(offset: int, count: int) -> bytes:
    """The bytes a growing file (``grows_by_bytes``) serves past its real end.

    Byte ``i`` of the file (counted from the file's start) is ``i % 251``: deterministic, so a
    test can tell exactly which bytes it received, and not a repeat of the real content.
    """
    start = offset % _GROWN_PERIOD
    repeats = (start + count) // _GROWN_PERIOD + 1
    return (_GROWN_PATTERN * repeats)[start : start + count]


_GROWN_PERIOD = 251
_GROWN_PATTERN = bytes(range(_GROWN_PERIOD))


class AfcRequestError(Exception):
    """A request that is answered with an AFC error status instead of data."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.name)
        self.status = status


class _ConnectionEnded(Exception):
    """The connection is over (unplug fault, or a reply that could not be completed)."""


class _SendfileUnavailable(Exception):
    """sendfile(2) cannot be used on this connection; copy through a buffer instead."""


#: sendfile(2) errors that mean "not for this kind of descriptor", not "the peer is gone".
_SENDFILE_UNSUPPORTED = frozenset(
    {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK, errno.ENOTSUP}
)


async def _writable(loop: asyncio.AbstractEventLoop, descriptor: int) -> None:
    """Wait until ``descriptor`` can take more bytes (the client is reading again)."""
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(descriptor, wake)
    try:
        await ready
    finally:
        loop.remove_writer(descriptor)


def canonical_path(phone_path: str) -> str:
    """``/DCIM//100APPLE/./X`` -> ``/DCIM/100APPLE/X``; any ``..`` is refused (PERM_DENIED).

    A real phone's afcd is jailed to the media folder; the simulator does not try to imitate
    how it treats ``..`` and refuses it outright, so no request can climb out of the root.
    """
    parts: list[str] = []
    for part in phone_path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise AfcRequestError(Status.PERM_DENIED)
        parts.append(part)
    return "/" + "/".join(parts)


def _status_for_os_error(error: OSError) -> Status:
    if isinstance(error, PermissionError):
        return Status.PERM_DENIED
    if isinstance(error, IsADirectoryError):
        return Status.OBJECT_IS_DIR
    # ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP: the object cannot be reached under this name.
    if isinstance(error, (FileNotFoundError, NotADirectoryError)) or error.errno in (
        errno.ENAMETOOLONG,
        errno.ELOOP,
    ):
        return Status.OBJECT_NOT_FOUND
    return Status.IO_ERROR


@dataclass
class _HostTarget:
    """A request path that names something under the media root on the host."""

    fault_key: str
    host_path: str


@dataclass
class _HostileTarget:
    """A request path that names a hostile entry (it exists only in the simulator)."""

    fault_key: str
    entry: HostileEntry


_Target = _HostTarget | _HostileTarget


class _Source:
    """Where the bytes of an open handle come from."""

    def size(self) -> int:
        raise NotImplementedError

    async def read(self, offset: int, count: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds (a host descriptor)."""


class _HostFile(_Source):
    """A regular file under the media root, open read-only (the handle owns the descriptor)."""

    def __init__(self, descriptor: int) -> None:
        self.descriptor = descriptor
        if hasattr(os, "posix_fadvise"):
            # Clients read front to back: ask for aggressive read-ahead, so sendfile(2), which
            # runs on the event loop, mostly finds the bytes already in the page cache.
            with contextlib.suppress(OSError):
                os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_SEQUENTIAL)

    def size(self) -> int:
        return os.fstat(self.descriptor).st_size

    async def read(self, offset: int, count: int) -> bytes:
        # A worker thread keeps a cold-cache disk read from stalling the simulator's event loop,
        # which also serves usbmuxd, lockdownd and the other phones.
        return await asyncio.to_thread(os.pread, self.descriptor, count, offset)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.descriptor)


class _MemoryFile(_Source):
    """The content of a hostile entry: it exists only in the simulator."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def size(self) -> int:
        return len(self.content)

    async def read(self, offset: int, count: int) -> bytes:
        return self.content[offset : offset + count]


@dataclass
class _Handle:
    """An open file of one connection: its bytes, its fault key and the read position."""

    source: _Source
    fault_key: str
    position: int = 0


class AfcServer:
    """Serves AFC connections for one simulated phone (one :meth:`serve` call per connection)."""

    def __init__(self, phone: PhoneState, unplug: Callable[[], None]) -> None:
        self.phone = phone
        self._unplug = unplug

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one AFC connection until EOF, close, or an unplug fault."""
        connection = _Connection(self.phone, self._unplug, reader, writer)
        await connection.run()


class _Connection:
    """The state of one AFC connection: its open handles and its place in the byte stream."""

    def __init__(
        self,
        phone: PhoneState,
        unplug: Callable[[], None],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.phone = phone
        self.unplug = unplug
        self.reader = reader
        self.writer = writer
        self.root = os.path.realpath(phone.media_root)
        self.handles: dict[int, _Handle] = {}
        self.next_handle = FIRST_HANDLE
        #: READs never answered (stuck_reads fault), kept so the reason is visible in a debugger.
        self.unanswered: list[int] = []
        #: Cleared at the first sign that sendfile(2) does not work for this socket.
        self.sendfile_works = hasattr(os, "sendfile")

    # ---- the request loop ----------------------------------------------------------------

    async def run(self) -> None:
        """Read requests and answer them in order until EOF, a bad header or an unplug."""
        # drain() then waits until every byte is handed to the kernel, which READ relies on
        # before it writes the file's bytes past the transport (see _sendfile).
        self.writer.transport.set_write_buffer_limits(high=0)
        try:
            while True:
                try:
                    raw_header = await self.reader.readexactly(HEADER_SIZE)
                except asyncio.IncompleteReadError:
                    return
                magic, entire_length, _this_length, packet_num, code = HEADER.unpack(raw_header)
                if magic != MAGIC or not HEADER_SIZE <= entire_length <= MAX_PACKET_LENGTH:
                    # There is no way to find the next packet in the stream: hang up, as afcd does.
                    log.warning(
                        "afc_bad_header", udid=self.phone.identity.udid, header=raw_header.hex()
                    )
                    return
                payload_length = entire_length - HEADER_SIZE
                self.phone.afc_requests[operation_name(code)] += 1
                if payload_length > MAX_REQUEST_PAYLOAD:
                    await self._discard(payload_length)
                    refusal = (
                        Status.PERM_DENIED if code in WRITE_OPERATIONS else Status.TOO_MUCH_DATA
                    )
                    await self._send(status_packet(packet_num, refusal))
                    continue
                payload = await self.reader.readexactly(payload_length) if payload_length else b""
                await self._handle(code, packet_num, payload)
        except (_ConnectionEnded, OSError, asyncio.IncompleteReadError):
            return
        finally:
            for handle in self.handles.values():
                handle.source.close()
            self.handles.clear()
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _discard(self, length: int) -> None:
        """Skip an oversized payload in pieces, so a huge WRITE costs no memory to refuse."""
        remaining = length
        while remaining:
            chunk = await self.reader.readexactly(min(remaining, READ_PIECE_BYTES))
            remaining -= len(chunk)

    async def _send(self, data: bytes) -> None:
        """Write one whole reply and wait until the kernel has it (backpressure)."""
        if self.writer.transport.is_closing():
            raise _ConnectionEnded
        self.writer.write(data)
        await self.writer.drain()

    async def _handle(self, code: int, packet_num: int, payload: bytes) -> None:
        try:
            if code == Operation.READ:
                await self._read(packet_num, payload)
                return
            reply = self._answer(code, packet_num, payload)
        except AfcRequestError as error:
            reply = status_packet(packet_num, error.status)
        await self._send(reply)

    def _answer(self, code: int, packet_num: int, payload: bytes) -> bytes:
        """The reply to every request but READ (all of them are quick and need no waiting)."""
        if code == Operation.READ_DIR:
            return packet(Operation.DATA, packet_num, self._read_dir(first_cstring(payload)))
        if code == Operation.GET_FILE_INFO:
            info = self._file_info(first_cstring(payload))
            return packet(Operation.DATA, packet_num, key_value_list(info))
        if code == Operation.GET_DEVINFO:
            return packet(Operation.DATA, packet_num, key_value_list(self._device_info()))
        if code == Operation.FILE_OPEN:
            opened = self._open(payload)
            return packet(Operation.FILE_OPEN_RES, packet_num, U64.pack(opened))
        if code == Operation.FILE_SEEK:
            self._seek(payload)
            return status_packet(packet_num, Status.SUCCESS)
        if code == Operation.FILE_TELL:
            position = self._handle_for(payload).position
            return packet(Operation.FILE_TELL_RES, packet_num, U64.pack(position))
        if code == Operation.FILE_CLOSE:
            handle_number = self._handle_number(payload)
            handle = self.handles.pop(handle_number, None)
            if handle is None:
                raise AfcRequestError(Status.INVALID_ARG)
            handle.source.close()
            return status_packet(packet_num, Status.SUCCESS)
        if code in WRITE_OPERATIONS:
            raise AfcRequestError(Status.PERM_DENIED)
        raise AfcRequestError(Status.OP_NOT_SUPPORTED)

    # ---- paths ---------------------------------------------------------------------------

    def _hostile_entries(self) -> Iterator[tuple[str, str, HostileEntry]]:
        """(folder, joined path, entry) for every hostile entry, as clients would join them."""
        for folder, entries in self.phone.faults.hostile_entries.items():
            for entry in entries:
                yield folder, folder.rstrip("/") + "/" + entry.name, entry

    def _hostile_target(self, requested: str) -> _HostileTarget | None:
        if not self.phone.faults.hostile_entries:
            return None
        wanted = {requested, "/" + requested.lstrip("/")}
        for folder, joined, entry in self._hostile_entries():
            candidates = {joined, posixpath.join(folder, entry.name)}
            if "\0" in entry.name:
                # A name holding NUL reaches the client split in pieces: each piece names it.
                pieces = (piece for piece in entry.name.split("\0") if piece)
                candidates.update(folder.rstrip("/") + "/" + piece for piece in pieces)
            if wanted & candidates:
                return _HostileTarget(fault_key=joined, entry=entry)
        return None

    def _target(self, requested: str) -> _Target:
        hostile = self._hostile_target(requested)
        if hostile is not None:
            return hostile
        canonical = canonical_path(requested)
        return _HostTarget(fault_key=canonical, host_path=self._host_path(canonical))

    def _host_path(self, canonical: str) -> str:
        """The host path of a canonical phone path, guaranteed to lie under the root.

        Each component below the root is checked with lstat (the root itself is already a
        real path): plain components cost one system call each, and only a path that holds a
        symlink pays for ``realpath`` and the check that the link stays inside the root.
        """
        current = self.root
        for part in canonical.split("/")[1:] if canonical != "/" else ():
            current = current + os.sep + part
            try:
                mode = os.lstat(current).st_mode
            except OSError:
                # Missing or unreachable: the caller's own system call reports why.
                return current
            if stat_module.S_ISLNK(mode):
                resolved = os.path.realpath(self.root + canonical)
                if resolved != self.root and not resolved.startswith(self.root + os.sep):
                    # A host symlink that leaves the root: a phone's jail would hide its target.
                    raise AfcRequestError(Status.OBJECT_NOT_FOUND)
                return resolved
        return current

    # ---- READ_DIR, GET_FILE_INFO, GET_DEVINFO ------------------------------------------

    def _read_dir(self, requested: str) -> bytes:
        target = self._target(requested)
        if target.fault_key in self.phone.faults.not_found:
            raise AfcRequestError(Status.OBJECT_NOT_FOUND)
        hostile_names = [
            entry.name
            for folder, entries in self.phone.faults.hostile_entries.items()
            if folder == target.fault_key or canonical_or_none(folder) == target.fault_key
            for entry in entries
        ]
        names: list[str] = []
        if isinstance(target, _HostileTarget):
            if target.entry.kind != "S_IFDIR":
                raise AfcRequestError(Status.READ_ERROR)
        else:
            try:
                names = sorted(os.listdir(target.host_path))
            except NotADirectoryError as error:
                raise AfcRequestError(Status.READ_ERROR) from error
            except FileNotFoundError as error:
                if not hostile_names:
                    raise AfcRequestError(Status.OBJECT_NOT_FOUND) from error
            except OSError as error:
                raise AfcRequestError(_status_for_os_error(error)) from error
        return cstring_list([".", "..", *names, *hostile_names])

    def _file_info(self, requested: str) -> list[tuple[str, str]]:
        target = self._target(requested)
        faults = self.phone.faults
        key = target.fault_key
        if key in faults.not_found:
            raise AfcRequestError(Status.OBJECT_NOT_FOUND)
        link_target: str | None = None
        if isinstance(target, _HostileTarget):
            entry = target.entry
            ifmt = entry.kind
            size = len(entry.content) if entry.kind == "S_IFREG" else 0
            if entry.kind == "S_IFLNK":
                link_target = entry.link_target
                size = len(entry.link_target.encode("utf-8", "surrogateescape"))
            blocks = (size + 511) // 512
            nlink = 2 if entry.kind == "S_IFDIR" else 1
            mtime_ns = birthtime_ns = 0
        else:
            try:
                info = os.stat(target.host_path)
            except OSError as error:
                raise AfcRequestError(_status_for_os_error(error)) from error
            ifmt = _IFMT_NAMES.get(stat_module.S_IFMT(info.st_mode), "S_IFREG")
            size = info.st_size
            blocks = info.st_blocks
            nlink = info.st_nlink
            mtime_ns = birthtime_ns = info.st_mtime_ns
        if key in faults.stat_size:
            size = faults.stat_size[key]
            blocks = (max(size, 0) + 511) // 512
        mtime_ns = faults.stat_mtime_ns.get(key, mtime_ns)
        birthtime_ns = faults.stat_birthtime_ns.get(key, birthtime_ns)
        pairs = [
            ("st_size", str(size)),
            ("st_blocks", str(blocks)),
            ("st_nlink", str(nlink)),
            ("st_ifmt", ifmt),
            ("st_mtime", str(mtime_ns)),
            ("st_birthtime", str(birthtime_ns)),
        ]
        if link_target is not None:
            pairs.append(("LinkTarget", link_target))
        missing = faults.stat_missing_keys.get(key)
        if missing:
            pairs = [(name, value) for name, value in pairs if name not in missing]
        return pairs

    def _device_info(self) -> list[tuple[str, str]]:
        try:
            volume = os.statvfs(self.root)
            total = volume.f_blocks * volume.f_frsize
            free = volume.f_bavail * volume.f_frsize
            block = volume.f_frsize
        except OSError:
            total, free, block = 0, 0, 4096
        return [
            ("Model", self.phone.identity.product_type),
            ("FSTotalBytes", str(total)),
            ("FSFreeBytes", str(free)),
            ("FSBlockSize", str(block)),
        ]

    # ---- FILE_OPEN, FILE_SEEK, FILE_TELL -------------------------------------------------

    def _open(self, payload: bytes) -> int:
        if len(payload) < U64.size:
            raise AfcRequestError(Status.INVALID_ARG)
        (mode,) = U64.unpack_from(payload)
        if mode != FileOpenMode.RDONLY:
            writable = mode in {item.value for item in FileOpenMode}
            raise AfcRequestError(Status.PERM_DENIED if writable else Status.INVALID_ARG)
        if len(self.handles) >= MAX_OPEN_HANDLES:
            raise AfcRequestError(Status.NO_RESOURCES)
        requested = first_cstring(payload[U64.size :])
        source, fault_key = self._open_source(requested, follow_links=1)
        number = self.next_handle
        self.next_handle += 1
        self.handles[number] = _Handle(source=source, fault_key=fault_key)
        return number

    def _open_source(self, requested: str, follow_links: int) -> tuple[_Source, str]:
        target = self._target(requested)
        if target.fault_key in self.phone.faults.not_found:
            raise AfcRequestError(Status.OBJECT_NOT_FOUND)
        if isinstance(target, _HostileTarget):
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
            return _MemoryFile(entry.content), target.fault_key
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            descriptor = os.open(target.host_path, flags)
        except OSError as error:
            raise AfcRequestError(_status_for_os_error(error)) from error
        try:
            mode = os.fstat(descriptor).st_mode
        except OSError as error:
            os.close(descriptor)
            raise AfcRequestError(_status_for_os_error(error)) from error
        if not stat_module.S_ISREG(mode):
            os.close(descriptor)
            is_dir = stat_module.S_ISDIR(mode)
            raise AfcRequestError(Status.OBJECT_IS_DIR if is_dir else Status.INVALID_ARG)
        return _HostFile(descriptor), target.fault_key

    def _handle_number(self, payload: bytes) -> int:
        if len(payload) < U64.size:
            raise AfcRequestError(Status.INVALID_ARG)
        number: int = U64.unpack_from(payload)[0]
        return number

    def _handle_for(self, payload: bytes) -> _Handle:
        handle = self.handles.get(self._handle_number(payload))
        if handle is None:
            raise AfcRequestError(Status.INVALID_ARG)
        return handle

    def _seek(self, payload: bytes) -> None:
        if len(payload) < SEEK_REQUEST.size:
            raise AfcRequestError(Status.INVALID_ARG)
        handle = self._handle_for(payload)
        _number, whence, offset = SEEK_REQUEST.unpack_from(payload)
        if whence == os.SEEK_SET:
            base = 0
        elif whence == os.SEEK_CUR:
            base = handle.position
        elif whence == os.SEEK_END:
            try:
                base = handle.source.size()
            except OSError as error:
                raise AfcRequestError(_status_for_os_error(error)) from error
        else:
            raise AfcRequestError(Status.INVALID_ARG)
        if base + offset < 0:
            raise AfcRequestError(Status.INVALID_ARG)
        handle.position = base + offset

    # ---- READ ------------------------------------------------------------------------------

    async def _read(self, packet_num: int, payload: bytes) -> None:
        if len(payload) < READ_REQUEST.size:
            raise AfcRequestError(Status.INVALID_ARG)
        handle = self._handle_for(payload)
        _number, wanted = READ_REQUEST.unpack_from(payload)
        key = handle.fault_key
        faults = self.phone.faults
        if key in faults.stuck_reads:
            self.unanswered.append(packet_num)
            return
        try:
            real_size = handle.source.size()
        except OSError as error:
            raise AfcRequestError(_status_for_os_error(error)) from error
        end = real_size + max(0, faults.grows_by_bytes.get(key, 0))
        count = max(0, min(wanted, end - handle.position))
        served = self.phone.afc_bytes_served[key]
        error_after = faults.read_error_after_bytes.get(key)
        if error_after is not None:
            allowed = error_after - served
            if allowed <= 0:
                raise AfcRequestError(Status.READ_ERROR)
            count = min(count, allowed)
        cut: int | None = None
        unplug_after = faults.unplug_after_bytes.get(key)
        if unplug_after is not None and count >= unplug_after - served:
            cut = max(0, unplug_after - served)
        self.writer.write(header(Operation.DATA, packet_num, count))
        sent = await self._stream(handle, real_size, count if cut is None else cut)
        handle.position += sent
        if cut is not None:
            await self._unplug_now(key)
        elif sent != count:
            # The host file shrank under us: the header promised more than exists. Hang up
            # rather than pad with invented bytes.
            log.warning("afc_file_shrank", udid=self.phone.identity.udid, path=key)
            raise _ConnectionEnded

    async def _stream(self, handle: _Handle, real_size: int, count: int) -> int:
        """Send ``count`` bytes of the handle from its position; return how many went out."""
        key = handle.fault_key
        position = handle.position
        sent = 0
        while sent < count:
            bucket = self._bucket()
            offset = position + sent
            if bucket is not None:
                piece = min(count - sent, bucket.piece_bytes)
            elif offset < real_size and self._can_sendfile(handle.source):
                piece = count - sent  # the kernel streams it; no reason to cut it up
            else:
                piece = min(count - sent, READ_PIECE_BYTES)
            data = b""
            if offset < real_size:
                piece = min(piece, real_size - offset)
            else:
                data = grown_bytes(offset, piece)
            if bucket is not None:
                delay = bucket.reserve(piece)
                if delay > 0:
                    await asyncio.sleep(delay)
            if self.writer.transport.is_closing():
                raise _ConnectionEnded
            if offset < real_size:
                done = await self._send_from_file(handle, offset, piece)
                if not done:
                    return sent
            else:
                self.writer.write(data)
                await self.writer.drain()
                done = len(data)
            self.phone.afc_bytes_served[key] += done
            sent += done
        return sent

    def _can_sendfile(self, source: _Source) -> bool:
        return self.sendfile_works and isinstance(source, _HostFile)

    async def _send_from_file(self, handle: _Handle, offset: int, count: int) -> int:
        """Send up to ``count`` bytes of the file at ``offset``; 0 means its end came first."""
        source = handle.source
        if isinstance(source, _HostFile) and self.sendfile_works:
            try:
                return await self._sendfile(source.descriptor, offset, count)
            except _SendfileUnavailable:
                self.sendfile_works = False
        try:
            # Without sendfile, copy at most one piece at a time: memory stays flat even for a
            # client that asks for a whole large file in one READ.
            data = await source.read(offset, min(count, READ_PIECE_BYTES))
        except OSError as error:
            log.warning("afc_host_read_failed", path=handle.fault_key, error=str(error))
            raise _ConnectionEnded from error
        if data:
            self.writer.write(data)
            await self.writer.drain()
        return len(data)

    async def _sendfile(self, descriptor: int, offset: int, count: int) -> int:
        """sendfile(2) from the host file to the client's socket: no copy through Python.

        Why not ``loop.sendfile``: the transport helper's unplug aborts the transport and
        cancels this task; asyncio's sendfile then leaves its writer callback registered on the
        closed descriptor, which breaks the next connection that reuses that number. Writing
        through a duplicate of the socket's descriptor, registered and unregistered here, keeps
        the loop's bookkeeping clean whatever closes first. The transport's buffer is empty
        (the header was drained with a zero high-water mark), so nothing can interleave.
        The socket is non-blocking, the file is not: a read from a cold disk blocks the loop
        for that read (read-ahead is requested at open); the test media lives in the page cache.
        """
        await self.writer.drain()
        if self.writer.transport.get_write_buffer_size():
            raise _SendfileUnavailable
        sock = self.writer.get_extra_info("socket")
        if sock is None or self.writer.get_extra_info("ssl_object") is not None:
            raise _SendfileUnavailable
        duplicate = os.dup(sock.fileno())
        loop = asyncio.get_running_loop()
        sent = 0
        try:
            while sent < count:
                try:
                    done = os.sendfile(duplicate, descriptor, offset + sent, count - sent)
                except BlockingIOError:
                    await _writable(loop, duplicate)
                    continue
                except OSError as error:
                    if sent == 0 and error.errno in _SENDFILE_UNSUPPORTED:
                        raise _SendfileUnavailable from error
                    raise _ConnectionEnded from error
                if done == 0:
                    break
                sent += done
        finally:
            os.close(duplicate)
        return sent

    def _bucket(self) -> TokenBucket | None:
        rate = self.phone.faults.throttle_bytes_per_second
        if rate is None:
            return None
        return PHONE_BUCKETS.bucket(self.phone, rate, asyncio.get_running_loop().time)

    async def _unplug_now(self, key: str) -> None:
        # One-shot: after the replug, a resumed transfer of the same file must be able to finish.
        self.phone.faults.unplug_after_bytes.pop(key, None)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()
        log.info(
            "afc_unplug_fault",
            udid=self.phone.identity.udid,
            path=key,
            bytes_served=self.phone.afc_bytes_served[key],
        )
        self.unplug()
        raise _ConnectionEnded


def canonical_or_none(phone_path: str) -> str | None:
    """:func:`canonical_path`, or None where it refuses the path."""
    try:
        return canonical_path(phone_path)
    except AfcRequestError:
        return None
