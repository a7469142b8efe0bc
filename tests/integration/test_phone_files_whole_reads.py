"""Several small files read whole at once by the phone-files adapter, against the simulator.

:meth:`rollkeeper.device.phone_files.PhoneFilesystem.read_whole_many` sends the OPENs, READs
and CLOSEs of up to MAX_OPEN_FILES files each as one window (:mod:`rollkeeper.device.
afc_whole_reads`). Here, in a real session: every file's bytes in order, refusals mixed in, a
file longer than its stat, a phone out of file slots, one that stops answering, and the file
slots given back afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollkeeper.device.errors import PhoneNotRespondingError, PhoneOutOfFileSlotsError
from rollkeeper.device.phone_files import MAX_OPEN_FILES, PhoneFilesystem
from rollkeeper.device.session import SessionSettings, open_session
from rollkeeper.ports import FileNotOnPhoneError, PhoneReadError, WholeFileReads
from rollkeeper.simulator import AfcFaults, SimulatorThread

UDID = "00008110-00EE0000000000F6"
FOLDER = "/DCIM/100APPLE"
COUNT = 11


def make_phone(root: Path) -> dict[str, bytes]:
    """``COUNT`` files of different sizes (up to 300 KB); their phone paths and bytes."""
    folder = root / "DCIM" / "100APPLE"
    folder.mkdir(parents=True)
    contents = {}
    for number in range(1, COUNT + 1):
        data = bytes([number]) * (number * 27_000 + 13)
        (folder / f"IMG_{number:04d}.JPG").write_bytes(data)
        contents[f"{FOLDER}/IMG_{number:04d}.JPG"] = data
    return contents


def settings_for(simulator: SimulatorThread, tmp_path: Path) -> SessionSettings:
    """Session settings reaching the simulator, with a private pairing folder."""
    return SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pairing")


def joined(result: object) -> bytes:
    assert isinstance(result, list), result
    return b"".join(result)


async def test_files_read_together_arrive_whole_with_each_refusal_in_its_place(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Every file's bytes come back in order, a missing file as "not on the phone" and a
    refused one as a read error in its own place; each file opened is read once and closed,
    and the file slots are free again afterwards (MAX_OPEN_FILES files open one by one)."""
    contents = make_phone(tmp_path / "phone")
    paths = sorted(contents)
    missing, refused = paths[2], paths[7]
    faults = AfcFaults(not_found={missing}, permission_denied={refused})
    simulator.add_phone(UDID, tmp_path / "phone", faults=faults)
    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        files = session.files
        assert isinstance(files, WholeFileReads)
        simulator.reset_counts(UDID)
        results = await files.read_whole_many([(path, len(contents[path])) for path in paths])
        counts = simulator.afc_request_counts(UDID)
        readable = [path for path in paths if path not in (missing, refused)]
        handles = [await session.files.open(path) for path in readable[:MAX_OPEN_FILES]]
        for handle in handles:
            await session.files.close(handle)

    assert isinstance(results[paths.index(missing)], FileNotOnPhoneError)
    assert isinstance(results[paths.index(refused)], PhoneReadError)
    for path, result in zip(paths, results, strict=True):
        if path not in (missing, refused):
            assert joined(result) == contents[path]
    assert counts["FILE_OPEN"] == COUNT
    assert counts["READ"] == COUNT - 2 and counts["FILE_CLOSE"] == COUNT - 2


async def test_a_file_longer_than_its_stat_shows_as_more_bytes(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A file that grew since its stat is read past the stat's size (one byte more is asked),
    so the caller sees more bytes than the stat and refuses the file."""
    contents = make_phone(tmp_path / "phone")
    grown = sorted(contents)[3]
    simulator.add_phone(UDID, tmp_path / "phone", faults=AfcFaults(grows_by_bytes={grown: 500}))
    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        files = session.files
        assert isinstance(files, WholeFileReads)
        (result,) = await files.read_whole_many([(grown, len(contents[grown]))])
    assert len(joined(result)) > len(contents[grown])


async def test_a_phone_out_of_file_slots_ends_the_reads(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A phone that refuses an OPEN for want of file slots is "out of file slots" for the
    whole call (not a fault of the file), as an OPEN alone is."""
    contents = make_phone(tmp_path / "phone")
    simulator.add_phone(UDID, tmp_path / "phone", faults=AfcFaults(file_slots=2))
    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        files = session.files
        assert isinstance(files, WholeFileReads)
        with pytest.raises(PhoneOutOfFileSlotsError):
            await files.read_whole_many([(path, len(data)) for path, data in contents.items()])


async def test_a_read_never_answered_ends_the_reads_at_the_deadline(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A phone that never answers one READ of the window makes the call "not responding"
    once the deadline passes, rather than one that waits forever, and the error names that
    file (the one to retry last), not merely the first of the window."""
    contents = make_phone(tmp_path / "phone")
    stuck = sorted(contents)[1]
    simulator.add_phone(UDID, tmp_path / "phone", faults=AfcFaults(stuck_reads={stuck}))
    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        files = session.files
        assert isinstance(files, PhoneFilesystem)
        files.timeout_seconds = 0.5
        with pytest.raises(PhoneNotRespondingError) as raised:
            await files.read_whole_many([(path, len(data)) for path, data in contents.items()])
    assert raised.value.paths == (stuck,)
    assert f"READ {stuck}" in str(raised.value)
