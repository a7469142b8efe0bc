"""The pure library rules: archive and edit names, capture dates, sidecar unions, suspect reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from rollkeeper.domain.library import (
    LibraryAsset,
    archive_name,
    drops_something,
    edit_name,
    library_capture_date,
    phone_folder_for_directory,
    printable_title,
    read_is_suspect,
    sidecar_facts,
    titles,
)


def asset(uuid: str, **fields: object) -> LibraryAsset:
    values: dict[str, object] = {"folder": "/DCIM/100APPLE", "filename": f"{uuid}.HEIC"}
    values.update(fields)
    return LibraryAsset(uuid=uuid, **values)  # type: ignore[arg-type]


def test_a_uuid_named_original_takes_its_original_name_with_its_own_extension() -> None:
    """A CPLAssets file is named by ZORIGINALFILENAME; a Live Photo's video keeps the stem and
    takes its own extension; without an original name the file keeps its own."""
    assert archive_name("IMG_7001.HEIC", "8F2C-1.heic") == "IMG_7001.HEIC"
    assert archive_name("IMG_7001.HEIC", "8F2C-1.MOV") == "IMG_7001.MOV"
    assert archive_name(None, "8F2C-1.JPG") == "8F2C-1.JPG"


def test_an_edit_is_named_as_the_e_file_of_its_original() -> None:
    """A rendered edit gets the E name of its original (grouping it with it), in the render's
    extension; a name outside Apple's pattern gets _edited."""
    assert edit_name("IMG_1234.HEIC", "FullSizeRender.jpg") == "IMG_E1234.JPG"
    assert edit_name("IMG_1234.HEIC", "FullSizeRender.mov") == "IMG_E1234.MOV"
    assert edit_name("beach.jpg", "FullSizeRender.heic") == "beach_edited.HEIC"


def test_library_folders_map_to_phone_folders_and_nothing_else() -> None:
    """DCIM and CPLAssets directories map to their phone folders; any other place is None."""
    assert phone_folder_for_directory("DCIM/100APPLE") == "/DCIM/100APPLE"
    assert phone_folder_for_directory("CPLAssets/group5") == "/PhotoData/CPLAssets/group5"
    assert phone_folder_for_directory("PhotoData/CPLAssets/group5") == "/PhotoData/CPLAssets/group5"
    assert phone_folder_for_directory("PhotoData/Thumbnails/V2") is None
    assert phone_folder_for_directory("DCIM") is None


def test_the_capture_date_is_local_to_the_asset_s_own_zone() -> None:
    """ZDATECREATED (UTC) with the asset's offset gives the local time of capture; without an
    offset, the given zone's."""
    created = datetime(2023, 12, 31, 23, 30, tzinfo=UTC)
    in_tokyo = library_capture_date(asset("A", created_utc=created, utc_offset=timedelta(hours=9)))
    assert in_tokyo is not None
    assert in_tokyo.local == datetime(2024, 1, 1, 8, 30)
    assert in_tokyo.utc_offset == timedelta(hours=9)
    assert in_tokyo.source == "library"
    unknown = library_capture_date(
        asset("B", created_utc=created), zone=timezone(timedelta(hours=-5))
    )
    assert unknown is not None and unknown.local == datetime(2023, 12, 31, 18, 30)
    assert library_capture_date(asset("C")) is None


def test_a_file_stored_once_for_several_assets_carries_their_union() -> None:
    """Albums are the union (sorted, once each), favourite if any is, every UUID once."""
    facts = sidecar_facts(
        [
            asset("B", albums=("Trip", "Family"), favorite=False),
            asset("A", albums=("Trip",), favorite=True, trashed=True),
        ]
    )
    assert facts.uuids == ("A", "B")
    assert facts.albums == ("Family", "Trip")
    assert facts.favorite and facts.recently_deleted and not facts.hidden


def test_a_sidecar_drops_something_when_an_album_or_the_favourite_goes() -> None:
    """Losing an album or the favourite is a drop; gaining one is not."""
    previous = {"albums": ["Trip"], "favorite": True}
    assert drops_something(previous, sidecar_facts([asset("A", albums=(), favorite=True)]))
    assert drops_something(previous, sidecar_facts([asset("A", albums=("Trip",))]))
    assert not drops_something(
        previous, sidecar_facts([asset("A", albums=("Trip", "New"), favorite=True)])
    )


def test_a_read_is_suspect_only_beyond_the_percent_and_the_floor() -> None:
    """A few drops in a small archive pass; many drops beyond the percent are suspect; 100 %
    accepts anything."""
    assert not read_is_suspect(3, 10, 5).suspect
    assert not read_is_suspect(10, 1000, 5).suspect
    assert read_is_suspect(100, 1000, 5).suspect
    assert not read_is_suspect(1000, 1000, 100).suspect


def test_titles_are_made_fit_for_xml() -> None:
    """Control characters and lone surrogates are dropped, blanks collapsed; non-text and
    empty titles go; each title once."""
    assert printable_title("Trip\x00 \x07to\tRome\ud800") == "Trip to Rome"
    assert titles(["Rome", "Rome", "", 3, None, "\x01"]) == ("Rome",)
