"""The AFC receiving side that replaces asyncio's stream reader: exact bytes over a real socket.

Each test opens a real socket pair, puts a stream on one end as pymobiledevice3 does
(``asyncio.open_connection``), hands its transport to :class:`AfcReceiver`, and writes raw bytes
from the other end, in whatever pieces the test chooses.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from rollkeeper.device.afc_receiver import (
    DIRECT_BYTES,
    LARGEST_BUFFER_BYTES,
    RECEIVE_AREA_BYTES,
    AfcReceiver,
)


@dataclass
class Connection:
    """The receiver on one end of a socket pair; ``phone`` is the other end (raw socket)."""

    receiver: AfcReceiver
    writer: asyncio.StreamWriter
    phone: socket.socket

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.phone, data)


@pytest.fixture
async def connection() -> AsyncIterator[Connection]:
    """A receiver taking over a stream connection, and the raw far end."""
    ours, phone = socket.socketpair()
    phone.setblocking(False)
    _reader, writer = await asyncio.open_connection(sock=ours)
    transport = writer.transport
    assert isinstance(transport, asyncio.Transport)
    receiver = AfcReceiver(transport, transport.get_protocol())
    transport.set_protocol(receiver)
    try:
        yield Connection(receiver, writer, phone)
    finally:
        writer.close()
        phone.close()
        async with asyncio.timeout(5):
            await writer.wait_closed()


async def test_reads_come_back_exactly_however_the_bytes_are_cut(connection: Connection) -> None:
    """Small and large reads of a stream sent in odd pieces give back exactly the bytes sent,
    in order: a header split across sends, a large payload across many, two replies in one."""
    header, payload, tail = os.urandom(40), os.urandom(3 * DIRECT_BYTES + 17), os.urandom(40)
    stream = header + payload + tail
    cuts = [0, 7, 40, 41, 5000, 100_000, len(header) + len(payload) + 3, len(stream)]

    async def send_in_pieces() -> None:
        for start, end in itertools.pairwise(cuts):
            await connection.send(stream[start:end])
            await asyncio.sleep(0)

    sending = asyncio.create_task(send_in_pieces())
    async with asyncio.timeout(5):
        assert await connection.receiver.readexactly(40) == header
        large = await connection.receiver.readexactly(len(payload))
        assert await connection.receiver.readexactly(40) == tail
    await sending
    assert large == payload


async def test_a_large_read_is_a_buffer_of_its_own_and_stops_at_its_end(
    connection: Connection,
) -> None:
    """A read of at least DIRECT_BYTES is a bytearray of exactly that length, and the bytes
    after it (sent in the same piece) are the next read's, not lost into it."""
    payload, following = os.urandom(DIRECT_BYTES * 16), os.urandom(25)
    sending = asyncio.create_task(connection.send(payload + following))
    async with asyncio.timeout(5):
        large = await connection.receiver.readexactly(len(payload))
        small = await connection.receiver.readexactly(len(following))
        await sending
    assert isinstance(large, bytearray)
    assert large == payload
    assert isinstance(small, bytes)
    assert small == following


async def test_the_connection_ending_mid_read_fails_with_what_came(connection: Connection) -> None:
    """When the phone hangs up in the middle of a large reply, the read fails with
    IncompleteReadError holding exactly the bytes that came, and so does every later read."""
    sent = os.urandom(DIRECT_BYTES + 1000)
    await connection.send(sent)
    connection.phone.shutdown(socket.SHUT_WR)
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.IncompleteReadError) as raised:
            await connection.receiver.readexactly(2 * DIRECT_BYTES)
        assert raised.value.partial == sent
        with pytest.raises(asyncio.IncompleteReadError):
            await connection.receiver.readexactly(40)


async def test_a_read_abandoned_half_way_makes_later_reads_fail(connection: Connection) -> None:
    """A large read cancelled after part of its reply came leaves the stream mid-reply: later
    reads fail instead of taking the rest of that reply for the next one."""
    await connection.send(os.urandom(1000))
    reading = asyncio.create_task(connection.receiver.readexactly(DIRECT_BYTES * 2))
    await asyncio.sleep(0)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    async with asyncio.timeout(5):
        await connection.send(os.urandom(DIRECT_BYTES))
        with pytest.raises(ConnectionError):
            await connection.receiver.readexactly(40)


async def test_bytes_beyond_the_receive_area_wait_in_the_socket(connection: Connection) -> None:
    """More small replies than the receive area holds, sent while nobody reads, are all read
    back in order: the receiver stops taking bytes when full and resumes as they are read."""
    pieces = [os.urandom(1000) for _ in range(3 * RECEIVE_AREA_BYTES // 1000)]
    sending = asyncio.create_task(connection.send(b"".join(pieces)))
    async with asyncio.timeout(5):
        while not connection.receiver.paused:  # noqa: ASYNC110 - no event says "full"; each yield (no time) lets the transport read once
            await asyncio.sleep(0)
        for piece in pieces:
            assert await connection.receiver.readexactly(len(piece)) == piece
        await sending


async def test_the_writing_side_still_works_after_the_takeover(connection: Connection) -> None:
    """Writes and drain go through as before, and the phone's reply is read back."""
    connection.writer.write(b"request")
    async with asyncio.timeout(5):
        await connection.writer.drain()
        loop = asyncio.get_running_loop()
        assert await loop.sock_recv(connection.phone, 100) == b"request"
        await connection.send(b"reply")
        assert await connection.receiver.readexactly(5) == b"reply"


async def test_a_read_longer_than_any_reply_allocates_only_what_arrives(
    connection: Connection,
) -> None:
    """A header announcing a 4 GiB reply (a hostile phone) makes no 4 GiB buffer: memory grows
    with the bytes that arrive, and the read fails with exactly them when the phone hangs up."""
    sent = os.urandom(LARGEST_BUFFER_BYTES + 5000)
    tracemalloc.start()
    try:
        reading = asyncio.create_task(connection.receiver.readexactly(1 << 32))
        async with asyncio.timeout(10):
            await connection.send(sent)
            connection.phone.shutdown(socket.SHUT_WR)
            with pytest.raises(asyncio.IncompleteReadError) as raised:
                await reading
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raised.value.partial == sent
    assert peak < 8 * LARGEST_BUFFER_BYTES


async def test_a_long_read_in_pieces_is_whole(connection: Connection) -> None:
    """A read longer than LARGEST_BUFFER_BYTES (a huge folder's listing) gives back all of it."""
    payload = os.urandom(2 * LARGEST_BUFFER_BYTES + 123)
    sending = asyncio.create_task(connection.send(payload))
    async with asyncio.timeout(10):
        assert await connection.receiver.readexactly(len(payload)) == payload
        await sending
