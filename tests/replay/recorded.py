"""Make a recording from the simulator, and replay a recording against rollkeeper's importer.

:func:`record_simulated_phone` builds a phone with the behaviours of real phones (a folder
refused with PERM_DENIED, an original whose read fails midway, an SD-card import folder), backs
it up with the real ``rollkeeper backup-now --record`` command, and returns the recording and
what the command reported. :func:`replay` runs rollkeeper's backup run twice against a recorded
phone (:mod:`rollkeeper.device.replay`) into a fresh archive and state database.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rollkeeper.device.errors import PhoneUnavailableError
from rollkeeper.device.replay import RecordedPhone, ReplayedConnection
from rollkeeper.importer.job import BackupRun, BackupSettings, RunResult
from rollkeeper.simulator import AfcFaults, SimulatorThread
from rollkeeper.simulator.lockdown_values import phone_profile
from rollkeeper.store import StateStore
from tests import media
from tests.service_process import (
    DEFAULT_TIMEOUT,
    rollkeeper_command,
    service_environment,
    write_config,
)

LAYOUT = "{year}/{year}-{month}/{name}"
#: The first photo number of the recorded camera roll: no stand-in number can be mistaken for it.
FIRST_NUMBER = 4711
PHONE_NAME = "Ana Lima's iPhone"
REFUSED_FOLDER = "/DCIM/101APPLE"


@dataclass(frozen=True)
class LiveRecording:
    """A recording made from the simulator, and what ``backup-now --json`` said meanwhile."""

    path: Path
    report: dict[str, Any]
    roll: media.CameraRoll
    broken_video: media.ExpectedFile
    udid: str


def record_simulated_phone(simulator: SimulatorThread, folder: Path) -> LiveRecording:
    """Back up a phone with real phones' refusals through ``backup-now --record``."""
    root = folder / "phone"
    roll = media.make_camera_roll(root, first_number=FIRST_NUMBER, big_video_bytes=6 * 1024 * 1024)
    media.make_camera_roll(root, folder="101APPLE", first_number=9100)
    imported = root / "DCIM" / "100IMPRT"
    taken = datetime(2024, 3, 9, 10, 0, tzinfo=UTC)
    for path in (
        media.make_jpeg(imported / "DSC_5502.JPG", taken.replace(tzinfo=None), seed="dsc"),
        media.make_blob(imported / "DSC_5502.NEF", 30_000, seed="raw"),
    ):
        media.set_file_time(path, taken)
    broken = max(roll.files, key=lambda item: item.size)
    identity = phone_profile("iphone-ios26", name=PHONE_NAME)
    faults = AfcFaults(
        permission_denied={REFUSED_FOLDER},
        io_error_after_bytes={broken.phone_path: 5 * 1024 * 1024 + 3},
    )
    simulator.add_phone(identity.udid, root, identity=identity, faults=faults)
    config = write_config(folder / "config.toml", folder)
    recording = folder / "phone-recording.jsonl"
    completed = subprocess.run(
        rollkeeper_command(
            "--config", str(config), "backup-now", "--json", "--no-progress", "--record",
            str(recording),
        ),
        env=service_environment(simulator.address),
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT * 2,
        check=False,
    )  # fmt: skip
    assert completed.stdout, completed.stderr
    report: dict[str, Any] = json.loads(completed.stdout)
    return LiveRecording(recording, report, roll, broken, identity.udid)


@dataclass
class Replayed:
    """Two backup runs of a recorded phone, and the store and archive they wrote."""

    runs: list[RunResult]
    #: The state the phone's session stopped at, when a run could not go on.
    stopped: str | None
    archive: Path
    state: Path

    def manifest(self, udid: str) -> dict[str, tuple[str, str]]:
        """Phone path -> (status, failure reason) of every manifest entry of the phone."""
        store = StateStore.open(self.state, read_only=True)
        try:
            return {
                entry.phone_path: (entry.status, entry.failure_reason)
                for entry in store.manifest(udid)
            }
        finally:
            store.close()


async def replay(phone: RecordedPhone, folder: Path) -> Replayed:
    """Back the recorded phone up twice into a new archive and state under ``folder``."""
    archive = folder / "archive"
    archive.mkdir(parents=True)
    state = folder / "state.sqlite3"
    store = StateStore.open(state)
    settings = BackupSettings(archive_root=archive, layout=LAYOUT)
    runs: list[RunResult] = []
    stopped = None
    try:
        for _attempt in range(2):
            try:
                runs.append(await BackupRun(store, settings, ReplayedConnection(phone)).run())
            except PhoneUnavailableError as error:
                stopped = error.state
                break
    finally:
        store.close()
    return Replayed(runs, stopped, archive, state)
