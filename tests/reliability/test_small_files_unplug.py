"""Small files download several at once: an unplug still costs at most one chunk in all."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

from rollkeeper.device.errors import PhoneDisconnectedError
from rollkeeper.importer.pipeline import SMALL_GROUPS_IN_FLIGHT
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
)
from tests.reliability.unplug import safe_progress

UDID = "00008110-00AA0000000000C7"

#: Files of one READ each, so that groups of them download several at once.
FILES = 24
FILE_BYTES = 300 * 1024

TRIALS = 8


async def test_an_unplug_among_small_files_in_flight_rereads_at_most_a_chunk(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """With several small files in flight, an unplug at a random byte makes the phone send
    again at most SMALL_GROUPS_IN_FLIGHT files of at most SMALL_FILE_BYTES (one 4 MiB chunk) in
    all; files were opened and not yet read at the cut (they really were in flight together),
    and the next run completes every file with the phone's hash."""
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
    overlapped = 0
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
            # One file at a time, every file opened is read before the next open; with files in
            # flight together, files were opened whose READ had not come when the phone went.
            opened = simulator.afc_request_counts(UDID)["FILE_OPEN"]
            read = 0
            for path in sizes:
                if served[path]:
                    read += 1
            overlapped += opened - read
            simulator.set_faults(UDID, AfcFaults())
            simulator.plug(UDID)
            result = await run_backup(store, archive, UDID, session)
            assert result.complete, (result.outcome, result.error)
        finally:
            store.close()
        check = check_archive(archive, state, hashes.values())
        assert check.problems == []
        assert check.files == FILES
    assert overlapped > 0
