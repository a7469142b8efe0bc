"""The archive identity check and the presence check on real folders and a real SQLite file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollkeeper.archive.boundary import ArchiveGoneError, make_archive_folders
from rollkeeper.archive.identity import (
    ArchiveGuard,
    check_archive,
    filesystem_identity,
    filesystems_differ,
    marker_path,
    may_create_implicitly,
    record,
    write_marker,
)
from rollkeeper.archive.presence import check_presence
from rollkeeper.archive.setup import initialise_archive
from rollkeeper.domain.archive_state import ArchiveProblem, ArchiveState, archive_problem_words
from rollkeeper.store import StateStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(tmp_path / "state.sqlite3")
    try:
        yield opened
    finally:
        opened.close()


def test_the_first_run_may_create_only_under_home_or_an_existing_folder(tmp_path: Path) -> None:
    """Under the home (parent on the home's disk) the first run may create the archive; under a
    removable-media root never; elsewhere only a folder that already exists."""
    home = tmp_path / "home"
    home.mkdir()
    assert may_create_implicitly(home / "Pictures" / "rollkeeper", home)
    assert not may_create_implicitly(Path("/media/ann/disk/photos"), home)
    assert not may_create_implicitly(Path("/Volumes/Photos"), home)
    elsewhere = tmp_path / "srv" / "photos"
    assert not may_create_implicitly(elsewhere, home)
    elsewhere.mkdir(parents=True)
    assert may_create_implicitly(elsewhere, home)


def test_a_guarded_first_run_marks_the_folder_and_a_second_finds_it(
    tmp_path: Path, store: StateStore
) -> None:
    """A writing check of a new archive writes the marker and records its id; the next check
    finds the same archive; status's read-only check of a new state writes nothing."""
    archive = tmp_path / "archive"
    archive.mkdir()
    guard = ArchiveGuard(archive, home=tmp_path / "nohome")
    looked = guard.check(store.archive_truth)
    assert looked.problem is ArchiveProblem.NEW and not marker_path(archive).exists()
    made = guard.check(store.archive_truth, writing=True)
    assert made.available and marker_path(archive).exists()
    again = guard.check(store.archive_truth)
    assert again.available and again.archive_id == made.archive_id


def test_missing_root_missing_marker_other_id_and_other_disk_are_told_apart(
    tmp_path: Path, store: StateStore
) -> None:
    """Each way the archive is not the recorded one is its own problem, in its own words."""
    archive = tmp_path / "disk" / "photos"
    archive.mkdir(parents=True)
    marker = write_marker(archive)
    record(store.archive_truth, archive, marker)
    truth = store.archive_truth

    def state() -> ArchiveState:
        return check_archive(archive, truth.recorded_identity(), [])

    assert state().available
    document = json.loads(marker_path(archive).read_text())
    document["archive_id"] = "other"
    marker_path(archive).write_text(json.dumps(document))
    assert state().problem is ArchiveProblem.OTHER_ARCHIVE
    assert "another archive (id other" in state().reason
    marker_path(archive).unlink()
    assert state().problem is ArchiveProblem.MISSING_MARKER
    assert "is the disk mounted?" in state().reason
    os.rmdir(archive / ".rollkeeper")
    archive.rmdir()
    missing = state()
    assert missing.problem is ArchiveProblem.MISSING_ROOT and not missing.parent_missing
    assert missing.reason == f"archive {archive} not found: is the disk mounted?"
    archive.mkdir()
    write_marker(archive, marker.archive_id)
    truth.record_identity(marker.archive_id, str(archive), "dev:8:17", "x")
    assert state().available, "a device number may change between mounts: not a refusal"
    if filesystem_identity(archive).startswith("uuid:"):
        truth.record_identity(marker.archive_id, str(archive), "uuid:some-other-disk", "x")
        moved = state()
        assert moved.problem is ArchiveProblem.OTHER_FILESYSTEM
        assert "another disk" in moved.reason


def test_only_two_different_uuids_are_another_disk() -> None:
    """A UUID against another UUID is another disk; device numbers and file system ids,
    which change from mount to mount, never refuse a matching marker."""
    assert filesystems_differ("uuid:2c1d-77aa", "uuid:9f00-1234")
    assert not filesystems_differ("uuid:2c1d-77aa", "uuid:2c1d-77aa")
    assert not filesystems_differ("dev:0:51", "dev:0:52")
    assert not filesystems_differ("uuid:2c1d-77aa", "fsid:1234")


def test_permission_denied_is_not_called_missing(tmp_path: Path) -> None:
    """EACCES on the way to the archive is "not allowed", with the fix, never "not found"
    (as root, asked by a child process without CAP_DAC_OVERRIDE: root is never denied)."""
    locked = tmp_path / "locked"
    archive = locked / "photos"
    archive.mkdir(parents=True)
    tmp_path.chmod(0o755)
    locked.chmod(0)
    code = (
        "import sys; from pathlib import Path\n"
        "from rollkeeper.archive.identity import check_archive\n"
        f"state = check_archive(Path({str(archive)!r}), None, ['2024/IMG_1.HEIC'])\n"
        "print(state.problem.value); print(state.reason)\n"
    )
    try:
        if os.geteuid() == 0:
            # Root reads any folder (CAP_DAC_OVERRIDE): the check runs in a root process whose
            # capabilities leave those two out (util-linux's setpriv), which gets EACCES as the
            # user's service would.
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("root, and no setpriv to run the check without CAP_DAC_OVERRIDE")
            answer = subprocess.run(
                [
                    setpriv,
                    "--bounding-set=-dac_override,-dac_read_search",
                    "--",
                    sys.executable,
                    "-c",
                    code,
                ],
                capture_output=True,
                text=True,
                check=False,
                cwd="/",
            )
            assert answer.returncode == 0, answer.stderr
            problem, reason = answer.stdout.splitlines()[:2]
        else:
            state = check_archive(archive, None, ["2024/IMG_1.HEIC"])
            problem, reason = (state.problem.value if state.problem else ""), state.reason
    finally:
        locked.chmod(0o700)
    assert problem == ArchiveProblem.NOT_ALLOWED.value
    assert "not found" not in reason and "access" in reason


def test_the_not_allowed_words_say_the_fix() -> None:
    """macOS's removable-volume privacy block is said with the setting that lifts it."""
    words = archive_problem_words(
        ArchiveState("/Volumes/Photos", problem=ArchiveProblem.NOT_ALLOWED, detail="denied")
    )
    assert "Privacy & Security" in words and "removable volumes" in words


def test_an_archive_from_before_markers_is_recognised_by_its_files(tmp_path: Path) -> None:
    """No recorded id, recorded files: a folder holding some of them is the archive (marker to
    add); an empty folder holding none of them is not (an empty mount point)."""
    archive = tmp_path / "archive"
    (archive / "2024").mkdir(parents=True)
    (archive / "2024" / "IMG_1.HEIC").write_bytes(b"x")
    assert check_archive(archive, None, ["2024/IMG_1.HEIC"]).problem is ArchiveProblem.UPGRADE
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_archive(empty, None, ["2024/IMG_1.HEIC"]).problem is (
        ArchiveProblem.MISSING_MARKER
    )


def test_folders_are_made_only_inside_an_archive(tmp_path: Path) -> None:
    """Date folders are made inside a marked archive; with the archive folder gone (its disk
    unmounted) nothing is created above it."""
    archive = tmp_path / "mount" / "photos"
    archive.mkdir(parents=True)
    write_marker(archive)
    make_archive_folders(archive / "2024" / "2024-03")
    assert (archive / "2024" / "2024-03").is_dir()
    gone = tmp_path / "mount2" / "photos"
    gone.parent.mkdir()
    with pytest.raises(ArchiveGoneError):
        make_archive_folders(gone / "2024" / "2024-03")
    assert list(gone.parent.iterdir()) == []


def test_archive_init_creates_marks_and_refuses_another_archive(
    tmp_path: Path, store: StateStore
) -> None:
    """archive init creates a missing folder with its marker; run again it changes nothing; a
    folder carrying another archive's marker is refused."""
    archive = tmp_path / "media" / "disk" / "photos"
    first = initialise_archive(archive, store.archive_truth)
    assert not first.refused and first.message.startswith("created the archive")
    recorded = store.archive_truth.recorded_identity()
    assert recorded is not None
    again = initialise_archive(archive, store.archive_truth)
    assert "already" in again.message
    other = tmp_path / "other"
    other.mkdir()
    write_marker(other)
    refused = initialise_archive(other, store.archive_truth)
    assert refused.refused and "another archive" in refused.message


def test_presence_sorts_missing_resized_changed_and_unstamped(tmp_path: Path) -> None:
    """One lstat per file: a missing file, a resized one, one whose ctime moved (rewritten in
    place, same size) and one never stamped are each reported as such; a fine one is not."""
    root = tmp_path
    for name in ("fine", "resized", "rewritten", "new"):
        (root / name).write_bytes(b"1234")
    stats = {name: os.lstat(root / name) for name in ("fine", "resized", "rewritten")}
    (root / "resized").write_bytes(b"123456")
    os.utime(root / "rewritten", ns=(0, stats["rewritten"].st_mtime_ns))  # ctime moves

    def row(name: str, stamped: bool = True) -> tuple[str, int, int | None, int | None, int, int]:
        status = stats.get(name)
        if not stamped or status is None:
            return (name, 4, None, None, 0, 1)
        return (name, 4, status.st_mtime_ns, status.st_ctime_ns, 0, 1)

    report = check_presence(
        root, [row("fine"), row("resized"), row("rewritten"), row("new", False), row("gone")]
    )
    assert report.checked == 5
    assert [item.relative_path for item in report.missing] == ["gone"]
    assert [(item.relative_path, size) for item, size in report.resized] == [("resized", 6)]
    assert [suspect.placed.relative_path for suspect in report.suspects] == ["rewritten"]
    assert [path for path, _m, _c in report.to_stamp] == ["new"]
