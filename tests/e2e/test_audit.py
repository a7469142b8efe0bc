"""`rollkeeper audit` with a simulated phone: archived, pending, failed, excluded, not on phone.

Real ``rollkeeper backup-now`` and ``rollkeeper audit`` processes, the protocol-level simulator
through the unmodified pymobiledevice3 client, a real state database, archive and Photos library.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from rollkeeper.store import StateStore
from tests import media
from tests.service_process import (
    DEFAULT_TIMEOUT,
    rollkeeper_command,
    service_environment,
    write_config,
)

UDID = "00008110-000A1B2C3D4E5F60"
FOLDER = "/DCIM/100APPLE"


def _run(
    config: Path, simulator: SimulatorThread, *arguments: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        rollkeeper_command("--config", str(config), *arguments),
        env=service_environment(simulator.address),
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT * 2,
        check=False,
    )


def _audit(config: Path, simulator: SimulatorThread, *extra: str) -> tuple[int, dict[str, Any]]:
    result = _run(config, simulator, "audit", "--json", *extra)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def _classes(document: dict[str, Any]) -> dict[str, tuple[str, str]]:
    [phone] = document["phones"]
    return {item["phone_path"]: (item["class"], item["reason"]) for item in phone["files"]}


def _photos_library(root: Path, rows: list[tuple[str, str, int]]) -> None:
    """A Photos.sqlite with the columns rollkeeper reads (ZASSET: directory, file, trashed)."""
    (root / "PhotoData").mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(root / "PhotoData" / "Photos.sqlite")
    connection.execute(
        "CREATE TABLE ZASSET (Z_PK INTEGER PRIMARY KEY, ZDIRECTORY VARCHAR,"
        " ZFILENAME VARCHAR, ZTRASHEDSTATE INTEGER)"
    )
    connection.executemany(
        "INSERT INTO ZASSET (ZDIRECTORY, ZFILENAME, ZTRASHEDSTATE) VALUES (?, ?, ?)", rows
    )
    connection.commit()
    connection.close()


@pytest.mark.slow
def test_audit_classifies_every_file_and_exits_zero_only_when_all_is_backed_up(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """audit puts every phone file in one class (archived, pending, failed, excluded, not on phone,
    archive damaged) and exits 0 only once all is backed up; it writes nothing to the state."""
    phone = tmp_path / "phone"
    camera = phone / "DCIM" / "100APPLE"
    taken = datetime(2025, 6, 1, 10, 0)
    for number in (1, 2, 3):
        media.make_jpeg(camera / f"IMG_000{number}.JPG", taken + timedelta(minutes=number))
    media.make_png_screenshot(camera / "IMG_0004.PNG", taken)
    config = write_config(tmp_path / "config.toml", tmp_path, filters={"screenshots": False})
    faults = AfcFaults(read_error_after_bytes={f"{FOLDER}/IMG_0003.JPG": 0})
    simulator.add_phone(UDID, phone, name="Ana's iPhone", faults=faults)

    first = _run(config, simulator, "backup-now", "--json", "--no-progress")
    assert first.returncode == 1, first.stdout + first.stderr

    # After the backup: a new photo, and a Photos library that knows an iCloud-only original.
    media.make_jpeg(camera / "IMG_0005.JPG", taken + timedelta(minutes=5))
    _photos_library(
        phone,
        [("DCIM/100APPLE", f"IMG_000{number}.JPG", 0) for number in (1, 2, 3, 5)]
        + [
            ("DCIM/100APPLE", "IMG_0004.PNG", 0),
            ("DCIM/100APPLE", "IMG_0099.HEIC", 0),  # in iCloud only
            ("DCIM/100APPLE", "IMG_0098.HEIC", 1),  # in Recently Deleted: not wanted
            # An iCloud original the library names and the phone does not hold.
            ("PhotoData/CPLAssets/group1", "IMG_7777.HEIC", 0),
        ],
    )

    code, document = _audit(config, simulator)
    assert code == 1
    classes = _classes(document)
    assert classes[f"{FOLDER}/IMG_0001.JPG"] == ("archived", "")
    assert classes[f"{FOLDER}/IMG_0002.JPG"] == ("archived", "")
    assert classes[f"{FOLDER}/IMG_0003.JPG"][0] == "failed"
    assert classes[f"{FOLDER}/IMG_0003.JPG"][1]  # with its reason
    assert classes[f"{FOLDER}/IMG_0004.PNG"] == ("excluded", "screenshot")
    assert classes[f"{FOLDER}/IMG_0005.JPG"] == ("pending", "new_since_last_backup")
    not_listed = ("not_on_phone", "original_not_on_phone (iCloud: not_listed)")
    assert classes[f"{FOLDER}/IMG_0099.HEIC"] == not_listed
    assert classes["/PhotoData/CPLAssets/group1/IMG_7777.HEIC"] == not_listed
    assert len(classes) == 7
    [summary] = document["phones"]
    assert summary["complete"] is False
    assert summary["name"] == "Ana's iPhone"
    assert summary["photos_library"]["status"] == "read"
    assert summary["counts"] == {
        "archived": 2,
        "archive_damaged": 0,
        "pending": 1,
        "failed": 1,
        "excluded": 1,
        "not_on_phone": 2,
    }
    icloud = summary["originals_only_in_icloud"]
    assert icloud["count"] == 2
    assert [item["name"] for item in icloud["items"]] == ["IMG_0099.HEIC", "IMG_7777.HEIC"]
    assert document["complete"] is False
    archived_path = next(
        item["archive_path"]
        for item in summary["files"]
        if item["phone_path"] == f"{FOLDER}/IMG_0001.JPG"
    )
    assert (tmp_path / "archive" / archived_path).is_file()

    text = _run(config, simulator, "audit")
    assert text.returncode == 1
    assert "NOT everything on the phone is backed up." in text.stdout
    assert f"PENDING         {FOLDER}/IMG_0005.JPG: new_since_last_backup" in text.stdout
    assert "2 originals not on the phone (in iCloud only)" in text.stdout

    # The phone reads again: back up the rest; now the audit passes.
    simulator.set_faults(UDID, AfcFaults())
    second = _run(config, simulator, "backup-now", "--json", "--no-progress")
    assert second.returncode == 0, second.stdout + second.stderr
    code, document = _audit(config, simulator)
    assert code == 0, document
    assert document["complete"] is True
    assert document["phones"][0]["counts"]["archived"] == 4
    assert document["phones"][0]["counts"]["not_on_phone"] == 2

    # The audit only read: the state database still has exactly what the backups wrote.
    store = StateStore.open(tmp_path / "state" / "state.sqlite3", read_only=True)
    try:
        assert {entry.name for entry in store.manifest(UDID)} == {
            f"IMG_000{number}.{'PNG' if number == 4 else 'JPG'}" for number in range(1, 6)
        }
        archive_paths = {
            entry.name: entry.archive_path for entry in store.manifest(UDID) if entry.archive_path
        }
    finally:
        store.close()

    # Damage the archive: a missing file and a same-size file with other content.
    (tmp_path / "archive" / archive_paths["IMG_0001.JPG"]).unlink()
    tampered = tmp_path / "archive" / archive_paths["IMG_0002.JPG"]
    data = bytearray(tampered.read_bytes())
    data[-10] ^= 0xFF
    tampered.write_bytes(bytes(data))
    (phone / "PhotoData" / "Photos.sqlite").unlink()

    code, document = _audit(config, simulator)
    assert code == 1
    classes = _classes(document)
    assert classes[f"{FOLDER}/IMG_0001.JPG"] == ("archive_damaged", "archive_file_missing")
    # Without --hash only sizes are compared.
    assert classes[f"{FOLDER}/IMG_0002.JPG"] == ("archived", "")
    [summary] = document["phones"]
    assert summary["photos_library"]["status"] == "unknown"
    assert summary["counts"]["not_on_phone"] is None

    code, document = _audit(config, simulator, "--hash")
    assert code == 1
    classes = _classes(document)
    assert classes[f"{FOLDER}/IMG_0002.JPG"] == ("archive_damaged", "archive_file_content_differs")
    assert classes[f"{FOLDER}/IMG_0005.JPG"] == ("archived", "")


def test_audit_without_a_phone_is_a_one_line_error(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """audit with no phone attached prints one line saying what to do, nothing on stdout, and exits
    2."""
    config = write_config(tmp_path / "config.toml", tmp_path)
    result = _run(config, simulator, "audit")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "rollkeeper audit: no iPhone is attached: plug it in, unlock it, and try again\n"
    )
