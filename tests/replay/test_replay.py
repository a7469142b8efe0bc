"""The replay harness: a recorded phone backed up by rollkeeper's importer, and what it records.

Recordings replayed here are the committed ones in ``tests/fixtures/recordings/`` (each made
from the simulator by ``make_recording.py``; nothing recorded from anyone's phone is committed)
and any named in ``ROLLKEEPER_REPLAY`` (paths separated by ``:``): how someone with a phone
checks a recording of their own before contributing it (docs/simulator.md).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from rollkeeper.device.replay import RecordedPhone, RecordingError, load_recording
from rollkeeper.domain.files import media_kind
from rollkeeper.simulator import SimulatorThread
from rollkeeper.store import StateStore
from tests.replay.recorded import (
    FIRST_NUMBER,
    PHONE_NAME,
    REFUSED_FOLDER,
    record_simulated_phone,
    replay,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "recordings"


def recordings() -> list[Path]:
    """The committed recordings, and those named in ``ROLLKEEPER_REPLAY``."""
    named = [Path(item) for item in os.environ.get("ROLLKEEPER_REPLAY", "").split(":") if item]
    return sorted(FIXTURES.glob("*.jsonl")) + named


def readable_media(phone: RecordedPhone) -> dict[str, int]:
    """Phone path -> size of every regular media file the phone stat'ed and read without an
    error in the recording: what a backup of it must archive."""
    failed = set(phone.read_failures) | {path for _operation, path in phone.errors}
    return {
        path: phone.file_size(path)
        for path, fields in phone.stats.items()
        if fields.get("st_ifmt") == "S_IFREG"
        and path.startswith("/DCIM/")
        and media_kind(path.rsplit("/", 1)[-1]) is not None
        and path not in failed
    }


@pytest.mark.parametrize("recording", recordings(), ids=lambda path: path.name)
async def test_a_recorded_phone_replays_into_a_complete_archive_of_what_it_served(
    recording: Path, tmp_path: Path
) -> None:
    """Replaying a recording backs up every file the phone served without error, with its size;
    a file whose read failed is failed, a refused folder keeps the run from being complete, and
    a second run copies nothing again."""
    for phone in load_recording(recording):
        if phone.refused_state is not None:
            continue  # the session never opened: there are no files to back up
        replayed = await replay(phone, tmp_path / f"phone-{phone.number}")
        manifest = replayed.manifest(replayed.runs[0].udid) if replayed.runs else {}
        expected = readable_media(phone)
        archived = {path for path, (status, _reason) in manifest.items() if status == "archived"}
        if replayed.stopped is None:
            assert set(expected) <= archived
            sizes = {path.stat().st_size for path in replayed.archive.rglob("*") if path.is_file()}
            assert set(expected.values()) <= sizes
            assert replayed.runs[1].counts.files_copied == 0
        for path in phone.read_failures:
            if path in manifest:
                assert manifest[path][0] in ("failed", "pending")
        refused = [path for operation, path in phone.errors if operation == "list_folder"]
        if refused and replayed.runs:
            assert replayed.runs[0].outcome != "complete"


def test_the_committed_recordings_are_recordings() -> None:
    """Every committed recording loads, and is one the simulator made (no one's phone)."""
    found = sorted(FIXTURES.glob("*.jsonl"))
    assert found, "make one with: .venv/bin/python -m tests.fixtures.recordings.make_recording"
    for recording in found:
        assert recording.name.startswith("simulator-")
        assert load_recording(recording)


def test_a_file_that_is_no_recording_is_refused(tmp_path: Path) -> None:
    """A file that is not a recording is refused with a clear error, not half replayed."""
    other = tmp_path / "notes.jsonl"
    other.write_text('{"hello": 1}\n')
    with pytest.raises(RecordingError, match="not a version 1"):
        load_recording(other)


async def test_a_simulator_backup_recorded_then_replayed_ends_the_same(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A backup recorded with ``backup-now --record`` and replayed against the importer ends as
    the live one did: the same files copied and failed, the refused folder again keeping it
    incomplete; and the recording holds no name, UDID or content of the phone, but its times."""
    live = record_simulated_phone(simulator, tmp_path / "live")
    [phone_report] = live.report["phones"]
    assert phone_report["outcome"] == "incomplete"
    text = live.path.read_text(encoding="utf-8")
    events = [json.loads(line) for line in text.splitlines()[1:]]

    [phone] = load_recording(live.path)
    replayed = await replay(phone, tmp_path / "replayed")

    first = replayed.runs[0]
    assert first.outcome == "incomplete"
    assert first.counts.files_copied == phone_report["files_copied"]
    assert first.counts.files_failed == phone_report["files_failed"] == 1
    assert (REFUSED_FOLDER, "unlistable_folder") in {
        (path, reason) for path, reason, _detail in _failures(replayed.state, first.run_id)
    }
    # Redacted: no name, UDID, photo number or content; the phone's stat times are kept.
    for secret in (PHONE_NAME, live.udid, live.udid.replace("-", "")):
        assert secret not in text
    # The photos' own numbers (IMG_4711...) must not survive; the same digits inside a time or
    # a size (0.047114) are not a name and may.
    assert not re.search(rf"(?<![0-9.]){FIRST_NUMBER}(?![0-9])", text)
    stats = [event for event in events if event.get("op") == "stat" and "reply" in event]
    assert {str(item.birth_time_ns) for item in live.roll.files} <= {
        event["reply"].get("st_birthtime") for event in stats
    }
    reads = [event for event in events if event.get("op") == "read" and "reply" in event]
    assert reads and all(set(event["reply"]) == {"bytes", "sha256"} for event in reads)
    assert (live.path.stat().st_mode & 0o777) == 0o600


def _failures(state: Path, run_id: int) -> list[tuple[str, str, str]]:
    store = StateStore.open(state, read_only=True)
    try:
        return store.run_failures(run_id)
    finally:
        store.close()
