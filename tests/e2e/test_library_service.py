"""The whole Photos library through the real service and the simulator: iCloud originals under
their names and dates, edits, sidecars, what is only in iCloud, and a library that is broken.

A real ``rollkeeper run`` process backs up a simulated phone that uses iCloud Photos
(:mod:`tests.library_phone`) through the unmodified pymobiledevice3 client; ``status`` and
``audit`` are real processes too. Every check is on the archive on disk, the state database or
the commands' JSON.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollkeeper.importer.hashing import hash_file
from rollkeeper.library.xmp import NAMESPACES
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from rollkeeper.store import StateStore
from tests import media
from tests.library_phone import (
    ALBUM,
    LIVE_UUID,
    NO_EXIF_UUID,
    OFFLOADED_DCIM,
    make_library_phone,
)
from tests.photos_library import change_library
from tests.service_process import (
    DEFAULT_TIMEOUT,
    ServiceProcess,
    rollkeeper_command,
    service_environment,
    write_config,
)

UDID = "00008110-000A1B2C3D4E5F61"
LIBRARY = "/PhotoData/Photos.sqlite"


def run_command(
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


def json_of(config: Path, simulator: SimulatorThread, *arguments: str) -> dict[str, Any]:
    result = run_command(config, simulator, *arguments)
    assert result.stdout, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def library_config(tmp_path: Path, **library: object) -> Path:
    settings: dict[str, object] = {"refresh_hours": 0}
    settings.update(library)
    return write_config(tmp_path / "library.toml", tmp_path, library=settings)


def sidecar_items(path: Path) -> list[str]:
    root = ElementTree.parse(path).getroot()
    return [str(item.text) for item in root.iter(f"{{{NAMESPACES['rdf']}}}li")]


def rating(path: Path) -> str | None:
    found = ElementTree.parse(path).getroot().find(f".//{{{NAMESPACES['xmp']}}}Rating")
    return None if found is None else found.text


@pytest.mark.slow
def test_one_plug_in_backs_up_the_whole_library(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """After one plug-in: the CPLAssets originals are in the archive under their original
    names and capture months (the JPEG without EXIF by the library's date in its own zone), the
    edit Photos rendered sits beside its original, sidecars carry the album, the rating and
    Recently Deleted; the originals only in iCloud (one not on the phone, one listed but
    unreadable) are named in status --json and audit --json, status --check warns, and the run
    is complete: the phone holds nothing else it can read."""
    phone = make_library_phone(tmp_path / "phone")
    # Every row of the library is only in its -wal: a reader without the WAL finds none.
    plain = sqlite3.connect(f"file:{phone.library.database}?mode=ro&immutable=1", uri=True)
    assert plain.execute("SELECT count(*) FROM ZASSET").fetchone()[0] == 0
    plain.close()
    config = library_config(tmp_path)
    service = start_service(config=config)
    simulator.add_phone(
        UDID, phone.root, faults=AfcFaults(io_error_after_bytes={OFFLOADED_DCIM: 0})
    )
    finished = service.wait_for("backup_finished", udid=UDID, timeout=120)[0]
    assert finished["outcome"] == "complete", service.tail()
    assert finished["originals_only_in_icloud"] == 2
    read = service.wait_for("library_read", udid=UDID)[0]
    assert (read["outcome"], read["snapshot"], read["assets"]) == ("applied", "copied", 8)
    # The library is copied after the photos of the plug-in: every DCIM file came first.
    order = [event.get("event") for event in service.events]
    copied_at = order.index("library_copied")
    dcim_archived = [
        index
        for index, event in enumerate(service.events)
        if event.get("event") == "file_archived" and event["phone_path"].startswith("/DCIM/")
    ]
    assert dcim_archived and max(dcim_archived) < copied_at

    archive = tmp_path / "archive"
    live = archive / "2022" / "2022-03" / "IMG_7001.HEIC"
    assert hash_file(live) == hash_file(phone.cpl(f"{LIVE_UUID}.HEIC"))
    assert hash_file(live.with_suffix(".MOV")) == hash_file(phone.cpl(f"{LIVE_UUID}.MOV"))
    no_exif = archive / "2021" / "2021-08" / "IMG_7002.JPG"
    assert hash_file(no_exif) == hash_file(phone.cpl(f"{NO_EXIF_UUID}.JPG"))
    render = (
        phone.root / "PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/FullSizeRender.jpg"
    )
    edit = archive / "2023" / "2023-07" / "IMG_E0002.JPG"
    assert hash_file(edit) == hash_file(render)
    assert (archive / "2023" / "2023-07" / "IMG_0002.HEIC").is_file(), "beside its original"

    favourite = archive / "2023" / "2023-07" / "IMG_0001.HEIC.xmp"
    assert rating(favourite) == "5"
    assert ALBUM in sidecar_items(favourite) and f"Albums|{ALBUM}" in sidecar_items(favourite)
    dated = ElementTree.parse(Path(str(no_exif) + ".xmp")).getroot()
    date = dated.find(f".//{{{NAMESPACES['exif']}}}DateTimeOriginal")
    assert date is not None and date.text == "2021-08-15T10:00:00-04:00"
    assert ALBUM in sidecar_items(Path(str(no_exif) + ".xmp"))
    assert "Recently Deleted" in sidecar_items(archive / "2024" / "2024-01" / "IMG_0004.PNG.xmp")
    assert not Path(str(live.with_suffix(".MOV")) + ".xmp").exists(), "originals only"

    store = StateStore.open(tmp_path / "state" / "state.sqlite3", read_only=True)
    try:
        by_name = {entry.name: entry for entry in store.manifest(UDID)}
        assert by_name["IMG_0100.HEIC"].status == "icloud_only"
        [dated_by_library] = store.manifest_repository.find(name_globs=[f"{NO_EXIF_UUID}*"])
        assert dated_by_library.capture_source == "library"
        assert dated_by_library.capture_time == "2021-08-15T10:00:00"
    finally:
        store.close()

    status = json_of(config, simulator, "status", "--json")
    [device] = status["devices"]
    icloud = device["originals_only_in_icloud"]
    assert icloud["count"] == 2
    items = {item["name"]: item for item in icloud["items"]}
    assert set(items) == {"IMG_0100.HEIC", "IMG_7003.HEIC"}
    assert items["IMG_7003.HEIC"]["captured_at"] == "2019-12-24T19:00:00+01:00"
    assert items["IMG_0100.HEIC"]["reason"] == "marked_not_local"
    assert device["library"]["assets"] == 8 and device["library"]["archived"] == 6
    check = run_command(config, simulator, "status", "--check")
    assert check.returncode == 1
    assert check.stdout == "WARNING: 2 originals of iPhone are only in iCloud\n"
    quiet = write_config(tmp_path / "quiet.toml", tmp_path, library={"warn_icloud_only": False})
    silenced = run_command(quiet, simulator, "status", "--check")
    assert silenced.returncode == 0
    assert silenced.stdout == "OK: 1 of 1 phone backed up; 2 originals only in iCloud\n"
    text = run_command(config, simulator, "status").stdout
    assert "6 of 8 photos archived; 2 originals only in iCloud" in text

    audit = json_of(config, simulator, "audit", "--json")
    [audited] = audit["phones"]
    names = [item["name"] for item in audited["originals_only_in_icloud"]["items"]]
    assert names == ["IMG_0100.HEIC", "IMG_7003.HEIC"]
    assert audited["complete"] is True
    assert service.terminate() == 0


def test_a_nothing_new_replug_reads_no_library_and_a_change_rewrites_a_sidecar(
    simulator: SimulatorThread, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """Plugged in again with nothing new, the library's stat is unchanged: not one byte of it
    is read (the only READ is the offloaded original, tried again). A favourite set on the phone
    (a row in the -wal) is copied at the next plug-in and rewrites that photo's sidecar."""
    phone = make_library_phone(tmp_path / "phone")
    config = library_config(tmp_path)
    service = start_service(config=config)
    simulator.add_phone(
        UDID, phone.root, faults=AfcFaults(io_error_after_bytes={OFFLOADED_DCIM: 0})
    )
    service.wait_for("backup_finished", udid=UDID, timeout=120)

    simulator.unplug(UDID)
    service.wait_for("phone_detached", udid=UDID)
    simulator.reset_counts(UDID)
    simulator.plug(UDID)
    second = service.wait_for("backup_finished", count=2, udid=UDID)[1]
    assert second["outcome"] == "complete" and second["files_copied"] == 0
    read = service.wait_for("library_read", count=2, udid=UDID)[1]
    assert read["snapshot"] == "unchanged"
    requests = simulator.afc_request_counts(UDID)
    assert requests["READ"] == 1, requests
    served = simulator.afc_bytes_served(UDID)
    assert not [path for path in served if path.startswith(LIBRARY)], served

    sidecar = tmp_path / "archive" / "2016" / "2016-12" / "IMG_0003.JPG.xmp"
    assert rating(sidecar) is None
    simulator.unplug(UDID)
    service.wait_for("phone_detached", udid=UDID, count=2)
    change_library(
        phone.library,
        [("UPDATE ZASSET SET ZFAVORITE = 1 WHERE ZFILENAME = ?", ("IMG_0003.JPG",))],
    )
    simulator.plug(UDID)
    service.wait_for("backup_finished", count=3, udid=UDID)
    third = service.wait_for("library_read", count=3, udid=UDID)[2]
    assert (third["snapshot"], third["sidecars_written"]) == ("copied", 1)
    assert rating(sidecar) == "5"
    assert service.terminate() == 0


@pytest.mark.parametrize("library", ["corrupt", "missing"])
def test_a_corrupt_or_missing_library_still_backs_up_every_dcim_file(
    simulator: SimulatorThread,
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
    library: str,
) -> None:
    """A Photos.sqlite that is garbage, or none at all, is reported (each reason once), and
    every DCIM file is still backed up: the run is complete."""
    roll = media.make_camera_roll(tmp_path / "phone")
    if library == "corrupt":
        folder = tmp_path / "phone" / "PhotoData"
        folder.mkdir()
        (folder / "Photos.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xa5" * 20_000)
        (folder / "Photos.sqlite-wal").write_bytes(b"\x37\x7f\x06\x82" + b"\x00" * 60)
    config = library_config(tmp_path)
    service = start_service(config=config)
    simulator.add_phone(UDID, roll.root)
    finished = service.wait_for("backup_finished", udid=UDID, timeout=120)[0]
    assert finished["outcome"] == "complete"
    assert finished["files_copied"] == len(roll.files)
    read = service.wait_for("library_read", udid=UDID)[0]
    assert read["outcome"] == "unreadable" and read["detail"]
    # The reason is said once, even where the snapshot and the read give the same one.
    reasons = read["detail"].split("; ")
    assert len(reasons) == len(set(reasons)), read["detail"]
    stored = {path.name for path in (tmp_path / "archive").rglob("*") if path.is_file()}
    assert {item.name for item in roll.files} <= stored
    status = json_of(config, simulator, "status", "--json")
    [device] = status["devices"]
    assert device["library"]["last_read"]["outcome"] == "unreadable"
    assert device["originals_only_in_icloud"]["count"] == 0
    assert service.terminate() == 0
