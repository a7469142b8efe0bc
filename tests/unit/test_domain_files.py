"""PhoneFile, media kinds and the screenshot heuristic."""

from __future__ import annotations

import pytest

from rollkeeper.domain.files import (
    MediaKind,
    PhoneFile,
    extension_of,
    is_screenshot,
    media_kind,
    stem_of,
)


def test_phone_file_folder_name_and_identity() -> None:
    """A PhoneFile splits its path into folder and name, and its identity is path, size and birth
    time."""
    file = PhoneFile("/DCIM/100APPLE/IMG_0001.HEIC", 1234, 10, 20)
    assert file.folder == "/DCIM/100APPLE"
    assert file.name == "IMG_0001.HEIC"
    assert file.identity == ("/DCIM/100APPLE/IMG_0001.HEIC", 1234, 10)


def test_identity_differs_for_same_name_with_other_size_or_birth_time() -> None:
    """The same name with another size or birth time is another file; a changed modification time
    alone is not."""
    first = PhoneFile("/DCIM/100APPLE/IMG_0001.HEIC", 1234, 10, 20)
    rolled_over = PhoneFile("/DCIM/100APPLE/IMG_0001.HEIC", 1234, 99, 20)
    other_size = PhoneFile("/DCIM/100APPLE/IMG_0001.HEIC", 4321, 10, 20)
    only_mtime_changed = PhoneFile("/DCIM/100APPLE/IMG_0001.HEIC", 1234, 10, 77)
    assert first.identity != rolled_over.identity
    assert first.identity != other_size.identity
    assert first.identity == only_mtime_changed.identity


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("IMG_0001.HEIC", MediaKind.PHOTO),
        ("IMG_0001.heif", MediaKind.PHOTO),
        ("IMG_0001.JPG", MediaKind.PHOTO),
        ("IMG_0001.jpeg", MediaKind.PHOTO),
        ("IMG_0001.PNG", MediaKind.PHOTO),
        ("IMG_0001.DNG", MediaKind.PHOTO),
        ("IMG_0001.GIF", MediaKind.PHOTO),
        ("IMG_0001.TIFF", MediaKind.PHOTO),
        ("IMG_0001.MOV", MediaKind.VIDEO),
        ("IMG_0001.mp4", MediaKind.VIDEO),
        ("IMG_0001.M4V", MediaKind.VIDEO),
        ("IMG_0001.AAE", MediaKind.SIDECAR),
        ("IMG_0001.XMP", None),
        ("Photos.sqlite", None),
        ("HEIC", None),
        ("IMG_0001.", None),
        (".HEIC", None),
        ("IMG_0001.HEIC.partial", None),
    ],
)
def test_media_kind(name: str, kind: MediaKind | None) -> None:
    """Each extension maps to its media kind whatever its case, and anything else (sidecars of other
    apps, no extension, partials) to none."""
    assert media_kind(name) is kind


def test_extension_and_stem() -> None:
    """The extension is the last suffix in capitals (empty without one) and the stem is the name
    without it."""
    assert extension_of("IMG_0001.heic") == "HEIC"
    assert extension_of("archive.tar.gz") == "GZ"
    assert extension_of("README") == ""
    assert stem_of("IMG_0001.HEIC") == "IMG_0001"
    assert stem_of("README") == "README"
    assert stem_of("a.b.c") == "a.b"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("IMG_0004.PNG", True),
        ("IMG_0004.png", True),
        ("Screenshot 2024-01-02 at 03.04.05.jpg", True),
        ("IMG_0004.HEIC", False),
        ("IMG_0004.JPG", False),
        ("IMG_0004.MOV", False),
        ("PNG", False),
    ],
)
def test_is_screenshot(name: str, expected: bool) -> None:
    """PNGs and files named like macOS screenshots count as screenshots; camera photos and videos do
    not."""
    assert is_screenshot(name) is expected
