"""``rollkeeper adopt`` on real folders, against a real state database."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rollkeeper.cli import main
from rollkeeper.importer.hashing import HASH_ALGORITHM, hash_file
from rollkeeper.store import StateStore


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(config file, archive root, state file)."""
    root = tmp_path / "archive"
    root.mkdir()
    state = tmp_path / "state" / "state.sqlite3"
    config = tmp_path / "config.toml"
    config.write_text(f'[archive]\npath = "{root}"\n\n[state]\npath = "{state}"\n')
    return config, root, state


def run(
    config: Path, capsys: pytest.CaptureFixture[str], *arguments: str
) -> tuple[int, dict[str, Any]]:
    code = main(["--config", str(config), *arguments, "--json"])
    captured = capsys.readouterr()
    assert captured.err == ""
    return code, json.loads(captured.out)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under a folder with its bytes and modification time."""
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_half_the_photos_under_other_names_are_adopted_and_nothing_moves(
    paths: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Adopting a folder records each media file in place by absolute path and hash, touches none of
    its files, skips what is not media, and lets the importer find exactly the adopted contents
    by hash."""
    config, _, state = paths
    phone_photos = {f"IMG_{number:04d}.HEIC": os.urandom(20_000 + number) for number in range(6)}
    copied = tmp_path / "Pictures from 2019"
    layout = ["holiday/beach 1.heic", "holiday/deeper/x.HEIC", "misc/copy of IMG_0004.HEIC"]
    kept = list(phone_photos.values())[::2]  # half of the set, under other names
    for relative, content in zip(layout, kept, strict=True):
        (copied / relative).parent.mkdir(parents=True, exist_ok=True)
        (copied / relative).write_bytes(content)
    (copied / "notes.txt").write_text("not a photo")
    before = snapshot(copied)

    code, report = run(config, capsys, "adopt", str(copied))

    assert code == 0
    assert report["adopted"] == 3 and report["not_media"] == 1
    assert report["bytes_adopted"] == sum(len(content) for content in kept)
    assert snapshot(copied) == before  # nothing moved, renamed or touched
    store = StateStore.open(state)
    for relative, content in zip(layout, kept, strict=True):
        # Outside the archive folder, so recorded by absolute path.
        entry = store.archive_entry(str((copied / relative).resolve()))
        assert entry is not None
        assert entry.origin == "adopted"
        assert entry.hash_algorithm == HASH_ALGORITHM
        assert entry.size == len(content)
        assert entry.content_hash == hash_file(copied / relative)
    # The importer's dedup lookup finds the adopted half by content, and only that half.
    from rollkeeper.importer.hashing import new_hasher

    def content_hash(content: bytes) -> str:
        hasher = new_hasher()
        hasher.update(content)
        return hasher.hexdigest()

    found = {
        name
        for name, content in phone_photos.items()
        if store.archive_entry_by_hash(content_hash(content)) is not None
    }
    assert found == {"IMG_0000.HEIC", "IMG_0002.HEIC", "IMG_0004.HEIC"}


def test_adopting_again_adds_nothing_and_rehashes_nothing(
    paths: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Adopting a folder again adds only the file new since and counts the others as already
    indexed."""
    config, _, state = paths
    folder = tmp_path / "old"
    folder.mkdir()
    for number in range(4):
        (folder / f"DSC_{number}.JPG").write_bytes(os.urandom(1_000))
    run(config, capsys, "adopt", str(folder))
    (folder / "DSC_9.JPG").write_bytes(b"new since")
    code, report = run(config, capsys, "adopt", str(folder))
    assert code == 0
    assert report["adopted_paths"] == [str((folder / "DSC_9.JPG").resolve())]
    assert report["already_indexed"] == 4
    assert StateStore.open(state).archive_size()[0] == 5


def test_adopting_inside_the_archive_records_relative_paths_and_ends_untracked(
    paths: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Adopting the archive folder itself records its untracked files by relative path, ignores the
    work folder, and leaves verify with nothing untracked."""
    config, root, state = paths
    (root / "2018 by hand").mkdir()
    (root / "2018 by hand/IMG_0420.JPG").write_bytes(b"jpeg")
    (root / ".rollkeeper/partial").mkdir(parents=True)
    (root / ".rollkeeper/partial/IMG_9.HEIC.partial").write_bytes(b"half a file")
    code, report = run(config, capsys, "verify")
    assert report["untracked"] == ["2018 by hand/IMG_0420.JPG"]

    code, report = run(config, capsys, "adopt", str(root))

    assert code == 0
    assert report["adopted_paths"] == ["2018 by hand/IMG_0420.JPG"]
    entry = StateStore.open(state).archive_entry("2018 by hand/IMG_0420.JPG")
    assert entry is not None and entry.origin == "adopted"
    code, report = run(config, capsys, "verify")
    assert code == 0 and report["untracked"] == [] and report["matched"] == 1


def test_adopt_never_papers_over_damage_to_a_file_already_recorded(
    paths: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """adopt does not re-record a recorded file whose size changed: it reports a size conflict,
    exits 1 and keeps the recorded hash, so verify still reports the damage."""
    config, root, state = paths
    store = StateStore.open(state)
    stored = root / "2024/2024-01/IMG_0001.HEIC"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"original content")
    entry = store.observe_file("U1", "/DCIM/100APPLE", "IMG_0001.HEIC", 16, 1, 1)
    original_hash = hash_file(stored)
    store.record_archived(
        entry.id,
        relative_path="2024/2024-01/IMG_0001.HEIC",
        content_hash=original_hash,
        hash_algorithm=HASH_ALGORITHM,
        size=16,
        origin="backup",
        capture_time=None,
        capture_source=None,
    )
    stored.write_bytes(b"damaged, and longer than before")

    code, report = run(config, capsys, "adopt", str(root))

    assert code == 1
    assert report["size_conflicts"] == ["2024/2024-01/IMG_0001.HEIC"]
    after = store.archive_entry("2024/2024-01/IMG_0001.HEIC")
    assert after is not None
    assert (after.origin, after.content_hash, after.size) == ("backup", original_hash, 16)
    code, report = run(config, capsys, "verify")
    assert code == 1 and len(report["changed"]) == 1


def test_symlinks_are_not_followed(
    paths: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """adopt follows no symlink, to a file or to a folder; only the real files are adopted."""
    config, _, _ = paths
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "IMG_1.JPG").write_bytes(b"not under the folder")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "linked-dir").symlink_to(elsewhere, target_is_directory=True)
    (folder / "linked.JPG").symlink_to(elsewhere / "IMG_1.JPG")
    (folder / "real.JPG").write_bytes(b"real")
    code, report = run(config, capsys, "adopt", str(folder))
    assert code == 0
    assert report["adopted_paths"] == [str((folder / "real.JPG").resolve())]


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_path_that_is_not_a_folder_is_one_clear_error(
    paths: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A missing path or a file given to adopt is one clear error line with exit code 2, and no
    state database is created."""
    config, _, state = paths
    target = tmp_path / "target"
    if kind == "file":
        target.write_bytes(b"a file")
    code = main(["--config", str(config), "adopt", str(target)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith(f"rollkeeper: {target}: ")
    assert len(captured.err.strip().splitlines()) == 1
    assert not state.exists()
