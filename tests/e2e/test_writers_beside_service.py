"""``adopt`` and ``verify`` write to the state database while a real service runs and backs a
phone up: neither takes the service's lock, so neither stops the backups, and neither loses a
write to the other.

A real ``rollkeeper run`` process, real ``adopt`` and ``verify`` processes, the protocol-level
simulator through the unmodified pymobiledevice3 client, a real state database and files.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from rollkeeper.store import StateStore
from tests import media
from tests.service_process import (
    DEFAULT_TIMEOUT,
    ServiceProcess,
    rollkeeper_command,
    service_environment,
)

UDID = "00008110-000A1B2C3D4E5F60"
#: The phone serves its ~600 kB camera roll at this rate, so the backup lasts seconds: long
#: enough for adopt to start while it is under way.
PHONE_BYTES_PER_SECOND = 200_000.0


def run_command(
    config: Path, simulator: SimulatorThread, *arguments: str
) -> subprocess.CompletedProcess[str]:
    """One ``rollkeeper --config C ARGS`` process, to the end."""
    return subprocess.run(
        rollkeeper_command("--config", str(config), *arguments),
        env=service_environment(simulator.address),
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT,
        check=False,
    )


@pytest.mark.slow
def test_adopt_and_verify_write_while_the_service_backs_up(
    simulator: SimulatorThread,
    config_path: Path,
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    """While the service runs, ``adopt`` (started while the service backs a phone up) records
    a folder and ``verify`` checks the whole archive and notes every match; both exit 0 without
    a word on stderr, the backup completes with every file, and the service stops cleanly."""
    roll = media.make_camera_roll(tmp_path / "phone")
    copies = tmp_path / "old copies"
    copies.mkdir()
    for number in range(1, 6):
        (copies / f"scan-{number:02d}.jpg").write_bytes(os.urandom(20_000))

    service = start_service()
    simulator.add_phone(
        UDID,
        roll.root,
        name="Ana's iPhone",
        faults=AfcFaults(throttle_bytes_per_second=PHONE_BYTES_PER_SECOND),
    )
    service.wait_for("file_archived")
    assert service.named("backup_finished") == []
    adopt = run_command(config_path, simulator, "adopt", str(copies), "--json")
    assert adopt.returncode == 0, adopt.stderr
    assert adopt.stderr == ""
    assert json.loads(adopt.stdout)["adopted"] == 5

    service.wait_for("backup_finished", udid=UDID, outcome="complete")
    verify = run_command(config_path, simulator, "verify", "--json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stderr == ""
    report = json.loads(verify.stdout)
    assert report["ok"] is True
    assert report["matched"] == len(roll.files) + 5

    store = StateStore.open(tmp_path / "state" / "state.sqlite3", read_only=True)
    try:
        entries = store.archive_entries()
        manifest = store.manifest(UDID)
    finally:
        store.close()
    assert len(entries) == len(roll.files) + 5
    assert all(entry.verified_at is not None for entry in entries)
    assert {entry.status for entry in manifest} == {"archived"}
    assert service.terminate() == 0
