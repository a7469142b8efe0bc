"""The AFC connection's receiving side, with one copy per byte from the socket to the reply.

asyncio's ``StreamReader`` (what pymobiledevice3 reads AFC replies from) receives each
``recv`` as a new ``bytes`` object of up to 256 KiB, appends it to its buffer, pauses and
resumes the socket every 128 KiB (its default limit), and copies a 4 MiB READ reply out of the
buffer at the end: three copies of every byte and ~16 wake-ups of the reading task per reply.
At 300 MB/s that was most of the client's CPU (profiled: ``recv`` into fresh buffers and
``bytearray.extend``, 1.7 s per GB on this 2-core machine, while the simulator serving the same
bytes spent 0.3 s per GB).

:class:`AfcReceiver` is an :class:`asyncio.BufferedProtocol` put on the connection's transport
in place of the stream's protocol, with the one method of ``StreamReader`` that pymobiledevice3's
AFC reader loop uses, :meth:`AfcReceiver.readexactly`. Small reads (headers, stats, listings)
are served from a fixed receive area, as ``bytes``; a read of :data:`DIRECT_BYTES` or more gets
its own ``bytearray`` of exactly that length, and the socket's bytes are received straight into
it (``recv_into``), never beyond its end, so the next reply's header is never consumed with it.
The caller owns that buffer: nothing here touches it after it is returned.

Everything the stream protocol did for the writing side (pausing ``drain`` under backpressure,
waking it and ``wait_closed`` when the connection ends) is passed on to it unchanged. This
module uses public asyncio interfaces only; taking over a pymobiledevice3 connection is in
:mod:`rollkeeper.device.phone_files`.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["DIRECT_BYTES", "LARGEST_BUFFER_BYTES", "RECEIVE_AREA_BYTES", "AfcReceiver"]

#: Bytes the socket may be read into at a time when no large read is waiting: as much as
#: asyncio's transports read per ``recv``.
RECEIVE_AREA_BYTES = 256 * 1024
#: Reads of at least this many bytes are received into a buffer of their own.
DIRECT_BYTES = 64 * 1024
#: The largest buffer allocated before its bytes arrive (a READ reply is at most 4 MiB). A
#: longer read, which only a listing of a huge folder or a hostile phone's header asks for, is
#: received in pieces of this size and joined, so memory grows only as bytes really arrive.
LARGEST_BUFFER_BYTES = 8 * 1024 * 1024


class AfcReceiver(asyncio.BufferedProtocol):
    """Receives one connection's bytes and hands them out by :meth:`readexactly`.

    ``inner`` is the protocol the transport had (the stream's), which keeps handling the
    writing side's flow control and the end of the connection.
    """

    def __init__(self, transport: asyncio.Transport, inner: asyncio.BaseProtocol) -> None:
        self._transport = transport
        self._inner = inner
        self._area = bytearray(RECEIVE_AREA_BYTES)
        #: Received bytes not yet read are ``_area[_start:_end]``.
        self._start = 0
        self._end = 0
        #: The large read in progress: its buffer's unfilled rest, and how much is filled.
        self._direct: memoryview | None = None
        self._direct_filled = 0
        #: Small reads wait for this many bytes in the area.
        self._wanted = 0
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._eof = False
        self._exception: BaseException | None = None

    @property
    def paused(self) -> bool:
        """True while the receive area is full and the socket is not read."""
        return self._paused

    # -- the transport's side ----------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the transport receives next: the large read's buffer, or the area's free end."""
        if self._direct is not None:
            return self._direct[self._direct_filled :]
        if self._start == self._end:
            self._start = self._end = 0
        elif self._start and len(self._area) - self._end < DIRECT_BYTES:
            unread = self._end - self._start
            self._area[:unread] = self._area[self._start : self._end]
            self._start, self._end = 0, unread
        # Never empty: the area is paused for reading when it is full (buffer_updated).
        return memoryview(self._area)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` more were received into the last buffer given."""
        if self._direct is not None:
            self._direct_filled += nbytes
            if self._direct_filled == len(self._direct):
                # Complete: from here on the socket's bytes are the next reply's.
                self._direct.release()
                self._direct = None
                self._wake()
            return
        self._end += nbytes
        if self._end - self._start >= self._wanted:
            self._wake()
        if self._end == len(self._area) and not self._paused:
            # Full: wait for a reader to take some before receiving more.
            self._paused = True
            self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        """The phone closed its side: readers waiting for more fail."""
        self._eof = True
        self._wake()
        keep_open: bool | None = self._inner_call("eof_received")
        return keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: readers waiting for more fail with its error."""
        self._eof = True
        if exc is not None:
            self._exception = exc
        self._wake()
        self._inner_call("connection_lost", exc)

    def pause_writing(self) -> None:
        self._inner_call("pause_writing")

    def resume_writing(self) -> None:
        self._inner_call("resume_writing")

    def _inner_call(self, name: str, *arguments: Any) -> Any:
        return getattr(self._inner, name)(*arguments)

    # -- the reader's side -------------------------------------------------------------------

    async def readexactly(self, count: int) -> bytes | bytearray:
        """The next ``count`` bytes: ``bytes`` when small, a ``bytearray`` of its own when at
        least :data:`DIRECT_BYTES`. Raises ``asyncio.IncompleteReadError`` (or the
        connection's error) when the connection ends first, as ``StreamReader`` does."""
        if self._waiter is not None:
            raise RuntimeError("readexactly is already waiting on this connection")
        if count > LARGEST_BUFFER_BYTES:
            return await self._read_in_pieces(count)
        if count >= DIRECT_BYTES:
            return await self._read_direct(count)
        while self._end - self._start < count:
            self._fail_if_ended(bytes(self._unread()), count)
            self._wanted = count
            self._resume()
            await self._wait()
        data = bytes(self._unread()[:count])
        self._start += count
        self._resume()
        return data

    async def _read_in_pieces(self, count: int) -> bytearray:
        """A read longer than :data:`LARGEST_BUFFER_BYTES`, one buffer's worth at a time."""
        whole = bytearray()
        while len(whole) < count:
            piece = min(count - len(whole), LARGEST_BUFFER_BYTES)
            try:
                whole += await self._read_direct(piece)
            except asyncio.IncompleteReadError as error:
                raise asyncio.IncompleteReadError(bytes(whole) + error.partial, count) from error
        return whole

    async def _read_direct(self, count: int) -> bytearray:
        buffer = bytearray(count)
        taken = min(count, self._end - self._start)
        buffer[:taken] = self._unread()[:taken]
        self._start += taken
        if taken == count:
            self._resume()
            return buffer
        view = memoryview(buffer)
        self._direct = view[taken:]
        self._direct_filled = 0
        self._resume()
        try:
            while self._direct is not None:
                if self._eof or self._exception is not None:
                    filled = taken + self._direct_filled
                    self._direct.release()
                    self._direct = None
                    self._fail_if_ended(bytes(buffer[:filled]), count)
                await self._wait()
        except asyncio.CancelledError:
            if self._direct is not None:
                # Part of the reply is in a buffer nobody will read: the stream cannot be
                # resynchronised, so every later read fails instead of reading mid-reply.
                self._direct.release()
                self._direct = None
                self._exception = ConnectionError("an AFC reply was abandoned half-read")
            raise
        finally:
            view.release()
        return buffer

    def _unread(self) -> memoryview:
        return memoryview(self._area)[self._start : self._end]

    def _fail_if_ended(self, partial: bytes, count: int) -> None:
        if self._exception is not None:
            raise self._exception
        if self._eof:
            raise asyncio.IncompleteReadError(partial, count)

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
            self._wanted = 0

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _resume(self) -> None:
        if self._paused and not self._eof:
            self._paused = False
            self._transport.resume_reading()
