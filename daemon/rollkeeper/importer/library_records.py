"""Library assets as the state keeps them, and back; and the library's dates for DCIM files.

:func:`stored_asset` and :func:`library_asset` convert between the domain's
:class:`~rollkeeper.domain.library.LibraryAsset` and the row of ``library_assets``;
:class:`StoredDates` gives the placer of DCIM files the capture date the last applied library
read knows for a file that carries none of its own (a JPEG without EXIF, a screenshot).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rollkeeper.domain.layout import CaptureDate
from rollkeeper.domain.library import LibraryAsset, library_capture_date
from rollkeeper.store.library import LibraryRepository, StoredAsset
from rollkeeper.store.records import ManifestEntry


def stored_asset(asset: LibraryAsset) -> StoredAsset:
    """The row ``library_assets`` keeps of an asset."""
    return StoredAsset(
        uuid=asset.uuid,
        phone_folder=asset.folder if asset.filename is not None else None,
        phone_name=asset.filename if asset.folder is not None else None,
        original_filename=asset.original_filename,
        created_utc=None if asset.created_utc is None else asset.created_utc.isoformat(),
        utc_offset_seconds=(
            None if asset.utc_offset is None else int(asset.utc_offset.total_seconds())
        ),
        favorite=asset.favorite,
        hidden=asset.hidden,
        trashed=asset.trashed,
        original_local=asset.original_local,
        albums=asset.albums,
    )


def library_asset(stored: StoredAsset) -> LibraryAsset:
    """An asset back from its row (what sidecars and dates need of it)."""
    created = None
    if stored.created_utc:
        try:
            created = datetime.fromisoformat(stored.created_utc)
        except ValueError:
            created = None
    offset = None
    if stored.utc_offset_seconds is not None:
        offset = timedelta(seconds=stored.utc_offset_seconds)
    return LibraryAsset(
        uuid=stored.uuid,
        folder=stored.phone_folder,
        filename=stored.phone_name,
        original_filename=stored.original_filename,
        created_utc=created,
        utc_offset=offset,
        favorite=stored.favorite,
        hidden=stored.hidden,
        trashed=stored.trashed,
        original_local=stored.original_local,
        albums=stored.albums,
    )


class StoredDates:
    """The placer's hints for DCIM files: the phone's own names, and the capture date the last
    applied library read gives a file (used only where the file carries no date)."""

    def __init__(self, library: LibraryRepository, udid: str) -> None:
        self._library = library
        self._udid = udid

    def archive_name(self, entry: ManifestEntry) -> str:
        """DCIM files keep their names."""
        return entry.name

    def capture_date(self, phone_path: str) -> CaptureDate | None:
        """The library's date of the asset whose original is ``phone_path``, if any."""
        folder, _, name = phone_path.rpartition("/")
        stored = self._library.asset_at(self._udid, folder, name)
        return None if stored is None else library_capture_date(library_asset(stored))
