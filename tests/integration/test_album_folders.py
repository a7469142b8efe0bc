"""Album folders: hard links to archived files, rebuilt as albums change, symbolic links on a
disk without hard links (a real FUSE mount that refuses link(2) as exFAT does)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollkeeper.library.album_folders import AlbumFolders, AlbumOutcome, folder_name
from rollkeeper.store import StateStore
from tests.reliability.power_cut_disk import PowerCutDisk, require_fuse


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(tmp_path / "state" / "state.sqlite3")
    yield opened
    opened.close()


def rebuild(archive: Path, store: StateStore, albums: dict[str, set[str]]) -> AlbumOutcome:
    """One rebuild as the library step runs it: the links made before from the state, the
    changes recorded back."""
    links = store.sidecar_repository
    outcome = AlbumFolders(archive).rebuild(albums, links.album_links())
    links.record_album_links(outcome.recorded, outcome.forgotten)
    return outcome


def archived(root: Path, *relatives: str) -> None:
    for relative in relatives:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(relative.encode())


def test_albums_become_folders_of_hard_links_rebuilt_when_they_change(
    tmp_path: Path, store: StateStore
) -> None:
    """Each album is a folder of hard links (same file, no copy); a photo leaving an album
    loses its link, an emptied album its folder, and the archived files stay; a file the user
    put under Albums/ is never touched."""
    archive = tmp_path / "archive"
    archived(archive, "2023/2023-07/IMG_0001.HEIC", "2024/2024-01/IMG_0001.HEIC", "2024/x/B.JPG")
    first = rebuild(
        archive,
        store,
        {
            "2023/2023-07/IMG_0001.HEIC": {"Trip/Rome"},
            "2024/2024-01/IMG_0001.HEIC": {"Trip/Rome"},
            "2024/x/B.JPG": {"Family"},
        },
    )
    assert first.linked == 3 and first.problem == ""
    rome = archive / "Albums" / "Trip_Rome"
    assert sorted(os.listdir(rome)) == ["IMG_0001.HEIC", "IMG_0001~2.HEIC"]
    assert os.path.samefile(rome / "IMG_0001.HEIC", archive / "2023/2023-07/IMG_0001.HEIC")
    mine = archive / "Albums" / "Family" / "my notes.txt"
    mine.write_text("mine")
    second = rebuild(
        archive, store, {"2023/2023-07/IMG_0001.HEIC": {"Trip/Rome"}, "2024/x/B.JPG": set()}
    )
    assert second.removed == 2 and second.kept == 1
    assert sorted(os.listdir(rome)) == ["IMG_0001.HEIC"]
    assert mine.read_text() == "mine"
    assert (archive / "2024/x/B.JPG").read_bytes() == b"2024/x/B.JPG"
    rebuild(archive, store, {})
    assert not rome.exists() and mine.exists()


def test_titles_become_safe_folder_names() -> None:
    """Separators, leading dots, control characters and over-long titles cannot make a path."""
    assert folder_name("../../etc") == "_.._etc"
    assert folder_name(".hidden") == "hidden"
    assert folder_name("\x00\x01") == "Untitled"
    assert len(folder_name("é" * 400).encode()) <= 255


def test_a_disk_without_hard_links_gets_symbolic_links(tmp_path: Path, store: StateStore) -> None:
    """On a file system that refuses link(2) (as exFAT and FAT do), the album folder holds
    relative symbolic links to the archived files instead."""
    require_fuse()
    with PowerCutDisk(tmp_path / "fuse", hard_links=False) as disk:
        archive = disk.mount_point / "archive"
        archived(archive, "2023/2023-07/IMG_0001.HEIC")
        outcome = rebuild(archive, store, {"2023/2023-07/IMG_0001.HEIC": {"Trip"}})
        link = archive / "Albums" / "Trip" / "IMG_0001.HEIC"
        assert outcome.linked == 1 and link.is_symlink()
        assert os.readlink(link) == "../../2023/2023-07/IMG_0001.HEIC"
        assert link.read_bytes() == b"2023/2023-07/IMG_0001.HEIC"
