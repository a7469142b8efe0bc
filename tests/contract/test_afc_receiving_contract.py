"""The AFC connection's receiving side handed to AfcReceiver, with the installed pymobiledevice3.

:func:`rollkeeper.device.phone_files.receive_directly` reaches into pymobiledevice3's AFC
service (its reader task, its table of waiting requests): these tests hold, against the version
installed and the simulator over real sockets, that after the handover every reply still reaches
its request, that large READs arrive in buffers of their own, and that a connection ending
mid-reply is a disconnect, never a hang or wrong bytes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rollkeeper.device.errors import PhoneDisconnectedError
from rollkeeper.device.session import SessionSettings, open_session
from rollkeeper.ports import MAXIMUM_READ_BYTES, PhoneFiles
from rollkeeper.simulator import AfcFaults, SimulatorThread
from tests import media

UDID = "00008110-00AA00000000C0A2"
BIG = "/DCIM/100APPLE/IMG_0002.MOV"
SMALL = "/DCIM/100APPLE/IMG_0001.JPG"


def make_phone(root: Path) -> dict[str, bytes]:
    """A big file (over two READs) and a small one; their bytes by phone path."""
    contents = {}
    for path, size in ((BIG, 2 * MAXIMUM_READ_BYTES + 12_345), (SMALL, 7_000)):
        host = root / path.lstrip("/")
        media.make_blob(host, size, seed=path)
        contents[path] = host.read_bytes()
    return contents


async def read_whole(files: PhoneFiles, path: str) -> list[bytes | bytearray]:
    """Every chunk of a file, read from its start to the empty read at its end."""
    handle = await files.open(path)
    try:
        chunks = []
        while chunk := await files.read(handle, MAXIMUM_READ_BYTES):
            chunks.append(chunk)
        return chunks
    finally:
        await files.close(handle)


async def test_after_the_handover_reads_are_whole_and_other_requests_answer(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A big file's 4 MiB READs arrive in buffers of their own with exactly its bytes; stats,
    listings, small reads and a second connection answer as before; the session closes."""
    contents = make_phone(tmp_path / "phone")
    simulator.add_phone(UDID, tmp_path / "phone")
    settings = SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pair")
    async with asyncio.timeout(30):
        async with open_session(UDID, settings) as session:
            chunks = await read_whole(session.files, BIG)
            assert b"".join(chunks) == contents[BIG]
            # The last chunk (12,345 bytes) is below DIRECT_BYTES: a copy from the receive area.
            assert [type(chunk) for chunk in chunks] == [bytearray, bytearray, bytes]
            assert (await session.files.stat(BIG)).integer("st_size") == len(contents[BIG])
            listed = await session.files.list_folder("/DCIM/100APPLE")
            assert sorted(entry.raw for entry in listed) == [b"IMG_0001.JPG", b"IMG_0002.MOV"]
            assert all(type(entry.raw) is bytes for entry in listed)
            assert b"".join(await read_whole(session.files, SMALL)) == contents[SMALL]
            second = await session.open_files()
            assert b"".join(await read_whole(second, BIG)) == contents[BIG]


async def test_the_handover_waits_for_requests_in_flight(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Reads started while stats are in flight on the same connection lose no reply: every
    stat and every file comes back right, whenever the handover happens."""
    contents = make_phone(tmp_path / "phone")
    simulator.add_phone(UDID, tmp_path / "phone")
    settings = SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pair")
    async with asyncio.timeout(30), open_session(UDID, settings) as session:
        files = session.files
        stats = [files.stat(path) for path in [BIG, SMALL] * 20]
        reads = [read_whole(files, path) for path in (BIG, SMALL, BIG)]
        stat_results, read_results = await asyncio.gather(
            asyncio.gather(*stats), asyncio.gather(*reads)
        )
        sizes = [raw.integer("st_size") for raw in stat_results]
        assert sizes == [len(contents[BIG]), len(contents[SMALL])] * 20
        read_back = [b"".join(chunks) for chunks in read_results]
        assert read_back == [contents[BIG], contents[SMALL], contents[BIG]]


@pytest.mark.parametrize("cut", [1_000, MAXIMUM_READ_BYTES + 70_000])
async def test_a_connection_ending_mid_reply_is_a_disconnect(
    simulator: SimulatorThread, tmp_path: Path, cut: int
) -> None:
    """The phone unplugged in the middle of a READ's reply (in the first READ, before the
    handover's effect shows, and in a later one) is a PhoneDisconnectedError, and every chunk
    that did arrive is the file's own bytes."""
    contents = make_phone(tmp_path / "phone")
    simulator.add_phone(UDID, tmp_path / "phone", faults=AfcFaults(unplug_after_bytes={BIG: cut}))
    settings = SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pair")
    received = bytearray()
    async with asyncio.timeout(30), open_session(UDID, settings) as session:
        handle = await session.files.open(BIG)
        with pytest.raises(PhoneDisconnectedError):
            while chunk := await session.files.read(handle, MAXIMUM_READ_BYTES):
                received += chunk
    assert len(received) < cut
    assert received == contents[BIG][: len(received)]
