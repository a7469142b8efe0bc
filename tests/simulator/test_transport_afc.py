"""AFC reached the way a real client reaches it: lockdown StartService, then a usbmux Connect
to the returned port on a fresh socket. Unplugging mid-read cuts that socket.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from pymobiledevice3 import usbmux
from pymobiledevice3.exceptions import ConnectionFailedError, ConnectionTerminatedError
from pymobiledevice3.lockdown import create_using_usbmux
from pymobiledevice3.services.afc import AfcService

from rollkeeper.simulator import SimulatorThread
from tests.simulator.clients import OTHER_UDID, PHONE_UDID, run

CHUNK = 1 << 20


def test_afc_lists_the_media_folder_of_each_phone(
    simulator: SimulatorThread, media_root: Path, tmp_path: Path, pair_records: Path
) -> None:
    """AFC reached through StartService and a usbmux Connect lists each phone's own media folder."""
    other_root = tmp_path / "other-phone"
    (other_root / "DCIM" / "101APPLE").mkdir(parents=True)
    (other_root / "DCIM" / "101APPLE" / "IMG_0900.MOV").write_bytes(b"movie")
    simulator.add_phone(PHONE_UDID, media_root)
    simulator.add_phone(OTHER_UDID, other_root)

    async def listing(udid: str, folder: str) -> list[str]:
        async with (
            await create_using_usbmux(
                udid, autopair=False, pairing_records_cache_folder=pair_records
            ) as lockdown,
            AfcService(lockdown) as afc,
        ):
            return sorted(await afc.listdir(folder))

    assert run(listing(PHONE_UDID, "/DCIM/100APPLE")) == ["IMG_0001.JPG", "IMG_0002.HEIC"]
    assert run(listing(OTHER_UDID, "/DCIM")) == ["101APPLE"]
    assert simulator.afc_request_counts(PHONE_UDID)["READ_DIR"] >= 1
    assert simulator.afc_request_counts(OTHER_UDID)["READ_DIR"] >= 1


def test_a_service_port_takes_one_connection(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """Like lockdownd's services: the port from StartService is for one connection."""
    state = simulator.add_phone(PHONE_UDID, media_root)

    async def connect_twice() -> None:
        async with await create_using_usbmux(
            PHONE_UDID, autopair=False, pairing_records_cache_folder=pair_records
        ) as lockdown:
            port = (await lockdown.get_service_connection_attributes("com.apple.afc"))["Port"]
            device = usbmux.MuxDevice(state.device_id, PHONE_UDID, "USB")
            first = await device.connect(port)
            first.close()
            await device.connect(port)

    with pytest.raises(ConnectionFailedError):
        run(connect_twice())


def test_unplug_mid_read_terminates_the_read_and_reaches_a_listener(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """An unplug in the middle of a read ends the next read with ConnectionTerminatedError, a
    listener sees the phone leave, and no connection stays open."""
    video = media_root / "DCIM" / "100APPLE" / "IMG_0003.MOV"
    video.write_bytes(os.urandom(8 * CHUNK))
    simulator.add_phone(PHONE_UDID, media_root)

    async def scenario() -> tuple[bytes, list[usbmux.MuxDevice]]:
        listener = await usbmux.create_mux()
        await listener.listen()  # type: ignore[no-untyped-call]
        await listener.receive_device_state_update()  # type: ignore[no-untyped-call]
        assert [device.serial for device in listener.devices] == [PHONE_UDID]
        try:
            async with await create_using_usbmux(
                PHONE_UDID, autopair=False, pairing_records_cache_folder=pair_records
            ) as lockdown:
                afc = AfcService(lockdown)
                handle = await afc.fopen("/DCIM/100APPLE/IMG_0003.MOV")
                first = await afc.fread(handle, CHUNK)
                mark = simulator.mark()
                # The call returns once the unplug ran on the simulator's loop.
                simulator.unplug(PHONE_UDID)
                assert simulator.wait_for("afc_closed", PHONE_UDID, after=mark)
                with pytest.raises(ConnectionTerminatedError):
                    await afc.fread(handle, CHUNK)
            await asyncio.wait_for(listener.receive_device_state_update(), timeout=10)  # type: ignore[no-untyped-call]
            return first, list(listener.devices)
        finally:
            await listener.close()  # type: ignore[no-untyped-call]

    first, devices_after = run(scenario())

    assert first == video.read_bytes()[:CHUNK]
    assert devices_after == []
    detached = simulator.wait_for("detached", PHONE_UDID)
    assert detached.details["connections_dropped"] >= 1
    assert simulator.phone_snapshot(PHONE_UDID)["open_connections"] == 0
