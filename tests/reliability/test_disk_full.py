"""Disk full: the archive on a small tmpfs the test mounts; the run stops cleanly, loses nothing.

Needs the right to mount (root in CI); where the machine forbids it the test is skipped with
mount's own words. Each trial mounts a tmpfs of a seeded random size smaller than the phone's
content, runs a backup into it (in-process: real session, real BackupRun), and checks that the
run failed with a message naming the archive and "no space", that no partial or truncated file
carries a final name, that only complete files are recorded as archived, and that after the
filesystem is grown (``mount -o remount,size=...``, i.e. space freed) the next run completes with
every invariant of :func:`check_archive`.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.simulator import SimulatorThread
from daemon.store import ARCHIVED, StateStore
from tests import media
from tests.reliability.harness import (
    archive_files,
    check_archive,
    phone_files,
    run_backup,
    session_settings,
    stray_partials,
)

UDID = "00008110-00AA0000000000D1"
MiB = 1024 * 1024
TRIALS = 6


def _mount(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mount", *arguments], capture_output=True, text=True, check=False, timeout=30
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A mount point for tmpfs filesystems, unmounted at the end whatever happens."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")
    probe = _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point))
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.strip() or probe.returncode}")
    subprocess.run(["umount", str(mount_point)], check=True, timeout=30)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False, timeout=30)


@pytest.mark.slow
async def test_disk_full_stops_cleanly_and_the_next_run_completes(
    simulator: SimulatorThread, tmp_path: Path, small_disk: Path
) -> None:
    rng = random.Random(23)
    media_root = tmp_path / "phone"
    folder = media_root / "DCIM" / "100APPLE"
    # Sizes around a chunk, so that space runs out inside a read, at a file's end and between.
    for number, size in enumerate((MiB + 5, 2 * MiB + 777, 3 * MiB, 600 * 1024, 5 * MiB + 3)):
        media.make_blob(folder / f"IMG_{number + 1:04d}.MOV", size, seed=f"full/{number}")
    hashes = phone_files(media_root)
    content = sum(path.stat().st_size for path in folder.iterdir())
    simulator.add_phone(UDID, media_root)
    session = session_settings(simulator.address, tmp_path / "pairing")
    for trial in range(TRIALS):
        capacity = rng.randint(MiB // 2, content - MiB)
        mounted = _mount(
            "-t", "tmpfs", "-o", f"size={capacity},mode=0700", "tmpfs", str(small_disk)
        )
        assert mounted.returncode == 0, mounted.stderr
        try:
            archive = small_disk / "archive"
            archive.mkdir()
            state_path = tmp_path / f"state-{trial}.sqlite3"
            store = StateStore.open(state_path)
            try:
                result = await run_backup(store, archive, UDID, session)
                assert result.outcome == "failed", (capacity, result)
                assert "no space" in result.error
                assert str(archive) in result.error
                assert stray_partials(archive) == []
                on_disk = archive_files(archive)
                # Whatever carries a final name is a complete phone file ...
                assert set(on_disk.values()) <= set(hashes.values()), (capacity, on_disk)
                # ... and what is recorded as archived is exactly what is on disk.
                archived = {
                    entry.archive_path: entry.content_hash
                    for entry in store.manifest(UDID)
                    if entry.status == ARCHIVED
                }
                assert archived == on_disk
                assert len(archived) < len(hashes)
                runs = store.runs(UDID)
                assert runs[0].outcome == "failed" and "no space" in runs[0].error

                remount = _mount("-o", f"remount,size={content + 8 * MiB}", str(small_disk))
                assert remount.returncode == 0, remount.stderr
                again = await run_backup(store, archive, UDID, session)
                assert again.complete, again
            finally:
                store.close()
            check = check_archive(archive, state_path, hashes.values(), UDID)
            assert check.problems == [], (capacity, check.problems)
            assert check.files == len(hashes)
        finally:
            subprocess.run(["umount", str(small_disk)], check=True, timeout=30)
