"""A group finished over several runs keeps one folder and one suffix, and a member placed by a
run that crashed before recording it is recognised, not copied again.

Found by the crash campaign (``make faults``): a kill between placing an edit's ``IMG_O….AAE``
sidecar and recording it left the sidecar placed but pending; the next run copied it alone,
dated it by its birth time (a sidecar has no date of its own, and the group's photos were
already archived, so they were not asked) and stored it a second time in another folder. The
same happens with the collision suffix when a group's suffix is not the smallest free one for
the member copied alone. This test builds that state deterministically, in-process.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from rollkeeper.importer.hashing import hash_file
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from rollkeeper.store import StateStore
from tests import media
from tests.reliability.harness import archive_files, run_backup, session_settings

UDID = "00008110-00AA0000000000A7"
SIDECAR = "/DCIM/100APPLE/IMG_O0002.AAE"
GROUP_FOLDER = "2023/2023-07"


async def test_a_member_copied_in_a_later_run_joins_its_group_and_is_not_stored_twice(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A group member copied in a later run gets its group's folder and suffix, and one a crashed
    run had already placed is recognised by its hash instead of being stored twice."""
    phone = tmp_path / "phone"
    archive = tmp_path / "archive"
    archive.mkdir()
    store = StateStore.open(tmp_path / "state.sqlite3")
    session = session_settings(simulator.address, tmp_path / "pairing")
    try:
        # An earlier phone's photos take the plain names; a file of someone else's takes
        # IMG_0002~2.HEIC, so the next IMG_0002 group gets suffix ~3 (its sidecar alone would
        # get ~2).
        media.make_camera_roll(phone)
        simulator.add_phone(UDID, phone)
        assert (await run_backup(store, archive, UDID, session)).complete
        media.make_blob(archive / GROUP_FOLDER / "IMG_0002~2.HEIC", 5000, seed="someone else")
        shutil.rmtree(phone / "DCIM")
        roll = media.make_camera_roll(phone, file_time=datetime(2025, 6, 1, tzinfo=UTC))

        # The sidecar cannot be read: the rest of its group is placed with suffix ~3.
        simulator.set_faults(UDID, AfcFaults(read_error_after_bytes={SIDECAR: 0}))
        first = await run_backup(store, archive, UDID, session)
        assert first.outcome == "incomplete"
        stored = archive_files(archive)
        assert f"{GROUP_FOLDER}/IMG_0002~3.HEIC" in stored
        assert f"{GROUP_FOLDER}/IMG_E0002~3.HEIC" in stored

        # A run that crashed after placing the sidecar and before recording it.
        sidecar = roll.by_name("IMG_O0002.AAE").host_path
        shutil.copyfile(sidecar, archive / GROUP_FOLDER / "IMG_O0002~3.AAE")

        simulator.set_faults(UDID, AfcFaults())
        second = await run_backup(store, archive, UDID, session)
        assert second.complete, second
        entry = next(
            item for item in store.manifest(UDID, present_only=True) if item.phone_path == SIDECAR
        )
        assert entry.archive_path == f"{GROUP_FOLDER}/IMG_O0002~3.AAE"
        record = store.archive_entry(entry.archive_path)
        assert record is not None and record.origin == "rebuilt"
    finally:
        store.close()
    stored = archive_files(archive)
    copies = [path for path, digest in stored.items() if digest == hash_file(sidecar)]
    assert copies == [f"{GROUP_FOLDER}/IMG_O0002~3.AAE"]
    assert len(set(stored.values())) == len(stored), "no content stored twice"
