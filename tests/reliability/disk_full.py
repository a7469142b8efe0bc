"""Disk-full campaign: back up into a tmpfs smaller than the phone's content, then free space.

Each trial mounts a tmpfs of a seeded random size (smaller than the phone's content) on
``mount_point``, runs a backup into it (in-process: a real session, a real BackupRun) and
checks: the run failed with a message naming the archive and "no space"; no partial or
truncated file carries a final name; exactly the complete files on disk are recorded as
archived; then the filesystem is grown (``mount -o remount,size=...``: space freed) and the next
run completes with every invariant of :func:`check_archive`. Needs the right to mount.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from rollkeeper.importer.job import RunResult
from rollkeeper.simulator import SimulatorThread
from rollkeeper.store import ARCHIVED, StateStore
from tests import media
from tests.reliability.harness import (
    Tally,
    archive_files,
    check_archive,
    phone_files,
    run_backup,
    session_settings,
    stray_partials,
)

UDID = "00008110-00AA0000000000D1"
MiB = 1024 * 1024
#: Sizes around a chunk, so that space runs out inside a read, at a file's end and between.
FILE_SIZES = (MiB + 5, 2 * MiB + 777, 3 * MiB, 600 * 1024, 5 * MiB + 3)


def mount(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``mount ARGS`` (its output kept for messages)."""
    return subprocess.run(
        ["mount", *arguments], capture_output=True, text=True, check=False, timeout=30
    )


def unmount(mount_point: Path) -> None:
    """Unmount; a mount point that is not mounted is not an error."""
    subprocess.run(["umount", str(mount_point)], capture_output=True, check=False, timeout=30)


def _full_disk_problems(
    result: RunResult, store: StateStore, archive: Path, hashes: dict[str, str], capacity: int
) -> list[str]:
    """What is wrong after the run that filled the disk: it must have failed saying "no space"
    and where, left no partial outside the work folder and no incomplete file under a final
    name, and recorded as archived exactly the files on disk."""
    problems: list[str] = []
    if result.outcome != "failed":
        problems.append(f"outcome {result.outcome} on a {capacity}-byte disk")
    if "no space" not in result.error or str(archive) not in result.error:
        problems.append(f"message without 'no space' and the path: {result.error!r}")
    if stray_partials(archive):
        problems.append(f"partials outside the work folder: {stray_partials(archive)}")
    on_disk = archive_files(archive)
    if not set(on_disk.values()) <= set(hashes.values()):
        problems.append(f"an incomplete file under a final name: {sorted(on_disk)}")
    archived = {
        entry.archive_path: entry.content_hash
        for entry in store.manifest(UDID)
        if entry.status == ARCHIVED
    }
    if archived != on_disk:
        problems.append("the files recorded as archived are not the files on disk")
    runs = store.runs(UDID)
    if runs[0].outcome != "failed" or "no space" not in runs[0].error:
        problems.append(f"the run's row says {runs[0].outcome}: {runs[0].error!r}")
    return problems


async def disk_full_campaign(
    simulator: SimulatorThread, work: Path, mount_point: Path, trials: int, seed: int
) -> Tally:
    """Run ``trials`` disk-full trials; failures are listed in the tally's notes."""
    rng = random.Random(seed)
    media_root = work / "phone"
    folder = media_root / "DCIM" / "100APPLE"
    for number, size in enumerate(FILE_SIZES):
        media.make_blob(folder / f"IMG_{number + 1:04d}.MOV", size, seed=f"full/{number}")
    hashes = phone_files(media_root)
    content = sum(FILE_SIZES)
    simulator.add_phone(UDID, media_root)
    session = session_settings(simulator.address, work / "pairing")
    tally = Tally()
    for trial in range(trials):
        tally.trials += 1
        capacity = rng.randint(MiB // 2, content - MiB)
        mounted = mount(
            "-t", "tmpfs", "-o", f"size={capacity},mode=0700", "tmpfs", str(mount_point)
        )
        if mounted.returncode != 0:
            raise RuntimeError(f"cannot mount a tmpfs on {mount_point}: {mounted.stderr.strip()}")
        problems: list[str] = []
        try:
            archive = mount_point / "archive"
            archive.mkdir()
            state_path = work / f"state-{trial}.sqlite3"
            store = StateStore.open(state_path)
            try:
                result = await run_backup(store, archive, UDID, session)
                problems.extend(_full_disk_problems(result, store, archive, hashes, capacity))
                grown = mount("-o", f"remount,size={content + 8 * MiB}", str(mount_point))
                if grown.returncode != 0:
                    raise RuntimeError(f"cannot grow the tmpfs: {grown.stderr.strip()}")
                again = await run_backup(store, archive, UDID, session)
                if not again.complete:
                    problems.append(f"the run after freeing space: {again.outcome} {again.error}")
            finally:
                store.close()
            check = check_archive(archive, state_path, hashes.values(), UDID)
            problems.extend(check.problems)
            tally.files_checked += check.files
            tally.bytes_checked += check.bytes
        finally:
            unmount(mount_point)
        if problems:
            tally.failures += 1
            tally.notes.append(
                f"disk-full trial {trial} ({capacity} bytes, seed {seed}): {problems}"
            )
    return tally
