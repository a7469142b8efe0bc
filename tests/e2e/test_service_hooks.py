"""The running service fires the success and failure hooks with the documented environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from tests import media
from tests.service_process import ServiceProcess, write_config

UDID = "00008110-000A1B2C3D4E5F60"


def hook(record: Path) -> str:
    """A hook command that appends its rollkeeper environment to ``record``."""
    return f"env | grep ^ROLLKEEPER_ | sort >> {record}; echo --- >> {record}"


def test_success_and_failure_hooks_fire_once_per_run(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """An incomplete run fires the failure hook and the complete retry the success hook, once each,
    with the documented ROLLKEEPER_ variables."""
    record = tmp_path / "hooks.txt"
    config = write_config(
        tmp_path / "hooks.toml",
        tmp_path,
        notifications={
            "desktop": False,
            "on_success": hook(record),
            "on_failure": hook(record),
            "min_interval_minutes": 0.0,
        },
    )
    roll = media.make_camera_roll(tmp_path / "phone")
    liar = roll.files[0]
    service = start_service(config=config)
    # The phone lies about one file's size: that file fails, so the run is incomplete.
    simulator.add_phone(
        UDID,
        roll.root,
        name="Ana's iPhone",
        faults=AfcFaults(stat_size={liar.phone_path: liar.size + 10}),
    )
    first = service.wait_for("backup_finished", udid=UDID)[0]
    assert first["outcome"] == "incomplete"
    service.wait_for("hook_finished", count=1)
    failure = record.read_text()
    assert "ROLLKEEPER_EVENT=failure" in failure
    assert f"ROLLKEEPER_UDID={UDID}" in failure
    assert "ROLLKEEPER_DEVICE_NAME=Ana's iPhone" in failure
    assert f"ROLLKEEPER_RUN_ID={first['run_id']}" in failure
    assert "ROLLKEEPER_FILES_FAILED=1" in failure

    # The phone stops lying; the retry completes and the success hook fires.
    simulator.set_faults(UDID, AfcFaults())
    second = service.wait_for("backup_finished", udid=UDID, count=2)[1]
    assert second["outcome"] == "complete"
    service.wait_for("hook_finished", count=2)
    runs = [block for block in record.read_text().split("---\n") if block.strip()]
    assert len(runs) == 2
    assert "ROLLKEEPER_EVENT=success" in runs[1]
    assert f"ROLLKEEPER_RUN_ID={second['run_id']}" in runs[1]
    assert "ROLLKEEPER_FILES_COPIED=1" in runs[1]
    assert service.terminate() == 0
