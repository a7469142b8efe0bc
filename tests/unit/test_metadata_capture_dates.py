"""Capture dates read from real files built at test time, and robustness against bad files."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollkeeper.domain.files import MediaKind
from rollkeeper.domain.layout import DEFAULT_LAYOUT, CaptureDate, render_destination
from rollkeeper.importer import metadata
from rollkeeper.importer.metadata import (
    capture_date_fallback,
    parse_apple_date,
    parse_exif_date,
    read_capture_date,
)
from tests.media import (
    apple_date_text,
    atom,
    make_dng,
    make_heic,
    make_jpeg,
    make_png_screenshot,
    make_video,
    mvhd,
)

TAKEN = datetime(2023, 7, 14, 18, 32, 5)
PLUS_TWO = timedelta(hours=2)
MINUS_FIVE = timezone(timedelta(hours=-5))


# --- photos -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maker", "name"),
    [
        (make_jpeg, "IMG_0001.JPG"),
        (make_heic, "IMG_0001.HEIC"),
        (make_png_screenshot, "IMG_0001.PNG"),
        (make_dng, "IMG_0001.DNG"),
    ],
)
def test_exif_date_and_offset_from_every_photo_format(
    tmp_path: Path, maker: Callable[..., Path], name: str
) -> None:
    """JPEG, HEIC, PNG and DNG files give their EXIF date with its UTC offset."""
    path = maker(tmp_path / name, TAKEN, PLUS_TWO)
    assert read_capture_date(path, MediaKind.PHOTO) == CaptureDate(TAKEN, PLUS_TWO, "exif")


def test_exif_date_without_offset_is_local_time_with_unknown_offset(tmp_path: Path) -> None:
    """An EXIF date without an offset is the local time with the offset unknown."""
    path = make_jpeg(tmp_path / "IMG_1.JPG", TAKEN)
    assert read_capture_date(path, MediaKind.PHOTO) == CaptureDate(TAKEN, None, "exif")


def test_jpeg_years_older_than_its_file_time_keeps_its_exif_date(tmp_path: Path) -> None:
    """A JPEG taken years before its file time files under its EXIF year and month."""
    path = make_jpeg(tmp_path / "IMG_1.JPG", datetime(2009, 2, 3, 4, 5, 6), timedelta(hours=-8))
    capture = read_capture_date(path, MediaKind.PHOTO)
    assert capture is not None
    assert render_destination(DEFAULT_LAYOUT, capture, "IMG_1.JPG", "p", "u").parts[:2] == (
        "2009",
        "2009-02",
    )


@pytest.mark.parametrize(
    "raw_date", ["0000:00:00 00:00:00", "    :  :     :  :  ", "2023:13:45 25:61:00", "garbage"]
)
def test_unknown_or_impossible_exif_dates_are_none(tmp_path: Path, raw_date: str) -> None:
    """Zeroed, blank, impossible or garbage EXIF dates give no date."""
    path = make_jpeg(tmp_path / "IMG_1.JPG", None, raw_date=raw_date)
    assert read_capture_date(path, MediaKind.PHOTO) is None


@pytest.mark.parametrize("year", [1970, 2100])
def test_far_dates_are_data(tmp_path: Path, year: int) -> None:
    """EXIF dates in 1970 and 2100 are kept as dates and file under their year."""
    taken = datetime(year, 1, 1, 0, 0, 0)
    path = make_jpeg(tmp_path / "IMG_1.JPG", taken, timedelta(0))
    capture = read_capture_date(path, MediaKind.PHOTO)
    assert capture == CaptureDate(taken, timedelta(0), "exif")
    assert render_destination(DEFAULT_LAYOUT, capture, "IMG_1.JPG", "p", "u").parts[0] == str(year)


def test_photos_without_exif_have_no_date(tmp_path: Path) -> None:
    """A photo without EXIF gives no date."""
    png = make_png_screenshot(tmp_path / "IMG_1.PNG", None, exif=False)
    assert read_capture_date(png, MediaKind.PHOTO) is None


def test_heic_written_with_libheif_base_offsets_gives_none_not_an_error(tmp_path: Path) -> None:
    """A HEIC written with libheif's iloc base offsets gives no date instead of an error."""
    # exifread ignores iloc base_offset (iPhones do not use it); such files fall back to the
    # birth time. Documented in docs/layout.md.
    path = make_heic(tmp_path / "IMG_1.HEIC", TAKEN, PLUS_TWO, apple_iloc=False)
    assert read_capture_date(path, MediaKind.PHOTO) is None


# --- videos -------------------------------------------------------------------------------------


def test_apple_creationdate_is_the_local_time_with_its_offset(tmp_path: Path) -> None:
    """A video's Apple creation date gives the local time with its own offset, whatever the zone
    given."""
    path = make_video(
        tmp_path / "IMG_1.MOV",
        created_utc=(TAKEN - PLUS_TWO).replace(tzinfo=UTC),
        apple_creationdate=apple_date_text(TAKEN, PLUS_TWO),
    )
    # The zone does not matter when the file says its own offset.
    capture = read_capture_date(path, MediaKind.VIDEO, zone=MINUS_FIVE)
    assert capture == CaptureDate(TAKEN, PLUS_TWO, "quicktime")


def test_mvhd_utc_time_becomes_local_in_the_given_zone(tmp_path: Path) -> None:
    """A video with only mvhd's UTC time is dated in the local time of the zone given."""
    path = make_video(
        tmp_path / "IMG_1.MP4", created_utc=datetime(2021, 1, 1, 3, 0, tzinfo=UTC), brand=b"mp42"
    )
    capture = read_capture_date(path, MediaKind.VIDEO, zone=MINUS_FIVE)
    # 03:00 UTC on New Year's Day is still 31 December in New York: the folder says 2020.
    assert capture == CaptureDate(datetime(2020, 12, 31, 22, 0), timedelta(hours=-5), "quicktime")


def test_moov_before_mdat_and_mp4_brand(tmp_path: Path) -> None:
    """An MP4 with moov before mdat gives its Apple creation date."""
    path = make_video(
        tmp_path / "IMG_1.MP4",
        created_utc=datetime(2001, 1, 1, tzinfo=UTC),
        apple_creationdate="2001-01-01T05:00:00-0500",
        brand=b"mp42",
        moov_first=True,
    )
    assert read_capture_date(path, MediaKind.VIDEO) == CaptureDate(
        datetime(2001, 1, 1, 5, 0), timedelta(hours=-5), "quicktime"
    )


@pytest.mark.parametrize("year", [1970, 2100])
def test_far_video_dates_are_data(tmp_path: Path, year: int) -> None:
    """Video dates in 1970 and 2100 are kept as dates."""
    path = make_video(tmp_path / "IMG_1.MOV", created_utc=datetime(year, 6, 1, tzinfo=UTC))
    assert read_capture_date(path, MediaKind.VIDEO, zone=UTC) == CaptureDate(
        datetime(year, 6, 1), timedelta(0), "quicktime"
    )


def test_video_without_any_date_is_none(tmp_path: Path) -> None:
    """A video with no date in it gives none."""
    path = make_video(tmp_path / "IMG_1.MOV", created_utc=None)
    assert read_capture_date(path, MediaKind.VIDEO) is None


def test_a_huge_video_is_not_read_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The date of a 5 GiB video with moov at the end is found within a 256 KiB read budget: mdat is
    skipped, not read."""
    # 5 GiB (sparse) with moov at the end, as iPhones write it. With the read budget cut to
    # 256 KiB the date is still found: the parser seeks over mdat instead of reading it.
    monkeypatch.setattr(metadata, "MAX_READ_BYTES", 256 * 1024)
    path = make_video(
        tmp_path / "IMG_1.MOV",
        created_utc=datetime(2020, 1, 1, tzinfo=UTC),
        apple_creationdate="2020-01-01T01:00:00+0100",
        payload_bytes=5 * 2**30,
        sparse=True,
    )
    assert path.stat().st_size > 5 * 2**30
    assert read_capture_date(path, MediaKind.VIDEO) == CaptureDate(
        datetime(2020, 1, 1, 1, 0), timedelta(hours=1), "quicktime"
    )


def test_the_read_budget_is_enforced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that needs more reads than the budget allows gives no date."""
    path = make_jpeg(tmp_path / "IMG_1.JPG", TAKEN, PLUS_TWO)
    assert read_capture_date(path, MediaKind.PHOTO) is not None
    monkeypatch.setattr(metadata, "MAX_READ_CALLS", 2)
    assert read_capture_date(path, MediaKind.PHOTO) is None


# --- hostile and broken files -------------------------------------------------------------------


def _tiff_with_giant_date_tag() -> bytes:
    # One IFD entry: DateTimeOriginal, ASCII, count 0x7FFFFFFF: "read 2 GB of text".
    entry = struct.pack(">HHII", 0x9003, 2, 0x7FFFFFFF, 26)
    return b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + entry + b"\x00" * 8


def _quicktime(*atoms: bytes) -> bytes:
    return atom(b"ftyp", b"qt  ", b"\x00" * 4, b"qt  ") + b"".join(atoms)


def _nested_udta(depth: int) -> bytes:
    inner = b""
    for _ in range(depth):
        inner = atom(b"udta", inner)
    return inner


_GOOD_MVHD = mvhd(datetime(2019, 5, 6, 7, 8, 9, tzinfo=UTC))


@pytest.mark.parametrize(
    ("name", "content", "kind", "expected"),
    [
        ("empty.JPG", b"", MediaKind.PHOTO, None),
        ("empty.MOV", b"", MediaKind.VIDEO, None),
        ("text.HEIC", b"this is not a photo" * 10, MediaKind.PHOTO, None),
        ("text.MOV", b"this is not a video" * 10, MediaKind.VIDEO, None),
        ("giant_tag.DNG", _tiff_with_giant_date_tag(), MediaKind.PHOTO, None),
        ("giant_app1.JPG", b"\xff\xd8\xff\xe1\xff\xffExif\x00\x00MM", MediaKind.PHOTO, None),
        ("giant_chunk.PNG", b"\x89PNG\r\n\x1a\n\xff\xff\xff\xffeXIf", MediaKind.PHOTO, None),
        ("size_zero_atom.MOV", _quicktime(struct.pack(">I4s", 0, b"moov")), MediaKind.VIDEO, None),
        (
            "huge_64bit_atom.MOV",
            _quicktime(struct.pack(">I4sQ", 1, b"moov", 2**63)),
            MediaKind.VIDEO,
            None,
        ),
        (
            "many_atoms.MOV",
            # mvhd after 20,000 atoms: past the per-level bound, so not looked for.
            _quicktime(atom(b"moov", *(atom(b"free") for _ in range(20_000)), _GOOD_MVHD)),
            MediaKind.VIDEO,
            None,
        ),
        (
            "nested_deep.MOV",
            _quicktime(atom(b"moov", _GOOD_MVHD, _nested_udta(3000))),
            MediaKind.VIDEO,
            CaptureDate(datetime(2019, 5, 6, 7, 8, 9), timedelta(0), "quicktime"),
        ),
    ],
)
def test_hostile_files_give_none_or_a_date_never_an_error(
    tmp_path: Path, name: str, content: bytes, kind: MediaKind, expected: CaptureDate | None
) -> None:
    """Empty, foreign, giant-tag, zero-size-atom, huge-atom, many-atom and deeply nested files give
    no date or the right one, never an error."""
    path = tmp_path / name
    path.write_bytes(content)
    assert read_capture_date(path, kind, zone=UTC) == expected


def test_broken_apple_keys_still_leave_the_mvhd_date(tmp_path: Path) -> None:
    """Broken Apple metadata keys still leave the mvhd date."""
    handler = atom(b"hdlr", b"\x00" * 8, b"mdta", b"\x00" * 13)
    keys = atom(b"keys", b"\x00" * 4, struct.pack(">I", 0xFFFFFFFF), b"\x00\x00\x00\x09mdta")
    path = tmp_path / "IMG_1.MOV"
    path.write_bytes(_quicktime(atom(b"moov", _GOOD_MVHD, atom(b"meta", handler, keys))))
    assert read_capture_date(path, MediaKind.VIDEO, zone=UTC) == CaptureDate(
        datetime(2019, 5, 6, 7, 8, 9), timedelta(0), "quicktime"
    )


def test_a_fifo_or_a_folder_gives_none_without_blocking(tmp_path: Path) -> None:
    """A FIFO or a folder gives no date, without blocking."""
    fifo = tmp_path / "IMG_1.MOV"
    os.mkfifo(fifo)
    assert read_capture_date(fifo, MediaKind.VIDEO) is None
    assert read_capture_date(tmp_path, MediaKind.PHOTO) is None


def test_missing_file_and_sidecars_give_none(tmp_path: Path) -> None:
    """A missing file and a sidecar give no date."""
    assert read_capture_date(tmp_path / "gone.JPG", MediaKind.PHOTO) is None
    assert read_capture_date(tmp_path / "gone.MOV", MediaKind.VIDEO) is None
    sidecar = tmp_path / "IMG_1.AAE"
    sidecar.write_text("<plist/>")
    assert read_capture_date(sidecar, MediaKind.SIDECAR) is None


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, MediaKind]]:
    folder = tmp_path_factory.mktemp("samples")
    makers: dict[str, tuple[Path, MediaKind]] = {
        "jpeg": (make_jpeg(folder / "a.JPG", TAKEN, PLUS_TWO), MediaKind.PHOTO),
        "heic": (make_heic(folder / "a.HEIC", TAKEN, PLUS_TWO), MediaKind.PHOTO),
        "png": (make_png_screenshot(folder / "a.PNG", TAKEN, PLUS_TWO), MediaKind.PHOTO),
        "dng": (make_dng(folder / "a.DNG", TAKEN, PLUS_TWO), MediaKind.PHOTO),
        "mov": (
            make_video(
                folder / "a.MOV",
                created_utc=datetime(2023, 7, 14, 16, 32, 5, tzinfo=UTC),
                apple_creationdate=apple_date_text(TAKEN, PLUS_TWO),
                payload_bytes=2048,
            ),
            MediaKind.VIDEO,
        ),
        "mp4": (
            make_video(
                folder / "a.MP4",
                created_utc=datetime(2023, 7, 14, 16, 32, 5, tzinfo=UTC),
                payload_bytes=2048,
                brand=b"mp42",
                moov_first=True,
            ),
            MediaKind.VIDEO,
        ),
    }
    return {key: (path.read_bytes(), kind) for key, (path, kind) in makers.items()}


def _same_moment(found: CaptureDate, expected: CaptureDate) -> bool:
    if found.local == expected.local and found.utc_offset in (None, expected.utc_offset):
        return True
    assert expected.utc_offset is not None
    return (
        found.utc_offset is not None
        and found.local - found.utc_offset == expected.local - expected.utc_offset
    )


@pytest.mark.parametrize("fmt", ["jpeg", "heic", "png", "dng", "mov", "mp4"])
def test_every_truncation_gives_none_or_a_date(
    tmp_path: Path, sample_files: dict[str, tuple[bytes, MediaKind]], fmt: str
) -> None:
    """A file cut at any length gives no date or the same moment, never a wrong date, and the whole
    file gives the full date."""
    content, kind = sample_files[fmt]
    expected = CaptureDate(TAKEN, PLUS_TWO, "exif" if kind is MediaKind.PHOTO else "quicktime")
    if fmt == "mp4":  # mvhd only: UTC, shown in the zone asked for
        expected = CaptureDate(TAKEN - PLUS_TWO, timedelta(0), "quicktime")
    path = tmp_path / "cut"
    step = max(1, len(content) // 64)
    for length in [*range(0, 64), *range(64, len(content), step)]:
        path.write_bytes(content[:length])
        result = read_capture_date(path, kind, zone=UTC)
        # A cut file may lose its date, or its offset, or fall back from Apple's key to the
        # same instant in mvhd; it never gains a wrong date.
        assert result is None or _same_moment(result, expected), (length, result)
    path.write_bytes(content)
    assert read_capture_date(path, kind, zone=UTC) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(["jpeg", "heic", "png", "dng", "mov", "mp4"]),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
)
def test_corrupted_bytes_give_none_or_a_date(
    tmp_path_factory: pytest.TempPathFactory,
    sample_files: dict[str, tuple[bytes, MediaKind]],
    fmt: str,
    flips: list[tuple[float, int]],
) -> None:
    """Files with corrupted bytes give no date or a date, never an error."""
    content, kind = sample_files[fmt]
    mutated = bytearray(content)
    # Corrupt the header region most: that is where the parsers make decisions.
    for position, value in flips:
        mutated[int(position * min(len(mutated), 600))] = value
    path = tmp_path_factory.mktemp("fuzz") / "mutated"
    path.write_bytes(bytes(mutated))
    result = read_capture_date(path, kind)
    assert result is None or isinstance(result, CaptureDate)


# --- parsing and the fallback -------------------------------------------------------------------


def test_parse_exif_and_apple_dates() -> None:
    """EXIF and Apple date texts parse with their offsets; an implausible offset is dropped, and an
    impossible or foreign text gives no date."""
    assert parse_exif_date("2023:07:14 18:32:05", "+02:00") == CaptureDate(TAKEN, PLUS_TWO, "exif")
    assert parse_exif_date("2023:07:14 18:32:05\x00", "-05:30") == CaptureDate(
        TAKEN, -timedelta(hours=5, minutes=30), "exif"
    )
    assert parse_exif_date("2023:07:14 18:32:05", "+99:00") == CaptureDate(TAKEN, None, "exif")
    assert parse_exif_date("2023:02:30 00:00:00") is None
    assert parse_apple_date("2023-07-14T18:32:05+0200") == CaptureDate(TAKEN, PLUS_TWO, "quicktime")
    assert parse_apple_date("2023-07-14T18:32:05Z") == CaptureDate(TAKEN, timedelta(0), "quicktime")
    assert parse_apple_date("2023-07-14T18:32:05") == CaptureDate(TAKEN, None, "quicktime")
    assert parse_apple_date("yesterday") is None


def test_fallback_uses_the_birth_time_in_the_zone() -> None:
    """The fallback dates a file by its birth time in the zone given, with that zone's offset."""
    birth = int(datetime(2021, 1, 1, 3, 0, tzinfo=UTC).timestamp()) * 1_000_000_000
    assert capture_date_fallback(birth, MINUS_FIVE) == CaptureDate(
        datetime(2020, 12, 31, 22, 0), timedelta(hours=-5), "birth_time"
    )
    assert capture_date_fallback(birth, UTC).local == datetime(2021, 1, 1, 3, 0)


@pytest.mark.parametrize("birth_ns", [0, -1, 2**63 - 1, -(2**63), 4_102_444_800 * 10**9])
def test_fallback_never_fails_on_extreme_birth_times(birth_ns: int) -> None:
    """The fallback gives a date that renders for any birth time, however extreme."""
    capture = capture_date_fallback(birth_ns, UTC)
    assert capture.source == "birth_time"
    render_destination(DEFAULT_LAYOUT, capture, "IMG_1.HEIC", "p", "u")
