"""The simulated usbmuxd as pymobiledevice3's usbmux module sees it (over real sockets)."""

from __future__ import annotations

import plistlib
import struct
from pathlib import Path

import pytest
from pymobiledevice3 import usbmux
from pymobiledevice3.exceptions import BadDevError, ConnectionFailedError, NotPairedError
from pymobiledevice3.usbmux import PlistMuxConnection

from rollkeeper.simulator import SimulatorThread, TrustPolicy
from tests.simulator.clients import (
    OTHER_UDID,
    PHONE_UDID,
    raw_usbmuxd,
    read_usbmuxd_packet,
    receive_exactly,
    run,
    usbmuxd_exchange,
)


def test_list_devices_shows_plugged_phones_with_distinct_device_ids(
    simulator: SimulatorThread, media_root: Path
) -> None:
    """ListDevices shows only the plugged phones, each over USB with its own device id."""
    simulator.add_phone(PHONE_UDID, media_root, name="Alice's iPhone")
    simulator.add_phone(OTHER_UDID, media_root, name="Bob's iPhone")
    simulator.add_phone("00008110-000000000000AAAA", media_root, plugged=False)

    devices = run(usbmux.list_devices())

    assert sorted(device.serial for device in devices) == sorted([PHONE_UDID, OTHER_UDID])
    assert len({device.devid for device in devices}) == 2
    assert all(device.connection_type == "USB" for device in devices)


def test_network_phone_is_listed_as_network(simulator: SimulatorThread, media_root: Path) -> None:
    """A phone added as a network phone is listed with the Network connection type."""
    simulator.add_phone(PHONE_UDID, media_root, connection_type="Network")

    (device,) = run(usbmux.list_devices())

    assert device.serial == PHONE_UDID
    assert device.is_network


def test_tcp_address_works_like_the_unix_socket(
    tcp_simulator: SimulatorThread, media_root: Path
) -> None:
    """A simulator on a loopback TCP port lists its phones as it does over the UNIX socket."""
    tcp_simulator.add_phone(PHONE_UDID, media_root)
    host, port = tcp_simulator.address.split(":")

    assert host == "127.0.0.1" and int(port) > 0
    assert [device.serial for device in run(usbmux.list_devices())] == [PHONE_UDID]


def test_listen_reports_attach_and_detach_with_a_new_device_id_on_replug(
    simulator: SimulatorThread, media_root: Path
) -> None:
    """A Listen stream reports the attach, the detach, and a replug under a new device id."""
    simulator.add_phone(PHONE_UDID, media_root)

    async def scenario() -> tuple[list[int], list[int], list[int]]:
        mux = await usbmux.create_mux()
        try:
            await mux.listen()  # type: ignore[no-untyped-call]
            await mux.receive_device_state_update()  # type: ignore[no-untyped-call]
            initial = [device.devid for device in mux.devices]
            simulator.unplug(PHONE_UDID)
            await mux.receive_device_state_update()  # type: ignore[no-untyped-call]
            after_unplug = [device.devid for device in mux.devices]
            simulator.plug(PHONE_UDID)
            await mux.receive_device_state_update()  # type: ignore[no-untyped-call]
            after_replug = [device.devid for device in mux.devices]
        finally:
            await mux.close()  # type: ignore[no-untyped-call]
        return initial, after_unplug, after_replug

    initial, after_unplug, after_replug = run(scenario())

    assert len(initial) == 1
    assert after_unplug == []
    assert len(after_replug) == 1 and after_replug != initial


def test_connect_to_an_unknown_device_is_bad_device(simulator: SimulatorThread) -> None:
    """A Connect to a device id that no phone has is refused as BadDev."""

    async def connect() -> None:
        mux = await usbmux.create_mux()
        try:
            await mux.connect(usbmux.MuxDevice(77, PHONE_UDID, "USB"), 62078)
        finally:
            await mux.close()  # type: ignore[no-untyped-call]

    with pytest.raises(BadDevError):
        run(connect())


def test_connect_to_a_port_no_service_listens_on_is_refused(
    simulator: SimulatorThread, media_root: Path
) -> None:
    """A Connect to a port no service listens on is refused, and the refusal is logged with its
    port."""
    state = simulator.add_phone(PHONE_UDID, media_root)

    async def connect() -> None:
        mux = await usbmux.create_mux()
        try:
            await mux.connect(usbmux.MuxDevice(state.device_id, PHONE_UDID, "USB"), 49152)
        finally:
            await mux.close()  # type: ignore[no-untyped-call]

    with pytest.raises(ConnectionFailedError):
        run(connect())
    assert simulator.wait_for("connect_refused", PHONE_UDID).details["port"] == 49152


def test_read_buid_and_pair_records(simulator: SimulatorThread, media_root: Path) -> None:
    """ReadBUID and ReadPairRecord return the system BUID and a paired phone's record with its host
    keys; an unpaired phone's record raises NotPairedError."""
    simulator.add_phone(PHONE_UDID, media_root, trust=TrustPolicy.PAIRED)
    simulator.add_phone(OTHER_UDID, media_root, trust=TrustPolicy.ACCEPT)

    async def read() -> tuple[str, dict[str, object]]:
        mux = await usbmux.create_mux()
        try:
            assert isinstance(mux, PlistMuxConnection)
            buid = await mux.get_buid()
            record = await mux.get_pair_record(PHONE_UDID)
        finally:
            await mux.close()  # type: ignore[no-untyped-call]
        return buid, record

    buid, record = run(read())

    assert record["SystemBUID"] == buid
    assert {"HostID", "HostCertificate", "HostPrivateKey", "RootCertificate"} <= set(record)
    assert record["HostID"] in simulator.call(
        lambda: simulator.simulator.phone(PHONE_UDID).paired_host_ids
    )

    async def read_missing() -> None:
        mux = await usbmux.create_mux()
        try:
            assert isinstance(mux, PlistMuxConnection)
            await mux.get_pair_record(OTHER_UDID)
        finally:
            await mux.close()  # type: ignore[no-untyped-call]

    with pytest.raises(NotPairedError):
        run(read_missing())


def test_save_and_delete_pair_record_over_the_raw_protocol(
    simulator: SimulatorThread, media_root: Path
) -> None:
    """SavePairRecord and DeletePairRecord succeed over the raw plist protocol; a second delete and
    an unknown message answer an error."""
    state = simulator.add_phone(PHONE_UDID, media_root, trust=TrustPolicy.ACCEPT)
    record = plistlib.dumps({"HostID": "ABC", "SystemBUID": "X"})
    mark = simulator.mark()

    with raw_usbmuxd(simulator.address) as connection:
        saved = usbmuxd_exchange(
            connection,
            1,
            {
                "MessageType": "SavePairRecord",
                "PairRecordID": PHONE_UDID,
                "PairRecordData": record,
                "DeviceID": state.device_id,
            },
        )
        deleted = usbmuxd_exchange(
            connection, 2, {"MessageType": "DeletePairRecord", "PairRecordID": PHONE_UDID}
        )
        deleted_again = usbmuxd_exchange(
            connection, 3, {"MessageType": "DeletePairRecord", "PairRecordID": PHONE_UDID}
        )
        unknown = usbmuxd_exchange(connection, 4, {"MessageType": "MakeCoffee"})

    assert saved == (1, {"MessageType": "Result", "Number": 0})
    assert simulator.wait_for("pair_record_saved", PHONE_UDID, after=mark)
    assert deleted == (2, {"MessageType": "Result", "Number": 0})
    assert deleted_again[1]["Number"] != 0
    assert unknown[1]["Number"] == 1
    assert simulator.pair_record(PHONE_UDID) is None


def test_a_saved_pair_record_is_announced_to_listeners_as_paired(
    simulator: SimulatorThread, media_root: Path
) -> None:
    """Saving a pair record announces Paired to listeners, after the Attached that carries the
    phone's serial."""
    state = simulator.add_phone(PHONE_UDID, media_root, trust=TrustPolicy.ACCEPT)

    with raw_usbmuxd(simulator.address) as listener:
        assert usbmuxd_exchange(listener, 5, {"MessageType": "Listen"})[1]["Number"] == 0
        attached = read_usbmuxd_packet(listener)
        with raw_usbmuxd(simulator.address) as saver:
            usbmuxd_exchange(
                saver,
                1,
                {
                    "MessageType": "SavePairRecord",
                    "PairRecordID": PHONE_UDID,
                    "PairRecordData": plistlib.dumps({"HostID": "H"}),
                    "DeviceID": state.device_id,
                },
            )
        paired = read_usbmuxd_packet(listener)

    tag, message = attached
    assert (tag, message["MessageType"], message["DeviceID"]) == (0, "Attached", state.device_id)
    properties = message["Properties"]
    assert isinstance(properties, dict) and properties["SerialNumber"] == PHONE_UDID
    assert paired == (0, {"MessageType": "Paired", "DeviceID": state.device_id})


def test_binary_protocol_requests_are_turned_down_with_badversion(
    simulator: SimulatorThread,
) -> None:
    """A request in the binary protocol (version 0) is answered with a BADVERSION result."""
    with raw_usbmuxd(simulator.address) as connection:
        # A binary-protocol (version 0) LISTEN request: length, version, message 3, tag.
        connection.sendall(struct.pack("<IIII", 16, 0, 3, 9))
        length, version, message, tag, result = struct.unpack(
            "<IIIII", receive_exactly(connection, 20)
        )

    assert (length, version, message, tag, result) == (20, 0, 1, 9, 6)
