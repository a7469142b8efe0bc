"""usbmuxd goes away in the middle of a backup and comes back: reconnect, resume, no crash.

The simulator's usbmuxd is stopped (every connection cut, the socket removed) while a real
``rollkeeper run`` is copying a video, and a new one is started on the same socket path, as
``systemctl restart usbmuxd`` would. The service must log the lost connection, keep running,
reconnect, see the phone again and finish the backup from the partial file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from rollkeeper.importer.hashing import hash_file
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from tests import media
from tests.reliability.harness import check_archive, wait_until
from tests.service_process import ServiceProcess

UDID = "00008110-00AA0000000000B1"
VIDEO_BYTES = 6 * 1024 * 1024


def _restart_usbmuxd(simulator: SimulatorThread) -> None:
    for step in (simulator.simulator.stop, simulator.simulator.start):
        asyncio.run_coroutine_threadsafe(step(), simulator.loop).result(timeout=30)


@pytest.mark.slow
def test_usbmuxd_restart_mid_backup_reconnects_and_resumes(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """A usbmuxd restart in the middle of a video is logged, and the service reconnects, sees the
    phone again and resumes the video from its partial."""
    roll = media.make_camera_roll(tmp_path / "phone")
    video = media.make_blob(
        tmp_path / "phone" / "DCIM" / "100APPLE" / "IMG_0100.MOV", VIDEO_BYTES, seed="usbmuxd"
    )
    expected = {hash_file(item.host_path) for item in roll.files} | {hash_file(video)}
    service = start_service()
    simulator.add_phone(UDID, roll.root, faults=AfcFaults(throttle_bytes_per_second=4e6))
    wait_until(
        lambda: simulator.afc_bytes_served(UDID)["/DCIM/100APPLE/IMG_0100.MOV"] > 4 * 1024 * 1024,
        30,
        "the video half copied",
    )
    _restart_usbmuxd(simulator)
    service.wait_for("usbmuxd_connection_lost")
    service.wait_for("phone_detached", udid=UDID)
    service.wait_for("phone_attached", count=2, udid=UDID)
    finished = service.wait_for("backup_finished", udid=UDID, outcome="complete")[0]
    assert service.named("partial_resumed", udid=UDID), "the video resumed from its partial"
    assert finished["files_copied"] >= 1
    assert service.process.poll() is None
    assert service.terminate() == 0
    check = check_archive(tmp_path / "archive", tmp_path / "state" / "state.sqlite3", expected)
    assert check.problems == []
    assert check.files == len(expected)
