"""pymobiledevice3's own command line against the simulator, as a user would run it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rollkeeper.simulator import SimulatorThread
from tests.simulator.clients import PHONE_UDID, VENV_BIN, run_tool

PYMOBILEDEVICE3 = str(VENV_BIN / "pymobiledevice3")

# Each CLI start imports all of pymobiledevice3 (~1-2 s on two busy cores).
pytestmark = pytest.mark.slow


def test_usbmux_list_and_lockdown_info(
    simulator: SimulatorThread, media_root: Path, tmp_path: Path
) -> None:
    """pymobiledevice3's `usbmux list` shows the phone as a USB device with its name, and `lockdown
    info` reads its private values."""
    simulator.add_phone(PHONE_UDID, media_root, name="Alice's iPhone")

    listed = run_tool([PYMOBILEDEVICE3, "usbmux", "list"], simulator.address, tmp_path)
    info = run_tool(
        [PYMOBILEDEVICE3, "lockdown", "info", "--udid", PHONE_UDID], simulator.address, tmp_path
    )

    assert listed.returncode == 0, listed.stderr
    (device,) = json.loads(listed.stdout)
    assert device["UniqueDeviceID"] == PHONE_UDID
    assert device["DeviceName"] == "Alice's iPhone"
    assert device["ConnectionType"] == "USB"
    assert info.returncode == 0, info.stderr
    values = json.loads(info.stdout)
    assert values["SerialNumber"] == "F2LXXXXXXXXX"
    assert values["ProductType"] == "iPhone15,2"


def test_afc_ls_and_pull(tcp_simulator: SimulatorThread, media_root: Path, tmp_path: Path) -> None:
    """Over TCP, pymobiledevice3's `afc ls` lists a folder as phone paths and `afc pull` copies a 3
    MiB file with its exact bytes."""
    tcp_simulator.add_phone(PHONE_UDID, media_root)
    photo = media_root / "DCIM" / "100APPLE" / "IMG_0002.HEIC"
    photo.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    pulled = tmp_path / "pulled.heic"
    pull_arguments = ["afc", "pull", "/DCIM/100APPLE/IMG_0002.HEIC", str(pulled)]

    listed = run_tool(
        [PYMOBILEDEVICE3, "afc", "ls", "/DCIM/100APPLE", "--udid", PHONE_UDID],
        tcp_simulator.address,
        tmp_path,
    )
    pull = run_tool(
        [PYMOBILEDEVICE3, *pull_arguments, "--udid", PHONE_UDID], tcp_simulator.address, tmp_path
    )

    assert listed.returncode == 0, listed.stderr
    # 11.45 prints the folder itself, then each entry, as full phone-side paths.
    assert sorted(listed.stdout.split()) == [
        "/DCIM/100APPLE",
        "/DCIM/100APPLE/IMG_0001.JPG",
        "/DCIM/100APPLE/IMG_0002.HEIC",
    ]
    assert pull.returncode == 0, pull.stderr
    assert pulled.read_bytes() == photo.read_bytes()
