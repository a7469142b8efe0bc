"""``rollkeeper verify`` against a real archive folder and a real state database."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollkeeper.archive.verify import (
    CHANGED,
    MISSING,
    archive_is_reachable,
    check_entries,
    check_entry,
)
from rollkeeper.cli import main
from rollkeeper.importer.hashing import HASH_ALGORITHM, hash_file
from rollkeeper.store import StateStore
from tests.archive_helpers import LONG_AGO, archive_file


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, StateStore]:
    """(config file, archive root, open store) with three archived files."""
    root = tmp_path / "archive"
    state = tmp_path / "state" / "state.sqlite3"
    root.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[archive]\npath = "{root}"\n\n[state]\npath = "{state}"\n')
    store = StateStore.open(state)
    archive_file(store, root, "2024/2024-07/IMG_0001.HEIC", os.urandom(70_000))
    archive_file(store, root, "2024/2024-07/IMG_0001.MOV", os.urandom(150_000))
    archive_file(store, root, "2024/2024-08/IMG_0002.JPG", os.urandom(9_000))
    return config, root, store


def run_verify(
    config: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, object]]:
    code = main(["--config", str(config), "verify", "--json", *extra])
    captured = capsys.readouterr()
    # --json keeps stdout pure JSON and draws no progress bar.
    assert captured.err == ""
    return code, json.loads(captured.out)


def test_an_intact_archive_verifies_and_is_stamped(
    setup: tuple[Path, Path, StateStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """An intact archive verifies with every file matched and its bytes counted, and each entry is
    stamped as verified now."""
    config, _, store = setup
    code, report = run_verify(config, capsys, "--all")
    assert code == 0
    assert report["ok"] is True
    assert report["checked"] == 3 and report["matched"] == 3
    assert report["bytes_checked"] == 70_000 + 150_000 + 9_000
    assert report["missing"] == [] and report["changed"] == [] and report["untracked"] == []
    for entry in store.archive_entries():
        assert entry.verified_at is not None
        assert datetime.fromisoformat(entry.verified_at) > LONG_AGO + timedelta(days=1)


def test_a_flipped_byte_is_reported_changed_and_the_file_is_left_alone(
    setup: tuple[Path, Path, StateStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """A flipped byte is reported as changed with both hashes, the file is left exactly as it was,
    and its entry keeps its old verified stamp."""
    config, root, store = setup
    damaged = root / "2024/2024-07/IMG_0001.MOV"
    content = bytearray(damaged.read_bytes())
    content[75_321] ^= 0x01
    damaged.write_bytes(bytes(content))
    mtime_before = damaged.stat().st_mtime_ns

    code, report = run_verify(config, capsys)

    assert code == 1
    assert report["ok"] is False
    changed = report["changed"]
    assert isinstance(changed, list) and len(changed) == 1
    assert changed[0]["path"] == "2024/2024-07/IMG_0001.MOV"
    assert changed[0]["detail"] == "hash differs"
    assert changed[0]["actual_hash"] == hash_file(damaged) != changed[0]["expected_hash"]
    assert report["matched"] == 2
    # verify never writes the archive: same bytes, same modification time.
    assert damaged.read_bytes() == bytes(content)
    assert damaged.stat().st_mtime_ns == mtime_before
    # The damaged file keeps its old verified_at so the scrub keeps it first in line.
    entry = store.archive_entry("2024/2024-07/IMG_0001.MOV")
    assert entry is not None and entry.verified_at is not None
    assert datetime.fromisoformat(entry.verified_at) == LONG_AGO


def test_a_truncated_file_is_changed_without_being_hashed(
    setup: tuple[Path, Path, StateStore],
) -> None:
    """A truncated file is reported as changed by its size, without being hashed."""
    _, root, store = setup
    path = root / "2024/2024-08/IMG_0002.JPG"
    path.write_bytes(path.read_bytes()[:100])
    entry = store.archive_entry("2024/2024-08/IMG_0002.JPG")
    assert entry is not None
    check = check_entry(root, entry)
    assert check.outcome == CHANGED
    assert check.detail == "size differs"
    assert check.actual_size == 100 and check.actual_hash is None


def test_a_deleted_file_is_reported_missing(
    setup: tuple[Path, Path, StateStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """A deleted file is reported missing, and nothing as changed."""
    config, root, _ = setup
    (root / "2024/2024-07/IMG_0001.HEIC").unlink()
    code, report = run_verify(config, capsys)
    assert code == 1
    missing = report["missing"]
    assert isinstance(missing, list)
    assert [item["path"] for item in missing] == ["2024/2024-07/IMG_0001.HEIC"]
    assert report["changed"] == []


def test_a_file_where_a_folder_should_be_makes_its_files_missing(
    setup: tuple[Path, Path, StateStore],
) -> None:
    """A file where a folder should be makes the files recorded in that folder missing."""
    _, root, store = setup
    folder = root / "2024/2024-08"
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()
    folder.write_bytes(b"not a folder")
    entry = store.archive_entry("2024/2024-08/IMG_0002.JPG")
    assert entry is not None
    assert check_entry(root, entry).outcome == MISSING


def test_untracked_files_are_reported_but_are_not_damage(
    setup: tuple[Path, Path, StateStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """Files nobody recorded are reported as untracked without failing verify; the work folder, OS
    clutter and symlinks are never reported."""
    config, root, _ = setup
    (root / "2024/2024-07/copied by hand.jpg").write_bytes(b"\xff\xd8 hand copy")
    (root / "old").mkdir()
    (root / "old/IMG_5000.HEIC").write_bytes(b"older")
    # Never reported: the importer's working folder, OS clutter, symlinks.
    (root / ".rollkeeper" / "partial").mkdir(parents=True)
    (root / ".rollkeeper/partial/IMG_0003.HEIC.partial").write_bytes(b"half")
    (root / "2024/.DS_Store").write_bytes(b"finder")
    (root / "2024/2024-07/._IMG_0001.HEIC").write_bytes(b"appledouble")
    (root / "link.HEIC").symlink_to(root / "2024/2024-07/IMG_0001.HEIC")

    code, report = run_verify(config, capsys)

    assert code == 0
    assert report["untracked"] == ["2024/2024-07/copied by hand.jpg", "old/IMG_5000.HEIC"]


def test_sample_checks_that_many_files(
    setup: tuple[Path, Path, StateStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """--sample N checks N files, and the exit code follows what those found."""
    config, root, _ = setup
    (root / "2024/2024-07/IMG_0001.HEIC").unlink()
    code, report = run_verify(config, capsys, "--sample", "2")
    assert report["checked"] == 2
    # Whichever two were drawn, the exit status follows what was found.
    assert code == (1 if report["missing"] else 0)


def test_since_checks_files_stored_since_that_day(
    setup: tuple[Path, Path, StateStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """--since checks only the files stored since that day."""
    config, root, store = setup
    archive_file(store, root, "2025/2025-03/IMG_0100.PNG", b"recent", now=datetime.now(UTC))
    code, report = run_verify(config, capsys, "--since", "2024-01-01")
    assert code == 0
    assert report["checked"] == 1 and report["bytes_checked"] == len(b"recent")


def test_text_report_names_each_problem(
    setup: tuple[Path, Path, StateStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """The text report names each missing and changed file by its full path, with the reason, and
    how many files were checked."""
    config, root, _ = setup
    (root / "2024/2024-08/IMG_0002.JPG").write_bytes(b"replaced by an editor")
    (root / "2024/2024-07/IMG_0001.HEIC").unlink()
    code = main(["--config", str(config), "verify"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"MISSING    {root / '2024/2024-07/IMG_0001.HEIC'}" in out
    assert f"CHANGED    {root / '2024/2024-08/IMG_0002.JPG'} (size differs)" in out
    assert "Checked 3 files" in out


def test_an_adopted_file_outside_the_archive_is_verified_by_its_absolute_path(
    setup: tuple[Path, Path, StateStore], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An adopted file outside the archive is verified at its absolute path, and reported missing
    once it is gone."""
    config, _, store = setup
    outside = tmp_path / "old-phone-copy" / "DSC_0001.JPG"
    outside.parent.mkdir()
    outside.write_bytes(b"adopted long ago")
    store.add_archive_entry(
        str(outside), hash_file(outside), HASH_ALGORITHM, outside.stat().st_size, "adopted"
    )
    code, report = run_verify(config, capsys)
    assert code == 0 and report["matched"] == 4
    outside.unlink()
    code, report = run_verify(config, capsys)
    missing = report["missing"]
    assert code == 1 and isinstance(missing, list)
    assert [item["path"] for item in missing] == [str(outside)]


@pytest.mark.parametrize("mount_point", ["gone", "empty"])
def test_an_unmounted_archive_is_one_clear_error(
    setup: tuple[Path, Path, StateStore], capsys: pytest.CaptureFixture[str], mount_point: str
) -> None:
    """An archive folder that is gone or empty (an unmounted disk) is one error line saying how many
    files were not checked, with exit code 2."""
    config, root, _ = setup
    assert archive_is_reachable(root)
    root.rename(root.with_name("archive-elsewhere"))
    if mount_point == "empty":
        root.mkdir()  # what an unmounted disk leaves behind: an empty mount point
    assert not archive_is_reachable(root)
    code = main(["--config", str(config), "verify"])
    captured = capsys.readouterr()
    assert code == 2
    assert (
        "missing, empty or unreadable (is its disk mounted?); 3 archived files were not checked"
        in (captured.err)
    )
    assert len(captured.err.strip().splitlines()) == 1


def test_no_state_yet_is_not_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """verify with no state database yet lists the untracked files, exits 0 and creates no
    database."""
    root = tmp_path / "archive"
    root.mkdir()
    (root / "IMG_0001.HEIC").write_bytes(b"copied by hand")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[archive]\npath = "{root}"\n\n[state]\npath = "{tmp_path / "none" / "s.sqlite3"}"\n'
    )
    code, report = run_verify(config, capsys)
    assert code == 0
    assert report["untracked"] == ["IMG_0001.HEIC"]
    assert not (tmp_path / "none" / "s.sqlite3").exists()


def test_a_broken_config_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken config makes verify fail with one error saying so, exit code 2 and no traceback."""
    config = tmp_path / "config.toml"
    config.write_text("[archive]\npath = 12\n")
    code = main(["--config", str(config), "verify"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("rollkeeper: the config cannot be used:")
    assert "Traceback" not in captured.err


def test_progress_moves_per_chunk_and_ends_at_the_recorded_total(
    setup: tuple[Path, Path, StateStore],
) -> None:
    """Progress moves per 4 MiB chunk and ends at the recorded total, missing and resized files
    counted without being read."""
    _, root, store = setup
    archive_file(store, root, "2024/2024-09/IMG_0003.MOV", os.urandom(9 * 1024 * 1024))
    (root / "2024/2024-07/IMG_0001.HEIC").unlink()  # missing: never read
    (root / "2024/2024-08/IMG_0002.JPG").write_bytes(b"short")  # size differs: never read
    entries = store.archive_entries()
    steps: list[int] = []
    checks = check_entries(root, entries, steps.append)
    assert [check.outcome for check in checks] == [MISSING, "ok", CHANGED, "ok"]
    assert sum(steps) == sum(entry.size for entry in entries)
    assert steps.count(4 * 1024 * 1024) == 2  # the 9 MiB video moved the bar three times


def test_odd_file_names_print_escaped_on_one_line(
    setup: tuple[Path, Path, StateStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """An untracked file's odd name prints escaped, on one line."""
    config, root, _ = setup
    (root / "2024/evil\x1b[2J\nname.jpg").write_bytes(b"x")
    code = main(["--config", str(config), "verify"])
    out = capsys.readouterr().out
    assert code == 0
    assert "\x1b" not in out
    assert f"UNTRACKED  {root}/2024/evil\\x1b[2J\\x0aname.jpg\n" in out


def test_files_adopted_from_elsewhere_verify_while_the_archive_is_still_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files adopted from elsewhere verify while the archive is still empty, which is not taken for
    an unmounted disk."""
    root = tmp_path / "archive"
    root.mkdir()
    state = tmp_path / "state.sqlite3"
    config = tmp_path / "config.toml"
    config.write_text(f'[archive]\npath = "{root}"\n\n[state]\npath = "{state}"\n')
    outside = tmp_path / "old" / "IMG_0001.JPG"
    outside.parent.mkdir()
    outside.write_bytes(b"copied before rollkeeper")
    store = StateStore.open(state)
    store.add_archive_entry(str(outside), hash_file(outside), HASH_ALGORITHM, 24, "adopted")
    code, report = run_verify(config, capsys)
    assert code == 0 and report["matched"] == 1
