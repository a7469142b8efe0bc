"""Library snapshots copied from the simulator over pymobiledevice3: only when changed, never
torn, resumed after an unplug, the last good one when every copy fails."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rollkeeper.device.errors import PhoneUnavailableError
from rollkeeper.device.session import SessionSettings, open_session
from rollkeeper.library.reader import LibraryReader
from rollkeeper.library.snapshot import (
    COPIED,
    FALLBACK,
    LIBRARY_PATH,
    UNAVAILABLE,
    UNCHANGED,
    LibrarySnapshots,
)
from rollkeeper.ports import FileNotOnPhoneError, ListedName, PhoneFiles, PhoneReadError, RawStat
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from tests.photos_library import (
    Asset,
    add_assets,
    write_library,
    write_library_then_restart,
)

UDID = "00008110-00AA0000000011B1"
TAKEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def assets(count: int, start: int = 1) -> list[Asset]:
    return [
        Asset(f"UUID-{number:05d}", "DCIM/100APPLE", f"IMG_{number:04d}.HEIC", created=TAKEN)
        for number in range(start, start + count)
    ]


class HookedFiles:
    """The real phone files with a hook run after reads of a given phone file (a phone that
    writes its library while rollkeeper copies it): after the first read only, unless
    ``every_time``."""

    def __init__(
        self, files: PhoneFiles, path: str, hook: Callable[[], None], every_time: bool = False
    ) -> None:
        self._files = files
        self._path = path
        self._hook: Callable[[], None] | None = hook
        self._every_time = every_time
        self._handles: dict[int, str] = {}
        self.fired = 0

    async def list_folder(self, path: str) -> Sequence[ListedName]:
        return await self._files.list_folder(path)

    async def stat(self, path: str) -> RawStat:
        return await self._files.stat(path)

    async def stat_many(
        self, paths: Sequence[str]
    ) -> list[RawStat | FileNotOnPhoneError | PhoneReadError]:
        return await self._files.stat_many(paths)

    async def open(self, path: str) -> int:
        handle = await self._files.open(path)
        self._handles[handle] = path
        return handle

    async def seek(self, handle: int, offset: int) -> None:
        await self._files.seek(handle, offset)

    async def read(self, handle: int, size: int) -> bytes | bytearray:
        data = await self._files.read(handle, size)
        if self._hook is not None and self._handles.get(handle) == self._path:
            self.fired += 1
            hook = self._hook
            if not self._every_time:
                self._hook = None
            hook()
        return data

    async def close(self, handle: int) -> None:
        self._handles.pop(handle, None)
        await self._files.close(handle)


@pytest.fixture
def settings(simulator: SimulatorThread, tmp_path: Path) -> SessionSettings:
    return SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pairing")


async def test_a_library_is_copied_once_and_read_from_its_sealed_copy(
    simulator: SimulatorThread, settings: SessionSettings, tmp_path: Path
) -> None:
    """The first refresh copies the three files and seals them into one private file that
    holds the rows that were only in the -wal; a second with the phone's stat unchanged sends
    no READ at all."""
    phone = tmp_path / "phone"
    write_library(phone, assets(30))
    simulator.add_phone(UDID, phone)
    snapshots = LibrarySnapshots(tmp_path / "state" / "library" / "phone", max_bytes=10**9)
    async with open_session(UDID, settings) as session:
        first = await snapshots.refresh(session.files)
        assert first.outcome == COPIED and first.database == snapshots.sealed
        assert first.bytes_read == sum(
            (phone / "PhotoData" / name).stat().st_size
            for name in ("Photos.sqlite", "Photos.sqlite-wal", "Photos.sqlite-shm")
        )
        simulator.reset_counts(UDID)
        second = await snapshots.refresh(session.files)
    assert second.outcome == UNCHANGED
    counts = simulator.afc_request_counts(UDID)
    assert counts.get("READ", 0) == 0 and counts["GET_FILE_INFO"] == 3
    assert [item.uuid for item in LibraryReader(snapshots.sealed).read().assets][:2] == [
        "UUID-00001",
        "UUID-00002",
    ]
    assert len(LibraryReader(snapshots.sealed).read().assets) == 30
    assert sorted(os.listdir(snapshots.folder)) == ["Photos.sqlite", "snapshot.json"]
    assert stat.S_IMODE(snapshots.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(snapshots.sealed.stat().st_mode) == 0o600


async def test_a_changed_library_is_copied_again(
    simulator: SimulatorThread, settings: SessionSettings, tmp_path: Path
) -> None:
    """New rows in the phone's -wal change its stat: the next refresh copies and sees them."""
    phone = tmp_path / "phone"
    library = write_library(phone, assets(5))
    simulator.add_phone(UDID, phone)
    snapshots = LibrarySnapshots(tmp_path / "snap", max_bytes=10**9)
    async with open_session(UDID, settings) as session:
        assert (await snapshots.refresh(session.files)).outcome == COPIED
        add_assets(library, assets(3, start=6))
        again = await snapshots.refresh(session.files)
    assert again.outcome == COPIED
    assert len(LibraryReader(snapshots.sealed).read().assets) == 8


async def test_a_wal_restarted_under_the_copy_is_torn_and_copied_again(
    simulator: SimulatorThread, settings: SessionSettings, tmp_path: Path
) -> None:
    """The phone restarts its WAL (new salts, database file untouched) while the copy runs: the
    header copied no longer matches the phone's, so that copy is discarded (SQLite would have
    silently dropped the new frames) and the next attempt has every row."""
    phone = tmp_path / "phone"
    _library, restart = write_library_then_restart(phone, assets(4), assets(2, start=5))
    simulator.add_phone(UDID, phone)
    snapshots = LibrarySnapshots(tmp_path / "snap", max_bytes=10**9)
    async with open_session(UDID, settings) as session:
        hooked = HookedFiles(session.files, LIBRARY_PATH + "-wal", restart)
        result = await snapshots.refresh(hooked)
    assert hooked.fired >= 1
    assert result.outcome == COPIED and result.attempts == 2
    assert len(LibraryReader(snapshots.sealed).read().assets) == 6


async def test_every_copy_torn_falls_back_to_the_last_good_snapshot(
    simulator: SimulatorThread, settings: SessionSettings, tmp_path: Path
) -> None:
    """A phone that changes its database during every copy gets a few attempts, then the last
    good snapshot is used, and the result says why."""
    phone = tmp_path / "phone"
    library = write_library(phone, assets(3))
    simulator.add_phone(UDID, phone)
    snapshots = LibrarySnapshots(tmp_path / "snap", max_bytes=10**9)

    def touch() -> None:
        moment = library.database.stat().st_mtime_ns + 1_000_000_000
        os.utime(library.database, ns=(moment, moment))

    async with open_session(UDID, settings) as session:
        assert (await snapshots.refresh(session.files)).outcome == COPIED
        add_assets(library, assets(1, start=4))
        result = await snapshots.refresh(
            HookedFiles(session.files, LIBRARY_PATH, touch, every_time=True)
        )
    assert result.outcome == FALLBACK and result.attempts == 3
    assert "changed while it was copied" in result.detail
    assert result.database == snapshots.sealed
    assert len(LibraryReader(snapshots.sealed).read().assets) == 3, "the last good one"


async def test_a_damaged_library_is_never_a_snapshot(
    simulator: SimulatorThread, settings: SessionSettings, tmp_path: Path
) -> None:
    """A phone whose Photos.sqlite is garbage yields no snapshot (unavailable, with a reason),
    and no half-made file is left behind."""
    phone = tmp_path / "phone"
    (phone / "PhotoData").mkdir(parents=True)
    (phone / "PhotoData" / "Photos.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x13" * 9000)
    simulator.add_phone(UDID, phone)
    snapshots = LibrarySnapshots(tmp_path / "snap", max_bytes=10**9)
    async with open_session(UDID, settings) as session:
        result = await snapshots.refresh(session.files)
    assert result.outcome == UNAVAILABLE and result.database is None
    assert "no copy was usable" in result.detail and "not a database" in result.detail
    assert not snapshots.sealed.exists()
    assert not (snapshots.folder / "work").exists()


async def test_a_phone_without_a_library_or_too_large_one_is_told(
    simulator: SimulatorThread, settings: SessionSettings, tmp_path: Path
) -> None:
    """No /PhotoData/Photos.sqlite, or one over the size limit, gives no copy and a reason."""
    phone = tmp_path / "phone"
    (phone / "DCIM").mkdir(parents=True)
    simulator.add_phone(UDID, phone)
    async with open_session(UDID, settings) as session:
        none = await LibrarySnapshots(tmp_path / "a", max_bytes=10**9).refresh(session.files)
        write_library(phone, assets(2))
        large = await LibrarySnapshots(tmp_path / "b", max_bytes=1000).refresh(session.files)
    assert none.outcome == UNAVAILABLE and "shows no" in none.detail
    assert large.outcome == UNAVAILABLE and "max_size_gb" in large.detail


async def test_an_unplug_mid_copy_resumes_where_it_stopped(
    simulator: SimulatorThread, settings: SessionSettings, tmp_path: Path
) -> None:
    """Unplugged while the database is copied, the partial is kept; plugged in again with the
    library unchanged, only the rest of the database is read from the phone."""
    phone = tmp_path / "phone"
    # Thumbnails-like bulk makes the database ~10 MB: several 4 MiB reads.
    bulk = (
        "CREATE TABLE ZTHUMBNAILS (ZDATA BLOB);"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)"
        " INSERT INTO ZTHUMBNAILS SELECT randomblob(100000) FROM n;"
    )
    library = write_library(phone, assets(400), rows_in_wal=False, extra_sql=bulk)
    size = library.database.stat().st_size
    cut = 6 * 1024 * 1024
    simulator.add_phone(UDID, phone, faults=AfcFaults(unplug_after_bytes={LIBRARY_PATH: cut}))
    snapshots = LibrarySnapshots(tmp_path / "snap", max_bytes=10**9)
    with pytest.raises(PhoneUnavailableError):
        async with open_session(UDID, settings) as session:
            await snapshots.refresh(session.files)
    [partial] = sorted((snapshots.folder / "incoming").glob("Photos.sqlite.*.partial"))
    kept = partial.stat().st_size
    assert 0 < kept <= cut
    simulator.plug(UDID)
    simulator.reset_counts(UDID)
    async with open_session(UDID, settings) as session:
        result = await snapshots.refresh(session.files)
    assert result.outcome == COPIED, result.detail
    assert simulator.afc_bytes_served(UDID)[LIBRARY_PATH] == size - kept
    assert len(LibraryReader(snapshots.sealed).read().assets) == 400
