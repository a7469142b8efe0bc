"""Disk full: the archive on a small tmpfs the test mounts; the run stops cleanly, loses nothing.

See tests/reliability/disk_full.py for what each trial checks. Needs the right to mount (root
in CI); where the machine forbids it the test is skipped with mount's own words.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollkeeper.simulator import SimulatorThread
from tests.reliability.disk_full import FILE_SIZES, disk_full_campaign, mount, unmount

#: Trials in CI; ``make faults DISK_FULL_TRIALS=...`` runs more.
CI_TRIALS = 6


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    """A folder tmpfs filesystems can be mounted on (skip where mounting is forbidden)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")
    probe = mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder))
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.strip() or probe.returncode}")
    unmount(folder)
    try:
        yield folder
    finally:
        unmount(folder)


@pytest.mark.slow
async def test_disk_full_stops_cleanly_and_the_next_run_completes(
    simulator: SimulatorThread, tmp_path: Path, mount_point: Path
) -> None:
    """A disk that fills during a run stops the run cleanly with nothing lost, and the next run,
    with room again, completes."""
    tally = await disk_full_campaign(simulator, tmp_path, mount_point, CI_TRIALS, seed=23)
    assert tally.notes == []
    assert tally.failures == 0
    assert tally.files_checked == CI_TRIALS * len(FILE_SIZES)
