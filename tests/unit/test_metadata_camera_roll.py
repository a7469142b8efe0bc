"""The test media factory's camera roll agrees with the domain and the metadata reader.

End-to-end tests trust ``make_camera_roll``'s description of each file; this checks that the
description is what the real readers find in the real files it wrote.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import blake3

from rollkeeper.domain.files import MediaKind, PhoneFile, is_screenshot, media_kind
from rollkeeper.domain.grouping import group_files
from rollkeeper.domain.layout import DEFAULT_LAYOUT, CaptureDate, render_destination
from rollkeeper.importer.metadata import capture_date_fallback, read_capture_date
from tests.media import make_camera_roll, phone_paths


def test_camera_roll_files_are_what_the_description_says(tmp_path: Path) -> None:
    """Every file the camera roll factory writes has the path, size, birth time, kind, unique
    content and capture date its description gives, as the real readers find them."""
    roll = make_camera_roll(tmp_path, big_video_bytes=6 * 1024 * 1024 + 3, birth_zone=UTC)
    names = sorted(item.name for item in roll.files)
    assert names == sorted(
        [
            "IMG_0001.HEIC", "IMG_0001.MOV",
            "IMG_0002.HEIC", "IMG_E0002.HEIC", "IMG_0002.AAE", "IMG_O0002.AAE",
            "IMG_0003.JPG", "IMG_0004.PNG", "IMG_0005.MOV", "IMG_0006.MP4", "IMG_0007.MOV",
        ]
    )  # fmt: skip
    assert phone_paths(roll.files) == sorted(f"/DCIM/100APPLE/{name}" for name in names)
    hashes = set()
    for item in roll.files:
        stat = item.host_path.stat()
        assert item.host_path == tmp_path / item.phone_path.lstrip("/")
        assert stat.st_size == item.size
        assert stat.st_mtime_ns == item.birth_time_ns
        assert media_kind(item.name) is MediaKind(item.kind)
        hashes.add(blake3.blake3(item.host_path.read_bytes()).hexdigest())
        found = read_capture_date(item.host_path, MediaKind(item.kind), zone=UTC)
        if found is None:
            found = capture_date_fallback(item.birth_time_ns, UTC)
        assert found == CaptureDate(item.capture_local, item.capture_offset, item.capture_source)
    assert len(hashes) == len(roll.files), "every file has unique content"
    assert roll.by_name("IMG_0007.MOV").size > 6 * 1024 * 1024
    assert is_screenshot(roll.by_name("IMG_0004.PNG").name)
    # The old JPEG's EXIF date is years before the file time the phone reports.
    old = roll.by_name("IMG_0003.JPG")
    birth = capture_date_fallback(old.birth_time_ns, UTC).local
    assert birth - old.capture_local > timedelta(days=365 * 5)


def test_camera_roll_groups_match_the_domain_grouping(tmp_path: Path) -> None:
    """The camera roll's groups are the ones the domain's grouping finds, and each group renders
    into one folder."""
    roll = make_camera_roll(tmp_path, first_number=41, folder="101APPLE", birth_zone=UTC)
    files = [
        PhoneFile(item.phone_path, item.size, item.birth_time_ns, item.birth_time_ns)
        for item in roll.files
    ]
    found = {
        f"{group.folder}/{group.key}": sorted(member.name for member in group.members)
        for group in group_files(files)
    }
    expected = {key: sorted(item.name for item in items) for key, items in roll.groups().items()}
    assert found == expected
    assert found["/DCIM/101APPLE/IMG_0041"] == ["IMG_0041.HEIC", "IMG_0041.MOV"]
    assert found["/DCIM/101APPLE/IMG_0042"] == [
        "IMG_0042.AAE", "IMG_0042.HEIC", "IMG_E0042.HEIC", "IMG_O0042.AAE"
    ]  # fmt: skip
    # Every member lands in its group primary's folder.
    for items in roll.groups().values():
        folders = {
            render_destination(
                DEFAULT_LAYOUT,
                CaptureDate(item.group_capture_local or item.capture_local, None, "exif"),
                item.name,
                "iPhone",
                "udid",
            ).parent
            for item in items
        }
        assert len(folders) == 1
    assert (
        roll.by_name("IMG_0042.AAE").group_capture_local
        == roll.by_name("IMG_0042.HEIC").capture_local
    )


def test_a_variant_gives_the_same_names_with_other_bytes(tmp_path: Path) -> None:
    """A roll made again has the same bytes, while a variant or another file time gives the same
    names with other bytes."""
    first = make_camera_roll(tmp_path / "a", birth_zone=UTC)
    again = make_camera_roll(tmp_path / "b", birth_zone=UTC)
    rolled = make_camera_roll(tmp_path / "c", birth_zone=UTC, variant="new phone")
    later = make_camera_roll(
        tmp_path / "d", birth_zone=UTC, file_time=datetime(2025, 6, 1, tzinfo=UTC)
    )
    assert phone_paths(first.files) == phone_paths(rolled.files) == phone_paths(later.files)
    for item in first.files:
        content = item.host_path.read_bytes()
        assert again.by_name(item.name).host_path.read_bytes() == content, item.name
        assert rolled.by_name(item.name).host_path.read_bytes() != content, item.name
        assert later.by_name(item.name).host_path.read_bytes() != content, item.name
