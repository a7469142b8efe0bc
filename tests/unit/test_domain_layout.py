"""Layout rendering and validation: dates in the local time of capture, untrusted values tamed."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollkeeper.domain.files import PhoneFile
from rollkeeper.domain.grouping import group_files
from rollkeeper.domain.layout import (
    DEFAULT_LAYOUT,
    LAYOUT_PLACEHOLDERS,
    CaptureDate,
    LayoutError,
    render_destination,
    render_group_destinations,
    validate_layout,
)

JULY = CaptureDate(datetime(2023, 7, 4, 9, 5, 1), timedelta(hours=2), "exif")


def test_default_layout_is_valid_and_uses_year_and_month() -> None:
    """The default layout is valid and files a photo under year/year-month/name."""
    assert validate_layout(DEFAULT_LAYOUT) == []
    assert render_destination(DEFAULT_LAYOUT, JULY, "IMG_0001.HEIC", "iPhone", "00008110") == (
        PurePosixPath("2023/2023-07/IMG_0001.HEIC")
    )


def test_every_placeholder_renders() -> None:
    """Every placeholder the layout knows renders its value."""
    layout = "{device_name}/{udid}/{year}-{month}-{day} {hour}.{minute}/{stem}_x.{extension}"
    assert validate_layout(layout) == []
    rendered = render_destination(layout, JULY, "IMG_0001.HEIC", "Anna's iPhone", "0000-81A")
    assert rendered == PurePosixPath("Anna's iPhone/0000-81A/2023-07-04 09.05/IMG_0001_x.HEIC")
    assert {
        "year", "month", "day", "hour", "minute", "name", "stem", "extension", "device_name", "udid"
    } == LAYOUT_PLACEHOLDERS  # fmt: skip


def test_the_local_time_of_capture_decides_not_utc() -> None:
    """The local time of capture decides the folder, not UTC: just after midnight on New Year's Day
    in Sydney files under the new year."""
    # 00:30 on New Year's Day in Sydney is still 31 December in UTC: it files under the new year.
    sydney = CaptureDate(datetime(2024, 1, 1, 0, 30), timedelta(hours=11), "exif")
    assert render_destination(DEFAULT_LAYOUT, sydney, "IMG_1.HEIC", "p", "u").parts[0] == "2024"


@pytest.mark.parametrize("year", [1, 1904, 1970, 2100, 9999])
def test_extreme_years_render(year: int) -> None:
    """Years from 1 to 9999 render as four digits in the year and month folders."""
    capture = CaptureDate(datetime(year, 1, 2, 3, 4, 5), None, "birth_time")
    path = render_destination(DEFAULT_LAYOUT, capture, "IMG_1.HEIC", "p", "u")
    assert path.parts[0] == f"{year:04d}"
    assert path.parts[1] == f"{year:04d}-01"


@pytest.mark.parametrize(
    ("layout", "problem"),
    [
        ("", "empty"),
        ("/{year}/{name}", "relative"),
        ("{year}\\{name}", "use /"),
        ("{year}//{name}", "empty folder"),
        ("{year}/{name}/", "empty folder"),
        ("../{name}", ". or .."),
        ("{year}/./{name}", ". or .."),
        ("{yr}/{name}", "unknown placeholder {yr}"),
        ("{month:02}/{name}", "unknown placeholder"),
        ("{year/{name}", "unmatched"),
        ("{year}}/{name}", "unmatched"),
        ("{year}/{month}", "must end with {name}"),
        ("{year}/{name}/x", "must end with {name}"),
        ("{year}/{name}.bak", "must end with {name}"),
        ("{year}/{extension}.{stem}", "must end with {name}"),
        ("{year}/photo.{extension}", "must end with {name}"),
    ],
)
def test_validate_layout_names_each_problem(layout: str, problem: str) -> None:
    """validate_layout names each kind of bad layout, and rendering a bad layout raises
    LayoutError."""
    problems = validate_layout(layout)
    assert any(problem in text for text in problems), problems
    with pytest.raises(LayoutError):
        render_destination(layout, JULY, "IMG_1.HEIC", "p", "u")


@pytest.mark.parametrize(
    "layout", ["{name}", "{year}/{stem}.{extension}", "{device_name}/{year}/{month}/{day}-{name}"]
)
def test_valid_layouts(layout: str) -> None:
    """Layouts that end in {name}, or in {stem}.{extension}, are valid."""
    assert validate_layout(layout) == []


@pytest.mark.parametrize(
    ("device_name", "expected_first"),
    [
        ("../../etc", "_._.._etc"),
        ("..", "_.."),
        (".", "_."),
        ("", "_"),
        ("/", "_"),
        (".hidden", "_hidden"),
        ("a\x00b\nc", "a_b_c"),
        ("\udcff", "\ufffd" * 3),
        ("Anna\\Phone", "Anna_Phone"),
    ],
)
def test_hostile_device_names_stay_one_safe_component(
    device_name: str, expected_first: str
) -> None:
    """A hostile device name renders as one safe folder name: no separator, no dot name, no control
    character, no lone surrogate."""
    path = render_destination("{device_name}/{name}", JULY, "IMG_1.HEIC", device_name, "u")
    assert path.parts == (expected_first, "IMG_1.HEIC")


def test_long_names_are_cut_to_leave_room_for_a_suffix_and_keep_their_extension() -> None:
    """A long file name is cut in whole characters to leave room for a collision suffix and keeps
    its extension; a long folder name is cut to 255 bytes."""
    name = "é" * 127 + ".HEIC"  # 259 bytes: possible in a layout that adds text to the name
    path = render_destination("{year}/{year}-{name}", JULY, name, "p", "u")
    final = path.name
    assert final.endswith(".HEIC")
    assert len(final.encode("utf-8")) <= 255 - 8
    assert final.startswith("2023-éé")
    long_device = "d" * 4096
    folder = render_destination("{device_name}/{name}", JULY, "IMG_1.HEIC", long_device, "u")
    assert len(folder.parts[0].encode("utf-8")) == 255


def test_group_members_share_a_folder_from_the_primary_date() -> None:
    """A group's members all go to the folder of the primary's date, each under its own name."""
    files = [
        PhoneFile("/DCIM/100APPLE/IMG_0002.HEIC", 1, 1, 1),
        PhoneFile("/DCIM/100APPLE/IMG_E0002.HEIC", 1, 1, 1),
        PhoneFile("/DCIM/100APPLE/IMG_0002.AAE", 1, 1, 1),
    ]
    [group] = group_files(files)
    destinations = render_group_destinations(DEFAULT_LAYOUT, JULY, group, "p", "u")
    assert destinations == {
        "/DCIM/100APPLE/IMG_0002.AAE": PurePosixPath("2023/2023-07/IMG_0002.AAE"),
        "/DCIM/100APPLE/IMG_0002.HEIC": PurePosixPath("2023/2023-07/IMG_0002.HEIC"),
        "/DCIM/100APPLE/IMG_E0002.HEIC": PurePosixPath("2023/2023-07/IMG_E0002.HEIC"),
    }


def test_capture_date_must_be_naive_and_offsets_plausible() -> None:
    """A CaptureDate refuses an aware datetime and a UTC offset of a day or more."""
    with pytest.raises(ValueError, match="naive"):
        CaptureDate(datetime(2023, 1, 1).astimezone(), None, "exif")
    with pytest.raises(ValueError, match="offset"):
        CaptureDate(datetime(2023, 1, 1), timedelta(hours=24), "exif")


_untrusted = st.text(max_size=300)


@given(
    name=_untrusted,
    device_name=_untrusted,
    udid=_untrusted,
    local=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    layout=st.sampled_from(
        [DEFAULT_LAYOUT, "{device_name}/{udid}/{name}", "{year}/{stem}.{extension}", "{name}"]
    ),
)
def test_rendered_paths_are_always_relative_and_safe(
    name: str, device_name: str, udid: str, local: datetime, layout: str
) -> None:
    """Whatever the untrusted name, device name and UDID, the rendered path is relative, has one
    part per layout part, and each part is a safe name of at most 255 bytes."""
    path = render_destination(layout, CaptureDate(local, None, "exif"), name, device_name, udid)
    assert not path.is_absolute()
    assert len(path.parts) == layout.count("/") + 1
    for part in path.parts:
        assert part not in ("", ".", "..")
        assert not part.startswith(".")
        assert "/" not in part and "\\" not in part and "\x00" not in part
        assert all(ord(character) >= 0x20 for character in part)
        assert len(part.encode("utf-8")) <= 255
    assert len(path.name.encode("utf-8")) <= 255 - 8
