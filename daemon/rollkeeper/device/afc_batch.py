"""Many AFC requests of one kind, pipelined: windows of packets, each written in one ``sendall``.

pymobiledevice3's request path (``AfcService._send_and_wait``) takes a lock, makes a future,
builds a header with its struct library and calls ``sendall`` once per request; a re-plug's
rotating check sends 2,000 GET_FILE_INFO and a first scan one per file, so that path is most of
their client CPU. This module sends a window of :data:`WINDOW` requests at once through the
same demultiplexer pymobiledevice3 runs (its reader task routes each reply by packet number to
the future registered in its pending table), so replies and connection errors arrive exactly as
they do for its own calls:

* packet numbers are taken from ``AfcService.packet_num`` and the futures registered in
  ``_afc_pending`` under ``_afc_write_lock``, before the bytes are written, as ``_send_and_wait``
  does, so the reader never sees a reply without its waiter and no other request is
  interleaved with a window's numbers;
* two windows are in flight: the next one is written while the replies to the one before come
  back, so the phone always has requests queued;
* one deadline per window (not one per request): a phone that stops answering raises
  ``TimeoutError`` within ``timeout_seconds`` of the last window that was answered, and the
  window's futures are dropped from the pending table.

These are pymobiledevice3 private attributes, reached here and in
:func:`rollkeeper.device.phone_files.send_afc_request` only; the contract tests
(tests/contract/) run both against the simulator with the installed version, and a unit test
checks the header this module packs against pymobiledevice3's own ``AfcHeader``.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from collections.abc import Sequence
from typing import Any

from pymobiledevice3.services.afc import AFC_HEADER_SIZE, AFCMAGIC, AfcOpcode, AfcService

from rollkeeper.device.errors import PhoneDisconnectedError

#: Requests per window (two windows in flight: up to 256 requests queued at the phone).
WINDOW = 128
#: An AFC header: magic, entire length, this packet's length, packet number, operation.
HEADER = struct.Struct("<8sQQQQ")
assert HEADER.size == AFC_HEADER_SIZE, "pymobiledevice3's AFC header changed"


class ReaderNotRunning(Exception):
    """pymobiledevice3's reader task is not running (no request sent yet, or the connection
    ended): nothing would route the replies, so the caller uses the one-request path."""


def pack_request(opcode: int, packet_number: int, payload: bytes) -> bytes:
    """One AFC request packet: header and payload."""
    length = AFC_HEADER_SIZE + len(payload)
    return HEADER.pack(AFCMAGIC, length, length, packet_number, opcode) + payload


class _Window:
    """The packets of one window: their first packet number and their reply futures."""

    __slots__ = ("first", "futures")

    def __init__(self, first: int, futures: list[asyncio.Future[Any]]) -> None:
        self.first = first
        self.futures = futures

    def forget(self, pending: dict[int, asyncio.Future[Any]]) -> None:
        """Drop the window's waiters (a deadline passed or the caller was cancelled)."""
        for offset, future in enumerate(self.futures):
            pending.pop(self.first + offset, None)
            future.cancel()


async def _send_window(
    service: Any, requests: Sequence[tuple[int, bytes]], loop: asyncio.AbstractEventLoop
) -> _Window:
    pending: dict[int, asyncio.Future[Any]] = service._afc_pending  # noqa: SLF001 - see the module docstring
    async with service._afc_write_lock:  # noqa: SLF001
        reader = service._afc_reader_task  # noqa: SLF001
        if reader is None or reader.done():
            raise PhoneDisconnectedError("the AFC connection ended during a batch of requests")
        first: int = service.packet_num
        futures: list[asyncio.Future[Any]] = []
        packets: list[bytes] = []
        for offset, (opcode, payload) in enumerate(requests):
            future: asyncio.Future[Any] = loop.create_future()
            pending[first + offset] = future
            futures.append(future)
            packets.append(pack_request(opcode, first + offset, payload))
        service.packet_num = first + len(requests)
        window = _Window(first, futures)
        try:
            await service.service.sendall(b"".join(packets))
        except BaseException:
            window.forget(pending)
            raise
    return window


class WindowNotAnsweredError(TimeoutError):
    """A window's deadline passed: ``unanswered`` are the indexes (into the requests given)
    of the requests with no reply, so a caller can say which file the phone left hanging."""

    def __init__(self, unanswered: list[int]) -> None:
        super().__init__(f"{len(unanswered)} requests not answered in time")
        self.unanswered = unanswered


async def _replies(
    window: _Window, timeout_seconds: float, first_index: int
) -> list[tuple[object, bytes]]:
    try:
        async with asyncio.timeout(timeout_seconds):
            for future in window.futures:
                if not future.done():
                    await future
    except TimeoutError as error:
        unanswered = [
            first_index + offset
            for offset, future in enumerate(window.futures)
            if not future.done() or future.cancelled()
        ]
        raise WindowNotAnsweredError(unanswered) from error
    return [future.result() for future in window.futures]


async def send_many(
    afc: AfcService, opcode: AfcOpcode, payloads: Sequence[bytes], timeout_seconds: float
) -> list[tuple[object, bytes]]:
    """``(status, reply payload)`` of one request per payload, in order.

    Raises :class:`ReaderNotRunning` before anything is sent when pymobiledevice3's reader is
    not running, ``TimeoutError`` when a window is not answered within ``timeout_seconds``,
    :class:`~rollkeeper.device.errors.PhoneDisconnectedError` when the connection's reader
    ended between windows, and the reader's own error (a connection error) when it ended with
    replies outstanding.
    """
    return await send_requests(afc, [(opcode, payload) for payload in payloads], timeout_seconds)


async def send_requests(
    afc: Any, requests: Sequence[tuple[int, bytes]], timeout_seconds: float
) -> list[tuple[object, Any]]:
    """``(status, reply payload)`` of each ``(opcode, payload)`` request, in order: the
    requests of :func:`send_many` of any kinds (the OPENs, READs or CLOSEs of several small
    files at once, :mod:`rollkeeper.device.afc_whole_reads`), with the same windows, deadline
    and errors. A READ reply's payload is the ``bytearray`` it was received into when
    :class:`~rollkeeper.device.afc_receiver.AfcReceiver` has the connection.
    """
    service: Any = afc
    reader = service._afc_reader_task  # noqa: SLF001 - see the module docstring
    if reader is None or reader.done():
        raise ReaderNotRunning
    loop = asyncio.get_running_loop()
    pending: dict[int, asyncio.Future[Any]] = service._afc_pending  # noqa: SLF001
    in_flight: deque[_Window] = deque()
    replies: list[tuple[object, bytes]] = []
    try:
        for start in range(0, len(requests), WINDOW):
            in_flight.append(await _send_window(service, requests[start : start + WINDOW], loop))
            if len(in_flight) == 2:
                replies.extend(await _replies(in_flight[0], timeout_seconds, len(replies)))
                in_flight.popleft()
        while in_flight:
            replies.extend(await _replies(in_flight[0], timeout_seconds, len(replies)))
            in_flight.popleft()
    except BaseException:
        for window in in_flight:
            window.forget(pending)
        raise
    return replies
