"""`rollkeeper device-backup`, `device-backups` and `status` as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import PhoneState
from tests import media
from tests.service_process import rollkeeper_command, service_environment, write_config

UDID = "00008110-000A1B2C3D4E5F60"


def run(
    simulator: SimulatorThread, config: Path, *arguments: str
) -> subprocess.CompletedProcess[str]:
    """``rollkeeper --config C ARGS`` against the simulator."""
    return subprocess.run(
        rollkeeper_command("--config", str(config), *arguments),
        env=service_environment(simulator.address),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    """The command's JSON document (stdout)."""
    return json.loads(done.stdout)


@pytest.mark.slow
def test_device_backup_command_lists_and_reports_snapshots(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """`device-backup --json` makes a snapshot even with device backups off (a command is
    attended); `device-backups --json` lists it complete and unencrypted; `status --json` shows
    the last device backup and its restore notes; with iCloud Photos on, status says the camera
    roll is left out."""
    config = write_config(tmp_path / "config.toml", tmp_path, notifications={"desktop": False})
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)
    made = run(simulator, config, "device-backup", "--json")
    assert made.returncode == 0, made.stdout + made.stderr[-2000:]
    outcome = as_json(made)
    assert outcome["outcome"] == "completed" and outcome["encrypted"] is False
    assert outcome["camera_roll_files"] == len(roll.files)
    assert Path(outcome["path"]).parent.parent == tmp_path / "rollkeeper-device-backups"

    listed = as_json(run(simulator, config, "device-backups", "--json"))
    snapshots = listed["phones"][0]["snapshots"]
    assert [item["snapshot"] for item in snapshots] == [outcome["snapshot"]]
    assert snapshots[0]["complete"] is True and snapshots[0]["encrypted"] is False

    status = as_json(run(simulator, config, "status", "--json"))
    device_backup = status["devices"][0]["device_backup"]
    assert device_backup["last_completed"]["snapshot"] == outcome["snapshot"]
    assert any("not encrypted" in note for note in device_backup["notes"])

    simulator.update_phone(UDID, lambda phone: setattr(phone.backup, "icloud_photos", True))
    assert run(simulator, config, "device-backup").returncode == 0
    status = as_json(run(simulator, config, "status", "--json"))
    notes = status["devices"][0]["device_backup"]["notes"]
    assert any("iCloud Photos" in note for note in notes)
    text = run(simulator, config, "status").stdout
    assert "Device backup" in text and "iCloud Photos" in text


def test_device_backup_command_says_when_the_passcode_was_not_entered(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """An unanswered passcode prompt: exit 1, outcome passcode_timeout, the prompt said once."""
    config = write_config(tmp_path / "config.toml", tmp_path, notifications={"desktop": False})
    roll = media.make_camera_roll(tmp_path / "phone")
    identity_ios = "17.5.1"
    simulator.add_phone(UDID, roll.root)

    def prompt(phone: PhoneState) -> None:
        assert phone.identity.product_version == identity_ios
        phone.backup.passcode_prompt = True
        phone.backup.passcode_wait_seconds = 0.3

    simulator.update_phone(UDID, prompt)
    done = run(simulator, config, "device-backup", "--json")
    assert done.returncode == 1
    assert as_json(done)["outcome"] == "passcode_timeout"
    assert done.stderr.count("Enter your passcode on the iPhone") == 1
