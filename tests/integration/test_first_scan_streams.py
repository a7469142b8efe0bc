"""A first backup copies while the scan goes on (issue 18), and gives up nothing for it: the
same archive as after a whole scan, every file read once, an unplug mid-scan still an unplug."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rollkeeper.device.errors import PhoneDisconnectedError
from rollkeeper.importer.job import BackupRun, Progress
from rollkeeper.service.phone_backup import back_up_phone
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from rollkeeper.store import StateStore
from tests import media
from tests.reliability.harness import (
    archive_files,
    backup_settings,
    check_archive,
    phone_files,
    run_backup,
    session_settings,
)

UDID = "00008110-00AA0000000000D8"
FOLDERS = ("100APPLE", "101APPLE", "102APPLE", "103APPLE")
FILES_PER_FOLDER = 6
FILE_BYTES = 20_000
CEILING_SECONDS = 30


def make_phone(root: Path) -> list[str]:
    """Folders of small files, the same names in every folder (numbering restarts); returns
    the phone paths, folder by folder."""
    paths = []
    for folder in FOLDERS:
        for number in range(1, FILES_PER_FOLDER + 1):
            name = f"IMG_{number:04d}.JPG"
            media.make_blob(root / "DCIM" / folder / name, FILE_BYTES, seed=f"{folder}/{name}")
            paths.append(f"/DCIM/{folder}/{name}")
    return paths


async def test_a_file_is_archived_while_the_scan_is_still_going_on(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """With the last folder's stats held by the phone (the scan cannot finish), files of the
    folders already scanned are copied and recorded as archived, and the progress says the
    scan is still going on; unplugged then, the run ends as an unplug, and the next run
    completes every file."""
    paths = make_phone(tmp_path / "phone")
    hashes = phone_files(tmp_path / "phone")
    held = paths[-1]
    simulator.add_phone(UDID, tmp_path / "phone", faults=AfcFaults(stuck_stats={held}))
    archive = tmp_path / "archive"
    archive.mkdir()
    store = StateStore.open(tmp_path / "state.sqlite3")
    session = session_settings(simulator.address, tmp_path / "pairing")
    archived_while_scanning = asyncio.Event()
    seen: list[Progress] = []

    def on_progress(progress: Progress) -> None:
        seen.append(progress)
        if progress.scanning and progress.files_done >= 1 and progress.bytes_done > 0:
            archived_while_scanning.set()

    try:
        run = asyncio.ensure_future(
            back_up_phone(UDID, store, session, backup_settings(archive), on_progress=on_progress)
        )
        await asyncio.wait_for(archived_while_scanning.wait(), CEILING_SECONDS)
        assert not run.done()
        # The totals are what was found so far: not the last folder's files.
        assert seen[-1].files_total < len(paths)
        simulator.set_faults(UDID, AfcFaults())
        simulator.unplug(UDID)
        with pytest.raises(PhoneDisconnectedError):
            await asyncio.wait_for(run, CEILING_SECONDS)
        [interrupted] = store.runs(UDID)
        assert interrupted.outcome == "interrupted"
        assert store.status_counts(UDID).get("archived", 0) >= 1
        simulator.plug(UDID)
        result = await run_backup(store, archive, UDID, session)
        assert result.complete, (result.outcome, result.error)
    finally:
        store.close()
    check = check_archive(archive, tmp_path / "state.sqlite3", hashes.values())
    assert check.problems == []
    assert check.files == len(paths)


async def test_an_unplug_mid_scan_ends_the_run_as_an_unplug(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """The phone unplugged at the stat of the third folder's first file, while the copy of the
    folders before it is under way: the run raises the phone's own "disconnected" error (not
    an exception group), with the usual hint, the run is closed as interrupted, and the next
    run completes every file, each in the archive once."""
    paths = make_phone(tmp_path / "phone")
    hashes = phone_files(tmp_path / "phone")
    cut = paths[2 * FILES_PER_FOLDER]
    simulator.add_phone(UDID, tmp_path / "phone", faults=AfcFaults(unplug_at_stat={cut}))
    archive = tmp_path / "archive"
    archive.mkdir()
    store = StateStore.open(tmp_path / "state.sqlite3")
    session = session_settings(simulator.address, tmp_path / "pairing")
    mark = simulator.mark()
    try:
        with pytest.raises(PhoneDisconnectedError) as raised:
            await run_backup(store, archive, UDID, session)
        assert raised.value.state == "disconnected"
        assert raised.value.hint == PhoneDisconnectedError.hint
        simulator.wait_for("detached", UDID, after=mark, timeout=CEILING_SECONDS)
        [interrupted] = store.runs(UDID)
        assert interrupted.outcome == "interrupted"
        assert interrupted.error
        simulator.plug(UDID)
        result = await run_backup(store, archive, UDID, session)
        assert result.complete, (result.outcome, result.error)
    finally:
        store.close()
    check = check_archive(archive, tmp_path / "state.sqlite3", hashes.values())
    assert check.problems == []
    assert check.files == len(paths)


async def test_a_streamed_first_backup_makes_the_archive_a_whole_scan_makes(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """The same phone backed up twice from nothing, streamed and with the whole scan first:
    every file is read from the phone exactly once each time, and the two archives hold the
    same files under the same names (collision suffixes included: the folders share names
    and dates)."""
    paths = make_phone(tmp_path / "phone")
    # Every file of a number has the same time in every folder: same archive folder and name.
    for path in paths:
        media.set_file_time(
            tmp_path / "phone" / path.lstrip("/"),
            datetime(2024, 5, 1, 9, int(path[-6:-4]), tzinfo=UTC),
        )
    simulator.add_phone(UDID, tmp_path / "phone")
    session = session_settings(simulator.address, tmp_path / "pairing")
    archives = {}
    for streamed in (True, False):
        side = tmp_path / ("streamed" if streamed else "whole")
        archive = side / "archive"
        archive.mkdir(parents=True)
        store = StateStore.open(side / "state.sqlite3")

        def choose(run: BackupRun, _: object, streamed: bool = streamed) -> None:
            run.stream_first_scan = streamed

        simulator.reset_counts(UDID)
        try:
            turn = await back_up_phone(
                UDID, store, session, backup_settings(archive), on_run_created=choose
            )
            assert turn.result is not None and turn.result.complete
            assert turn.result.counts.files_copied == len(paths)
            assert turn.result.counts.files_found == len(paths)
        finally:
            store.close()
        served = simulator.afc_bytes_served(UDID)
        assert {path: served[path] for path in paths} == dict.fromkeys(paths, FILE_BYTES)
        archives[streamed] = archive_files(archive)
    assert len(archives[True]) == len(paths)
    assert archives[True] == archives[False]
    # The shared names really collided (suffixes decided by the order of placement).
    assert len({Path(name).name for name in archives[True]}) > FILES_PER_FOLDER
