"""Adopt a folder holding half a phone's photos, then back the phone up: nothing stored twice.

Real ``rollkeeper adopt`` and ``rollkeeper backup-now`` processes, the protocol-level simulator
through the unmodified pymobiledevice3 client, a real state database and real files.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from rollkeeper.importer.hashing import hash_file
from rollkeeper.simulator import SimulatorThread
from rollkeeper.store import StateStore
from tests import media
from tests.service_process import (
    DEFAULT_TIMEOUT,
    rollkeeper_command,
    service_environment,
    write_config,
)

UDID = "00008110-000A1B2C3D4E5F60"


def files_under(folder: Path) -> dict[Path, str]:
    """Every file under a folder (the archive's work folder excluded) -> its hash."""
    return {
        path: hash_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".rollkeeper" not in path.relative_to(folder).parts
    }


@pytest.mark.slow
def test_adopted_half_is_recorded_in_place_and_only_the_other_half_is_copied(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Adopting a folder that holds half of the phone's files records them where they are, leaves
    them untouched, and the backup then copies only the other half; everything verifies."""
    roll = media.make_camera_roll(tmp_path / "phone")
    config = write_config(tmp_path / "config.toml", tmp_path)
    environment = service_environment(simulator.address)

    # A folder copied by hand years ago: every other phone file, under other names and folders.
    copied = tmp_path / "Phone copy 2019"
    adopted_items = list(roll.files)[::2]
    for index, item in enumerate(adopted_items):
        target = copied / f"batch {index % 2}" / f"photo-{index:03d}{item.host_path.suffix.lower()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.host_path.read_bytes())
    copied_before = {
        path: (digest, path.stat().st_mtime_ns) for path, digest in files_under(copied).items()
    }

    adopt = subprocess.run(
        [*rollkeeper_command("--config", str(config), "adopt", str(copied), "--json")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT,
        check=False,
    )
    assert adopt.returncode == 0, adopt.stderr
    assert json.loads(adopt.stdout)["adopted"] == len(adopted_items)

    simulator.add_phone(UDID, roll.root, name="Ana's iPhone")
    backup = subprocess.run(
        [*rollkeeper_command("--config", str(config), "backup-now", "--json")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT * 2,
        check=False,
    )
    assert backup.returncode == 0, backup.stdout + backup.stderr

    archive = tmp_path / "archive"
    in_archive = files_under(archive)
    phone_hashes = {item.phone_path: hash_file(item.host_path) for item in roll.files}
    adopted_hashes = {phone_hashes[item.phone_path] for item in adopted_items}
    # The archive got exactly the half that was not adopted, each content once.
    assert sorted(in_archive.values()) == sorted(set(phone_hashes.values()) - adopted_hashes)
    # Every phone content is somewhere: in the archive or in the adopted folder.
    assert set(phone_hashes.values()) == set(in_archive.values()) | adopted_hashes
    # The adopted folder is untouched: same files, same bytes, same times.
    assert {
        path: (digest, path.stat().st_mtime_ns) for path, digest in files_under(copied).items()
    } == copied_before

    store = StateStore.open(tmp_path / "state" / "state.sqlite3", read_only=True)
    try:
        entries = {entry.phone_path: entry for entry in store.manifest(UDID)}
        assert set(entries) == set(phone_hashes)
        for phone_path, entry in entries.items():
            assert entry.status == "archived", entry
            assert entry.content_hash == phone_hashes[phone_path]
            assert entry.archive_path is not None
            if phone_hashes[phone_path] in adopted_hashes:
                # Recorded as archived at the adopted file, by its absolute path.
                assert Path(entry.archive_path).is_absolute()
                assert Path(entry.archive_path).is_relative_to(copied.resolve())
            else:
                assert not Path(entry.archive_path).is_absolute()
                assert (archive / entry.archive_path).is_file()
    finally:
        store.close()

    # And the whole thing verifies: adopted files by absolute path, copied ones in the archive.
    verify = subprocess.run(
        [*rollkeeper_command("--config", str(config), "verify", "--json")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT,
        check=False,
    )
    report = json.loads(verify.stdout)
    assert verify.returncode == 0, verify.stdout
    assert report["matched"] == len(roll.files) and report["untracked"] == []
