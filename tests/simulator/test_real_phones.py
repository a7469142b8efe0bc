"""The simulator behaves like the phones people own (docs/simulator.md, "Real phones").

Each test holds one behaviour seen on real devices, through the unmodified pymobiledevice3
client: the phone generations and their lockdown value types, Trust re-enumerating the phone, a
slow Trust prompt, USB Restricted Mode, a phone not unlocked since it restarted, and the AFC
refusals (a folder refused, "No file slots", a read failing midway). The usbmuxd builds are
tests/simulator/test_real_usbmuxd.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pymobiledevice3.exceptions import (
    AfcException,
    ConnectionFailedError,
    DeviceNotFoundError,
    PairingDialogResponsePendingError,
    PasswordRequiredError,
)
from pymobiledevice3.lockdown import create_using_usbmux
from pymobiledevice3.services.afc import AfcError, AfcService

from rollkeeper.simulator import AfcFaults, SimulatorThread, TrustPolicy
from rollkeeper.simulator.lockdown_values import phone_profile
from tests.simulator.clients import PHONE_UDID, run

OLD_UDID = "3f6c0d9b2a8e4c1d7f5a9b3e2c8d1f4a6b7c9e0d"


async def _paired_session(
    pair_records: Path, udid: str = PHONE_UDID, pair_timeout: float = 0
) -> dict[str, Any]:
    # pair_timeout > 0: pymobiledevice3's own loop polls Pair once a second meanwhile.
    async with await create_using_usbmux(
        udid, autopair=True, pair_timeout=pair_timeout, pairing_records_cache_folder=pair_records
    ) as lockdown:
        values: dict[str, Any] = lockdown.all_values
        return values


async def _public_values(udid: str = PHONE_UDID) -> dict[str, Any]:
    async with await create_using_usbmux(udid, autopair=False) as lockdown:
        values: dict[str, Any] = lockdown.all_values
        return values


# -- phone generations and value types -------------------------------------------------------


@pytest.mark.parametrize("profile", ["iphone-ios15", "iphone-ios18", "iphone-ios26"])
def test_phone_generations_report_real_value_types(
    simulator: SimulatorThread, media_root: Path, pair_records: Path, profile: str
) -> None:
    """Each phone generation reports its UDID shape and version, and lockdown values of the types
    real phones send: ProtocolVersion and DeviceColor strings, ChipID, BoardId, UniqueChipID and
    DieID integers, time values reals, SupportedDeviceFamilies integers, NonVolatileRAM data."""
    identity = phone_profile(profile, name="Ana's iPhone")
    simulator.add_phone(identity.udid, media_root, identity=identity)

    values = run(_paired_session(pair_records, identity.udid))

    assert values["UniqueDeviceID"] == identity.udid
    assert values["ProductVersion"] == identity.product_version
    assert isinstance(values["ProtocolVersion"], str) and isinstance(values["DeviceColor"], str)
    for key in ("ChipID", "BoardId", "UniqueChipID", "DieID"):
        assert type(values[key]) is int, key
    assert isinstance(values["TimeZoneOffsetFromUTC"], float)
    assert isinstance(values["TimeIntervalSince1970"], float)
    assert all(type(family) is int for family in values["SupportedDeviceFamilies"])
    assert all(isinstance(value, bytes) for value in values["NonVolatileRAM"].values())
    assert values["DeviceName"] == "Ana's iPhone"


def test_old_phone_has_a_40_digit_udid_and_names_itself_only_in_a_session(
    simulator: SimulatorThread, media_root: Path
) -> None:
    """The iOS 15 phone has a 40-hex-digit UDID; before a session its lockdownd gives no
    DeviceName, as real phones' session-less dumps show."""
    identity = phone_profile("iphone-ios15", name="Old iPhone")
    # Not paired: the client's connection never gets past the session-less values.
    simulator.add_phone(identity.udid, media_root, identity=identity, trust=TrustPolicy.ACCEPT)

    values = run(_public_values(identity.udid))

    assert len(identity.udid) == 40 and "-" not in identity.udid
    assert values["UniqueDeviceID"] == OLD_UDID
    assert "DeviceName" not in values
    assert values["ProductVersion"].startswith("15.")


# -- trust --------------------------------------------------------------------------------------


def test_tapping_trust_reenumerates_the_phone_with_a_new_device_id(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """A Pair that the user trusts is answered, then the phone leaves the bus (its connections
    reset) and comes back under a new DeviceID; the host's record then opens a session."""
    state = simulator.add_phone(PHONE_UDID, media_root, trust=TrustPolicy.ACCEPT)
    first = state.device_id
    mark = simulator.mark()

    # pymobiledevice3 pairs, then finds its connection gone and the phone not yet back.
    with pytest.raises(DeviceNotFoundError):
        run(_paired_session(pair_records))

    paired = simulator.wait_for("paired", PHONE_UDID, after=mark)
    detached = simulator.wait_for("detached", PHONE_UDID, after=paired.sequence)
    attached = simulator.wait_for("attached", PHONE_UDID, after=detached.sequence)
    assert detached.details["connections_dropped"] >= 1
    assert attached.details["device_id"] != first
    assert run(_paired_session(pair_records))["UniqueDeviceID"] == PHONE_UDID


def test_a_slow_trust_prompt_answers_pending_until_it_appears(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """A Trust dialog that takes its time to appear answers every Pair "pending" until then, and
    the first Pair after it appeared is trusted."""
    delay = 1.5
    simulator.add_phone(
        PHONE_UDID,
        media_root,
        trust=TrustPolicy.ACCEPT,
        trust_prompt_delay_seconds=delay,
        reenumerate_on_trust=False,
    )
    plugged = simulator.wait_for("attached", PHONE_UDID).monotonic

    with pytest.raises(PairingDialogResponsePendingError):
        run(_paired_session(pair_records))
    values = run(_paired_session(pair_records, pair_timeout=30))

    assert values["UniqueDeviceID"] == PHONE_UDID
    paired = simulator.wait_for("paired", PHONE_UDID)
    assert paired.monotonic >= plugged + delay


# -- lock states ----------------------------------------------------------------------------------


def test_usb_restricted_mode_refuses_connections_until_unlocked(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """A phone plugged in after an hour locked refuses every usbmux connection; unlocking it
    enables USB data: it re-enumerates and a session opens. A phone locked for ten minutes
    connects as usual."""
    simulator.add_phone(PHONE_UDID, media_root, locked=True, locked_for_seconds=3700)
    mark = simulator.mark()

    with pytest.raises(ConnectionFailedError):
        run(_paired_session(pair_records))
    refused = simulator.wait_for("connect_refused", PHONE_UDID, after=mark)
    assert refused.details["reason"] == "usb_restricted"

    simulator.unlock(PHONE_UDID)
    back = simulator.wait_for("attached", PHONE_UDID, after=refused.sequence)
    assert back.details["usb_restricted"] is False
    assert run(_paired_session(pair_records))["UniqueDeviceID"] == PHONE_UDID

    simulator.lock(PHONE_UDID, locked_for_seconds=600)
    simulator.unplug(PHONE_UDID)
    simulator.plug(PHONE_UDID)
    assert run(_paired_session(pair_records))["UniqueDeviceID"] == PHONE_UDID


def test_a_restarted_phone_refuses_sessions_until_its_first_unlock(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """After a restart, StartSession of a trusted host answers PasswordProtected until the
    passcode is entered once; then the host's record works again."""
    simulator.add_phone(PHONE_UDID, media_root)
    simulator.restart(PHONE_UDID)

    with pytest.raises(PasswordRequiredError):
        run(_paired_session(pair_records))

    simulator.unlock(PHONE_UDID)
    assert run(_paired_session(pair_records))["UniqueDeviceID"] == PHONE_UDID


# -- AFC -----------------------------------------------------------------------------------------


async def _afc(pair_records: Path, work: Callable[[AfcService], Any]) -> Any:
    async with (
        await create_using_usbmux(
            PHONE_UDID, autopair=True, pair_timeout=0, pairing_records_cache_folder=pair_records
        ) as lockdown,
        AfcService(lockdown) as afc,
    ):
        return await work(afc)


def test_a_refused_folder_answers_permission_denied_inside_a_readable_tree(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """A folder the phone refuses answers PERM_DENIED to READ_DIR, and so does a file under it,
    while the folder beside it lists as usual."""
    (media_root / "DCIM" / "101APPLE").mkdir()
    (media_root / "DCIM" / "101APPLE" / "IMG_0100.JPG").write_bytes(os.urandom(100))
    simulator.add_phone(
        PHONE_UDID, media_root, faults=AfcFaults(permission_denied={"/DCIM/101APPLE"})
    )

    async def work(afc: AfcService) -> tuple[list[str], Any, Any]:
        readable = await afc.listdir("/DCIM/100APPLE")
        outcomes = []
        for attempt in (afc.listdir("/DCIM/101APPLE"), afc.stat("/DCIM/101APPLE/IMG_0100.JPG")):
            try:
                await attempt
            except AfcException as error:
                outcomes.append(error.status)
        return readable, outcomes[0], outcomes[1]

    readable, folder_status, file_status = run(_afc(pair_records, work))

    assert sorted(readable) == ["IMG_0001.JPG", "IMG_0002.HEIC"]
    assert folder_status == file_status == AfcError.PERM_DENIED


def test_no_file_slots_when_too_many_files_are_open_on_one_connection(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """With two file slots, a third open file on the connection is refused with NO_RESOURCES
    ("No file slots"); closing one frees its slot."""
    simulator.add_phone(PHONE_UDID, media_root, faults=AfcFaults(file_slots=2))

    async def work(afc: AfcService) -> tuple[Any, int]:
        first = await afc.fopen("/DCIM/100APPLE/IMG_0001.JPG")
        await afc.fopen("/DCIM/100APPLE/IMG_0002.HEIC")
        try:
            await afc.fopen("/DCIM/100APPLE/IMG_0001.JPG")
        except AfcException as error:
            refused = error.status
        await afc.fclose(first)
        return refused, await afc.fopen("/DCIM/100APPLE/IMG_0001.JPG")

    refused, reopened = run(_afc(pair_records, work))

    assert refused == AfcError.NO_RESOURCES
    assert reopened > 0


def test_a_read_fails_midway_while_listing_and_stat_are_fine(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """An iCloud-optimized original lists and stats with its full size, serves its first bytes,
    then answers IO_ERROR to every READ from the failing offset on."""
    path = "/DCIM/100APPLE/IMG_0002.HEIC"
    simulator.add_phone(PHONE_UDID, media_root, faults=AfcFaults(io_error_after_bytes={path: 4000}))

    async def work(afc: AfcService) -> tuple[int, int, Any]:
        size = (await afc.stat(path))["st_size"]
        handle = await afc.fopen(path)
        first = await afc.fread(handle, 3000)
        second = await afc.fread(handle, 3000)
        try:
            await afc.fread(handle, 3000)
        except AfcException as error:
            return size, len(first) + len(second), error.status
        return size, len(first) + len(second), None

    size, served, status = run(_afc(pair_records, work))

    assert size == 12000
    assert served == 4000
    assert status == AfcError.IO_ERROR
