"""Linux: a phone on USB that usbmuxd does not show is told to the user, not kept silent.

The service runs under umockdev (``tests/udev_phone.py``: a fake sysfs and udev for that process,
and an iPhone plugged on command) against the simulator imitating Linux usbmuxd, which shows an
unpaired phone only once its Trust dialog was accepted. The test process plays the phone: its
Trust prompt takes 40 s to appear, as on iOS 26 (usbmuxd #281), then the user taps Trust.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollkeeper.simulator import SimulatorThread, TrustPolicy
from tests import media
from tests.integration.test_udev import umockdev_unavailable_reason
from tests.service_process import ServiceProcess, rollkeeper_command, service_environment
from tests.service_process import write_config as write_test_config

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="udev exists on Linux only")

UDID = "00008110-000A1B2C3D4E5F60"
USB_SERIAL = UDID.replace("-", "")
PROMPT_DELAY_SECONDS = 40.0


@pytest.fixture(scope="module")
def umockdev() -> None:
    """Skip when umockdev's GObject bindings cannot be loaded here."""
    reason = umockdev_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def usbmuxd_profile() -> str:
    """This file's simulator imitates Linux usbmuxd."""
    return "linux-usbmuxd"


class UdevService:
    """``rollkeeper run`` under umockdev; signals plug its fake iPhone in and out."""

    def __init__(self, config: Path, address: str) -> None:
        command = [
            "umockdev-wrapper",
            sys.executable,
            "-m",
            "tests.udev_phone",
            USB_SERIAL,
            "--",
            "--config",
            str(config),
            "run",
        ]
        self.process = ServiceProcess([], service_environment(address), command=command)

    def plug(self) -> None:
        """An Apple keyboard and the iPhone appear on the fake USB bus."""
        self.process.process.send_signal(signal.SIGUSR1)

    def unplug(self) -> None:
        """The iPhone leaves the fake USB bus."""
        self.process.process.send_signal(signal.SIGUSR2)


@pytest.fixture
def udev_service(
    umockdev: None, simulator: SimulatorThread, tmp_path: Path
) -> Iterator[tuple[UdevService, Path]]:
    """The service under umockdev, with a one-second grace for unseen phones."""
    config = write_test_config(
        tmp_path / "config.toml",
        tmp_path,
        device={"unseen_phone_seconds": 1.0},
        logging={"level": "debug"},
    )
    service = UdevService(config, simulator.address)
    yield service, config
    service.process.kill()


def status_text(config: Path) -> str:
    """``rollkeeper status`` as the user reads it."""
    return subprocess.run(
        rollkeeper_command("--config", str(config), "status"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout


@pytest.mark.slow
def test_a_phone_waiting_for_trust_is_told_from_udev_until_usbmuxd_shows_it(
    simulator: SimulatorThread, udev_service: tuple[UdevService, Path], tmp_path: Path
) -> None:
    """While Linux usbmuxd hides an unpaired phone whose Trust prompt takes 40 s to appear, the
    phone udev sees (by its usbmux interface; an Apple keyboard plugged meanwhile is ignored)
    is shown as "an iPhone is plugged in: unlock it and tap Trust"; once Trust is tapped and
    usbmuxd shows the phone, it is backed up and status no longer says so."""
    service, config = udev_service
    service.process.wait_for("service_ready")
    roll = media.make_camera_roll(tmp_path / "phone")
    mark = simulator.mark()
    simulator.add_phone(
        UDID,
        roll.root,
        trust=TrustPolicy.ACCEPT,
        trust_prompt_delay_seconds=PROMPT_DELAY_SECONDS,
    )
    simulator.wait_for("preflight_waiting_for_trust", UDID, after=mark)
    service.plug()

    told = service.process.wait_for("unseen_phone", udid=UDID)[0]
    assert told["level"] == "warning"
    unavailable = service.process.wait_for("phone_unavailable", udid=UDID, detail="unseen")[0]
    assert unavailable["state"] == "waiting_for_trust"
    assert "an iPhone is plugged in: unlock it and tap Trust" in status_text(config)
    # The keyboard shares Apple's vendor id but has no usbmux interface: nothing about it.
    assert len(service.process.named("unseen_phone")) == 1
    assert not service.process.named("phone_attached", udid=UDID)

    finished = service.process.wait_for(
        "backup_finished", udid=UDID, timeout=PROMPT_DELAY_SECONDS + 60
    )[0]
    assert finished["outcome"] == "complete"
    paired = simulator.wait_for("preflight_paired", UDID, after=mark)
    assert paired.monotonic - simulator.wait_for("attached", UDID, after=mark).monotonic >= 39
    assert service.process.named("unseen_phone_shown", udid=UDID)
    text = status_text(config)
    assert "tap Trust" not in text
    assert service.process.terminate() == 0


def test_a_phone_usbmuxd_shows_at_once_is_never_called_unseen(
    simulator: SimulatorThread, udev_service: tuple[UdevService, Path], tmp_path: Path
) -> None:
    """A paired phone, shown by Linux usbmuxd as soon as its preflight ran, is backed up and never
    reported as unseen; unplugged, nothing is said either."""
    service, _config = udev_service
    service.process.wait_for("service_ready")
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root)
    service.plug()

    assert service.process.wait_for("backup_finished", udid=UDID)[0]["outcome"] == "complete"
    checked = service.process.wait_for("unseen_phone_checked", udid=UDID)[0]
    assert checked["shown"] is True
    simulator.unplug(UDID)
    service.unplug()
    service.process.wait_for("usbmux_interface_event", action="remove", timeout=30)
    assert not service.process.named("unseen_phone")
    assert service.process.terminate() == 0
