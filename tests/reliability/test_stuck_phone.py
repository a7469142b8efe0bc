"""A phone that stops answering: the request times out, the run is retried, no job hangs.

In-process (real BackupService, real APScheduler, real usbmuxd Listen stream, real sessions to
the simulator) so that the AFC time limit can be half a second. The simulator never answers a
READ of one file (``stuck_reads``). Waited on, through the simulator's own event log: the first
session is abandoned (its AFC connection closes), a retry opens a new one, which is abandoned
too — but that retry tries the stuck file last, so every other photo is backed up by then; then
the phone recovers and the retry after that backs up the rest.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from rollkeeper.device.events import UsbmuxEvents
from rollkeeper.importer.hashing import hash_file
from rollkeeper.service.scheduler import BackupService, ServiceSettings
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from rollkeeper.store import StateStore
from tests import media
from tests.reliability.harness import backup_settings, check_archive, session_settings

UDID = "00008110-00AA0000000000A1"
AFC_TIMEOUT_SECONDS = 0.5


@pytest.mark.slow
async def test_stuck_read_times_out_is_retried_last_and_nothing_else_waits_for_it(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A READ the phone never answers times out; the retry tries that file last, so every other file
    is backed up, and once the phone recovers the rest completes."""
    roll = media.make_camera_roll(tmp_path / "phone")
    stuck = "/DCIM/100APPLE/IMG_0001.MOV"
    archive = tmp_path / "archive"
    archive.mkdir()
    state = tmp_path / "state.sqlite3"
    store = StateStore.open(state)
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone="UTC")
    scheduler.start()
    settings = ServiceSettings(
        backup=backup_settings(archive),
        session=session_settings(simulator.address, tmp_path / "pairing", AFC_TIMEOUT_SECONDS),
        debounce_seconds=0.05,
        retry_initial_seconds=0.2,
        retry_max_seconds=0.4,
    )
    service = BackupService(settings, store, scheduler)
    events = UsbmuxEvents(simulator.address, service.on_attach, service.on_detach)
    listening = asyncio.create_task(events.run())
    try:
        await asyncio.wait_for(events.listening.wait(), 10)
        start = simulator.mark()
        simulator.add_phone(UDID, roll.root, faults=AfcFaults(stuck_reads={stuck}))

        def next_event(kind: str, after: int) -> int:
            return simulator.wait_for(kind, UDID, after=after, timeout=20).sequence

        # Two sessions, each abandoned after the time limit: the first run and a retry.
        closed = start
        for _attempt in range(2):
            opened = await asyncio.to_thread(next_event, "afc_connected", closed)
            closed = await asyncio.to_thread(next_event, "afc_closed", opened)
        # The retry tried the file that got stuck last: every other group was backed up.
        archived = store.status_counts(UDID).get("archived", 0)
        assert archived == len(roll.files) - 2, store.status_counts(UDID)  # all but IMG_0001
        failures = store.run_failures(store.runs(UDID)[-1].id)
        assert (stuck, "phone_not_responding") in [(path, reason) for path, reason, _ in failures]
        runs = store.runs(UDID)
        assert len(runs) >= 2
        assert all(run.outcome == "interrupted" for run in runs), runs
        # Every attempt timed out (on a loaded machine another request may be the one).
        assert all("no answer to" in run.error for run in runs), runs
        assert any("no answer to READ" in run.error for run in runs), runs

        simulator.set_faults(UDID, AfcFaults())
        service.run_finished.clear()
        await asyncio.wait_for(service.run_finished.wait(), 30)
        assert service.results[-1].complete, service.results[-1]
        assert service.busy() is False
    finally:
        events.stop()
        await service.stop(5)
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        scheduler.shutdown(wait=False)
        store.close()
    check = check_archive(archive, state, {hash_file(item.host_path) for item in roll.files}, UDID)
    assert check.problems == []
