"""``rollkeeper simulate`` as a user (or another test) runs it: a subprocess, a control socket,
signals, and clients pointed at the address it prints.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from pymobiledevice3 import usbmux
from pymobiledevice3.exceptions import ConnectionFailedError, PasswordRequiredError
from pymobiledevice3.lockdown import create_using_usbmux

from tests.simulator.clients import PHONE_UDID, VENV_BIN, SimulateProcess, run

ROLLKEEPER = str(VENV_BIN / "rollkeeper")


def _control(control: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROLLKEEPER, "simulate", "--control", str(control), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _next_update(address: str, action: Callable[[], object]) -> list[str]:
    """Listen, run ``action()`` once the initial state is in, return the serials after one event."""
    mux = await usbmux.create_mux(usbmux_address=address)
    try:
        await mux.listen()  # type: ignore[no-untyped-call]
        # usbmuxd sends an Attached per phone right after the Result; with none plugged in, the
        # first event is the one the action causes.
        assert callable(action)
        action()
        await asyncio.wait_for(mux.receive_device_state_update(), timeout=20)  # type: ignore[no-untyped-call]
        return [device.serial for device in mux.devices]
    finally:
        await mux.close()  # type: ignore[no-untyped-call]


def test_unix_socket_control_socket_and_signals(
    media_root: Path, socket_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rollkeeper simulate` on a UNIX socket prints its export line, unplugs through its control
    socket, plugs on SIGUSR2 and removes both sockets when it stops."""
    socket_path = socket_folder / "usbmuxd"
    control = socket_folder / "usbmuxd.control"
    with SimulateProcess(
        ["--root", str(media_root), "--socket", str(socket_path), "--name", "Demo"]
    ) as simulate:
        assert simulate.first_line == f"export USBMUXD_SOCKET_ADDRESS={socket_path}"
        monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", str(socket_path))
        assert [device.serial for device in run(usbmux.list_devices())] == [PHONE_UDID]

        unplugged = _control(control, "unplug")
        assert unplugged.returncode == 0, unplugged.stderr
        assert "unplugged" in unplugged.stdout
        assert run(usbmux.list_devices()) == []

        process = simulate.process
        assert process is not None
        plugged_by_signal = run(
            _next_update(str(socket_path), lambda: process.send_signal(signal.SIGUSR2))
        )
        assert plugged_by_signal == [PHONE_UDID]

        status = _control(control, "status", PHONE_UDID, "--json")
        (phone,) = json.loads(status.stdout)["phones"]
        assert phone["plugged"] is True and phone["name"] == "Demo"

        assert simulate.stop() == 0
    assert not socket_path.exists()
    assert not control.exists()


def test_tcp_json_unplugged_locked_untrusted_phone(media_root: Path) -> None:
    """`rollkeeper simulate --tcp --json` announces the real port and the phone's state; the control
    socket plugs the phone, the locked phone refuses pairing, and the control folder goes away on
    stop."""
    arguments = ["--root", str(media_root), "--tcp", "127.0.0.1:0", "--json"]
    arguments += ["--unplugged", "--locked", "--trust", "accept", "--throttle-mbps", "35"]
    with SimulateProcess(arguments) as simulate:
        announced = json.loads(simulate.first_line)
        address = announced["usbmuxd_socket_address"]
        (phone,) = announced["phones"]
        assert address.startswith("127.0.0.1:") and not address.endswith(":0")
        assert announced["libimobiledevice_socket_address"] == address
        assert (phone["plugged"], phone["locked"], phone["trust"]) == (False, True, "accept")
        assert phone["throttle_bytes_per_second"] == 35e6
        control = Path(announced["control"])

        plugged = run(_next_update(address, lambda: _control(control, "plug", PHONE_UDID)))
        assert plugged == [PHONE_UDID]

        async def pair() -> None:
            async with await create_using_usbmux(
                PHONE_UDID, pair_timeout=0, usbmux_address=address
            ):
                pass

        with pytest.raises(PasswordRequiredError):
            run(pair())
        assert simulate.stop() == 0
    # The temporary folder holding the control socket goes away with the simulator.
    assert not control.parent.exists()


def test_profiles_and_lock_states_from_the_command_line(media_root: Path, tmp_path: Path) -> None:
    """`rollkeeper simulate --usbmuxd-profile macos-usbmuxd --phone-profile iphone-ios15
    --locked-for 7200` serves the old phone (its 40-digit UDID) twice, over USB and Network,
    refuses its connections (USB Restricted Mode) until the control socket unlocks it, and
    `restart` brings it back not unlocked since boot."""
    arguments = ["--root", str(media_root), "--tcp", "127.0.0.1:0", "--json"]
    arguments += ["--usbmuxd-profile", "macos-usbmuxd", "--phone-profile", "iphone-ios15"]
    arguments += ["--locked-for", "7200"]
    with SimulateProcess(arguments) as simulate:
        announced = json.loads(simulate.first_line)
        address = announced["usbmuxd_socket_address"]
        (phone,) = announced["phones"]
        udid = phone["udid"]
        assert len(udid) == 40 and phone["usb_restricted"] is True
        devices = run(usbmux.list_devices(usbmux_address=address))
        assert sorted(device.connection_type for device in devices) == ["Network", "USB"]
        assert {device.serial for device in devices} == {udid}
        control = Path(announced["control"])

        async def connect() -> None:
            async with await create_using_usbmux(udid, autopair=False, usbmux_address=address):
                pass

        with pytest.raises(ConnectionFailedError):
            run(connect())
        unlocked = json.loads(_control(control, "unlock", udid, "--json").stdout)
        assert unlocked["ok"]
        restarted = json.loads(_control(control, "restart", udid, "--json").stdout)
        (after,) = restarted["phones"]
        assert (after["locked"], after["unlocked_since_boot"]) == (True, False)
        assert simulate.stop() == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "--root DIR is required"),
        (["--root", "/nonexistent/phone"], "not a folder"),
        (["unplug"], "needs --control PATH"),
        (["--root", ".", "--tcp", "localhost"], "--tcp"),
        (["--root", ".", "--pending-polls", "-1"], "--pending-polls"),
        (["--root", ".", "--locked-for", "-5"], "--locked-for"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(arguments: list[str], message: str) -> None:
    """Each usage error of `rollkeeper simulate` is one line on stderr, with nothing on stdout, and
    exit code 2."""
    result = subprocess.run(
        [ROLLKEEPER, "simulate", *arguments], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_control_of_a_simulator_that_is_not_running_fails_clearly(tmp_path: Path) -> None:
    """A control command for a simulator that is not running fails with one clear message and exit
    code 1, without a traceback."""
    result = _control(tmp_path / "missing.control", "unplug")

    assert result.returncode == 1
    assert "cannot reach the simulator's control socket" in result.stderr
    assert "Traceback" not in result.stderr


def test_refuses_a_socket_path_that_is_a_regular_file(media_root: Path, tmp_path: Path) -> None:
    """`rollkeeper simulate` refuses a socket path taken by a regular file, says so, exits 1 and
    leaves the file as it was."""
    occupied = tmp_path / "usbmuxd"
    occupied.write_text("not a socket")

    result = subprocess.run(
        [ROLLKEEPER, "simulate", "--root", str(media_root), "--socket", str(occupied)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"rollkeeper simulate: {occupied} exists and is not a socket"
    )
    assert result.stdout == ""
    assert occupied.read_text() == "not a socket"
