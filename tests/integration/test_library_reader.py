"""The library reader on real SQLite files of both schema generations, and on hostile ones."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollkeeper.library.reader import LibraryReader
from rollkeeper.library.schema import LibraryUnreadableError
from tests.photos_library import Asset, asset_table, write_library

TAKEN = datetime(2023, 7, 14, 16, 32, 5, tzinfo=UTC)


def sample_assets() -> list[Asset]:
    return [
        Asset(
            "AAAA-1",
            "DCIM/100APPLE",
            "IMG_0001.HEIC",
            "IMG_0001.HEIC",
            TAKEN,
            7200,
            "Europe/Paris",
            favorite=True,
            albums=["Holiday", "Best of"],
            kind_subtype=2,
        ),
        Asset(
            "BBBB-2",
            "CPLAssets/group5",
            "BBBB-2.JPG",
            "IMG_7001.JPG",
            TAKEN - timedelta(days=400),
            -18000,
            albums=["Holiday"],
        ),
        Asset("CCCC-3", "CPLAssets/group7", "CCCC-3.HEIC", "IMG_7002.HEIC", TAKEN, local=False),
        Asset("DDDD-4", "DCIM/100APPLE", "IMG_0002.MOV", kind=1, hidden=True, trashed=True),
    ]


@pytest.mark.parametrize("generation", ["ios13", "ios16"])
def test_both_generations_read_the_same_assets_from_rows_only_in_the_wal(
    tmp_path: Path, generation: str
) -> None:
    """ZGENERICASSET (iOS 13) and ZASSET (iOS 14+) libraries, every row only in the -wal, read
    to the same assets: folders, original names, dates in their zone, albums through the join
    table found from the schema, favourites, hidden, deleted, availability."""
    library = write_library(tmp_path, sample_assets(), generation=generation)
    plain = sqlite3.connect(f"file:{library.database}?mode=ro&immutable=1", uri=True)
    table = asset_table(library)
    assert plain.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, "rows are in -wal"
    plain.close()

    read = LibraryReader(library.database).read()
    assert read.degraded == [] and read.albums_known and read.availability_known
    assert read.generation.startswith(table)
    by_uuid = {item.uuid: item for item in read.assets}
    assert set(by_uuid) == {"AAAA-1", "BBBB-2", "CCCC-3", "DDDD-4"}
    live = by_uuid["AAAA-1"]
    assert live.phone_path == "/DCIM/100APPLE/IMG_0001.HEIC"
    assert live.albums == ("Best of", "Holiday") and live.favorite and live.live_photo
    assert live.created_utc == TAKEN and live.utc_offset == timedelta(hours=2)
    cpl = by_uuid["BBBB-2"]
    assert cpl.phone_path == "/PhotoData/CPLAssets/group5/BBBB-2.JPG" and cpl.in_cpl_assets
    assert cpl.original_filename == "IMG_7001.JPG" and cpl.utc_offset == timedelta(hours=-5)
    assert by_uuid["CCCC-3"].original_local is False and live.original_local is True
    video = by_uuid["DDDD-4"]
    assert video.kind == "video" and video.hidden and video.trashed and video.albums == ()


def test_a_missing_table_or_column_degrades_one_feature_with_a_reason(tmp_path: Path) -> None:
    """Without the albums table and ZFAVORITE the assets are still read, without albums and
    favourites, and the reasons say so."""
    library = write_library(
        tmp_path,
        sample_assets(),
        extra_sql="DROP TABLE ZGENERICALBUM; ALTER TABLE ZASSET DROP COLUMN ZFAVORITE;",
    )
    read = LibraryReader(library.database).read()
    assert len(read.assets) == 4
    assert not read.albums_known
    assert any(reason.startswith("albums:") for reason in read.degraded)
    assert any(reason.startswith("favourites:") for reason in read.degraded)
    assert all(not item.favorite and item.albums == () for item in read.assets)


def test_two_look_alike_join_tables_are_settled_by_the_entity_table(tmp_path: Path) -> None:
    """A second Z_<n>ASSETS table joining albums to another entity does not confuse the
    reader: Z_PRIMARYKEY says which one joins the assets."""
    library = write_library(
        tmp_path,
        sample_assets(),
        extra_sql="CREATE TABLE Z_40ASSETS (Z_40ALBUMS INTEGER, Z_41ASSETS INTEGER);"
        "INSERT INTO Z_40ASSETS VALUES (1, 4);",
    )
    read = LibraryReader(library.database).read()
    assert read.albums_known
    assert {item.uuid: item.albums for item in read.assets}["DDDD-4"] == ()


def test_hostile_values_are_dropped_not_used(tmp_path: Path) -> None:
    """Names with separators, directories with .., dates of the year 50000, offsets of days,
    blobs where text belongs: each field is dropped; a row without a usable UUID is skipped."""
    library = write_library(tmp_path, sample_assets())
    hostile = [
        ("../../etc", "passwd", "EEEE-5", 1e12, b"blob"),
        ("DCIM/100APPLE", "IMG_\n0003.JPG", "FFFF-6", "not a date", None),
        ("DCIM/100APPLE", "IMG_0004.JPG", "bad uuid with spaces", 0.0, None),
    ]
    from tests.photos_library import change_library

    change_library(
        library,
        [
            (
                "INSERT INTO ZASSET (ZDIRECTORY, ZFILENAME, ZUUID, ZDATECREATED, ZFAVORITE)"
                " VALUES (?, ?, ?, ?, ?)",
                row,
            )
            for row in hostile
        ]
        + [("UPDATE ZADDITIONALASSETATTRIBUTES SET ZTIMEZONEOFFSET = 9999999", ())],
    )
    read = LibraryReader(library.database).read()
    assert read.skipped_rows == 1
    by_uuid = {item.uuid: item for item in read.assets}
    assert by_uuid["EEEE-5"].folder is None and by_uuid["EEEE-5"].created_utc is None
    assert not by_uuid["EEEE-5"].favorite
    assert by_uuid["FFFF-6"].filename is None and by_uuid["FFFF-6"].phone_path is None
    # An absurd offset is ignored; the IANA zone name still gives one.
    assert by_uuid["AAAA-1"].utc_offset == timedelta(hours=2)


def test_what_is_not_a_library_is_unreadable_with_a_reason(tmp_path: Path) -> None:
    """Garbage, a database without an asset table, and an asset table that is a view are each
    refused as unreadable, never half-read."""
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(LibraryUnreadableError):
        LibraryReader(garbage).read()
    other = tmp_path / "other.sqlite"
    connection = sqlite3.connect(other)
    connection.executescript(
        "CREATE TABLE t (x); CREATE VIEW ZASSET AS SELECT 1 AS Z_PK, 'a' AS ZDIRECTORY,"
        " 'b' AS ZFILENAME;"
    )
    connection.close()
    with pytest.raises(LibraryUnreadableError, match="no ZASSET"):
        LibraryReader(other).read()


def test_a_giant_value_is_refused_not_read_into_memory(tmp_path: Path) -> None:
    """A library row holding a 2 MB file name is refused by SQLite's length limit (an
    unreadable library with the reason), never read into memory."""
    library = write_library(tmp_path, sample_assets())
    from tests.photos_library import change_library

    change_library(
        library,
        [("UPDATE ZASSET SET ZFILENAME = ? WHERE ZUUID = 'AAAA-1'", ("A" * 2_000_000,))],
    )
    with pytest.raises(LibraryUnreadableError, match="too big"):
        LibraryReader(library.database).read()
