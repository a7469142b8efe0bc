"""The simulator's AFC server on its own, through pymobiledevice3's real AfcService.

Each test runs :class:`rollkeeper.simulator.afc.AfcServer` on a loopback TCP socket and points an
unmodified ``AfcService`` at it (a provider whose ``start_lockdown_service`` dials that socket,
so no usbmux or lockdown is involved). This isolates the AFC layer: wire details (``.`` and
``..`` first, TELL, unknown operations, a bad header), the path jail, the refusal of every
write, and the token bucket's arithmetic. End-to-end behaviour through usbmuxd and lockdownd
is in test_afc_e2e.py.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from bytestruct import CSTRING
from pymobiledevice3.exceptions import AfcException, AfcFileNotFoundError
from pymobiledevice3.service_connection import ServiceConnection
from pymobiledevice3.services.afc import (
    AfcError,
    AfcOpcode,
    AfcReadDirResponse,
    AfcService,
    list_to_dict,
)

from rollkeeper.simulator.afc import AfcServer
from rollkeeper.simulator.afc_protocol import HEADER_SIZE
from rollkeeper.simulator.afc_throttle import PhoneBuckets, TokenBucket
from rollkeeper.simulator.phone import PhoneIdentity, PhoneState

#: A ceiling for waits on the server (never expected to be reached).
CEILING_SECONDS = 10.0
PHOTO = "/DCIM/100APPLE/IMG_0001.HEIC"
MOVIE = "/DCIM/100APPLE/IMG_0002.MOV"


class _DirectProvider:
    """Stands in for lockdown: "starting" the AFC service dials the AFC server's socket."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def start_lockdown_service(
        self, name: str, include_escrow_bag: bool = False
    ) -> ServiceConnection:
        assert name == "com.apple.afc"
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return ServiceConnection(reader, writer)


class DirectAfc:
    """An AfcServer listening on loopback; ``client()`` opens a real AfcService to it."""

    def __init__(self, phone: PhoneState) -> None:
        self.phone = phone
        self.unplugs = 0
        self.server = AfcServer(phone, self._unplug)
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0

    def _unplug(self) -> None:
        self.unplugs += 1

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection, tracked so that the harness can wait for it to end."""
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self.server.serve(reader, writer)
        finally:
            self._connections.discard(task)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[AfcService]:
        afc = AfcService(_DirectProvider(self.port), service_name="com.apple.afc")  # type: ignore[arg-type]
        async with afc:
            yield afc

    async def raw_connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def wait_connections_closed(self) -> None:
        if self._connections:
            await asyncio.wait_for(
                asyncio.gather(*self._connections, return_exceptions=True), CEILING_SECONDS
            )


@asynccontextmanager
async def direct_afc(phone: PhoneState) -> AsyncIterator[DirectAfc]:
    harness = DirectAfc(phone)
    listener = await asyncio.start_server(harness.serve, "127.0.0.1", 0)
    harness.port = listener.sockets[0].getsockname()[1]
    try:
        yield harness
    finally:
        listener.close()
        await listener.wait_closed()
        await harness.wait_connections_closed()


def run_direct(phone: PhoneState, body: Callable[[DirectAfc], Any]) -> Any:
    """Run ``await body(harness)`` against a fresh server for ``phone``."""

    async def main() -> Any:
        async with direct_afc(phone) as harness:
            return await body(harness)

    return asyncio.run(main())


@pytest.fixture
def phone(tmp_path: Path) -> PhoneState:
    """A phone whose media root holds two known files and an empty folder."""
    root = tmp_path / "media"
    folder = root / "DCIM" / "100APPLE"
    folder.mkdir(parents=True)
    (root / "DCIM" / "101APPLE").mkdir()
    (folder / "IMG_0001.HEIC").write_bytes(b"heic" * 1000)
    (folder / "IMG_0002.MOV").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    os.utime(folder / "IMG_0001.HEIC", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    return PhoneState(identity=PhoneIdentity(udid="direct-phone"), media_root=root)


async def _raw(afc: AfcService, opcode: int, payload: bytes = b"") -> tuple[int, bytes]:
    # The status of any opcode, unknown ones included, without the client raising on it.
    status, data = await afc._send_and_wait(AfcOpcode(opcode), payload)  # noqa: SLF001 - raw status
    return int(status), bytes(data)


def _tree(root: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every path under root with (content, mtime_ns) for files, None for folders."""
    snapshot: dict[str, tuple[bytes, int] | None] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_dir() and not path.is_symlink():
            snapshot[key] = None
        elif path.is_file() and not path.is_symlink():
            snapshot[key] = (path.read_bytes(), path.stat().st_mtime_ns)
    return snapshot


# ---- listing, stat, device info ----------------------------------------------------------


def test_read_dir_sends_dot_entries_first_then_the_names(phone: PhoneState) -> None:
    """READ_DIR sends "." and ".." first, then the folder's names; the root, a relative path and an
    empty folder list as on a phone."""

    async def body(harness: DirectAfc) -> tuple[list[str], list[str], list[str]]:
        async with harness.client() as afc:
            status, data = await _raw(afc, AfcOpcode.READ_DIR, CSTRING.build("/DCIM/100APPLE"))
            assert status == AfcError.SUCCESS
            raw = AfcReadDirResponse.parse(data).filenames
            return raw, await afc.listdir("/"), await afc.listdir("DCIM/101APPLE")

    raw, root_listing, empty = run_direct(phone, body)

    assert raw == [".", "..", "IMG_0001.HEIC", "IMG_0002.MOV"]
    assert root_listing == ["DCIM"]
    assert empty == []


def test_stat_sends_the_keys_a_phone_sends_with_times_in_nanoseconds(phone: PhoneState) -> None:
    """GET_FILE_INFO sends a phone's keys in a phone's order, with the size, the blocks and the host
    mtime as birth time in exact nanoseconds; a folder is S_IFDIR."""

    async def body(harness: DirectAfc) -> tuple[list[str], dict[str, str], dict[str, Any]]:
        async with harness.client() as afc:
            _, data = await _raw(afc, AfcOpcode.GET_FILE_INFO, CSTRING.build(PHOTO))
            keys = data.decode().split("\0")[:-1:2]
            return keys, list_to_dict(data), await afc.stat("/DCIM/100APPLE")

    keys, info, folder = run_direct(phone, body)

    assert keys == ["st_size", "st_blocks", "st_nlink", "st_ifmt", "st_mtime", "st_birthtime"]
    assert info["st_size"] == "4000"
    assert info["st_ifmt"] == "S_IFREG"
    assert info["st_nlink"] == "1"
    assert int(info["st_blocks"]) >= 8  # 4000 bytes occupy at least eight 512-byte blocks
    # Birth time is the host file's mtime, in nanoseconds, exactly.
    assert info["st_mtime"] == info["st_birthtime"] == "1600000000123456789"
    assert folder["st_ifmt"] == "S_IFDIR"


def test_a_folder_stat_changes_as_its_entries_do_as_on_apfs(phone: PhoneState) -> None:
    """A folder's GET_FILE_INFO counts its entries as APFS does (st_nlink = entries + 2,
    st_size = 32 per entry + 64); adding a photo and deleting one move st_mtime, st_nlink and
    st_size, a file rewritten in place moves none of them."""
    folder = phone.media_root / "DCIM" / "100APPLE"

    async def folder_stat(harness: DirectAfc) -> tuple[int, int, int]:
        async with harness.client() as afc:
            info = await afc.stat("/DCIM/100APPLE")
        return int(info["st_mtime"].timestamp() * 1e9), info["st_nlink"], info["st_size"]

    before = run_direct(phone, folder_stat)
    assert before[1:] == (2 + 2, 32 * (2 + 2))
    # Each change comes a connection after the last (tens of milliseconds): past a step of
    # the host's coarse file clock.
    (folder / "IMG_0003.HEIC").write_bytes(b"new")
    added = run_direct(phone, folder_stat)
    assert added[1:] == (3 + 2, 32 * (3 + 2)) and added[0] != before[0]
    with (folder / "IMG_0001.HEIC").open("ab") as handle:
        handle.write(b"rewritten in place")
    assert run_direct(phone, folder_stat) == added
    (folder / "IMG_0003.HEIC").unlink()
    removed = run_direct(phone, folder_stat)
    assert removed[1:] == before[1:] and removed[0] != added[0]


def test_device_info_names_the_model_and_the_space(phone: PhoneState) -> None:
    """GET_DEVICE_INFO names the iPhone model and reports the total and free space."""

    async def body(harness: DirectAfc) -> dict[str, str]:
        async with harness.client() as afc:
            info: dict[str, str] = await afc.get_device_info()  # type: ignore[no-untyped-call]
            return info

    info = run_direct(phone, body)

    assert info["Model"] == "iPhone15,2"
    assert int(info["FSTotalBytes"]) >= int(info["FSFreeBytes"]) > 0
    assert int(info["FSBlockSize"]) > 0


# ---- open, read, seek, tell, close -------------------------------------------------------


def test_open_read_seek_tell_close_follow_the_file(phone: PhoneState) -> None:
    """Open, read, seek (from start, current and end), tell and close move through the file as POSIX
    does; a closed handle is refused, and every request and byte is counted."""
    content = (phone.media_root / MOVIE.lstrip("/")).read_bytes()

    async def body(harness: DirectAfc) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with harness.client() as afc:
            handle = await afc.fopen(MOVIE)
            seen["first"] = await afc.fread(handle, 1000)
            _, told = await _raw(afc, AfcOpcode.FILE_TELL, struct.pack("<Q", handle))
            seen["tell"] = struct.unpack("<Q", told)[0]
            await afc.fseek(handle, 100, os.SEEK_SET)
            seen["at_100"] = await afc.fread(handle, 10)
            await afc.fseek(handle, 5, os.SEEK_CUR)
            seen["at_115"] = await afc.fread(handle, 10)
            await afc.fseek(handle, -4, os.SEEK_END)
            seen["tail"] = await afc.fread(handle, 100)
            seen["past_end"] = await afc.fread(handle, 100)
            await afc.fclose(handle)
            seen["after_close"] = await _raw(afc, AfcOpcode.READ, struct.pack("<QQ", handle, 10))
        return seen

    seen = run_direct(phone, body)

    assert seen["first"] == content[:1000]
    assert seen["tell"] == 1000
    assert seen["at_100"] == content[100:110]
    assert seen["at_115"] == content[115:125]
    assert seen["tail"] == content[-4:]
    assert seen["past_end"] == b""
    assert seen["after_close"] == (AfcError.INVALID_ARG, struct.pack("<Q", AfcError.INVALID_ARG))
    assert phone.afc_bytes_served[MOVIE] == 1000 + 10 + 10 + 4
    assert phone.afc_requests["FILE_OPEN"] == 1
    assert phone.afc_requests["READ"] == 6
    assert phone.afc_requests["FILE_SEEK"] == 3
    assert phone.afc_requests["FILE_TELL"] == 1
    assert phone.afc_requests["FILE_CLOSE"] == 1


def test_reads_are_the_same_without_sendfile(
    phone: PhoneState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where sendfile(2) is missing (or refuses the socket) READ copies 1 MiB pieces."""
    monkeypatch.delattr(os, "sendfile")
    big = phone.media_root / "DCIM" / "100APPLE" / "BIG.MOV"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    content = (phone.media_root / MOVIE.lstrip("/")).read_bytes()

    async def body(harness: DirectAfc) -> tuple[list[bytes], bytes]:
        async with harness.client() as afc:
            handle = await afc.fopen(MOVIE)
            pieces = [await afc.fread(handle, 300_000) for _ in range(4)]
            await afc.fclose(handle)
            handle = await afc.fopen("/DCIM/100APPLE/BIG.MOV")
            whole = await afc.fread(handle, 4 * 1024 * 1024)  # one READ, several pieces
            return pieces, whole

    pieces, whole = run_direct(phone, body)

    assert b"".join(pieces) == content
    assert whole == big.read_bytes()
    assert phone.afc_bytes_served[MOVIE] == len(content)
    assert phone.afc_requests["READ"] == 5


def test_a_folder_cannot_be_opened_and_a_fifo_does_not_hang(phone: PhoneState) -> None:
    """Opening a folder answers OBJECT_IS_DIR and opening a FIFO answers INVALID_ARG at once instead
    of blocking the server."""
    os.mkfifo(phone.media_root / "DCIM" / "pipe")

    async def body(harness: DirectAfc) -> list[int]:
        statuses: list[int] = []
        async with harness.client() as afc:
            for path in ("/DCIM/100APPLE", "/DCIM/pipe"):
                with pytest.raises(AfcException) as raised:
                    await afc.fopen(path)
                assert raised.value.status is not None
                statuses.append(int(raised.value.status))
        return statuses

    assert run_direct(phone, body) == [AfcError.OBJECT_IS_DIR, AfcError.INVALID_ARG]


# ---- a read-only phone -------------------------------------------------------------------


def test_every_write_answers_permission_denied_and_changes_nothing(phone: PhoneState) -> None:
    """Every writing operation (write modes, mkdir, remove, rename, link, truncate, set time, a
    WRITE of any size) answers PERM_DENIED, the connection stays in step and the media folder is
    unchanged."""
    before = _tree(phone.media_root)

    async def body(harness: DirectAfc) -> dict[str, int]:
        statuses: dict[str, int] = {}

        async def refused(name: str, operation: Any) -> None:
            with pytest.raises(AfcException) as raised:
                await operation
            assert raised.value.status is not None
            statuses[name] = int(raised.value.status)

        async with harness.client() as afc:
            for mode in ("w", "w+", "r+", "a", "a+"):
                await refused(f"fopen {mode}", afc.fopen(PHOTO, mode))
            await refused("makedirs", afc.makedirs("/DCIM/999APPLE"))
            await refused("rm", afc.rm_single(PHOTO))
            await refused("rename", afc.rename(PHOTO, "/DCIM/100APPLE/X.HEIC"))
            await refused("link", afc.link(PHOTO, "/DCIM/100APPLE/L.HEIC"))
            await refused("set_file_contents", afc.set_file_contents("/new.txt", b"x"))
            for opcode, payload in (
                (AfcOpcode.TRUNCATE, CSTRING.build(PHOTO)),
                (AfcOpcode.SET_FILE_TIME, CSTRING.build(PHOTO)),
                (AfcOpcode.FILE_SET_SIZE, struct.pack("<QQ", 1, 0)),
                (AfcOpcode.WRITE, struct.pack("<Q", 1) + b"x" * 100),
                # A write bigger than any request: streamed to nowhere, then refused.
                (AfcOpcode.WRITE, struct.pack("<Q", 1) + b"x" * (2 * 1024 * 1024)),
                (0x22, CSTRING.build("/DCIM")),  # RemovePathAndContents
            ):
                status, _ = await _raw(afc, opcode, payload)
                statuses[f"op {int(opcode)} {len(payload)}"] = status
            # The connection is still in step after all of that.
            statuses["stat"] = (await afc.stat(PHOTO))["st_size"]
        return statuses

    statuses = run_direct(phone, body)

    stat_size = statuses.pop("stat")
    assert stat_size == 4000
    assert set(statuses.values()) == {AfcError.PERM_DENIED}, statuses
    assert _tree(phone.media_root) == before


def test_unknown_operations_answer_an_error_and_the_connection_goes_on(
    phone: PhoneState,
) -> None:
    """An unknown operation answers OP_NOT_SUPPORTED and is counted, and the connection goes on
    serving."""

    async def body(harness: DirectAfc) -> tuple[list[int], list[str]]:
        async with harness.client() as afc:
            statuses = [(await _raw(afc, opcode, b"\x01" * 16))[0] for opcode in (0x00, 0x04, 0x77)]
            return statuses, await afc.listdir("/DCIM")

    statuses, listing = run_direct(phone, body)

    assert statuses == [AfcError.OP_NOT_SUPPORTED] * 3
    assert listing == ["100APPLE", "101APPLE"]
    assert phone.afc_requests["UNKNOWN_0x77"] == 1


def test_the_backup_sync_lock_opens_read_write_and_locks_without_touching_the_folder(
    phone: PhoneState,
) -> None:
    """/com.apple.itunes.lock_sync opens "r+" (the one writable path, a virtual file) and takes
    FILE_LOCK; a second connection gets OP_WOULD_BLOCK until the first unlocks; FILE_LOCK of a
    handle that is not open is an invalid argument; the media folder is unchanged."""
    before = _tree(phone.media_root)
    lock_path = "/com.apple.itunes.lock_sync"

    async def body(harness: DirectAfc) -> list[object]:
        seen: list[object] = []
        async with harness.client() as first, harness.client() as second:
            one = await first.fopen(lock_path, "r+")
            two = await second.fopen(lock_path, "r+")
            await first.lock(one, 2 | 4)
            try:
                await second.lock(two, 2 | 4)
            except AfcException as error:
                seen.append(error.status)
            await first.lock(one, 8 | 4)
            await second.lock(two, 2 | 4)
            seen.append("second holds it")
            try:
                await first.lock(999, 2 | 4)
            except AfcException as error:
                seen.append(error.status)
        return seen

    assert run_direct(phone, body) == [
        AfcError.OP_WOULD_BLOCK,
        "second holds it",
        AfcError.INVALID_ARG,
    ]
    assert _tree(phone.media_root) == before


def test_a_packet_without_the_magic_closes_the_connection(phone: PhoneState) -> None:
    """A packet without the AFC magic makes the server close the connection without a reply."""

    async def body(harness: DirectAfc) -> bytes:
        reader, writer = await harness.raw_connection()
        writer.write(b"NOTMAGIC" + struct.pack("<QQQQ", HEADER_SIZE, HEADER_SIZE, 0, 0x0A))
        await writer.drain()
        received = await asyncio.wait_for(reader.read(), CEILING_SECONDS)
        writer.close()
        return received

    assert run_direct(phone, body) == b""


# ---- the path jail -----------------------------------------------------------------------


@pytest.fixture
def jail_phone(phone: PhoneState, tmp_path: Path) -> PhoneState:
    """The phone, plus host files outside its root and symlinks pointing at them."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"host secret")
    folder = phone.media_root / "DCIM" / "100APPLE"
    (folder / "ESCAPE.HEIC").symlink_to(outside / "secret.txt")
    (phone.media_root / "DCIM" / "OUT").symlink_to(outside)
    (folder / "INSIDE.HEIC").symlink_to(folder / "IMG_0001.HEIC")
    return phone


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/../outside/secret.txt", AfcError.PERM_DENIED),
        ("/DCIM/100APPLE/../../../outside/secret.txt", AfcError.PERM_DENIED),
        ("../../etc/passwd", AfcError.PERM_DENIED),
        ("/DCIM/100APPLE/ESCAPE.HEIC", AfcError.OBJECT_NOT_FOUND),
        ("/DCIM/OUT/secret.txt", AfcError.OBJECT_NOT_FOUND),
        ("/DCIM/OUT", AfcError.OBJECT_NOT_FOUND),
        ("/etc/passwd", AfcError.OBJECT_NOT_FOUND),
        ("/DCIM/100APPLE/" + "x" * 5000, AfcError.OBJECT_NOT_FOUND),
    ],
)
def test_no_request_reaches_a_host_file_outside_the_root(
    jail_phone: PhoneState, path: str, status: AfcError
) -> None:
    """No path (dot-dot, absolute, a symlink out of the root, an overlong name) lets stat, listing
    or open reach a host file outside the media root."""

    async def body(harness: DirectAfc) -> list[int]:
        statuses = []
        async with harness.client() as afc:
            for opcode, payload in (
                (AfcOpcode.GET_FILE_INFO, CSTRING.build(path)),
                (AfcOpcode.READ_DIR, CSTRING.build(path)),
                (AfcOpcode.FILE_OPEN, struct.pack("<Q", 1) + CSTRING.build(path)),
            ):
                answer, data = await _raw(afc, opcode, payload)
                assert b"secret" not in data
                statuses.append(answer)
        return statuses

    assert run_direct(jail_phone, body) == [status] * 3


def test_a_symlink_that_stays_inside_the_root_is_followed(jail_phone: PhoneState) -> None:
    """A symlink that stays inside the media root is followed and serves its target's bytes."""

    async def body(harness: DirectAfc) -> bytes:
        async with harness.client() as afc:
            content: bytes = await afc.get_file_contents("/DCIM/100APPLE/INSIDE.HEIC")
            return content

    assert run_direct(jail_phone, body) == b"heic" * 1000


# ---- the token bucket ----------------------------------------------------------------------


class FakeClock:
    """An injected clock: time moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("rate", [35e6, 300e6])
def test_a_steady_reader_gets_the_rate_and_never_more(rate: float) -> None:
    """A steady reader of the token bucket gets its rate within 1% and is never ahead of it by more
    than the burst."""
    clock = FakeClock()
    bucket = TokenBucket(rate, clock)
    start = clock.now
    sent = 0
    piece = bucket.piece_bytes
    for _ in range(2000):
        delay = bucket.reserve(piece)
        clock.now += delay  # the server sleeps exactly this long (a late wake-up is tested below)
        sent += piece
        # Never ahead of the rate by more than the burst.
        assert sent <= bucket.burst + rate * (clock.now - start) + 1.0  # float rounding
    achieved = sent / (clock.now - start)
    assert achieved == pytest.approx(rate, rel=0.01)


def test_late_wake_ups_do_not_lower_the_rate() -> None:
    """Timers that fire late do not lower the rate, since the bucket refills from the clock."""
    clock = FakeClock()
    rate = 35e6
    bucket = TokenBucket(rate, clock)
    start = clock.now
    sent = 0
    for _ in range(1000):
        delay = bucket.reserve(bucket.piece_bytes)
        clock.now += delay + 0.0015  # every timer fires 1.5 ms late
        sent += bucket.piece_bytes
    # The bucket refills from the clock, so the lateness is made up within the burst.
    assert sent / (clock.now - start) >= rate * 0.95


def test_readers_sharing_a_bucket_queue_behind_each_other() -> None:
    """Readers sharing a bucket wait for each other's bytes, and a long idle spell refills it only
    up to the burst."""
    clock = FakeClock()
    bucket = TokenBucket(1e6, clock, burst=100_000)

    assert bucket.reserve(100_000) == 0.0  # the burst goes at once
    first = bucket.reserve(500_000)
    second = bucket.reserve(500_000)

    assert first == pytest.approx(0.5)
    assert second == pytest.approx(1.0)  # waits for the first reader's bytes too
    clock.now += 10.0  # a long idle spell refills only up to the burst
    assert bucket.reserve(100_000) == 0.0
    assert bucket.reserve(1) > 0.0


def test_a_phone_keeps_one_bucket_until_its_rate_changes() -> None:
    """A phone keeps its bucket while its rate stays, gets a new one when the rate changes and none
    without a rate; two phones never share one."""
    buckets = PhoneBuckets()
    clock = FakeClock()
    phone = PhoneState(identity=PhoneIdentity(udid="p"), media_root=Path("/nonexistent"))
    other = PhoneState(identity=PhoneIdentity(udid="q"), media_root=Path("/nonexistent"))

    first = buckets.bucket(phone, 35e6, clock)
    assert first is not None
    assert buckets.bucket(phone, 35e6, clock) is first
    assert buckets.bucket(other, 35e6, clock) is not first
    faster = buckets.bucket(phone, 300e6, clock)
    assert faster is not None and faster is not first and faster.rate == 300e6
    assert buckets.bucket(phone, None, clock) is None


def test_birth_time_datetime_matches_what_the_client_computes(phone: PhoneState) -> None:
    """The birth time the client computes from the stat is the host file's mtime, and the stat of a
    missing file raises AfcFileNotFoundError."""

    async def body(harness: DirectAfc) -> dict[str, Any]:
        async with harness.client() as afc:
            info: dict[str, Any] = await afc.stat(PHOTO)
            return info

    info = run_direct(phone, body)

    assert info["st_birthtime"] == datetime.fromtimestamp(1_600_000_000.123456789)
    with pytest.raises(AfcFileNotFoundError):
        run_direct(phone, _stat_missing)


async def _stat_missing(harness: DirectAfc) -> None:
    async with harness.client() as afc:
        await afc.stat("/DCIM/100APPLE/NOPE.HEIC")
