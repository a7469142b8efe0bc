"""Small files download several at once: an unplug still costs at most one chunk in all."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

from rollkeeper.device.errors import PhoneDisconnectedError
from rollkeeper.device.phone_files import MAX_OPEN_FILES
from rollkeeper.importer.download_flow import SMALL_GROUPS_IN_FLIGHT
from rollkeeper.importer.small_transfer import SMALL_FILE_BYTES
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from rollkeeper.store import StateStore
from tests import media
from tests.reliability.harness import (
    CHUNK_BYTES,
    check_archive,
    phone_files,
    run_backup,
    session_settings,
    wait_until,
)
from tests.reliability.unplug import safe_progress

UDID = "00008110-00AA0000000000C7"

#: Files of one READ each, so that groups of them download several at once.
FILES = 24
FILE_BYTES = 200 * 1024  # under BATCH_FILE_BYTES: the files are read in batches

TRIALS = 8


async def test_an_unplug_among_small_files_in_flight_rereads_at_most_a_chunk(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """With several small files in flight, an unplug at a random byte makes the phone send
    again at most SMALL_GROUPS_IN_FLIGHT files of at most SMALL_FILE_BYTES (one 4 MiB chunk) in
    all, and the next run completes every file with the phone's hash. (That the files really
    are in flight together is the next test's: how many are at the moment of a random cut is
    a race, more so now that the copy starts while the scan goes on.)"""
    assert SMALL_GROUPS_IN_FLIGHT * SMALL_FILE_BYTES <= CHUNK_BYTES
    folder = tmp_path / "phone" / "DCIM" / "100APPLE"
    sizes: dict[str, int] = {}
    for number in range(1, FILES + 1):
        name = f"IMG_{number:04d}.JPG"
        media.make_blob(folder / name, FILE_BYTES, seed=f"small-unplug/{name}")
        sizes[f"/DCIM/100APPLE/{name}"] = FILE_BYTES
    hashes = phone_files(tmp_path / "phone")
    simulator.add_phone(UDID, tmp_path / "phone")
    session = session_settings(simulator.address, tmp_path / "pairing")
    rng = random.Random(18)
    for trial in range(TRIALS):
        archive = tmp_path / f"trial-{trial}" / "archive"
        archive.mkdir(parents=True)
        state = tmp_path / f"trial-{trial}" / "state.sqlite3"
        store = StateStore.open(state)
        try:
            target = sorted(sizes)[rng.randint(2, FILES - 4)]
            simulator.reset_counts(UDID)
            faults = AfcFaults(unplug_after_bytes={target: rng.randint(1, FILE_BYTES)})
            simulator.set_faults(UDID, faults)
            mark = simulator.mark()
            with contextlib.suppress(PhoneDisconnectedError):
                await run_backup(store, archive, UDID, session)
            simulator.wait_for("detached", UDID, after=mark, timeout=30)
            served = simulator.afc_bytes_served(UDID)
            after = safe_progress(store, archive, UDID)
            again = sum(served[path] - after[path] for path in sizes)
            assert 0 <= again <= SMALL_GROUPS_IN_FLIGHT * SMALL_FILE_BYTES, (trial, again)
            simulator.set_faults(UDID, AfcFaults())
            simulator.plug(UDID)
            result = await run_backup(store, archive, UDID, session)
            assert result.complete, (result.outcome, result.error)
        finally:
            store.close()
        check = check_archive(archive, state, hashes.values())
        assert check.problems == []
        assert check.files == FILES


async def test_small_files_download_while_an_earlier_one_is_still_in_flight(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A small file whose READ the phone never answers does not hold the files read with it:
    the others of its window (up to MAX_OPEN_FILES files opened and read together), after it
    as well as before it, are read while it is still in flight (one file at a time, nothing
    after it would be); unplugged then, the next run completes every file."""
    folder = tmp_path / "phone" / "DCIM" / "100APPLE"
    names = [f"IMG_{number:04d}.JPG" for number in range(1, FILES + 1)]
    for name in names:
        media.make_blob(folder / name, FILE_BYTES, seed=f"small-in-flight/{name}")
    hashes = phone_files(tmp_path / "phone")
    held = f"/DCIM/100APPLE/{names[2]}"
    # The held file is the third of the first window: two are read before it, one after it.
    read_with_it = [f"/DCIM/100APPLE/{name}" for name in [*names[:2], *names[3:MAX_OPEN_FILES]]]
    simulator.add_phone(UDID, tmp_path / "phone", faults=AfcFaults(stuck_reads={held}))
    session = session_settings(simulator.address, tmp_path / "pairing")
    archive = tmp_path / "archive"
    archive.mkdir()
    state = tmp_path / "state.sqlite3"
    store = StateStore.open(state)
    try:
        run = asyncio.ensure_future(run_backup(store, archive, UDID, session))
        await asyncio.to_thread(
            wait_until,
            lambda: all(
                simulator.afc_bytes_served(UDID)[path] == FILE_BYTES for path in read_with_it
            ),
            30,
            "the files read with the held one to be read",
        )
        assert simulator.afc_bytes_served(UDID)[held] == 0
        assert not run.done()
        simulator.set_faults(UDID, AfcFaults())
        simulator.unplug(UDID)
        with contextlib.suppress(PhoneDisconnectedError):
            await asyncio.wait_for(run, 30)
        simulator.plug(UDID)
        result = await run_backup(store, archive, UDID, session)
        assert result.complete, (result.outcome, result.error)
    finally:
        store.close()
    check = check_archive(archive, state, hashes.values())
    assert check.problems == []
    assert check.files == FILES
