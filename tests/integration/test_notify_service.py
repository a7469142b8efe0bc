"""Hooks fired by a real service: once per failed run, and a hanging hook never holds a backup.

A real ``rollkeeper run`` process backs up the protocol-level simulator; the hooks are real
shell commands; waits are on the service's JSON log events.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollkeeper.service.scheduler import INCOMPLETE_RETRIES
from rollkeeper.simulator import SimulatorThread, short_socket_folder
from rollkeeper.simulator.phone import AfcFaults
from tests import media
from tests.service_process import ServiceProcess, service_environment, write_config

UDID = "00008110-000A1B2C3D4E5F60"


@pytest.fixture
def simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorThread]:
    folder = short_socket_folder()
    try:
        with SimulatorThread(socket_path=folder / "usbmuxd") as running:
            monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", running.address)
            yield running
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _phone(root: Path, count: int) -> Path:
    for number in range(1, count + 1):
        media.make_blob(root / "DCIM" / "100APPLE" / f"IMG_{number:04}.MOV", 20_000)
    return root


def _calls(directory: Path) -> list[dict[str, str]]:
    calls = []
    for path in sorted(directory.glob("call.*")):
        calls.append(dict(line.split("=", 1) for line in path.read_text().splitlines()))
    return calls


@pytest.mark.slow
def test_a_hanging_success_hook_is_killed_and_the_backup_is_not_held(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A success hook that hangs is killed at its timeout, after the run was already recorded, and
    the service goes on to back up the next plug."""
    started = tmp_path / "hook-started"
    config = write_config(
        tmp_path / "config.toml",
        tmp_path,
        notifications={
            "desktop": False,
            "on_success": f'echo "$ROLLKEEPER_RUN_ID" > "{started}"; exec sleep 300',
            "hook_timeout_seconds": 1.0,
        },
    )
    service = ServiceProcess(
        ["--config", str(config), "run"], service_environment(simulator.address)
    )
    try:
        service.wait_for("service_ready")
        simulator.add_phone(UDID, _phone(tmp_path / "phone", 3), name="Ana's iPhone")
        finished = service.wait_for("backup_finished", udid=UDID)[0]
        assert finished["outcome"] == "complete"
        timed_out = service.wait_for("hook_timed_out", kind="success")[0]
        hook = service.wait_for("hook_finished", kind="success")[0]
        assert hook["timed_out"] is True
        assert hook["udid"] == UDID
        assert hook["run_id"] == finished["run_id"]
        assert started.read_text().strip() == str(finished["run_id"])
        # The run was recorded before the hook even timed out: the hook held nothing up.
        order = [event["event"] for event in service.events]
        assert order.index("backup_finished") < order.index("hook_timed_out")
        assert timed_out["timeout_seconds"] == 1.0
        # The service is still well: a replug backs up again.
        simulator.unplug(UDID)
        service.wait_for("phone_detached", udid=UDID)
        simulator.plug(UDID)
        assert service.wait_for("backup_finished", udid=UDID, count=2)[1]["outcome"] == "complete"
    finally:
        assert service.terminate() == 0


@pytest.mark.slow
def test_the_failure_hook_fires_once_for_a_failing_phone_despite_retries(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A phone whose runs keep failing fires the failure hook once, for its first run, with the
    run's figures; the retries are rate limited."""
    calls = tmp_path / "calls"
    calls.mkdir()
    config = write_config(
        tmp_path / "config.toml",
        tmp_path,
        notifications={
            "desktop": False,
            "on_failure": f'env | grep "^ROLLKEEPER_" | sort > "{calls}/call.$$"',
        },
    )
    service = ServiceProcess(
        ["--config", str(config), "run"], service_environment(simulator.address)
    )
    try:
        service.wait_for("service_ready")
        faults = AfcFaults(read_error_after_bytes={"/DCIM/100APPLE/IMG_0002.MOV": 0})
        simulator.add_phone(UDID, _phone(tmp_path / "phone", 3), name="Ana's iPhone", faults=faults)
        runs = service.wait_for(
            "backup_finished", udid=UDID, count=1 + INCOMPLETE_RETRIES, timeout=120
        )
        assert [run["outcome"] for run in runs] == ["incomplete"] * (1 + INCOMPLETE_RETRIES)
        service.wait_for("hook_finished", kind="failure")
        # Every later failed retry was rate limited, not announced again.
        service.wait_for("notification_suppressed", kind="failure", count=INCOMPLETE_RETRIES)
    finally:
        assert service.terminate() == 0
    [call] = _calls(calls)
    assert call["ROLLKEEPER_EVENT"] == "failure"
    assert call["ROLLKEEPER_UDID"] == UDID
    assert call["ROLLKEEPER_DEVICE_NAME"] == "Ana's iPhone"
    assert call["ROLLKEEPER_RUN_ID"] == str(runs[0]["run_id"])
    assert call["ROLLKEEPER_OUTCOME"] == "incomplete"
    assert call["ROLLKEEPER_FILES_FAILED"] == "1"
    assert call["ROLLKEEPER_FILES_COPIED"] == "2"
    assert call["ROLLKEEPER_ERROR"] == "1 file could not be copied"
