"""READ: streaming a file's bytes to the client, throttled and faulted, without holding them.

The bytes go from disk to the socket with ``sendfile(2)`` from the host file to the client's
socket, or, where that is unavailable, in 1 MiB pieces read with ``os.pread`` in a worker
thread: memory stays flat however large the file and however much the client asks for. A
throttled phone (:mod:`.afc_throttle`) sends in small pieces paced by its token bucket. The
read faults (:func:`~rollkeeper.simulator.afc_faults.read_limits`) decide how much is served
before a read error or an unplug; a stuck READ is simply never answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import Callable

import structlog

from rollkeeper.simulator.afc_errors import (
    AfcConnectionEnded,
    AfcRequestError,
    status_for_os_error,
)
from rollkeeper.simulator.afc_faults import grown_bytes, read_limits
from rollkeeper.simulator.afc_files import Handle, HostFile, OpenFiles, Source
from rollkeeper.simulator.afc_protocol import READ_REQUEST, Operation, Status, header
from rollkeeper.simulator.afc_throttle import PHONE_BUCKETS, TokenBucket
from rollkeeper.simulator.phone import PhoneState

log = structlog.get_logger(__name__)

#: READ payload is streamed from disk in pieces of this size.
READ_PIECE_BYTES = 1024 * 1024

#: sendfile(2) errors that mean "not for this kind of descriptor", not "the peer is gone".
_SENDFILE_UNSUPPORTED = frozenset(
    {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK, errno.ENOTSUP}
)


class _SendfileUnavailable(Exception):
    """sendfile(2) cannot be used on this connection; copy through a buffer instead."""


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


class ReadStreamer:
    """Answers the READ requests of one connection, writing straight to its socket.

    ``unplug`` pulls the phone's cable (the unplug fault); ``files`` is the connection's
    handle table. The writer's high-water mark is zero (set by the request loop), so a drained
    writer means the kernel has every byte and sendfile(2) may write past the transport.
    """

    def __init__(
        self,
        phone: PhoneState,
        files: OpenFiles,
        writer: asyncio.StreamWriter,
        unplug: Callable[[], None],
    ) -> None:
        self.phone = phone
        self.files = files
        self.writer = writer
        self.unplug = unplug
        #: READs never answered (stuck_reads fault), kept so the reason is visible in a debugger.
        self.unanswered: list[int] = []
        #: Cleared at the first sign that sendfile(2) does not work for this socket.
        self.sendfile_works = hasattr(os, "sendfile")

    async def read(self, packet_num: int, payload: bytes) -> None:
        """Answer one READ: a DATA header, then the bytes (or nothing, for a stuck read)."""
        if len(payload) < READ_REQUEST.size:
            raise AfcRequestError(Status.INVALID_ARG)
        handle = self.files.handle_for(payload)
        _number, wanted = READ_REQUEST.unpack_from(payload)
        key = handle.fault_key
        faults = self.phone.faults
        if key in faults.stuck_reads:
            self.unanswered.append(packet_num)
            return
        try:
            real_size = handle.source.size()
        except OSError as error:
            raise AfcRequestError(status_for_os_error(error)) from error
        served = self.phone.afc_bytes_served[key]
        limits = read_limits(faults, key, handle.position, wanted, real_size, served)
        count, cut = limits.count, limits.cut
        self.writer.write(header(Operation.DATA, packet_num, count))
        sent = await self._stream(handle, real_size, count if cut is None else cut)
        handle.position += sent
        if cut is not None:
            await self._unplug_now(key)
        elif sent != count:
            # The host file shrank under us: the header promised more than exists. Hang up
            # rather than pad with invented bytes.
            log.warning("afc_file_shrank", udid=self.phone.identity.udid, path=key)
            raise AfcConnectionEnded

    async def _stream(self, handle: Handle, real_size: int, count: int) -> int:
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
                raise AfcConnectionEnded
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

    def _can_sendfile(self, source: Source) -> bool:
        return self.sendfile_works and isinstance(source, HostFile)

    async def _send_from_file(self, handle: Handle, offset: int, count: int) -> int:
        """Send up to ``count`` bytes of the file at ``offset``; 0 means its end came first."""
        source = handle.source
        if isinstance(source, HostFile) and self.sendfile_works:
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
            raise AfcConnectionEnded from error
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
                    raise AfcConnectionEnded from error
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
        raise AfcConnectionEnded
