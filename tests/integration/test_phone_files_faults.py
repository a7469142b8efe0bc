"""The phone-files adapter against the AFC refusals of real phones, through pymobiledevice3.

:class:`rollkeeper.device.phone_files.PhoneFilesystem` in a real session with the simulator:
"No file slots" (afcd's limit of open files on one connection), a folder refused with
PERM_DENIED inside a readable tree, and a file whose read fails midway.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from rollkeeper.device.errors import PhoneUnavailableError
from rollkeeper.device.session import SessionSettings, open_session
from rollkeeper.ports import PhoneReadError
from rollkeeper.simulator import AfcFaults, SimulatorThread

UDID = "00008110-00DD0000000000D4"
FOLDER = "/DCIM/100APPLE"
#: The file slots of the simulated phone: as many as the adapter's MAX_OPEN_FILES allows open.
PHONE_FILE_SLOTS = 4


def make_phone(root: Path, count: int) -> dict[str, bytes]:
    """``count`` small files in one folder; their bytes by phone path."""
    folder = root / "DCIM" / "100APPLE"
    folder.mkdir(parents=True)
    contents = {}
    for number in range(1, count + 1):
        data = os.urandom(2_000 + number)
        (folder / f"IMG_{number:04d}.JPG").write_bytes(data)
        contents[f"{FOLDER}/IMG_{number:04d}.JPG"] = data
    return contents


def settings_for(simulator: SimulatorThread, tmp_path: Path) -> SessionSettings:
    """Session settings reaching the simulator, with a private pairing folder."""
    return SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pairing")


async def test_open_files_are_bounded_below_the_phones_file_slots(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Twelve readers at once on one connection of a phone with four file slots all get their
    bytes: the adapter keeps at most MAX_OPEN_FILES (4) handles open and the others wait, so the
    phone never answers "No file slots"."""
    contents = make_phone(tmp_path / "phone", 12)
    simulator.add_phone(UDID, tmp_path / "phone", faults=AfcFaults(file_slots=PHONE_FILE_SLOTS))

    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        files = session.files

        async def read_whole(path: str) -> bytes | bytearray:
            # All twelve opens are sent at once (each awaits the phone's reply): unbounded, the
            # fifth would find the slots taken.
            handle = await files.open(path)
            try:
                return await files.read(handle, 1 << 20)
            finally:
                await files.close(handle)

        results = await asyncio.gather(*(read_whole(path) for path in contents))

    assert results == list(contents.values())


async def test_no_file_slots_ends_the_run_instead_of_failing_the_file(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """An open refused for lack of file slots is a phone state (the run ends, nothing is blamed
    on the file), not a read error of that file."""
    make_phone(tmp_path / "phone", 1)
    simulator.add_phone(UDID, tmp_path / "phone", faults=AfcFaults(file_slots=0))

    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        with pytest.raises(PhoneUnavailableError) as refused:
            await session.files.open(f"{FOLDER}/IMG_0001.JPG")

    assert "No file slots" in refused.value.hint and refused.value.retry


async def test_a_refused_folder_and_a_read_failing_midway_are_read_errors(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A folder refused with PERM_DENIED is a read error of that folder only; a file that fails
    midway serves its first bytes, then raises a read error, while its stat is fine."""
    make_phone(tmp_path / "phone", 2)
    (tmp_path / "phone" / "DCIM" / "101APPLE").mkdir()
    path = f"{FOLDER}/IMG_0002.JPG"
    simulator.add_phone(
        UDID,
        tmp_path / "phone",
        faults=AfcFaults(permission_denied={"/DCIM/101APPLE"}, io_error_after_bytes={path: 1000}),
    )

    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        files = session.files
        with pytest.raises(PhoneReadError):
            await files.list_folder("/DCIM/101APPLE")
        assert len(await files.list_folder(FOLDER)) == 2
        assert (await files.stat(path)).integer("st_size") == 2002
        handle = await files.open(path)
        first = await files.read(handle, 1 << 20)
        with pytest.raises(PhoneReadError):
            await files.read(handle, 1 << 20)
        await files.close(handle)

    assert len(first) == 1000
