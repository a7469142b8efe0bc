"""The simulator imitates the usbmuxd builds people run (docs/simulator.md, "Profiles").

Each test holds one behaviour read in a real usbmuxd's source or seen in its users' reports,
through the raw usbmuxd protocol and the unmodified pymobiledevice3 client: Linux usbmuxd's
exact Attached record and its preflight (a phone shown only once it is done with it), macOS
usbmuxd's extra keys and its Network twin, and the simulator's own blend.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymobiledevice3 import usbmux
from pymobiledevice3.lockdown import create_using_usbmux

from rollkeeper.simulator import SimulatorThread, TrustPolicy, short_socket_folder
from tests.simulator.clients import PHONE_UDID, raw_usbmuxd, run, usbmuxd_exchange

LINUX_PROPERTY_KEYS = {
    "ConnectionSpeed",
    "ConnectionType",
    "DeviceID",
    "LocationID",
    "ProductID",
    "SerialNumber",
}


@pytest.fixture
def start_simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], SimulatorThread]]:
    """Start a simulator imitating one usbmuxd build, exported to this process's environment."""
    started: list[tuple[SimulatorThread, Path]] = []

    def start(profile: str) -> SimulatorThread:
        folder = short_socket_folder()
        simulator = SimulatorThread(socket_path=folder / "usbmuxd", usbmuxd_profile=profile)
        simulator.start()
        started.append((simulator, folder))
        monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", simulator.address)
        return simulator

    yield start
    for simulator, folder in started:
        simulator.stop()
        shutil.rmtree(folder, ignore_errors=True)


def listed(simulator: SimulatorThread) -> list[dict[str, Any]]:
    """The Attached records of ListDevices, as the raw protocol carries them."""
    with raw_usbmuxd(simulator.address) as connection:
        _tag, reply = usbmuxd_exchange(connection, 1, {"MessageType": "ListDevices"})
    devices: list[dict[str, Any]] = reply["DeviceList"]
    return devices


async def _paired_session(pair_records: Path) -> dict[str, Any]:
    async with await create_using_usbmux(
        PHONE_UDID, autopair=True, pair_timeout=0, pairing_records_cache_folder=pair_records
    ) as lockdown:
        values: dict[str, Any] = lockdown.all_values
        return values


def test_linux_usbmuxd_sends_exactly_its_six_properties(
    start_simulator: Callable[[str], SimulatorThread], media_root: Path
) -> None:
    """Linux usbmuxd's Attached record holds exactly ConnectionSpeed, ConnectionType, DeviceID,
    LocationID, ProductID and SerialNumber (the UDID, hyphen included): no UDID, no
    USBSerialNumber."""
    simulator = start_simulator("linux-usbmuxd")
    simulator.add_phone(PHONE_UDID, media_root)

    [record] = listed(simulator)

    assert set(record["Properties"]) == LINUX_PROPERTY_KEYS
    assert record["Properties"]["SerialNumber"] == PHONE_UDID
    assert record["Properties"]["ConnectionType"] == "USB"


def test_macos_usbmuxd_lists_udid_usb_serial_and_a_network_twin(
    start_simulator: Callable[[str], SimulatorThread], media_root: Path
) -> None:
    """macOS usbmuxd adds UDID and USBSerialNumber, and lists the phone a second time as a Network
    device with the same UDID, its own DeviceID and a sockaddr as NetworkAddress data."""
    simulator = start_simulator("macos-usbmuxd")
    simulator.add_phone(PHONE_UDID, media_root)

    records = {record["Properties"]["ConnectionType"]: record for record in listed(simulator)}

    assert set(records) == {"USB", "Network"}
    usb, network = records["USB"]["Properties"], records["Network"]["Properties"]
    assert usb["UDID"] == network["UDID"] == PHONE_UDID
    assert usb["USBSerialNumber"] == PHONE_UDID.replace("-", "")
    assert usb["DeviceID"] != network["DeviceID"]
    address = network["NetworkAddress"]
    assert isinstance(address, bytes) and address[0] == len(address) == 16
    # Either entry reaches the same phone; pymobiledevice3 prefers USB.
    devices = run(usbmux.list_devices())
    assert sorted(device.connection_type for device in devices) == ["Network", "USB"]
    assert run(usbmux.select_device(PHONE_UDID)).is_usb  # type: ignore[union-attr]


def test_generic_profile_is_what_the_simulator_always_sent(
    start_simulator: Callable[[str], SimulatorThread], media_root: Path
) -> None:
    """The default profile keeps the simulator's old record: USBSerialNumber, no UDID, one entry."""
    simulator = start_simulator("generic")
    simulator.add_phone(PHONE_UDID, media_root)

    [record] = listed(simulator)

    assert set(record["Properties"]) == LINUX_PROPERTY_KEYS | {"USBSerialNumber"}


def test_linux_usbmuxd_shows_an_untrusted_phone_only_once_trust_is_tapped(
    start_simulator: Callable[[str], SimulatorThread], media_root: Path, pair_records: Path
) -> None:
    """Under Linux usbmuxd an unpaired phone stays invisible while its Trust dialog waits; once
    tapped, usbmuxd pairs with its own record, the phone re-enumerates and is listed under a new
    DeviceID, and a client then starts a session with usbmuxd's record without pairing."""
    simulator = start_simulator("linux-usbmuxd")
    mark = simulator.mark()
    simulator.add_phone(PHONE_UDID, media_root, trust=TrustPolicy.ACCEPT, locked=True)

    simulator.wait_for("preflight_waiting_for_trust", PHONE_UDID, after=mark)
    assert listed(simulator) == []
    first = simulator.wait_for("attached", PHONE_UDID, after=mark).details["device_id"]
    simulator.unlock(PHONE_UDID)
    paired = simulator.wait_for("preflight_paired", PHONE_UDID, after=mark)
    finished = simulator.wait_for("preflight_finished", PHONE_UDID, after=paired.sequence)
    [record] = listed(simulator)

    assert record["DeviceID"] != first
    assert simulator.pair_record(PHONE_UDID) is not None
    values = run(_paired_session(pair_records))
    assert values["UniqueDeviceID"] == PHONE_UDID
    assert not simulator.events.events("pair_pending", PHONE_UDID, after=finished.sequence)


def test_linux_usbmuxd_never_shows_a_phone_whose_user_said_dont_trust(
    start_simulator: Callable[[str], SimulatorThread], media_root: Path
) -> None:
    """Don't Trust ends Linux usbmuxd's preflight: the phone stays invisible until replugged."""
    simulator = start_simulator("linux-usbmuxd")
    mark = simulator.mark()
    simulator.add_phone(PHONE_UDID, media_root, trust=TrustPolicy.DENY)

    failed = simulator.wait_for("preflight_failed", PHONE_UDID, after=mark)

    assert "denied" in failed.details["reason"]
    assert listed(simulator) == []


def test_linux_usbmuxd_shows_a_paired_phone_at_once(
    start_simulator: Callable[[str], SimulatorThread], media_root: Path
) -> None:
    """A phone that trusts usbmuxd's record is listed once the preflight ran, locked or not."""
    simulator = start_simulator("linux-usbmuxd")
    mark = simulator.mark()
    simulator.add_phone(PHONE_UDID, media_root, locked=True)

    simulator.wait_for("preflight_finished", PHONE_UDID, after=mark)

    assert [record["Properties"]["SerialNumber"] for record in listed(simulator)] == [PHONE_UDID]
