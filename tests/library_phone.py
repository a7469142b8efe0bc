"""A phone that uses iCloud Photos: a camera roll, iCloud originals, an edit, a library.

``make_library_phone`` lays out, under one media root (the simulator serves it as is):

* ``DCIM/100APPLE``: the camera roll of :func:`tests.media.make_camera_roll` (IMG_0001 Live
  Photo, IMG_0002 edited, IMG_0003.JPG, IMG_0004.PNG, IMG_0005.MOV, IMG_0006.MP4), plus
  ``IMG_0100.HEIC``, listed but offloaded: the test gives it the simulator's I/O-error fault
  (:data:`OFFLOADED_DCIM`);
* ``PhotoData/CPLAssets/group5``: ``<A>.HEIC`` + ``<A>.MOV``, a Live Photo from another device
  (original name ``IMG_7001.HEIC``, EXIF date), and ``<B>.JPG``, a JPEG without any EXIF whose
  only date is the library's (original name ``IMG_7002.JPG``); the file times are years later;
* ``PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/FullSizeRender.jpg``: the edit of
  IMG_0002 as Photos renders it;
* ``PhotoData/Photos.sqlite`` (+ ``-wal``): every asset above, and ``<C>`` (``IMG_7003.HEIC``)
  whose original is only in iCloud and not on the phone at all; IMG_0001 is a favourite,
  IMG_0001 and ``<B>`` are in the album "Summer 2023", IMG_0004 is in Recently Deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests import media
from tests.photos_library import Asset, Library, write_library

LIVE_UUID = "8F2C1A00-0000-4000-8000-0000000000A1"
NO_EXIF_UUID = "8F2C1A00-0000-4000-8000-0000000000B2"
CLOUD_UUID = "8F2C1A00-0000-4000-8000-0000000000C3"
OFFLOADED_UUID = "8F2C1A00-0000-4000-8000-0000000000D4"
ALBUM = "Summer 2023"
OFFLOADED_DCIM = "/DCIM/100APPLE/IMG_0100.HEIC"
#: The JPEG without EXIF: taken 2021-08-15 10:00 in UTC-4 (the library says), file from 2024.
NO_EXIF_TAKEN_UTC = datetime(2021, 8, 15, 14, 0, tzinfo=UTC)
NO_EXIF_OFFSET = timedelta(hours=-4)
LIVE_TAKEN = datetime(2022, 3, 5, 9, 15, 0)
LIVE_OFFSET = timedelta(hours=1)
FILE_TIME = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class LibraryPhone:
    """The media root and what is on it."""

    root: Path
    roll: media.CameraRoll
    library: Library

    def cpl(self, name: str) -> Path:
        return self.root / "PhotoData" / "CPLAssets" / "group5" / name


def make_library_phone(root: Path, *, generation: str = "ios16") -> LibraryPhone:
    """Lay the phone out (see the module docstring)."""
    roll = media.make_camera_roll(root)
    offloaded = media.make_heic(
        root / "DCIM" / "100APPLE" / "IMG_0100.HEIC", datetime(2020, 1, 1, 8, 0), timedelta(0)
    )
    media.set_file_time(offloaded, FILE_TIME)
    group = root / "PhotoData" / "CPLAssets" / "group5"
    live = media.make_heic(group / f"{LIVE_UUID}.HEIC", LIVE_TAKEN, LIVE_OFFSET)
    video = media.make_video(
        group / f"{LIVE_UUID}.MOV",
        created_utc=(LIVE_TAKEN - LIVE_OFFSET).replace(tzinfo=UTC),
        apple_creationdate=media.apple_date_text(LIVE_TAKEN, LIVE_OFFSET),
    )
    no_exif = media.make_jpeg(group / f"{NO_EXIF_UUID}.JPG", None)
    for path in (live, video, no_exif):
        media.set_file_time(path, FILE_TIME)
    render = media.make_jpeg(
        root / "PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/FullSizeRender.jpg",
        datetime(2023, 7, 15, 8, 1, 30),
        timedelta(hours=2),
    )
    media.set_file_time(render, FILE_TIME)
    taken = datetime(2023, 7, 14, 16, 32, 5, tzinfo=UTC)
    assets = [
        Asset(
            "DCIM-0001",
            "DCIM/100APPLE",
            "IMG_0001.HEIC",
            "IMG_0001.HEIC",
            taken,
            7200,
            favorite=True,
            kind_subtype=2,
            albums=[ALBUM],
        ),
        Asset(
            "DCIM-0002",
            "DCIM/100APPLE",
            "IMG_0002.HEIC",
            "IMG_0002.HEIC",
            taken,
            has_adjustments=True,
        ),
        Asset("DCIM-0003", "DCIM/100APPLE", "IMG_0003.JPG", "IMG_0003.JPG", taken),
        Asset("DCIM-0004", "DCIM/100APPLE", "IMG_0004.PNG", "IMG_0004.PNG", taken, trashed=True),
        Asset(
            OFFLOADED_UUID,
            "DCIM/100APPLE",
            "IMG_0100.HEIC",
            "IMG_0100.HEIC",
            datetime(2020, 1, 1, 8, 0, tzinfo=UTC),
            0,
            local=False,
        ),
        Asset(
            LIVE_UUID,
            "CPLAssets/group5",
            f"{LIVE_UUID}.HEIC",
            "IMG_7001.HEIC",
            (LIVE_TAKEN - LIVE_OFFSET).replace(tzinfo=UTC),
            3600,
            kind_subtype=2,
        ),
        Asset(
            NO_EXIF_UUID,
            "CPLAssets/group5",
            f"{NO_EXIF_UUID}.JPG",
            "IMG_7002.JPG",
            NO_EXIF_TAKEN_UTC,
            int(NO_EXIF_OFFSET.total_seconds()),
            albums=[ALBUM],
        ),
        Asset(
            CLOUD_UUID,
            "CPLAssets/group6",
            f"{CLOUD_UUID}.HEIC",
            "IMG_7003.HEIC",
            datetime(2019, 12, 24, 18, 0, tzinfo=UTC),
            3600,
            local=False,
        ),
    ]
    library = write_library(root, assets, generation=generation)
    return LibraryPhone(root, roll, library)
