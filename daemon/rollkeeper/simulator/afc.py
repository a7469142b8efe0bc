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
* READ streams from disk without holding the file (:mod:`.afc_read`).
* Every path is resolved strictly inside the media root (:mod:`.afc_paths`); files are opened
  with ``O_NOFOLLOW`` on the resolved path and must be regular files (:mod:`.afc_files`).
  Hostile entries (faults) are produced from :class:`~rollkeeper.simulator.phone.HostileEntry`
  values and never touch the host.
* Faults and counters live in :class:`~rollkeeper.simulator.phone.PhoneState`, read at each
  request, so a test can change them while a transfer runs (:mod:`.afc_faults`).

This module is the request loop and the dispatch by operation; the replies about names are
:mod:`.afc_listing`, the wire format :mod:`.afc_protocol`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from rollkeeper.simulator import afc_sync_lock
from rollkeeper.simulator.afc_errors import AfcConnectionEnded, AfcRequestError
from rollkeeper.simulator.afc_files import OpenFiles
from rollkeeper.simulator.afc_listing import device_info, file_info, read_dir
from rollkeeper.simulator.afc_paths import MediaPaths
from rollkeeper.simulator.afc_protocol import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    U64,
    WRITE_OPERATIONS,
    Operation,
    Status,
    first_cstring,
    key_value_list,
    operation_name,
    packet,
    status_packet,
)
from rollkeeper.simulator.afc_read import READ_PIECE_BYTES, ReadStreamer
from rollkeeper.simulator.phone import PhoneState

log = structlog.get_logger(__name__)

#: Requests carry a path or a few integers; anything bigger is a write (refused) or garbage.
MAX_REQUEST_PAYLOAD = 1024 * 1024
#: A header whose length is beyond this cannot be AFC (the client's writes are at most 1 GiB).
MAX_PACKET_LENGTH = 1 << 32
#: Quick replies held back for one write, at most (a window of the client's is 128).
MAX_UNSENT_REPLIES = 256


class AfcServer:
    """Serves AFC connections for one simulated phone (one :meth:`serve` call per connection)."""

    def __init__(self, phone: PhoneState, unplug: Callable[[], None]) -> None:
        self.phone = phone
        self._unplug = unplug

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one AFC connection until EOF, close, or an unplug fault."""
        connection = AfcConnection(self.phone, self._unplug, reader, writer)
        await connection.run()


class AfcConnection:
    """One AFC connection: its place in the byte stream, its open files and its reads."""

    def __init__(
        self,
        phone: PhoneState,
        unplug: Callable[[], None],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.phone = phone
        self.reader = reader
        self.writer = writer
        self.paths = MediaPaths(phone)
        self.files = OpenFiles(self.paths)
        self._unplug = unplug
        self.reads = ReadStreamer(phone, self.files, writer, unplug)
        #: Quick replies not yet written (see :meth:`_handle`).
        self._unsent: list[bytes] = []

    async def run(self) -> None:
        """Read requests and answer them in order until EOF, a bad header or an unplug."""
        # drain() then waits until every byte is handed to the kernel, which READ relies on
        # before it writes the file's bytes past the transport (see afc_read).
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
                    if self._unsent:
                        await self._flush()
                    await self._discard(payload_length)
                    refusal = (
                        Status.PERM_DENIED if code in WRITE_OPERATIONS else Status.TOO_MUCH_DATA
                    )
                    await self._send(status_packet(packet_num, refusal))
                    continue
                payload = await self.reader.readexactly(payload_length) if payload_length else b""
                await self._handle(code, packet_num, payload)
                if self._unsent and not self._next_request_arrived():
                    await self._flush()
        except (AfcConnectionEnded, OSError, asyncio.IncompleteReadError):
            return
        finally:
            afc_sync_lock.release(self.phone, self)
            self.files.close_all()
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
            raise AfcConnectionEnded
        self.writer.write(data)
        await self.writer.drain()

    def _next_request_arrived(self) -> bool:
        """Whether a whole next request is already buffered (the client sent a window of them):
        its answer can go out in the same write as the answers before it."""
        # asyncio keeps no public count of what is buffered.
        buffered: bytearray = self.reader._buffer  # type: ignore[attr-defined]  # noqa: SLF001
        if len(buffered) < HEADER_SIZE:
            return False
        entire_length = HEADER.unpack_from(buffered)[1]
        return len(buffered) >= entire_length and len(self._unsent) < MAX_UNSENT_REPLIES

    async def _flush(self) -> None:
        """Send the quick replies held back, in order, in one write."""
        replies, self._unsent = self._unsent, []
        await self._send(b"".join(replies))

    async def _handle(self, code: int, packet_num: int, payload: bytes) -> None:
        """Answer one request. A quick reply is held (:attr:`_unsent`) while further requests
        are already waiting, and written with theirs: the byte stream is the one a phone sends,
        in fewer writes, as a C afcd's cheap replies leave the kernel in few segments. A READ
        (which streams and waits for the kernel) and a fault that unplugs first send what is
        held."""
        try:
            if code == Operation.READ:
                if self._unsent:
                    await self._flush()
                await self.reads.read(packet_num, payload)
                return
            if code == Operation.GET_FILE_INFO and self._stat_fault(payload):
                return
            reply = self._answer(code, packet_num, payload)
        except AfcRequestError as error:
            reply = status_packet(packet_num, error.status)
        self._unsent.append(reply)

    def _stat_fault(self, payload: bytes) -> bool:
        """True when the ``stuck_stats`` fault leaves this GET_FILE_INFO unanswered;
        :raises AfcConnectionEnded: the ``unplug_at_stat`` fault unplugged the phone."""
        faults = self.phone.faults
        if not faults.stuck_stats and not faults.unplug_at_stat:
            return False
        key = self.paths.target(first_cstring(payload)).fault_key
        if key in faults.unplug_at_stat:
            faults.unplug_at_stat.discard(key)
            self._send_held_now()
            log.info("afc_unplug_fault", udid=self.phone.identity.udid, path=key)
            self._unplug()
            raise AfcConnectionEnded
        return key in faults.stuck_stats

    def _send_held_now(self) -> None:
        """Hand the held replies to the transport at once (before an unplug drops the
        connection: what the phone answered before it went away was sent)."""
        if self._unsent and not self.writer.transport.is_closing():
            self.writer.write(b"".join(self._unsent))
        self._unsent = []

    def _answer(self, code: int, packet_num: int, payload: bytes) -> bytes:
        """The reply to every request but READ (all of them are quick and need no waiting)."""
        if code == Operation.READ_DIR:
            return packet(Operation.DATA, packet_num, read_dir(self.paths, first_cstring(payload)))
        if code == Operation.GET_FILE_INFO:
            info = file_info(self.paths, first_cstring(payload))
            return packet(Operation.DATA, packet_num, key_value_list(info))
        if code == Operation.GET_DEVINFO:
            info = device_info(self.phone, self.paths.root)
            return packet(Operation.DATA, packet_num, key_value_list(info))
        if code == Operation.FILE_OPEN:
            opened = self.files.open(payload)
            return packet(Operation.FILE_OPEN_RES, packet_num, U64.pack(opened))
        if code == Operation.FILE_SEEK:
            self.files.seek(payload)
            return status_packet(packet_num, Status.SUCCESS)
        if code == Operation.FILE_TELL:
            position = self.files.handle_for(payload).position
            return packet(Operation.FILE_TELL_RES, packet_num, U64.pack(position))
        if code == Operation.FILE_CLOSE:
            self.files.close(payload)
            return status_packet(packet_num, Status.SUCCESS)
        if code == Operation.FILE_LOCK:
            afc_sync_lock.file_lock(self.phone, self, payload, set(self.files.handles))
            return status_packet(packet_num, Status.SUCCESS)
        if code in WRITE_OPERATIONS:
            raise AfcRequestError(Status.PERM_DENIED)
        raise AfcRequestError(Status.OP_NOT_SUPPORTED)
