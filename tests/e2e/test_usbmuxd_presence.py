"""A missing usbmuxd is one clear error, then the service connects when it appears."""

from __future__ import annotations

import shutil
from pathlib import Path

from rollkeeper.simulator import SimulatorThread, short_socket_folder
from tests import media
from tests.service_process import ServiceProcess, service_environment, write_config

UDID = "00008110-000A1B2C3D4E5F60"


def test_missing_usbmuxd_is_reported_once_then_the_service_connects(tmp_path: Path) -> None:
    """A missing usbmuxd is logged once with a fix, not once per retry; when it appears the service
    connects and backs the phone up."""
    folder = short_socket_folder()
    socket_path = folder / "usbmuxd"
    config = write_config(tmp_path / "config.toml", tmp_path, logging={"level": "debug"})
    service = ServiceProcess(
        ["--config", str(config), "run"], service_environment(str(socket_path))
    )
    try:
        ready = service.wait_for("service_ready")[0]
        assert ready["usbmuxd"] == str(socket_path)
        service.wait_for("usbmuxd_reconnect_scheduled", count=3)
        errors = service.named("usbmuxd_unreachable")
        assert len(errors) == 1, "one line, not one per attempt"
        assert errors[0]["address"] == str(socket_path)
        assert "usbmuxd" in errors[0]["fix"]

        roll = media.make_camera_roll(tmp_path / "phone")
        with SimulatorThread(socket_path=socket_path) as simulator:
            simulator.add_phone(UDID, roll.root)
            service.wait_for("usbmuxd_reachable")
            finished = service.wait_for("backup_finished", udid=UDID)[0]
            assert finished["outcome"] == "complete"
            assert finished["files_copied"] == len(roll.files)
            assert service.terminate() == 0
    finally:
        service.kill()
        shutil.rmtree(folder, ignore_errors=True)
