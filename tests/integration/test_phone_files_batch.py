"""The batched stat of the phone-files adapter against hostile and failing phones.

:meth:`rollkeeper.device.phone_files.PhoneFilesystem.stat_many` pipelines GET_FILE_INFO
requests in windows through pymobiledevice3's reply demultiplexer (:mod:`rollkeeper.device.
afc_batch`). Here, in a real session with the simulator: replies with keys missing or refusals
mixed into a batch, a phone that never answers one stat of a batch, one unplugged halfway
through a batch, and the packets themselves checked against pymobiledevice3's own header.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pymobiledevice3.services.afc import AfcError, AfcHeader, AfcOpcode

from rollkeeper.device import afc_batch
from rollkeeper.device.errors import PhoneDisconnectedError, PhoneNotRespondingError
from rollkeeper.device.phone_files import PhoneFilesystem
from rollkeeper.device.session import SessionSettings, open_session
from rollkeeper.ports import FileNotOnPhoneError, PhoneReadError, RawStat
from rollkeeper.simulator import AfcFaults, SimulatorThread

UDID = "00008110-00EE0000000000E5"
FOLDER = "/DCIM/100APPLE"
#: More files than two windows, so a batch of them has windows queued behind each other.
COUNT = 3 * afc_batch.WINDOW + 17


def make_phone(root: Path, count: int = COUNT) -> list[str]:
    """``count`` small files in one folder; their phone paths in order."""
    folder = root / "DCIM" / "100APPLE"
    folder.mkdir(parents=True)
    paths = []
    for number in range(1, count + 1):
        (folder / f"IMG_{number:04d}.JPG").write_bytes(b"x" * number)
        paths.append(f"{FOLDER}/IMG_{number:04d}.JPG")
    return paths


def settings_for(simulator: SimulatorThread, tmp_path: Path) -> SessionSettings:
    """Session settings reaching the simulator, with a private pairing folder."""
    return SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pairing")


def test_a_packed_request_is_the_header_pymobiledevice3_builds() -> None:
    """The header the batch packs with ``struct`` is byte for byte pymobiledevice3's own
    ``AfcHeader`` for the same packet (so a change of its layout fails here, not on a phone)."""
    payload = b"/DCIM/100APPLE/IMG_0001.JPG\x00"
    length = afc_batch.HEADER.size + len(payload)
    expected = AfcHeader(
        entire_length=length, this_length=length, packet_num=77, operation=AfcOpcode.GET_FILE_INFO
    ).build()
    assert afc_batch.pack_request(AfcOpcode.GET_FILE_INFO, 77, payload) == expected + payload


async def test_a_batch_keeps_order_and_carries_each_paths_refusal(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Over several windows every reply lands on its own path: sizes in order, a missing path
    "not on the phone", a refused one a read error with the phone's status, and a reply with
    keys left out is returned as sent (without them), for the scanner to reject."""
    paths = make_phone(tmp_path / "phone")
    missing, refused, keyless = paths[5], paths[200], paths[300]
    simulator.add_phone(
        UDID,
        tmp_path / "phone",
        faults=AfcFaults(
            not_found={missing},
            permission_denied={refused},
            stat_missing_keys={keyless: {"st_size", "st_birthtime"}},
        ),
    )
    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        replies = await session.files.stat_many(paths)
        # The connection is still in step afterwards: a single request is answered.
        assert (await session.files.stat(paths[0])).integer("st_size") == 1

    for index, (path, reply) in enumerate(zip(paths, replies, strict=True)):
        if path == missing:
            assert isinstance(reply, FileNotOnPhoneError)
        elif path == refused:
            assert isinstance(reply, PhoneReadError)
            assert reply.status == AfcError.PERM_DENIED
        elif path == keyless:
            assert isinstance(reply, RawStat)
            assert reply.integer("st_size") is None and "st_birthtime" not in reply.fields
        else:
            assert isinstance(reply, RawStat) and reply.integer("st_size") == index + 1


async def test_a_stat_never_answered_ends_the_batch_at_the_deadline(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A phone that never answers one GET_FILE_INFO of a batch makes the whole batch "not
    responding" once the deadline passes, rather than a batch that waits forever."""
    paths = make_phone(tmp_path / "phone")
    simulator.add_phone(UDID, tmp_path / "phone", faults=AfcFaults(stuck_stats={paths[150]}))
    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        files = session.files
        assert isinstance(files, PhoneFilesystem)
        files.timeout_seconds = 0.5
        with pytest.raises(PhoneNotRespondingError):
            await files.stat_many(paths)


async def test_an_unplug_halfway_through_a_batch_is_a_disconnection(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """The phone unplugged when the 200th stat of a batch arrives: the batch raises "phone
    disconnected" (well before its deadline), and so does the next request."""
    paths = make_phone(tmp_path / "phone")
    simulator.add_phone(UDID, tmp_path / "phone", faults=AfcFaults(unplug_at_stat={paths[199]}))
    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        files = session.files
        assert isinstance(files, PhoneFilesystem)
        files.timeout_seconds = 60.0
        with pytest.raises(PhoneDisconnectedError):
            await files.stat_many(paths)
        with pytest.raises(PhoneDisconnectedError):
            await files.stat_many(paths[:3])
