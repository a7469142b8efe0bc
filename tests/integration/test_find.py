"""``rollkeeper find`` over a real manifest."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from rollkeeper.archive.find import FindQueryError, build_query, capture_date_prefix, name_globs
from rollkeeper.cli import main
from rollkeeper.importer.hashing import HASH_ALGORITHM
from rollkeeper.store import StateStore

_birth_times = itertools.count(1_600_000_000_000_000_000, 1_000_000_000)

ANA = "00008110-000A11112222801E"
BEN = "00008030-000B33334444002E"


def phone_file(
    store: StateStore,
    udid: str,
    name: str,
    capture_time: str | None,
    archive_path: str | None,
    folder: str = "/DCIM/100APPLE",
) -> None:
    birth = next(_birth_times)
    entry = store.observe_file(udid, folder, name, 1_000, birth, birth)
    if archive_path is not None:
        store.record_archived(
            entry.id,
            relative_path=archive_path,
            content_hash=f"hash-of-{udid}-{name}",
            hash_algorithm=HASH_ALGORITHM,
            size=1_000,
            origin="backup",
            capture_time=capture_time,
            capture_source="exif",
        )


@pytest.fixture
def config(tmp_path: Path) -> tuple[Path, Path]:
    """(config file, archive root) over a manifest of two phones."""
    root = tmp_path / "archive"
    root.mkdir()
    state = tmp_path / "state.sqlite3"
    store = StateStore.open(state)
    store.record_device_seen(ANA, name="Ana's iPhone")
    store.record_device_seen(BEN, name="Ben's iPhone")
    july = "2024-07-14T18:03:11+02:00"
    phone_file(store, ANA, "IMG_1234.HEIC", july, "2024/2024-07/IMG_1234.HEIC")
    phone_file(store, ANA, "IMG_1234.MOV", july, "2024/2024-07/IMG_1234.MOV")
    phone_file(store, ANA, "IMG_E1234.HEIC", july, "2024/2024-07/IMG_E1234.HEIC")
    phone_file(store, ANA, "IMG_1234.AAE", july, "2024/2024-07/IMG_1234.AAE")
    phone_file(
        store, ANA, "IMG_12345.HEIC", "2024-08-01T09:00:00+02:00", "2024/2024-08/IMG_12345.HEIC"
    )
    phone_file(store, BEN, "IMG_1234.JPG", "2019-12-31T23:59:59-05:00", "2019/2019-12/IMG_1234.JPG")
    phone_file(store, BEN, "IMG_0001.PNG", None, None)  # seen, not copied yet
    # Adopted content outside the archive is recorded by absolute path.
    phone_file(store, BEN, "IMG_0002.JPG", "2019-12-30T10:00:00-05:00", "/media/old/IMG_0002.JPG")
    store.close()
    path = tmp_path / "config.toml"
    path.write_text(f'[archive]\npath = "{root}"\n\n[state]\npath = "{state}"\n')
    return path, root


def find(config: Path, capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), "find", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_phone_name_finds_the_photo_its_video_edit_and_sidecar(
    config: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A phone file's name, in any case, finds the photo with its Live Photo video, its edit and its
    sidecar, and not a longer number."""
    path, root = config
    code, out, _ = find(path, capsys, "img_1234", "--device", ANA)
    assert code == 0
    assert sorted(out.splitlines()) == sorted(
        str(root / relative)
        for relative in (
            "2024/2024-07/IMG_1234.HEIC",
            "2024/2024-07/IMG_1234.MOV",
            "2024/2024-07/IMG_E1234.HEIC",
            "2024/2024-07/IMG_1234.AAE",
        )
    )  # and not IMG_12345


def test_the_same_name_on_two_phones_is_two_files(
    config: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The same name on two phones is two files, listed oldest first, each with its phone's name."""
    path, root = config
    code, out, _ = find(path, capsys, "IMG_1234.jpg")
    assert code == 0 and out.splitlines() == [str(root / "2019/2019-12/IMG_1234.JPG")]
    code, out, _ = find(path, capsys, "IMG_1234", "--json")
    matches = json.loads(out)
    assert {match["device_name"] for match in matches} == {"Ana's iPhone", "Ben's iPhone"}
    assert matches[0]["capture_time"] == "2019-12-31T23:59:59-05:00"  # oldest first
    assert matches[0]["phone_path"] == "/DCIM/100APPLE/IMG_1234.JPG"


def test_a_date_finds_what_was_captured_then_in_local_time(
    config: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """--date finds files by the local day, month or year of capture, not the UTC one, adopted files
    outside the archive included."""
    path, root = config
    # 23:59 on New Year's Eve in New York is 2020 in UTC; the archive files it under 2019.
    code, out, _ = find(path, capsys, "--date", "2019-12-31")
    assert code == 0 and out.splitlines() == [str(root / "2019/2019-12/IMG_1234.JPG")]
    code, out, _ = find(path, capsys, "--date", "2019")
    assert out.splitlines() == ["/media/old/IMG_0002.JPG", str(root / "2019/2019-12/IMG_1234.JPG")]
    code, out, _ = find(path, capsys, "IMG_*", "--date", "2024-08")
    assert out.splitlines() == [str(root / "2024/2024-08/IMG_12345.HEIC")]


def test_a_file_not_archived_yet_is_said_on_stderr(
    config: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A matching file not archived yet is reported on stderr with its phone and status, and nothing
    is printed on stdout."""
    path, _ = config
    code, out, err = find(path, capsys, "IMG_0001")
    assert code == 0 and out == ""
    assert (
        err.strip()
        == "/DCIM/100APPLE/IMG_0001.PNG on Ben's iPhone: pending, not in the archive yet"
    )


def test_nothing_found_exits_one_and_bad_arguments_exit_two(
    config: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing found exits 1 with one line; a bad date or no query at all exits 2 with one line."""
    path, _ = config
    code, out, err = find(path, capsys, "IMG_7777")
    assert (code, out) == (1, "")
    assert err.strip() == "rollkeeper: nothing matched"
    for arguments in (["--date", "2024-13"], ["--date", "July"], []):
        code, out, err = find(path, capsys, *arguments)
        assert code == 2 and out == ""
        assert err.startswith("rollkeeper: ") and len(err.strip().splitlines()) == 1


def test_query_parsing() -> None:
    """A name becomes case-insensitive globs for the file, its edit and its original; a date must be
    a real YYYY[-MM[-DD]] prefix; a query needs a name, a date or a device."""
    assert name_globs("IMG_1234") == ("img_1234.*", "img_e1234.*", "img_o1234.*")
    assert name_globs("/DCIM/100APPLE/IMG_1234.HEIC") == ("img_1234.heic",)
    assert name_globs("FullSizeRender") == ("fullsizerender", "fullsizerender.*")
    assert name_globs("IMG_[0-9]*.MOV") == ("img_[0-9]*.mov",)
    assert capture_date_prefix("2024-02-29") == "2024-02-29"
    for bad in ("2023-02-29", "24-01", "2024/01", ""):
        with pytest.raises(FindQueryError):
            capture_date_prefix(bad)
    with pytest.raises(FindQueryError):
        build_query(None, None, None)
    assert build_query(None, ANA, None).name_globs == ()


def test_names_from_the_phone_cannot_drive_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Device and file names from the phone are printed escaped, so they cannot drive the terminal
    or add lines."""
    state = tmp_path / "state.sqlite3"
    store = StateStore.open(state)
    store.record_device_seen(ANA, name="\x1b]0;owned\x07Ana")
    phone_file(store, ANA, "IMG_0001\n.HEIC", None, None)
    store.close()
    path = tmp_path / "config.toml"
    path.write_text(f'[archive]\npath = "{tmp_path}"\n\n[state]\npath = "{state}"\n')
    code, out, err = find(path, capsys, "IMG_0001*")
    assert out == ""
    assert code == 0
    assert "\x1b" not in err and "\x07" not in err
    assert err.count("\n") == 1  # one file, one line
    assert "IMG_0001\\x0a.HEIC on \\x1b]0;owned\\x07Ana: pending" in err
