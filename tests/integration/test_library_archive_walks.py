"""Walks of the archive treat rollkeeper's library metadata as metadata: a tracked file's XMP
sidecar and the Albums/ views are neither untracked files for verify nor candidates for adopt."""

from __future__ import annotations

import os
from pathlib import Path

from rollkeeper.archive.locations import walk_files
from rollkeeper.archive.verify import find_untracked


def test_sidecars_and_album_views_are_not_untracked_content(tmp_path: Path) -> None:
    """verify's untracked list holds a stray file, not the sidecar of a tracked file nor the
    album links; a sidecar of an untracked file is untracked like it; adopt's walk of the
    archive skips the album views."""
    archive = tmp_path / "archive"
    photo = archive / "2023" / "2023-07" / "IMG_0001.HEIC"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"photo")
    (archive / "2023" / "2023-07" / "IMG_0001.HEIC.xmp").write_text("<x:xmpmeta/>")
    stray = archive / "2023" / "2023-07" / "copied-by-hand.JPG"
    stray.write_bytes(b"stray")
    (archive / "2023" / "2023-07" / "copied-by-hand.JPG.xmp").write_text("<x/>")
    album = archive / "Albums" / "Summer"
    album.mkdir(parents=True)
    os.link(photo, album / "IMG_0001.HEIC")

    untracked = find_untracked(archive, ["2023/2023-07/IMG_0001.HEIC"])
    assert sorted(untracked) == [
        "2023/2023-07/copied-by-hand.JPG",
        "2023/2023-07/copied-by-hand.JPG.xmp",
    ]
    walked = {
        path.relative_to(archive).as_posix()
        for path in walk_files(archive, skip_working_folder_of=archive)
    }
    assert "Albums/Summer/IMG_0001.HEIC" not in walked
    assert "2023/2023-07/IMG_0001.HEIC" in walked
    # A folder named Albums deeper in the archive is ordinary content.
    deeper = archive / "2024" / "Albums"
    deeper.mkdir(parents=True)
    (deeper / "IMG_0002.JPG").write_bytes(b"x")
    walked = {
        path.relative_to(archive).as_posix()
        for path in walk_files(archive, skip_working_folder_of=archive)
    }
    assert "2024/Albums/IMG_0002.JPG" in walked
