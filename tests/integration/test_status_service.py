"""`rollkeeper status` next to a real service backing up a simulated phone over a slow link.

The service is a real ``rollkeeper run`` process; the phone is the protocol-level simulator,
throttled so that the backup is still running when status looks. Waits are on the service's
JSON log events, never on time.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rollkeeper.cli import build_parser
from rollkeeper.commands.status import run_status
from rollkeeper.simulator import SimulatorThread, short_socket_folder
from rollkeeper.simulator.phone import AfcFaults
from tests import media
from tests.service_process import (
    DEFAULT_TIMEOUT,
    ServiceProcess,
    rollkeeper_command,
    service_environment,
    write_config,
)

UDID = "00008110-000A1B2C3D4E5F60"
FILES = 6
#: Small files download in batches of at most 4 MiB: at 1 MB each the six come in two
#: batches, so the backup is still running when the first batch is archived.
FILE_BYTES = 1_000_000
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")
LIBRARY_LOGGERS = ("pymobiledevice3", "apscheduler", "asyncio", "watchdog", "urllib3")


@pytest.fixture
def simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorThread]:
    folder = short_socket_folder()
    try:
        with SimulatorThread(socket_path=folder / "usbmuxd") as running:
            monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", running.address)
            yield running
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _status(config: Path, environment: dict[str, str], *flags: str) -> tuple[int, str]:
    """``rollkeeper status`` in this process (the same code as the command, a second faster)."""
    args = build_parser().parse_args(["--config", str(config), "status", *flags])
    out = io.StringIO()
    code = run_status(args, environ=environment, now=datetime.now(UTC), out=out)
    return code, out.getvalue()


def _status_process(config: Path, environment: dict[str, str], *flags: str) -> tuple[int, str]:
    """``rollkeeper status`` as its own process."""
    result = subprocess.run(
        rollkeeper_command("--config", str(config), "status", *flags),
        env=environment,
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT,
        check=False,
    )
    assert result.stderr == "", result.stderr
    return result.returncode, result.stdout


def _device(config: Path, environment: dict[str, str]) -> dict[str, Any]:
    code, text = _status(config, environment, "--json")
    assert code == 0
    [device] = json.loads(text)["devices"]
    assert isinstance(device, dict)
    return device


@pytest.mark.slow
def test_status_before_during_and_after_a_throttled_backup(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """status says the service is down, then up with no phone, then backing up with progress and an
    ETA, then backed up; the service's own log lines are snake_case events with UTC timestamps
    and no key material."""
    phone = tmp_path / "phone"
    for number in range(1, FILES + 1):
        media.make_blob(phone / "DCIM" / "100APPLE" / f"IMG_{number:04}.MOV", FILE_BYTES)
    config = write_config(tmp_path / "config.toml", tmp_path)
    environment = service_environment(simulator.address)

    code, line = _status_process(config, environment, "--check")
    assert (code, line) == (2, "CRITICAL: rollkeeper service is not running\n")

    service = ServiceProcess(["--config", str(config), "run"], environment)
    try:
        service.wait_for("service_ready")
        assert _status(config, environment, "--check") == (
            0,
            "OK: service running; no phone seen yet\n",
        )
        simulator.add_phone(
            UDID, phone, name="Ana's iPhone", faults=AfcFaults(throttle_bytes_per_second=1e6)
        )
        # After the second file is archived the first one's progress is in the database.
        service.wait_for("file_archived", count=2, udid=UDID, timeout=120)
        # Then a crawl (the rest would take a minute), so the backup is surely still running
        # while status looks, however slow this machine is; lifted once status has looked.
        simulator.set_faults(UDID, AfcFaults(throttle_bytes_per_second=50_000))
        during = _device(config, environment)
        assert during["verdict"] == "backing_up"
        assert during["backed_up"] is False
        assert during["state"]["name"] == "backing_up"
        progress = during["state"]["progress"]
        assert progress["files_total"] == FILES
        assert progress["bytes_total"] == FILES * FILE_BYTES
        assert 1 <= progress["files_done"] < FILES
        assert FILE_BYTES <= progress["bytes_done"] < FILES * FILE_BYTES
        assert progress["eta_seconds"] is not None
        assert during["current_run"]["outcome"] == "running"
        _, text = _status_process(config, environment)
        assert f"of {FILES} files" in text
        assert "Backup:          backing up now" in text
        simulator.set_faults(UDID, AfcFaults())

        finished = service.wait_for("backup_finished", udid=UDID, timeout=120)[0]
        assert finished["outcome"] == "complete"
        after = _device(config, environment)
        assert after["verdict"] == "backed_up"
        assert after["files"]["archived"] == FILES
        assert after["archived"]["bytes"] == FILES * FILE_BYTES
        assert after["last_run"]["files_copied"] == FILES
        assert _status_process(config, environment, "--check") == (
            0,
            "OK: 1 of 1 phone backed up\n",
        )
    finally:
        service.terminate()

    code, line = _status(config, environment, "--check")
    assert (code, line) == (2, "CRITICAL: rollkeeper service is not running\n")
    # Still backed up: the service being down is about the future, not the past.
    assert _device(config, environment)["verdict"] == "backed_up"

    # The service's own log: events, not sentences, and never key material.
    ours = [
        event
        for event in service.events
        if not str(event.get("logger", "")).startswith(LIBRARY_LOGGERS)
    ]
    assert ours
    assert [event["event"] for event in ours if not SNAKE_CASE.match(event["event"])] == []
    assert all("timestamp" in event and event["timestamp"].endswith("Z") for event in ours)
    for event in service.events:
        text = json.dumps(event)
        assert "PRIVATE KEY" not in text
        assert "BEGIN CERTIFICATE" not in text
    archived = service.named("file_archived", udid=UDID)
    assert len(archived) == FILES
    assert all(event.get("run_id") == finished["run_id"] for event in archived)
