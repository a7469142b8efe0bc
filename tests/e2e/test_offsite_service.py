"""The service copies the archive offsite after each complete backup: a real ``rollkeeper run``,
the simulator, and the real restic against a local repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from rollkeeper.simulator import SimulatorThread
from rollkeeper.store import StateStore
from tests import media
from tests.service_process import ServiceProcess, rollkeeper_command, write_config

UDID = "00008110-00DD0000000000D4"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("restic") is None, reason="restic is not installed"),
]


def test_each_complete_backup_is_copied_offsite_and_status_shows_the_last_copy(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """Plug in: a complete backup, then a restic snapshot of the archive recorded with its id
    and bytes. A new photo and a re-plug: a second, incremental copy (one new file). `status
    --json` shows the last copy, not stale, and `offsite status` lists both."""
    password = tmp_path / "restic-password"
    password.write_text("a long passphrase\n")
    password.chmod(0o600)
    repository = tmp_path / "repository"
    config = write_config(
        tmp_path / "offsite.toml",
        tmp_path,
        offsite={
            "engine": "restic",
            "repository": str(repository),
            "password_file": str(password),
            "min_interval_hours": 0.0,
        },
        notifications={"desktop": False},
    )
    environment = {**os.environ, "HOME": str(tmp_path)}
    initialised = subprocess.run(
        rollkeeper_command("--config", str(config), "offsite", "init"),
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert initialised.returncode == 0, initialised.stderr
    roll = media.make_camera_roll(tmp_path / "phone")

    service = start_service(config=config)
    simulator.add_phone(UDID, roll.root, name="Ana's iPhone")
    service.wait_for("backup_finished", udid=UDID, outcome="complete", timeout=120)
    (first,) = service.wait_for("offsite_copy_finished", timeout=120)
    assert first["files_new"] == len(roll.files)

    mark = simulator.mark()
    simulator.unplug(UDID)
    simulator.wait_for("detached", UDID, after=mark, timeout=30)
    media.make_jpeg(
        roll.root / "DCIM" / "100APPLE" / "IMG_0200.JPG",
        datetime(2024, 5, 1, 12, 0),
        timedelta(hours=2),
        seed="new photo",
    )
    simulator.plug(UDID)
    service.wait_for("backup_finished", count=2, udid=UDID, outcome="complete", timeout=120)
    second = service.wait_for("offsite_copy_finished", count=2, timeout=120)[1]
    assert second["files_new"] == 1
    assert second["snapshot_id"] != first["snapshot_id"]

    status = subprocess.run(
        [sys.executable, "-m", "rollkeeper", "--config", str(config), "status", "--json"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    offsite = json.loads(status.stdout)["offsite"]
    assert offsite["engine"] == "restic"
    assert offsite["last_copy"]["snapshot_id"] == second["snapshot_id"]
    assert offsite["last_copy"]["files_new"] == 1
    assert offsite["stale"]["stale"] is False and offsite["warnings"] == []
    assert service.terminate() == 0
    store = StateStore.open(tmp_path / "state" / "state.sqlite3", read_only=True)
    try:
        runs = store.offsite_repository.runs()
    finally:
        store.close()
    assert [(run.kind, run.outcome, run.trigger) for run in runs] == [
        ("copy", "complete", "backup"),
        ("copy", "complete", "backup"),
    ]
