"""The one backup sequence (session, admission, run) that the service, ``backup-now`` and the
in-process tests share, against the simulator through the real pymobiledevice3 client."""

from __future__ import annotations

from pathlib import Path

from rollkeeper.device.session import PhoneInfo, SessionSettings
from rollkeeper.importer.job import BackupRun, BackupSettings
from rollkeeper.service.backup_once import BackupNowOutcome, PhoneOutcome
from rollkeeper.service.phone_backup import back_up_phone
from rollkeeper.simulator import SimulatorThread
from rollkeeper.store import RunCounts, StateStore
from tests import media

UDID = "00008110-00BB0000000000B2"
LAYOUT = "{year}/{year}-{month}/{name}"


async def test_a_phone_turned_away_gets_no_run_and_an_admitted_one_is_backed_up(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """``admit`` sees the phone's own name; a phone it turns away gets no run row and nothing
    in the archive, and the caller gets the reason; an admitted phone is backed up completely,
    and the caller is handed the run before it starts."""
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root, name="Ana's iPhone")
    archive = tmp_path / "archive"
    archive.mkdir()
    store = StateStore.open(tmp_path / "state.sqlite3")
    session = SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pairing")
    backup = BackupSettings(archive_root=archive, layout=LAYOUT)
    seen: list[PhoneInfo] = []
    handed: list[tuple[BackupRun, int]] = []
    try:

        def refuse(info: PhoneInfo) -> str | None:
            seen.append(info)
            return "not this one"

        turned_away = await back_up_phone(UDID, store, session, backup, admit=refuse)
        assert turned_away.result is None and turned_away.skipped == "not this one"
        assert turned_away.info.name == "Ana's iPhone"
        assert [info.udid for info in seen] == [UDID]
        assert store.runs(UDID) == [] and not any(archive.iterdir())

        def keep(run: BackupRun, info: PhoneInfo) -> None:
            handed.append((run, run.run_id))

        admitted = await back_up_phone(UDID, store, session, backup, on_run_created=keep)
        assert admitted.result is not None and admitted.result.complete
        assert admitted.skipped == ""
        assert admitted.result.counts.files_copied == len(roll.files)
        (run, run_id_when_handed), *_ = handed
        assert run_id_when_handed == 0  # handed over before it started
        assert run.run_id == admitted.result.run_id
    finally:
        store.close()


def test_backup_now_json_keeps_the_run_counts_beside_the_phone_fields() -> None:
    """``backup-now --json`` shows each phone's run counts as flat keys next to its other
    fields, exactly the keys it always had (and, since the Photos library, the originals only
    in iCloud; since issue 13, the files restored and lost), though the outcome now holds a
    ``RunCounts``."""
    counts = RunCounts(files_found=7, files_copied=5, bytes_copied=1234, files_not_on_phone=2)
    outcome = PhoneOutcome(udid="U1", name="Ann", outcome="complete", run_id=3, counts=counts)
    assert outcome.as_dict() == {
        "udid": "U1",
        "name": "Ann",
        "outcome": "complete",
        "run_id": 3,
        "problem": "",
        "hint": "",
        "failures": [],
        "originals_only_in_icloud": 0,
        "originals_only_in_icloud_examples": [],
        "files_found": 7,
        "files_copied": 5,
        "bytes_copied": 1234,
        "files_already_archived": 0,
        "files_deduplicated": 0,
        "files_excluded": 0,
        "files_failed": 0,
        "files_pending": 0,
        "items_rejected": 0,
        "files_restored": 0,
        "files_lost": 0,
    }


def test_the_backup_summary_counts_and_names_the_originals_only_in_icloud() -> None:
    """A complete backup of a phone with originals only in iCloud says how many, what to do
    about them, and names the first ones (made printable)."""
    outcome = PhoneOutcome(
        udid="U1",
        name="Ann",
        outcome="complete",
        run_id=3,
        counts=RunCounts(files_found=7),
        originals_only_in_icloud=312,
        icloud_examples=("IMG_7003.HEIC", "IMG_\x1b7004.HEIC"),
    )
    lines = BackupNowOutcome(complete=True, phones=[outcome]).summary_lines()
    assert lines[0].startswith("Ann: backed up")
    assert lines[1] == (
        "  312 originals are only in iCloud: turn on Download and Keep Originals, or fetch them "
        "with icloudpd (`rollkeeper status` names them)"
    )
    assert lines[2:] == ["    IMG_7003.HEIC", "    IMG_ 7004.HEIC"]
