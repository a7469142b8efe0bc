"""Editing the config of a running service: valid edits apply, broken ones keep the old config.

A real ``rollkeeper run`` process with its real watchdog observer; the effect of an edit is
observed in behaviour (where the next files land), not only in a log line.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from rollkeeper.simulator import SimulatorThread
from tests import media
from tests.service_process import ServiceProcess, rollkeeper_command, service_environment

UDID = "00008110-000A1B2C3D4E5F60"


def replace_line(config: Path, old: str, new: str, *, rename_over: bool) -> None:
    """Edit one line of the config, in place or the way editors save (temp file + rename)."""
    text = config.read_text()
    assert old in text, text
    text = text.replace(old, new)
    if rename_over:
        temporary = config.with_name(".config.toml.swp")
        temporary.write_text(text)
        os.replace(temporary, config)
    else:
        with config.open("r+") as handle:
            handle.truncate(0)
            handle.write(text)


def archived_paths(archive: Path) -> set[str]:
    return {
        str(path.relative_to(archive))
        for path in archive.rglob("*")
        if path.is_file() and ".rollkeeper" not in path.relative_to(archive).parts
    }


def replug_with_new_files(
    simulator: SimulatorThread, service: ServiceProcess, root: Path, first: int, runs: int
) -> media.CameraRoll:
    simulator.unplug(UDID)
    service.wait_for("phone_detached", udid=UDID, count=runs)
    roll = media.make_camera_roll(root, first_number=first)
    simulator.plug(UDID)
    finished = service.wait_for("backup_finished", udid=UDID, count=runs + 1)[runs]
    assert finished["outcome"] == "complete"
    assert finished["files_copied"] == len(roll.files)
    return roll


def test_edits_apply_live_and_broken_edits_keep_the_running_config(
    simulator: SimulatorThread,
    start_service: Callable[..., ServiceProcess],
    config_path: Path,
    tmp_path: Path,
) -> None:
    """A valid config edit, saved in place or by rename-over, changes where the next files land; a
    broken one is reported with FILE:LINE and the last valid config stays in force."""
    archive = tmp_path / "archive"
    phone = tmp_path / "phone"
    first = media.make_camera_roll(phone)
    service = start_service()
    simulator.add_phone(UDID, first.root)
    service.wait_for("backup_finished", udid=UDID)
    # Every file of the first roll is there, each under the default layout's two folders.
    first_paths = archived_paths(archive)
    assert {Path(path).name for path in first_paths} == {item.name for item in first.files}
    assert all(path.count("/") == 2 for path in first_paths)

    # A valid edit in place: the next files use the new layout.
    config_path.write_text(
        config_path.read_text().replace(
            "[archive]\n", '[archive]\nlayout = "by-day/{year}-{month}-{day}/{name}"\n'
        )
    )
    service.wait_for("config_reloaded")
    second = replug_with_new_files(simulator, service, phone, first=100, runs=1)
    new_paths = {path for path in archived_paths(archive) if path.startswith("by-day/")}
    assert {Path(path).name for path in new_paths} == {item.name for item in second.files}

    # A broken edit saved by rename-over: reported with FILE:LINE, the old config stays.
    replace_line(
        config_path,
        'layout = "by-day/{year}-{month}-{day}/{name}"',
        'layout = "by-day/{yeer}/{name}"',
        rename_over=True,
    )
    invalid = service.wait_for("config_invalid")[0]
    line_number = config_path.read_text().splitlines().index('layout = "by-day/{yeer}/{name}"') + 1
    assert any(
        problem.startswith(f"{config_path}:{line_number}: archive.layout:")
        for problem in invalid["problems"]
    ), invalid
    check = subprocess.run(
        rollkeeper_command("config", "check", str(config_path)),
        env=service_environment(simulator.address),
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 1
    assert f"{config_path}:{line_number}: archive.layout" in check.stdout + check.stderr
    third = replug_with_new_files(simulator, service, phone, first=200, runs=2)
    by_day = {Path(path).name for path in archived_paths(archive) if path.startswith("by-day/")}
    assert {item.name for item in third.files} <= by_day, "the last valid layout is still used"

    # A valid edit saved by rename-over is seen too.
    replace_line(
        config_path,
        'layout = "by-day/{yeer}/{name}"',
        'layout = "renamed/{year}/{name}"',
        rename_over=True,
    )
    service.wait_for("config_reloaded", count=2)
    fourth = replug_with_new_files(simulator, service, phone, first=300, runs=3)
    renamed = {Path(path).name for path in archived_paths(archive) if path.startswith("renamed/")}
    assert renamed == {item.name for item in fourth.files}, [
        (event["event"], event.get("layout"), event.get("problems"))
        for event in service.events
        if event["event"] in ("config_reloaded", "config_invalid", "settings_applied")
    ]
    assert service.terminate() == 0
