"""Unplug campaign: cut the cable at seeded random byte offsets, resume, and count what was lost.

In-process (a real session through pymobiledevice3 to the simulator, a real BackupRun, real
files and SQLite), because a trial needs no process boundary: the unplug is the simulator's
``unplug_after_bytes`` fault, which drops every connection of the phone exactly like a pulled
cable once a chosen number of bytes of a chosen file has been served.

Per trial: a fresh archive and state; 1-3 cuts, each in a file not yet archived at an offset
inside what it still has to send; after each cut the phone is plugged in again; then a last run
without faults must complete. Checked: every file is archived once with the phone's hash
(:func:`check_archive`), and per attempt and file the bytes the phone served beyond the progress
made (the bytes read again) are at most one 4 MiB chunk for the file that was cut and zero for
every other file.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

from rollkeeper.device.errors import PhoneDisconnectedError
from rollkeeper.importer.partials import partial_path
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from rollkeeper.store import ARCHIVED, StateStore
from tests import media
from tests.reliability.harness import (
    CHUNK_BYTES,
    Tally,
    check_archive,
    phone_files,
    run_backup,
    session_settings,
)

UDID = "00008110-00AA0000000000C1"

#: Sizes of the phone's files: over one chunk (a cut in the second resumes at 4 MiB), under one.
FILE_SIZES = {
    "IMG_0001.MOV": CHUNK_BYTES + 1_234_567,
    "IMG_0002.MOV": 3 * 1024 * 1024,
    "IMG_0003.HEIC": 700 * 1024,
}


def make_phone(media_root: Path) -> dict[str, int]:
    """The phone's files (phone path -> size)."""
    folder = media_root / "DCIM" / "100APPLE"
    sizes: dict[str, int] = {}
    for name, size in FILE_SIZES.items():
        media.make_blob(folder / name, size, seed=f"unplug/{name}")
        sizes[f"/DCIM/100APPLE/{name}"] = size
    return sizes


def safe_progress(store: StateStore, archive: Path, udid: str = UDID) -> dict[str, int]:
    """Bytes of each phone file already safe: its size if archived, else its partial's length."""
    done: dict[str, int] = {}
    for entry in store.manifest(udid, present_only=True):
        if entry.status == ARCHIVED:
            done[entry.phone_path] = entry.size
            continue
        partial = partial_path(archive, udid, entry)
        done[entry.phone_path] = partial.stat().st_size if partial.exists() else 0
    return done


async def unplug_campaign(simulator: SimulatorThread, work: Path, trials: int, seed: int) -> Tally:
    """Run ``trials`` unplug trials; returns the figures (failures listed in ``notes``)."""
    rng = random.Random(seed)
    media_root = work / "phone"
    sizes = make_phone(media_root)
    hashes = phone_files(media_root)
    simulator.add_phone(UDID, media_root)
    session = session_settings(simulator.address, work / "pairing")
    tally = Tally()
    for trial in range(trials):
        tally.trials += 1
        archive = work / f"trial-{trial}" / "archive"
        archive.mkdir(parents=True)
        store = StateStore.open(work / f"trial-{trial}" / "state.sqlite3")
        problems: list[str] = []
        try:
            before = dict.fromkeys(sizes, 0)
            for _cut in range(rng.randint(1, 3)):
                unfinished = [path for path in sorted(sizes) if before[path] < sizes[path]]
                if not unfinished:
                    break
                target = rng.choice(unfinished)
                threshold = rng.randint(1, sizes[target] - before[target])
                simulator.reset_counts(UDID)
                simulator.set_faults(UDID, AfcFaults(unplug_after_bytes={target: threshold}))
                mark = simulator.mark()
                with contextlib.suppress(PhoneDisconnectedError):
                    await run_backup(store, archive, UDID, session)
                simulator.wait_for("detached", UDID, after=mark, timeout=30)
                served = simulator.afc_bytes_served(UDID)
                after = safe_progress(store, archive)
                for path in sizes:
                    again = served[path] - (after[path] - before[path])
                    allowed = CHUNK_BYTES if path == target else 0
                    if not 0 <= again <= allowed:
                        problems.append(
                            f"{path}: cut at {threshold} after {before[path]}: read {again} "
                            f"bytes again (allowed {allowed})"
                        )
                before = after
                simulator.set_faults(UDID, AfcFaults())
                simulator.plug(UDID)
            simulator.reset_counts(UDID)
            result = await run_backup(store, archive, UDID, session)
            if not result.complete:
                problems.append(f"last run {result.outcome}: {result.error}")
            served = simulator.afc_bytes_served(UDID)
            for path in sizes:
                if served[path] != sizes[path] - before[path]:
                    problems.append(
                        f"{path}: resumed at {before[path]} but read {served[path]} bytes"
                    )
        finally:
            store.close()
        check = check_archive(archive, work / f"trial-{trial}" / "state.sqlite3", hashes.values())
        problems.extend(check.problems)
        tally.files_checked += check.files
        tally.bytes_checked += check.bytes
        if problems:
            tally.failures += 1
            tally.notes.append(f"unplug trial {trial} (seed {seed}): " + "; ".join(problems))
    return tally
