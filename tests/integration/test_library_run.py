"""The library part of a backup run, in process, against the simulator over pymobiledevice3
with a real state database and archive: what each library situation does to the run."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from rollkeeper.cli import main
from rollkeeper.device.session import SessionSettings
from rollkeeper.importer.job import BackupSettings, RunResult
from rollkeeper.importer.settings import LibraryRunSettings
from rollkeeper.service.phone_backup import back_up_phone
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from rollkeeper.store import StateStore
from tests import media
from tests.library_phone import ALBUM, OFFLOADED_DCIM, make_library_phone
from tests.photos_library import Asset, add_assets, asset_table, change_library

UDID = "00008110-00BB0000000000C3"
LAYOUT = "{year}/{year}-{month}/{name}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(tmp_path / "state" / "state.sqlite3")
    yield opened
    opened.close()


def settings(tmp_path: Path, **library: object) -> BackupSettings:
    archive = tmp_path / "archive"
    archive.mkdir(exist_ok=True)
    options = LibraryRunSettings(snapshot_root=tmp_path / "state" / "library", refresh_hours=0)
    return BackupSettings(archive, LAYOUT, library=replace(options, **library))  # type: ignore[arg-type]


def write_test_config(tmp_path: Path) -> Path:
    """A config naming this test's archive, state and pairing folder (for the commands)."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[archive]\npath = "{tmp_path / "archive"}"\n\n'
        f'[state]\npath = "{tmp_path / "state" / "state.sqlite3"}"\n\n'
        f'[device]\npairing_dir = "{tmp_path / "pairing"}"\n'
    )
    return config


async def back_up(
    simulator: SimulatorThread, store: StateStore, tmp_path: Path, backup: BackupSettings
) -> RunResult:
    session = SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pairing")
    turn = await back_up_phone(UDID, store, session, backup)
    assert turn.result is not None
    return turn.result


@pytest.mark.parametrize("generation", ["ios13", "ios16"])
async def test_both_schema_generations_back_up_the_same_library(
    simulator: SimulatorThread, store: StateStore, tmp_path: Path, generation: str
) -> None:
    """An iOS 13 (ZGENERICASSET) and an iOS 16 (ZASSET) library give the same archive: the
    iCloud originals under their names, the edit, the sidecars; and the run is complete."""
    phone = make_library_phone(tmp_path / "phone", generation=generation)
    simulator.add_phone(
        UDID, phone.root, faults=AfcFaults(io_error_after_bytes={OFFLOADED_DCIM: 0})
    )
    result = await back_up(simulator, store, tmp_path, settings(tmp_path))
    assert result.complete, result
    assert result.library is not None and result.library.outcome == "applied"
    assert result.originals_only_in_icloud == 2
    archive = tmp_path / "archive"
    for relative in (
        "2022/2022-03/IMG_7001.HEIC",
        "2022/2022-03/IMG_7001.MOV",
        "2021/2021-08/IMG_7002.JPG",
        "2021/2021-08/IMG_7002.JPG.xmp",
        "2023/2023-07/IMG_E0002.JPG",
        "2023/2023-07/IMG_0001.HEIC.xmp",
    ):
        assert (archive / relative).is_file(), relative
    assert asset_table(phone.library) in store.library_repository.last_read(UDID).generation  # type: ignore[union-attr]


async def test_a_suspect_read_changes_no_sidecar_and_keeps_the_last_applied_read(
    simulator: SimulatorThread, store: StateStore, tmp_path: Path
) -> None:
    """A library whose album memberships all vanish at once (more than 5 % of 12 sidecars,
    at least 10) is refused: the sidecars keep their albums, the state keeps the last applied
    read, status is told; set to 100 %, the same read is applied."""
    phone = make_library_phone(tmp_path / "phone")
    names = [f"IMG_{number:04d}.JPG" for number in range(200, 212)]
    folder = phone.root / "DCIM" / "100APPLE"
    for name in names:
        media.make_jpeg(folder / name, None)
    add_assets(
        phone.library,
        [Asset(f"EXTRA-{name}", "DCIM/100APPLE", name, name, albums=["Party"]) for name in names],
    )
    simulator.add_phone(
        UDID, phone.root, faults=AfcFaults(io_error_after_bytes={OFFLOADED_DCIM: 0})
    )
    first = await back_up(simulator, store, tmp_path, settings(tmp_path))
    assert first.library is not None and first.library.outcome == "applied"
    sidecar = next((tmp_path / "archive").rglob("IMG_0200.JPG.xmp"))
    before = sidecar.read_bytes()
    assert b"Party" in before

    change_library(phone.library, [("DELETE FROM Z_28ASSETS", ())])
    second = await back_up(simulator, store, tmp_path, settings(tmp_path))
    assert second.library is not None and second.library.outcome == "suspect"
    assert second.complete, "a suspect read is about sidecars, not the backup"
    output = tmp_path / "check.txt"
    with output.open("w") as stream, contextlib.redirect_stdout(stream):
        main(["--config", str(write_test_config(tmp_path)), "status", "--check"])
    assert "read of iPhone would have removed albums or favourites" in output.read_text()
    assert sidecar.read_bytes() == before
    stored = store.library_repository.asset_at(UDID, "/DCIM/100APPLE", "IMG_0200.JPG")
    assert stored is not None and stored.albums == ("Party",)

    third = await back_up(
        simulator, store, tmp_path, settings(tmp_path, max_sidecar_drop_percent=100.0)
    )
    assert third.library is not None and third.library.outcome == "applied"
    assert b"Party" not in sidecar.read_bytes()
    assert (
        store.sidecar_repository.sidecar_versions(
            str(sidecar.relative_to(tmp_path / "archive"))[: -len(".xmp")]
        )
        == 2
    )


async def test_album_folders_and_a_library_without_albums(
    simulator: SimulatorThread, store: StateStore, tmp_path: Path
) -> None:
    """With album_folders on, the album is a folder of hard links to its archived photos; a
    later library that has lost its album tables leaves sidecars and the state's albums alone."""
    phone = make_library_phone(tmp_path / "phone")
    simulator.add_phone(
        UDID, phone.root, faults=AfcFaults(io_error_after_bytes={OFFLOADED_DCIM: 0})
    )
    await back_up(simulator, store, tmp_path, settings(tmp_path, album_folders=True))
    album = tmp_path / "archive" / "Albums" / ALBUM
    assert sorted(os.listdir(album)) == ["IMG_0001.HEIC", "IMG_7002.JPG"]
    original = tmp_path / "archive/2021/2021-08/IMG_7002.JPG"
    assert (album / "IMG_7002.JPG").stat().st_ino == original.stat().st_ino
    sidecar = tmp_path / "archive" / "2023" / "2023-07" / "IMG_0001.HEIC.xmp"
    before = sidecar.read_bytes()

    change_library(phone.library, [("DROP TABLE ZGENERICALBUM", ())])
    later = await back_up(simulator, store, tmp_path, settings(tmp_path, album_folders=True))
    assert later.library is not None and later.library.outcome == "applied"
    assert any(reason.startswith("albums:") for reason in later.library.degraded)
    assert sidecar.read_bytes() == before


async def test_a_refused_icloud_folder_makes_the_run_incomplete(
    simulator: SimulatorThread, store: StateStore, tmp_path: Path
) -> None:
    """A CPLAssets folder the phone refuses to list may hold originals: the run says so and is
    not complete; nothing in it is taken for deleted."""
    phone = make_library_phone(tmp_path / "phone")
    faults = AfcFaults(
        io_error_after_bytes={OFFLOADED_DCIM: 0},
        permission_denied={"/PhotoData/CPLAssets/group5"},
    )
    simulator.add_phone(UDID, phone.root, faults=faults)
    result = await back_up(simulator, store, tmp_path, settings(tmp_path))
    assert result.outcome == "incomplete"
    assert "/PhotoData/CPLAssets/group5" in result.error
    assert not (tmp_path / "archive" / "2022" / "2022-03").exists()


async def test_freeable_holds_back_the_favourites_the_library_names(
    simulator: SimulatorThread, store: StateStore, tmp_path: Path
) -> None:
    """Once a library read is applied, `rollkeeper freeable` knows the favourites: the favourite
    Live Photo is held back as a favourite (with its video), and it no longer says favourites
    are unknown."""
    phone = make_library_phone(tmp_path / "phone")
    simulator.add_phone(
        UDID, phone.root, faults=AfcFaults(io_error_after_bytes={OFFLOADED_DCIM: 0})
    )
    result = await back_up(simulator, store, tmp_path, settings(tmp_path))
    assert result.complete
    config = write_test_config(tmp_path)
    output = tmp_path / "freeable.json"
    with output.open("w") as stream, contextlib.redirect_stdout(stream):
        assert main(["--config", str(config), "freeable", "--json"]) == 0
    document = json.loads(output.read_text())
    assert document["favourites_known"] is True
    assert document["held_back"].get("favourite") == 1
    listed = {file["phone_path"] for asset in document["assets"] for file in asset["files"]}
    assert "/DCIM/100APPLE/IMG_0001.HEIC" not in listed
    assert "/DCIM/100APPLE/IMG_0003.JPG" in listed
