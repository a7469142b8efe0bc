"""Read the assets of a Photos library snapshot, every value checked as untrusted input.

The schema is found first (:mod:`.schema`); then four queries: the assets, their additional
attributes (original file name and size, time zone), the availability of their original
resources, and album membership. Nothing from the file is trusted: a value of the wrong type,
out of range or unsafe as a name is dropped (the field becomes None), and an asset without a
usable UUID is skipped and counted.

Which resource is the original: ``ZINTERNALRESOURCE`` rows of an asset with
``ZDATASTORESUBTYPE`` 1 (the original photo) or 3 (the original video, also a Live Photo's
video), as osxphotos reads them. ``ZLOCALAVAILABILITY`` 1 means on the phone, -1 (any negative
value) only in iCloud; an asset with any original resource not local is "only in iCloud".
Albums are the user's albums (``ZGENERICALBUM.ZKIND`` 2), not trashed (``ZTRASHEDSTATE``).
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from rollkeeper.domain.library import (
    LARGEST_OFFSET,
    LibraryAsset,
    phone_folder_for_directory,
    titles,
)
from rollkeeper.domain.names import NameRejected, check_phone_name
from rollkeeper.library.database_file import open_untrusted
from rollkeeper.library.schema import (
    ALBUMS_TABLE,
    ATTRIBUTES_TABLE,
    RESOURCES_TABLE,
    LibrarySchema,
    LibraryUnreadableError,
    discover,
    quoted,
)

log = structlog.get_logger("rollkeeper.library")

#: Core Data's epoch: ``ZDATECREATED`` counts seconds from here (978307200 after 1970).
APPLE_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)
#: Capture dates accepted: 1900 to 2200 (anything else is a broken value, not a date).
EARLIEST_SECONDS = -3_187_296_000
LATEST_SECONDS = 6_311_390_400
USER_ALBUM_KIND = 2
ORIGINAL_RESOURCE_SUBTYPES = (1, 3)
_KINDS = {0: "photo", 1: "video"}
_UUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_GMT_OFFSET = re.compile(r"^(?:GMT|UTC)?([+-])(\d{1,2}):?(\d{2})?$")
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$")


@dataclass(slots=True)
class LibraryRead:
    """The assets of one library and what could not be read."""

    assets: list[LibraryAsset]
    generation: str
    degraded: list[str] = field(default_factory=list)
    albums_known: bool = False
    availability_known: bool = False
    #: Rows left out because nothing in them identified an asset.
    skipped_rows: int = 0


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return None


def _flag(value: object) -> bool:
    return _integer(value) == 1


#: Names that certainly pass :func:`check_phone_name` (ASCII letters, digits, ``_.- ``, not
#: starting with a dot, short): accepted without the per-character checks (the common case).
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,199}$")


def _name(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    if _PLAIN_NAME.match(value):
        return value
    try:
        return check_phone_name(value)
    except NameRejected:
        return None


@functools.lru_cache(maxsize=4096)
def _folder(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > 1024:
        return None
    parts = [part for part in value.split("/") if part]
    if not parts or any(_name(part) is None for part in parts):
        return None
    return phone_folder_for_directory("/".join(parts))


def _created(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not EARLIEST_SECONDS <= value <= LATEST_SECONDS:
        return None
    return APPLE_EPOCH + timedelta(seconds=float(value))


def _offset(seconds: object, zone_name: object, moment: datetime | None) -> timedelta | None:
    """The asset's offset from UTC: ``ZTIMEZONEOFFSET``, else what ``ZTIMEZONENAME`` says
    (``GMT+0200`` or an IANA name at that moment)."""
    number = _integer(seconds)
    if number is not None and abs(number) <= LARGEST_OFFSET.total_seconds():
        return timedelta(seconds=number)
    if not isinstance(zone_name, str) or len(zone_name) > 64:
        return None
    match = _GMT_OFFSET.match(zone_name)
    if match is not None:
        offset = timedelta(hours=int(match[2]), minutes=int(match[3] or 0))
        offset = -offset if match[1] == "-" else offset
        return offset if abs(offset) <= LARGEST_OFFSET else None
    if zone_name in ("GMT", "UTC"):
        return timedelta(0)
    if moment is None or not _ZONE_NAME.match(zone_name):
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return moment.astimezone(ZoneInfo(zone_name)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


class LibraryReader:
    """Reads one snapshot file (opened read-only, every guard on)."""

    def __init__(self, database: Path) -> None:
        self._database = database

    def read(self) -> LibraryRead:
        """Every asset of the library; :class:`LibraryUnreadableError` when there is no library
        to speak of (not a database, no asset table)."""
        try:
            connection = open_untrusted(self._database)
        except sqlite3.Error as error:
            raise LibraryUnreadableError(f"cannot open it: {error}") from error
        try:
            schema = discover(connection)
            return self._read(connection, schema)
        except sqlite3.DatabaseError as error:
            raise LibraryUnreadableError(f"reading it failed: {error}") from error
        finally:
            connection.close()

    def _read(self, connection: sqlite3.Connection, schema: LibrarySchema) -> LibraryRead:
        attributes = self._attributes(connection, schema)
        availability = self._availability(connection, schema)
        albums = self._albums(connection, schema)
        result = LibraryRead(
            assets=[],
            generation=schema.generation,
            degraded=list(schema.degraded),
            albums_known=schema.albums_known,
            availability_known=schema.availability_known,
        )
        for row in self._asset_rows(connection, schema):
            asset = self._asset(row, attributes, availability, albums)
            if asset is None:
                result.skipped_rows += 1
            else:
                result.assets.append(asset)
        for reason in result.degraded:
            log.info("library_feature_degraded", reason=reason)
        return result

    @staticmethod
    def _asset_rows(
        connection: sqlite3.Connection, schema: LibrarySchema
    ) -> Iterator[dict[str, object]]:
        wanted = (
            "Z_PK",
            "ZUUID",
            "ZDIRECTORY",
            "ZFILENAME",
            "ZDATECREATED",
            "ZFAVORITE",
            "ZHIDDEN",
            "ZTRASHEDSTATE",
            "ZKIND",
            "ZKINDSUBTYPE",
            "ZHASADJUSTMENTS",
        )
        present = [column for column in wanted if column in schema.asset_columns]
        query = (
            f"SELECT {', '.join(quoted(column) for column in present)}"
            f" FROM {quoted(schema.asset_table)}"
        )
        for values in connection.execute(query):
            yield dict(zip(present, values, strict=True))

    @staticmethod
    def _attributes(
        connection: sqlite3.Connection, schema: LibrarySchema
    ) -> dict[int, tuple[object, ...]]:
        """(original name, original size, offset seconds, zone name) by asset row."""
        columns = schema.attribute_columns
        if not columns:
            return {}
        picked = [
            quoted(column) if column in columns else "NULL"
            for column in (
                "ZORIGINALFILENAME",
                "ZORIGINALFILESIZE",
                "ZTIMEZONEOFFSET",
                "ZTIMEZONENAME",
            )
        ]
        found: dict[int, tuple[object, ...]] = {}
        query = f"SELECT ZASSET, {', '.join(picked)} FROM {quoted(ATTRIBUTES_TABLE)}"
        for row in connection.execute(query):
            key = _integer(row[0])
            if key is not None:
                found.setdefault(key, tuple(row[1:]))
        return found

    @staticmethod
    def _availability(connection: sqlite3.Connection, schema: LibrarySchema) -> dict[int, bool]:
        """Whether each asset's originals are all on the phone (False: one is only in iCloud)."""
        if not schema.availability_known:
            return {}
        subtypes = ", ".join(str(number) for number in ORIGINAL_RESOURCE_SUBTYPES)
        query = (
            f"SELECT ZASSET, min(ZLOCALAVAILABILITY), max(ZLOCALAVAILABILITY)"
            f" FROM {quoted(RESOURCES_TABLE)} WHERE ZDATASTORESUBTYPE IN ({subtypes})"
            " GROUP BY ZASSET"
        )
        found: dict[int, bool] = {}
        for asset, lowest, highest in connection.execute(query):
            key, low, high = _integer(asset), _integer(lowest), _integer(highest)
            if key is None:
                continue
            if low is not None and low < 0:
                found[key] = False
            elif high == 1:
                found[key] = True
        return found

    @staticmethod
    def _albums(connection: sqlite3.Connection, schema: LibrarySchema) -> dict[int, list[str]]:
        """User album titles by asset row."""
        join = schema.album_join
        if join is None or not schema.albums_known:
            return {}
        conditions = []
        if "ZKIND" in schema.album_columns:
            conditions.append(f"album.ZKIND = {USER_ALBUM_KIND}")
        if "ZTRASHEDSTATE" in schema.album_columns:
            conditions.append("coalesce(album.ZTRASHEDSTATE, 0) = 0")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        query = (
            f"SELECT joined.{quoted(join.asset_column)}, album.ZTITLE"
            f" FROM {quoted(join.table)} AS joined"
            f" JOIN {quoted(ALBUMS_TABLE)} AS album"
            f" ON album.Z_PK = joined.{quoted(join.album_column)}"
            f"{where}"
        )
        found: dict[int, list[str]] = {}
        for asset, title in connection.execute(query):
            key = _integer(asset)
            if key is not None and isinstance(title, str):
                found.setdefault(key, []).append(title)
        # Checked once per distinct set of titles, not once per asset.
        checked: dict[tuple[str, ...], tuple[str, ...]] = {}
        return {
            key: list(checked.setdefault(tuple(values), titles(values)))
            for key, values in found.items()
        }

    @staticmethod
    def _asset(
        row: dict[str, object],
        attributes: dict[int, tuple[object, ...]],
        availability: dict[int, bool],
        albums: dict[int, list[str]],
    ) -> LibraryAsset | None:
        key = _integer(row.get("Z_PK"))
        if key is None:
            return None
        uuid_value = row.get("ZUUID", f"row-{key}")
        if not isinstance(uuid_value, str) or not _UUID.match(uuid_value):
            return None
        original_name, original_size, offset_seconds, zone_name = attributes.get(
            key, (None, None, None, None)
        )
        created = _created(row.get("ZDATECREATED"))
        size = _integer(original_size)
        kind_number = _integer(row.get("ZKIND"))
        kind = None if kind_number is None else _KINDS.get(kind_number)
        return LibraryAsset(
            uuid=uuid_value,
            folder=_folder(row.get("ZDIRECTORY")),
            filename=_name(row.get("ZFILENAME")),
            original_filename=_name(original_name),
            original_size=size if size is not None and 0 <= size < 2**63 else None,
            created_utc=created,
            utc_offset=_offset(offset_seconds, zone_name, created),
            time_zone_name=zone_name
            if isinstance(zone_name, str) and len(zone_name) <= 64
            else None,
            favorite=_flag(row.get("ZFAVORITE")),
            hidden=_flag(row.get("ZHIDDEN")),
            trashed=_flag(row.get("ZTRASHEDSTATE")),
            kind=kind,
            live_photo=_integer(row.get("ZKINDSUBTYPE")) == 2,
            has_adjustments=_flag(row.get("ZHASADJUSTMENTS")),
            original_local=availability.get(key),
            albums=tuple(albums.get(key, ())),
        )
