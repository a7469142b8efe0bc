"""AFC end to end: pymobiledevice3 over usbmuxd + lockdownd (TLS) to the simulated phone's AFC.

Every fault of :class:`rollkeeper.simulator.AfcFaults` is checked here as the exception the
unmodified client raises, which is what rollkeeper's importer will see from a real phone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from bytestruct import CSTRING
from pymobiledevice3.exceptions import (
    AfcException,
    AfcFileNotFoundError,
    ConnectionTerminatedError,
)
from pymobiledevice3.lockdown import LockdownClient, create_using_usbmux
from pymobiledevice3.services.afc import AfcError, AfcOpcode, AfcService, list_to_dict

from rollkeeper.device.phone_files import send_afc_request
from rollkeeper.simulator import AfcFaults, HostileEntry, SimulatorThread
from rollkeeper.simulator.afc_faults import grown_bytes
from rollkeeper.simulator.afc_protocol import Operation, packet
from rollkeeper.simulator.afc_throttle import BURST_SECONDS
from tests.simulator.clients import PHONE_UDID, VENV_BIN, run

FOLDER = "/DCIM/100APPLE"
PHOTO = f"{FOLDER}/IMG_0001.HEIC"
MOVIE = f"{FOLDER}/IMG_0002.MOV"
#: Bigger than pymobiledevice3's 4 MiB read size, so pull() streams it in chunks.
MOVIE_BYTES = 5 * 1024 * 1024 + 123
CHUNK = 4 * 1024 * 1024


@pytest.fixture
def phone_root(tmp_path: Path) -> Path:
    """A media folder with a photo, a 5 MiB movie and a second, empty folder."""
    root = tmp_path / "phone"
    folder = root / "DCIM" / "100APPLE"
    folder.mkdir(parents=True)
    (root / "DCIM" / "101APPLE").mkdir()
    (folder / "IMG_0001.HEIC").write_bytes(os.urandom(30_000))
    (folder / "IMG_0002.MOV").write_bytes(os.urandom(MOVIE_BYTES))
    return root


@pytest.fixture
def phone(simulator: SimulatorThread, phone_root: Path) -> SimulatorThread:
    """The simulator with one paired, plugged phone serving ``phone_root``."""
    simulator.add_phone(PHONE_UDID, phone_root)
    return simulator


@asynccontextmanager
async def lockdown_session(pair_records: Path) -> AsyncIterator[LockdownClient]:
    lockdown = await create_using_usbmux(
        PHONE_UDID, autopair=False, pairing_records_cache_folder=pair_records
    )
    try:
        yield lockdown
    finally:
        await lockdown.close()


@asynccontextmanager
async def afc_session(pair_records: Path) -> AsyncIterator[AfcService]:
    """A real AfcService started through lockdownd's StartService on the simulated phone."""
    async with lockdown_session(pair_records) as lockdown:
        afc = AfcService(lockdown)
        try:
            await afc.connect()
            yield afc
        finally:
            await afc.aclose()


def content_of(root: Path, phone_path: str) -> bytes:
    return (root / phone_path.lstrip("/")).read_bytes()


async def read_all(afc: AfcService, path: str, chunk: int = CHUNK) -> bytes:
    """Read a file the way rollkeeper does: fopen, chunks of at most 4 MiB until empty."""
    handle = await afc.fopen(path)
    pieces = []
    while True:
        piece = await afc.fread(handle, chunk)
        if not piece:
            break
        pieces.append(piece)
    await afc.fclose(handle)
    return b"".join(pieces)


# ---- listing, stat, pull ---------------------------------------------------------------------


def test_listdir_stat_and_pull_arrive_intact(
    phone: SimulatorThread, phone_root: Path, pair_records: Path, tmp_path: Path
) -> None:
    """Listing, stat and pull through the unmodified client give the phone's names, sizes, birth
    times and exact bytes, and the simulator counts each request and byte it served."""
    destination = tmp_path / "pulled"
    destination.mkdir()

    async def session() -> tuple[list[str], list[str], dict[str, Any], dict[str, Any]]:
        async with afc_session(pair_records) as afc:
            top = await afc.listdir("/DCIM")
            names = await afc.listdir(FOLDER)
            photo = await afc.stat(PHOTO)
            movie = await afc.stat(MOVIE)
            await afc.pull(FOLDER, str(destination), progress_bar=False)
            return top, names, photo, movie

    top, names, photo, movie = run(session())

    assert top == ["100APPLE", "101APPLE"]
    assert names == ["IMG_0001.HEIC", "IMG_0002.MOV"]
    assert photo["st_size"] == 30_000 and photo["st_ifmt"] == "S_IFREG"
    assert movie["st_size"] == MOVIE_BYTES
    host_mtime = (phone_root / MOVIE.lstrip("/")).stat().st_mtime_ns
    assert movie["st_birthtime"] == datetime.fromtimestamp(host_mtime / 10**9)  # as the client
    for path in (PHOTO, MOVIE):
        pulled = destination / "100APPLE" / Path(path).name
        assert pulled.read_bytes() == content_of(phone_root, path)
    counts = phone.afc_request_counts(PHONE_UDID)
    assert counts["READ_DIR"] == 3
    assert counts["READ"] >= 3  # the photo in one read, the movie in two
    served = phone.afc_bytes_served(PHONE_UDID)
    assert served == {PHOTO: 30_000, MOVIE: MOVIE_BYTES}


def test_several_connections_read_at_once(
    phone: SimulatorThread, phone_root: Path, pair_records: Path
) -> None:
    """Interleaved reads on two AFC connections of one lockdown session each return their own file's
    exact bytes."""

    async def session() -> list[bytes]:
        async with lockdown_session(pair_records) as lockdown:
            first, second = AfcService(lockdown), AfcService(lockdown)
            try:
                return list(
                    await asyncio.gather(
                        read_all(first, MOVIE, chunk=1024 * 1024),
                        read_all(second, PHOTO, chunk=7_000),
                        read_all(first, PHOTO, chunk=1000),
                    )
                )
            finally:
                await first.aclose()
                await second.aclose()

    movie, photo, photo_again = run(session())

    assert movie == content_of(phone_root, MOVIE)
    assert photo == photo_again == content_of(phone_root, PHOTO)


def test_64_stats_in_flight_each_get_their_own_answer(
    phone: SimulatorThread, phone_root: Path, pair_records: Path
) -> None:
    """64 stats in flight on one connection each get the answer for their own file."""
    folder = phone_root / "DCIM" / "101APPLE"
    for number in range(300):
        (folder / f"IMG_{number:04d}.JPG").write_bytes(b"x" * (number * 7 + 1))
    limit = asyncio.Semaphore(64)

    async def stat_size(afc: AfcService, name: str) -> int:
        async with limit:
            size: int = (await afc.stat(f"/DCIM/101APPLE/{name}"))["st_size"]
            return size

    async def session() -> dict[str, int]:
        async with afc_session(pair_records) as afc:
            names = await afc.listdir("/DCIM/101APPLE")
            sizes = await asyncio.gather(*(stat_size(afc, name) for name in names))
            return dict(zip(names, sizes, strict=True))

    sizes = run(session())

    assert sizes == {f"IMG_{number:04d}.JPG": number * 7 + 1 for number in range(300)}


# ---- faults ------------------------------------------------------------------------------


def test_unplug_after_n_bytes_cuts_the_read_and_a_replug_can_resume(
    phone: SimulatorThread, phone_root: Path, pair_records: Path
) -> None:
    """The unplug fault cuts the connection after exactly N bytes and unplugs the phone; after a
    replug, a read from offset N gets the rest, since the fault fires once."""
    phone.set_faults(PHONE_UDID, AfcFaults(unplug_after_bytes={MOVIE: 1_000_000}))
    mark = phone.mark()

    async def interrupted() -> bytes:
        received = b""
        async with afc_session(pair_records) as afc:
            handle = await afc.fopen(MOVIE)
            received += await afc.fread(handle, 600_000)
            with pytest.raises(ConnectionTerminatedError):
                await afc.fread(handle, CHUNK)
        return received

    first_part = run(interrupted())

    phone.wait_for("detached", PHONE_UDID, after=mark)
    assert phone.afc_bytes_served(PHONE_UDID)[MOVIE] == 1_000_000
    assert not phone.phone_snapshot(PHONE_UDID)["plugged"]
    phone.plug(PHONE_UDID)

    async def resumed() -> bytes:
        async with afc_session(pair_records) as afc:
            handle = await afc.fopen(MOVIE)
            await afc.fseek(handle, 1_000_000)
            rest = b""
            while piece := await afc.fread(handle, CHUNK):
                rest += piece
            return rest

    rest = run(resumed())

    content = content_of(phone_root, MOVIE)
    assert first_part == content[:600_000]
    assert rest == content[1_000_000:]  # the fault fires once: the resumed read completes


def test_a_missing_file_is_listed_but_stat_and_open_say_not_found(
    phone: SimulatorThread, pair_records: Path
) -> None:
    """A file under the not_found fault stays in the listing while stat and open raise
    AfcFileNotFoundError."""
    phone.set_faults(PHONE_UDID, AfcFaults(not_found={PHOTO}))

    async def session() -> list[str]:
        async with afc_session(pair_records) as afc:
            with pytest.raises(AfcFileNotFoundError):
                await afc.stat(PHOTO)
            with pytest.raises(AfcFileNotFoundError):
                await afc.fopen(PHOTO)
            names: list[str] = await afc.listdir(FOLDER)
            return names

    assert run(session()) == ["IMG_0001.HEIC", "IMG_0002.MOV"]


def test_a_read_error_mid_file_raises_after_the_good_bytes(
    phone: SimulatorThread, phone_root: Path, pair_records: Path
) -> None:
    """A read error after N bytes serves those N bytes intact, then raises READ_ERROR, and the
    connection still answers other requests."""
    phone.set_faults(PHONE_UDID, AfcFaults(read_error_after_bytes={MOVIE: 2_000_000}))

    async def session() -> tuple[bytes, int]:
        async with afc_session(pair_records) as afc:
            handle = await afc.fopen(MOVIE)
            good = await afc.fread(handle, 1_500_000)
            good += await afc.fread(handle, 500_000)
            with pytest.raises(AfcException) as raised:
                await afc.fread(handle, CHUNK)
            # The connection survives a read error: other requests still work.
            assert (await afc.stat(PHOTO))["st_size"] == 30_000
            assert raised.value.status is not None
            return good, int(raised.value.status)

    good, status = run(session())

    assert good == content_of(phone_root, MOVIE)[:2_000_000]
    assert status == AfcError.READ_ERROR


def test_a_stat_size_that_lies_changes_the_stat_not_the_bytes(
    phone: SimulatorThread, phone_root: Path, pair_records: Path
) -> None:
    """A lying stat size changes only what stat reports; reading still returns the whole file."""
    phone.set_faults(PHONE_UDID, AfcFaults(stat_size={PHOTO: 10}))

    async def session() -> tuple[int, bytes]:
        async with afc_session(pair_records) as afc:
            size: int = (await afc.stat(PHOTO))["st_size"]
            return size, await read_all(afc, PHOTO)

    size, content = run(session())

    assert size == 10
    assert content == content_of(phone_root, PHOTO)


def test_stat_missing_keys_are_left_out_and_the_client_raises_key_error(
    phone: SimulatorThread, pair_records: Path
) -> None:
    """Keys the fault removes are absent from GET_FILE_INFO's reply, and the unmodified client's
    stat raises KeyError for them."""
    phone.set_faults(PHONE_UDID, AfcFaults(stat_missing_keys={PHOTO: {"st_birthtime"}}))

    async def session() -> dict[str, str]:
        async with afc_session(pair_records) as afc:
            raw = list_to_dict(
                await send_afc_request(afc, AfcOpcode.GET_FILE_INFO, CSTRING.build(PHOTO))
            )
            # pymobiledevice3 11.45 indexes the key unconditionally: KeyError, not AfcException.
            with pytest.raises(KeyError):
                await afc.stat(PHOTO)
            return raw

    raw = run(session())

    assert "st_birthtime" not in raw
    assert raw["st_size"] == "30000"


def test_birth_and_modification_times_can_be_1970_and_2100(
    phone: SimulatorThread, pair_records: Path
) -> None:
    """Birth and modification times set to 1970 and 2100 reach the client as those dates."""
    year_2100_ns = 4_102_444_800 * 10**9
    phone.set_faults(
        PHONE_UDID,
        AfcFaults(
            stat_birthtime_ns={PHOTO: 0, MOVIE: year_2100_ns},
            stat_mtime_ns={PHOTO: year_2100_ns, MOVIE: 0},
        ),
    )

    async def session() -> tuple[dict[str, Any], dict[str, Any]]:
        async with afc_session(pair_records) as afc:
            return await afc.stat(PHOTO), await afc.stat(MOVIE)

    photo, movie = run(session())

    assert photo["st_birthtime"] == movie["st_mtime"] == datetime.fromtimestamp(0)
    assert photo["st_mtime"] == movie["st_birthtime"] == datetime.fromtimestamp(4_102_444_800)


def test_a_growing_file_serves_more_bytes_than_its_stat_size(
    phone: SimulatorThread, phone_root: Path, pair_records: Path
) -> None:
    """A growing file keeps its old size in stat while reads serve the grown bytes too."""
    phone.set_faults(PHONE_UDID, AfcFaults(grows_by_bytes={PHOTO: 5000}))

    async def session() -> tuple[int, bytes]:
        async with afc_session(pair_records) as afc:
            size: int = (await afc.stat(PHOTO))["st_size"]
            return size, await read_all(afc, PHOTO, chunk=16_384)

    size, content = run(session())

    assert size == 30_000
    assert content == content_of(phone_root, PHOTO) + grown_bytes(30_000, 5000)
    assert phone.afc_bytes_served(PHONE_UDID)[PHOTO] == 35_000


def test_a_stuck_read_never_answers_and_blocks_nothing_else(
    phone: SimulatorThread, phone_root: Path, pair_records: Path
) -> None:
    """A stuck READ is never answered, while later requests on the same connection and reads on
    another are served."""
    phone.set_faults(PHONE_UDID, AfcFaults(stuck_reads={MOVIE}))

    async def session() -> tuple[bool, int, bytes]:
        async with afc_session(pair_records) as afc:
            handle = await afc.fopen(MOVIE)
            stuck = asyncio.create_task(afc.fread(handle, CHUNK))
            # Requests on one connection are served in order, so once this later stat is
            # answered the server has seen the READ and chose not to answer it.
            size: int = (await afc.stat(PHOTO))["st_size"]
            answered = stuck.done()
            async with afc_session(pair_records) as other:
                photo = await read_all(other, PHOTO)
            stuck.cancel()
            return answered, size, photo

    answered, size, photo = run(session())

    assert not answered
    assert size == 30_000
    assert photo == content_of(phone_root, PHOTO)
    assert phone.afc_request_counts(PHONE_UDID)["READ"] >= 1
    assert phone.afc_bytes_served(PHONE_UDID)[MOVIE] == 0


def test_hostile_entries_are_listed_without_existing_on_the_host(
    phone: SimulatorThread, phone_root: Path, pair_records: Path, tmp_path: Path
) -> None:
    """Hostile entries (traversal, absolute, control characters, NUL, 4096-byte names, links,
    folders) are listed and served as a phone would, and nothing is created on the host."""
    long_name = "L" * 4096
    hostile = [
        HostileEntry("../../../../etc/passwd", content=b"traversal"),
        HostileEntry("/etc/shadow", content=b"absolute"),
        HostileEntry("IMG_\x07\x1b[31m\r\n.HEIC", content=b"control"),
        HostileEntry("IMG_\x00.HEIC", content=b"nul"),
        HostileEntry(long_name, content=b"long"),
        HostileEntry("LINK.HEIC", kind="S_IFLNK", link_target="/etc/passwd"),
        HostileEntry("IMG_0009.HEIC", kind="S_IFDIR"),
    ]
    phone.set_faults(PHONE_UDID, AfcFaults(hostile_entries={FOLDER: hostile}))
    host_before = sorted(str(path) for path in tmp_path.rglob("*"))

    async def session() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with afc_session(pair_records) as afc:
            seen["names"] = await afc.listdir(FOLDER)
            seen["traversal"] = await read_all(afc, f"{FOLDER}/../../../../etc/passwd")
            seen["absolute"] = await read_all(afc, "/etc/shadow")
            seen["control"] = await read_all(afc, f"{FOLDER}/IMG_\x07\x1b[31m\r\n.HEIC")
            seen["nul_piece"] = await afc.stat(f"{FOLDER}/IMG_")
            seen["long"] = await afc.stat(f"{FOLDER}/{long_name}")
            seen["link"] = await afc.stat(f"{FOLDER}/LINK.HEIC")
            seen["folder"] = await afc.stat(f"{FOLDER}/IMG_0009.HEIC")
            seen["folder_listing"] = await afc.listdir(f"{FOLDER}/IMG_0009.HEIC")
            # The client resolves the link to /etc/passwd: under the media root, nothing.
            with pytest.raises(AfcFileNotFoundError):
                await afc.get_file_contents(f"{FOLDER}/LINK.HEIC")
            with pytest.raises(AfcException) as raised:
                await afc.fopen(f"{FOLDER}/IMG_0009.HEIC")
            assert raised.value.status is not None
            seen["open_folder_status"] = int(raised.value.status)
        return seen

    seen = run(session())

    assert seen["names"] == [
        "IMG_0001.HEIC",
        "IMG_0002.MOV",
        "../../../../etc/passwd",
        "/etc/shadow",
        "IMG_\x07\x1b[31m\r\n.HEIC",
        "IMG_",  # a NUL inside a name splits it on the wire
        ".HEIC",
        long_name,
        "LINK.HEIC",
        "IMG_0009.HEIC",
    ]
    assert seen["traversal"] == b"traversal"
    assert seen["absolute"] == b"absolute"
    assert seen["control"] == b"control"
    assert seen["nul_piece"]["st_size"] == 3
    assert seen["long"]["st_size"] == 4
    assert seen["link"]["st_ifmt"] == "S_IFLNK"
    assert seen["link"]["LinkTarget"] == "/etc/passwd"
    assert seen["folder"]["st_ifmt"] == "S_IFDIR"
    assert seen["folder_listing"] == []
    assert seen["open_folder_status"] == AfcError.OBJECT_IS_DIR
    assert sorted(str(path) for path in tmp_path.rglob("*")) == host_before


def test_the_throttle_never_serves_faster_than_its_rate(
    phone: SimulatorThread, phone_root: Path, pair_records: Path
) -> None:
    """Two connections sharing a throttled phone are never served faster than its rate plus one
    burst."""
    rate = 35e6
    phone.set_faults(PHONE_UDID, AfcFaults(throttle_bytes_per_second=rate))

    async def session() -> tuple[list[bytes], float]:
        async with lockdown_session(pair_records) as lockdown:
            first, second = AfcService(lockdown), AfcService(lockdown)
            try:
                await first.connect()
                await second.connect()
                started = time.monotonic()
                # Two connections share the phone's one bucket.
                contents = await asyncio.gather(
                    read_all(first, MOVIE, chunk=1024 * 1024), read_all(second, PHOTO)
                )
                return list(contents), time.monotonic() - started
            finally:
                await first.aclose()
                await second.aclose()

    (movie, photo), elapsed = run(session())

    assert movie == content_of(phone_root, MOVIE)
    assert photo == content_of(phone_root, PHOTO)
    served = sum(phone.afc_bytes_served(PHONE_UDID).values())
    assert served == MOVIE_BYTES + 30_000
    # An upper bound only, so a slow machine cannot fail it: the bucket's burst (50 ms of the
    # rate) plus the rate times the time the client waited. The exact arithmetic of the bucket
    # is tested with an injected clock in test_afc_server.py.
    assert served <= rate * BURST_SECONDS + rate * elapsed


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Block until ``condition()`` holds, checking it on a short Event wait; ceiling ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        pause.wait(0.005)


def test_an_unplug_while_a_read_waits_on_the_client_leaves_the_simulator_healthy(
    phone: SimulatorThread, phone_root: Path, pair_records: Path
) -> None:
    """A READ blocked on a client that stops reading, then an unplug: later reads still work.

    The unplug aborts the socket under the server's sendfile wait; the loop's bookkeeping must
    stay clean so the descriptor number can be reused by the next connections.
    """

    async def blocked_read() -> None:
        async with lockdown_session(pair_records) as lockdown:
            service = await lockdown.start_lockdown_service("com.apple.afc")
            open_request = struct.pack("<Q", 1) + MOVIE.encode() + b"\0"
            read_request = struct.pack("<QQ", 1, MOVIE_BYTES)  # the first handle is 1
            await service.sendall(
                packet(Operation.FILE_OPEN, 0, open_request)
                + packet(Operation.READ, 1, read_request)
            )
            # Never read the reply: the server fills the socket and waits for room.
            await asyncio.to_thread(
                wait_until, lambda: phone.afc_request_counts(PHONE_UDID)["READ"] == 1
            )
            mark = phone.mark()
            await asyncio.to_thread(phone.unplug, PHONE_UDID)
            await asyncio.to_thread(phone.wait_for, "detached", PHONE_UDID, after=mark)
            await service.close()

    run(blocked_read())
    assert phone.afc_bytes_served(PHONE_UDID)[MOVIE] < MOVIE_BYTES
    phone.plug(PHONE_UDID)

    async def read_again() -> list[bytes]:
        contents = []
        for _ in range(3):
            async with afc_session(pair_records) as afc:
                contents.append(await read_all(afc, MOVIE))
        return contents

    assert run(read_again()) == [content_of(phone_root, MOVIE)] * 3


# ---- a 1 GiB file through `rollkeeper simulate` ----------------------------------------------


def _write_big_file(path: Path, size: int) -> str:
    """A file of ``size`` bytes that is not one block repeated; returns its sha256."""
    digest = hashlib.sha256()
    block = bytearray(os.urandom(CHUNK))
    with path.open("wb") as output:
        for index in range(size // CHUNK):
            block[:8] = index.to_bytes(8, "little")
            output.write(block)
            digest.update(block)
    return digest.hexdigest()


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for peak RSS")
def test_a_1_gib_file_arrives_intact_while_the_simulator_stays_under_100_mb(
    tmp_path: Path, pair_records: Path, socket_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1 GiB file arrives through `rollkeeper simulate` with its exact hash, while the simulator's
    peak memory stays under 100 MB and does not grow with the file."""
    root = tmp_path / "phone"
    (root / "DCIM" / "100APPLE").mkdir(parents=True)
    size = 1024 * 1024 * 1024
    expected = _write_big_file(root / MOVIE.lstrip("/"), size)
    simulate = subprocess.Popen(
        [
            str(VENV_BIN / "rollkeeper"),
            "simulate",
            "--root",
            str(root),
            "--socket",
            str(socket_folder / "usbmuxd"),
            "--udid",
            PHONE_UDID,
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert simulate.stdout is not None
        announced = json.loads(simulate.stdout.readline())
        monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", announced["usbmuxd_socket_address"])
        rss_before = _peak_rss_bytes(simulate.pid)

        async def session() -> tuple[str, int]:
            digest = hashlib.sha256()
            received = 0
            async with afc_session(pair_records) as afc:
                handle = await afc.fopen(MOVIE)
                while piece := await afc.fread(handle, CHUNK):
                    digest.update(piece)
                    received += len(piece)
                await afc.fclose(handle)
            return digest.hexdigest(), received

        digest, received = run(session())
        peak = _peak_rss_bytes(simulate.pid)
    finally:
        simulate.send_signal(signal.SIGTERM)
        simulate.wait(timeout=30)

    assert received == size
    assert digest == expected
    assert peak < 100 * 1024 * 1024, f"simulator peak RSS {peak / 2**20:.0f} MiB"
    assert peak - rss_before < 32 * 1024 * 1024  # flat: not growing with the file
