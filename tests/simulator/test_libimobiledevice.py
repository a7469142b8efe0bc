"""A second, independent client stack: libimobiledevice 1.3.0's tools (Debian's
``libimobiledevice-utils``). Where these and pymobiledevice3 both work, the simulator speaks the
protocol, not one client's reading of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollkeeper.simulator import SimulatorThread, TrustPolicy
from tests.simulator.clients import OTHER_UDID, PHONE_UDID, libimobiledevice_tool, run_tool


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_idevice_id_lists_every_plugged_phone(
    transport: str,
    simulator: SimulatorThread,
    tcp_simulator: SimulatorThread,
    media_root: Path,
    tmp_path: Path,
) -> None:
    """idevice_id lists exactly the plugged phones, over the UNIX socket and over TCP alike."""
    chosen = simulator if transport == "unix" else tcp_simulator
    chosen.add_phone(PHONE_UDID, media_root)
    chosen.add_phone(OTHER_UDID, media_root)
    chosen.add_phone("00008110-000000000000AAAA", media_root, plugged=False)

    result = run_tool(
        [libimobiledevice_tool("idevice_id"), "-l"], chosen.libimobiledevice_address, tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == sorted([PHONE_UDID, OTHER_UDID])


def test_ideviceinfo_simple_reads_public_values_without_a_session(
    simulator: SimulatorThread, media_root: Path, tmp_path: Path
) -> None:
    """ideviceinfo -s reads the public values (name, UDID, model) without starting a session, and
    gets none of the private ones."""
    simulator.add_phone(PHONE_UDID, media_root, name="Alice's iPhone")
    mark = simulator.mark()

    result = run_tool(
        [libimobiledevice_tool("ideviceinfo"), "-s", "-u", PHONE_UDID],
        simulator.libimobiledevice_address,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    values = _key_values(result.stdout)
    assert values["DeviceName"] == "Alice's iPhone"
    assert values["UniqueDeviceID"] == PHONE_UDID
    assert values["ProductType"] == "iPhone15,2"
    assert "SerialNumber" not in values
    assert not simulator.events.events("session_started", after=mark)


def test_ideviceinfo_opens_a_tls_session_with_the_root_certificate(
    simulator: SimulatorThread, media_root: Path, tmp_path: Path
) -> None:
    """ideviceinfo's TLS session, presenting the pair record's root certificate, is accepted, serves
    the private values and is stopped cleanly."""
    simulator.add_phone(PHONE_UDID, media_root)
    mark = simulator.mark()

    result = run_tool(
        [libimobiledevice_tool("ideviceinfo"), "-u", PHONE_UDID],
        simulator.libimobiledevice_address,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    values = _key_values(result.stdout)
    assert values["SerialNumber"] == "F2LXXXXXXXXX"
    assert values["ProductVersion"] == "17.5.1"
    started = simulator.wait_for("session_started", PHONE_UDID, after=mark)
    # libimobiledevice 1.3.0 presents the pair record's root certificate, not the host one.
    assert started.details["client_certificate"] == "root"
    # ...then StopSession and a TLS close_notify before it hangs up.
    assert simulator.wait_for("session_stopped", PHONE_UDID, after=mark)


def test_idevicepair_pairs_validates_and_unpairs(
    simulator: SimulatorThread, media_root: Path, tmp_path: Path
) -> None:
    """idevicepair pair fails while the Trust dialog is open and pairs once it is accepted; validate
    accepts the record and unpair removes it from the phone."""
    simulator.add_phone(
        PHONE_UDID,
        media_root,
        trust=TrustPolicy.ACCEPT,
        pending_polls=1,
        reenumerate_on_trust=False,
    )
    idevicepair = libimobiledevice_tool("idevicepair")
    address = simulator.libimobiledevice_address

    pending = run_tool([idevicepair, "-u", PHONE_UDID, "pair"], address, tmp_path)
    accepted = run_tool([idevicepair, "-u", PHONE_UDID, "pair"], address, tmp_path)
    record_after_pair = simulator.pair_record(PHONE_UDID)
    validated = run_tool([idevicepair, "-u", PHONE_UDID, "validate"], address, tmp_path)
    unpaired = run_tool([idevicepair, "-u", PHONE_UDID, "unpair"], address, tmp_path)

    assert pending.returncode != 0 and "trust dialog" in pending.stdout + pending.stderr
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert record_after_pair is not None
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert unpaired.returncode == 0, unpaired.stdout + unpaired.stderr
    assert simulator.pair_record(PHONE_UDID) is None
    assert simulator.phone_snapshot(PHONE_UDID)["trusted_hosts"] == 0


def test_idevicepair_reports_denied_and_locked(
    simulator: SimulatorThread, media_root: Path, tmp_path: Path
) -> None:
    """idevicepair reports a Don't Trust answer as denied and a locked phone as needing its
    passcode."""
    simulator.add_phone(PHONE_UDID, media_root, trust=TrustPolicy.DENY)
    idevicepair = libimobiledevice_tool("idevicepair")
    address = simulator.libimobiledevice_address

    denied = run_tool([idevicepair, "-u", PHONE_UDID, "pair"], address, tmp_path)
    simulator.set_trust(PHONE_UDID, TrustPolicy.ACCEPT)
    simulator.lock(PHONE_UDID)
    locked = run_tool([idevicepair, "-u", PHONE_UDID, "pair"], address, tmp_path)

    assert denied.returncode != 0 and "denied" in denied.stdout + denied.stderr
    assert locked.returncode != 0 and "passcode" in locked.stdout + locked.stderr


def _key_values(output: str) -> dict[str, str]:
    """Parse ``ideviceinfo``'s ``Key: value`` lines (top-level keys only)."""
    values: dict[str, str] = {}
    for line in output.splitlines():
        if line and not line.startswith(" ") and ": " in line:
            key, value = line.split(": ", 1)
            values[key] = value
    return values
