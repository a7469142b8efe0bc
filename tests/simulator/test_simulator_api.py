"""The simulator's own API: async use on one loop, events, key cache, control commands."""

from __future__ import annotations

import asyncio
import os
import plistlib
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pymobiledevice3 import usbmux

from rollkeeper.simulator import AfcFaults, EventLog, Simulator, SimulatorThread, TrustPolicy
from rollkeeper.simulator.control import ControlError, ControlServer, apply_command, send_command
from rollkeeper.simulator.pairing import KEY_DIR_ENV, cached_rsa_key, certificate_matches_key
from tests.simulator.clients import OTHER_UDID, PHONE_UDID, run


def test_async_simulator_on_the_callers_loop(media_root: Path, socket_folder: Path) -> None:
    """The async Simulator runs on the caller's loop: the phones added are listed, an unplug is
    seen, and the socket is removed on exit."""

    async def scenario() -> tuple[list[str], list[str]]:
        async with Simulator(socket_path=socket_folder / "mux") as simulator:
            await simulator.add_phone(PHONE_UDID, media_root)
            await simulator.add_phone(OTHER_UDID, media_root)
            before = await usbmux.list_devices(usbmux_address=simulator.address)
            mark = simulator.events.mark()
            simulator.unplug(OTHER_UDID)
            await simulator.events.wait_for_async("detached", OTHER_UDID, after=mark, timeout=5)
            after = await usbmux.list_devices(usbmux_address=simulator.address)
        return sorted(d.serial for d in before), [d.serial for d in after]

    before, after = run(scenario())

    assert before == sorted([PHONE_UDID, OTHER_UDID])
    assert after == [PHONE_UDID]
    assert not (socket_folder / "mux").exists()


def test_event_log_waits_without_polling_and_honours_after() -> None:
    """EventLog.wait_for wakes on an event another thread records later, ignores events before the
    mark, and times out when none comes."""
    log = EventLog()
    log.record("attached", PHONE_UDID)
    mark = log.mark()
    recorder = threading.Timer(0.05, log.record, args=("detached", PHONE_UDID))
    recorder.start()
    try:
        event = log.wait_for("detached", PHONE_UDID, after=mark, timeout=10)
    finally:
        recorder.join()

    assert event.sequence == mark + 1
    with pytest.raises(TimeoutError):
        log.wait_for("attached", PHONE_UDID, after=mark, timeout=0.01)
    assert [e.kind for e in log.events(udid=PHONE_UDID)] == ["attached", "detached"]


def test_update_phone_and_counters_run_on_the_simulator_loop(
    simulator: SimulatorThread, media_root: Path
) -> None:
    """update_phone runs its function on the simulator's loop thread, faults set from the test are
    seen there, and reset_counts clears the request counts."""
    simulator.add_phone(PHONE_UDID, media_root)

    loop_thread = simulator.update_phone(PHONE_UDID, lambda _state: threading.current_thread())
    simulator.set_faults(PHONE_UDID, AfcFaults(not_found={"/DCIM/100APPLE/IMG_0001.JPG"}))
    faults = simulator.update_phone(PHONE_UDID, lambda state: set(state.faults.not_found))
    simulator.update_phone(PHONE_UDID, lambda state: state.afc_requests.update(["READ"] * 3))
    counted = simulator.afc_request_counts(PHONE_UDID)
    simulator.reset_counts(PHONE_UDID)

    assert loop_thread is not threading.current_thread()
    assert faults == {"/DCIM/100APPLE/IMG_0001.JPG"}
    assert counted["READ"] == 3
    assert simulator.afc_request_counts(PHONE_UDID) == {}


def test_adding_a_phone_twice_is_an_error(simulator: SimulatorThread, media_root: Path) -> None:
    """Adding a phone under a UDID already in use raises ValueError."""
    simulator.add_phone(PHONE_UDID, media_root)

    with pytest.raises(ValueError, match="already exists"):
        simulator.add_phone(PHONE_UDID, media_root)


def test_rsa_keys_are_cached_per_role() -> None:
    """Each key role gets one cached RSA key, distinct from the other roles' keys."""
    assert cached_rsa_key("device") is cached_rsa_key("device")
    assert cached_rsa_key("device") is not cached_rsa_key("root")


def test_key_folder_shares_keys_between_processes(tmp_path: Path) -> None:
    """With the key folder set, two processes get the same device key, stored 0600 in a 0700
    folder."""
    folder = tmp_path / "keys"
    program = (
        "from rollkeeper.simulator.pairing import cached_rsa_key, key_to_pem;"
        "import sys; sys.stdout.buffer.write(key_to_pem(cached_rsa_key('device')))"
    )
    environment = dict(os.environ, **{KEY_DIR_ENV: str(folder)})

    def key_of_a_new_process() -> bytes:
        return subprocess.run(
            [sys.executable, "-c", program], env=environment, capture_output=True, check=True
        ).stdout

    first, second = key_of_a_new_process(), key_of_a_new_process()

    assert first == second
    stored = folder / "simulator-device-key.pem"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    assert serialization.load_pem_private_key(first, password=None)


def test_generated_pair_record_certifies_the_device_key(
    simulator: SimulatorThread, media_root: Path
) -> None:
    """A generated pair record's device and host certificates certify the device and host keys and
    no other key."""
    simulator.add_phone(PHONE_UDID, media_root, trust=TrustPolicy.PAIRED)
    record_bytes = simulator.pair_record(PHONE_UDID)
    assert record_bytes is not None
    record = plistlib.loads(record_bytes)

    assert certificate_matches_key(record["DeviceCertificate"], cached_rsa_key("device"))
    assert certificate_matches_key(record["HostCertificate"], cached_rsa_key("host"))
    assert not certificate_matches_key(record["HostCertificate"], cached_rsa_key("device"))


def test_control_socket_commands(media_root: Path, socket_folder: Path) -> None:
    """Control commands lock, unplug and plug phones and answer unknown commands or UDIDs with an
    error, through a 0600 socket that is gone once the server stops."""
    control_path = socket_folder / "control"

    async def scenario() -> None:
        async with Simulator(socket_path=socket_folder / "mux") as simulator:
            await simulator.add_phone(PHONE_UDID, media_root)
            await simulator.add_phone(OTHER_UDID, media_root)
            server = ControlServer(simulator, control_path)
            await server.start()
            try:
                assert control_path.stat().st_mode & 0o777 == 0o600
                locked = await asyncio.to_thread(send_command, control_path, "lock", OTHER_UDID)
                unplugged = await asyncio.to_thread(send_command, control_path, "unplug")
                unknown = await asyncio.to_thread(send_command, control_path, "explode")
                missing = await asyncio.to_thread(send_command, control_path, "plug", "nope")
            finally:
                await server.stop()
            states = {phone["udid"]: phone for phone in unplugged["phones"]}
            assert locked["ok"] and unplugged["ok"]
            assert states[OTHER_UDID]["locked"] and not states[PHONE_UDID]["locked"]
            assert not states[PHONE_UDID]["plugged"] and not states[OTHER_UDID]["plugged"]
            assert not unknown["ok"] and "unknown command" in unknown["error"]
            assert not missing["ok"] and "no simulated phone" in missing["error"]
            assert apply_command(simulator, "plug", PHONE_UDID)["ok"]
            assert simulator.phone(PHONE_UDID).plugged

    run(scenario())
    assert not control_path.exists()
    with pytest.raises(ControlError):
        send_command(control_path, "status")


def test_a_live_or_foreign_socket_path_is_never_taken_over(
    simulator: SimulatorThread, media_root: Path, socket_folder: Path
) -> None:
    """asyncio would unlink any socket in the way; at /var/run/usbmuxd that is the real one."""
    simulator.add_phone(PHONE_UDID, media_root)
    regular_file = socket_folder / "not-a-socket"
    regular_file.write_text("keep me")

    threads_before = threading.active_count()

    with pytest.raises(FileExistsError, match="already listens"):
        SimulatorThread(socket_path=simulator.address).start()
    with pytest.raises(FileExistsError, match="not a socket"):
        SimulatorThread(socket_path=regular_file).start()

    assert threading.active_count() == threads_before

    assert [device.serial for device in run(usbmux.list_devices())] == [PHONE_UDID]
    assert regular_file.read_text() == "keep me"


def test_a_stale_socket_file_is_replaced(media_root: Path, socket_folder: Path) -> None:
    """A socket file left by a crashed daemon (bound, not listening) is replaced and the simulator
    serves on it."""
    stale = socket_folder / "stale"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as abandoned:
        abandoned.bind(str(stale))  # bound, never listening: what a crashed daemon leaves

    with SimulatorThread(socket_path=stale) as simulator:
        simulator.add_phone(PHONE_UDID, media_root)
        devices = run(usbmux.list_devices(usbmux_address=simulator.address))

    assert [device.serial for device in devices] == [PHONE_UDID]
