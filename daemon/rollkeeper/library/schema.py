"""Find the tables and columns of a Photos library from its own schema, for any iOS version.

Table and column names change between iOS versions: the asset table is ``ZGENERICASSET``
(iOS 11-13) or ``ZASSET`` (iOS 14+), and the album-to-asset join table is ``Z_<n>ASSETS`` with
columns ``Z_<n>ALBUMS`` and ``Z_<m>ASSETS`` whose numbers move with the Core Data model
(``Z_26ASSETS`` / ``Z_34ASSETS`` on iOS 13, ``Z_28ASSETS`` / ``Z_3ASSETS`` on iOS 16, ...).
Everything is found here from ``sqlite_master`` and ``PRAGMA table_info``, never from a number
written in the code; ``Z_PRIMARYKEY`` (Core Data's entity table) settles a choice when two
join tables look alike.

What is missing degrades the feature that needs it, with a reason, never the whole read: no
albums table means no albums in the sidecars, no resource table means "only in iCloud" is known
only from what the phone lists. Only an asset table without a primary key, a folder and a file
name is unreadable (:class:`LibraryUnreadableError`). Names found here are interpolated into
SQL only after they matched the exact patterns above, and always quoted.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

ASSET_TABLES = ("ZASSET", "ZGENERICASSET")
ATTRIBUTES_TABLE = "ZADDITIONALASSETATTRIBUTES"
RESOURCES_TABLE = "ZINTERNALRESOURCE"
ALBUMS_TABLE = "ZGENERICALBUM"
REQUIRED_ASSET_COLUMNS = frozenset({"Z_PK", "ZDIRECTORY", "ZFILENAME"})

_JOIN_TABLE = re.compile(r"^Z_(\d+)ASSETS$")
_ASSET_COLUMN = re.compile(r"^Z_(\d+)ASSETS$")


class LibraryUnreadableError(Exception):
    """The file is not a Photos library rollkeeper can read at all (with the reason)."""


@dataclass(frozen=True, slots=True)
class AlbumJoin:
    """The table joining albums to assets and its two columns."""

    table: str
    album_column: str
    asset_column: str


@dataclass(slots=True)
class LibrarySchema:
    """The tables and columns found, and each feature that had to be left out, with why."""

    asset_table: str
    asset_columns: frozenset[str]
    attribute_columns: frozenset[str] = frozenset()
    resource_columns: frozenset[str] = frozenset()
    album_columns: frozenset[str] = frozenset()
    album_join: AlbumJoin | None = None
    degraded: list[str] = field(default_factory=list)

    @property
    def generation(self) -> str:
        """Which schema generation this is, in words."""
        if self.asset_table == "ZASSET":
            return "ZASSET (iOS 14 or later)"
        return "ZGENERICASSET (iOS 13 or earlier)"

    @property
    def albums_known(self) -> bool:
        """Whether album membership can be read (sidecars then carry albums)."""
        return self.album_join is not None and {"Z_PK", "ZTITLE"} <= self.album_columns

    @property
    def availability_known(self) -> bool:
        """Whether the library says which originals are on the phone."""
        return {"ZASSET", "ZLOCALAVAILABILITY", "ZDATASTORESUBTYPE"} <= self.resource_columns


def quoted(name: str) -> str:
    """An identifier for SQL (names reaching here matched a pattern or a fixed list)."""
    return '"' + name.replace('"', '""') + '"'


def _tables(connection: sqlite3.Connection) -> set[str]:
    rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows if isinstance(row[0], str)}


def columns_of(connection: sqlite3.Connection, table: str) -> frozenset[str]:
    """The column names of a table (upper-cased, as Core Data writes them)."""
    rows = connection.execute(f"PRAGMA table_info({quoted(table)})").fetchall()
    return frozenset(str(row[1]).upper() for row in rows if isinstance(row[1], str))


def _entity_numbers(connection: sqlite3.Connection, tables: set[str]) -> dict[str, int]:
    """Core Data's entity numbers by entity name (``Asset`` -> 3), when ``Z_PRIMARYKEY`` has
    them; used only to choose between look-alike join tables."""
    if "Z_PRIMARYKEY" not in tables:
        return {}
    if not {"Z_ENT", "Z_NAME"} <= columns_of(connection, "Z_PRIMARYKEY"):
        return {}
    numbers: dict[str, int] = {}
    for number, name in connection.execute("SELECT Z_ENT, Z_NAME FROM Z_PRIMARYKEY"):
        if isinstance(number, int) and isinstance(name, str):
            numbers[name] = number
    return numbers


def find_album_join(
    connection: sqlite3.Connection, tables: set[str]
) -> tuple[AlbumJoin | None, str]:
    """The album join table, or None and why it could not be told."""
    candidates: list[AlbumJoin] = []
    for table in sorted(tables):
        match = _JOIN_TABLE.match(table)
        if match is None:
            continue
        columns = columns_of(connection, table)
        album_column = f"Z_{match[1]}ALBUMS"
        if album_column not in columns:
            continue
        asset_columns = sorted(column for column in columns if _ASSET_COLUMN.match(column))
        if len(asset_columns) == 1:
            candidates.append(AlbumJoin(table, album_column, asset_columns[0]))
    if len(candidates) == 1:
        return candidates[0], ""
    if not candidates:
        return None, "no Z_<n>ASSETS table with Z_<n>ALBUMS and Z_<m>ASSETS columns"
    entities = _entity_numbers(connection, tables)
    asset_entity = entities.get("Asset", entities.get("GenericAsset"))
    chosen = [
        join
        for join in candidates
        if asset_entity is not None and join.asset_column == f"Z_{asset_entity}ASSETS"
    ]
    if len(chosen) == 1:
        return chosen[0], ""
    names = ", ".join(join.table for join in candidates)
    return None, f"several album join tables look alike ({names})"


#: Columns of the asset table whose absence degrades one feature, and that feature.
OPTIONAL_ASSET_COLUMNS = (
    ("ZUUID", "asset UUIDs (sidecars name the asset by its row number)"),
    ("ZDATECREATED", "capture dates from the library"),
    ("ZFAVORITE", "favourites"),
    ("ZHIDDEN", "hidden photos"),
    ("ZTRASHEDSTATE", "Recently Deleted"),
    ("ZHASADJUSTMENTS", "edits rendered under PhotoData/Mutations"),
)


def discover(connection: sqlite3.Connection) -> LibrarySchema:
    """Read the schema of an open library (see the module docstring)."""
    try:
        tables = _tables(connection)
    except sqlite3.DatabaseError as error:
        raise LibraryUnreadableError(f"cannot read its schema: {error}") from error
    asset_table = next((name for name in ASSET_TABLES if name in tables), None)
    if asset_table is None:
        raise LibraryUnreadableError("it has no ZASSET or ZGENERICASSET table")
    asset_columns = columns_of(connection, asset_table)
    missing = sorted(REQUIRED_ASSET_COLUMNS - asset_columns)
    if missing:
        raise LibraryUnreadableError(f"{asset_table} has no {', '.join(missing)} column")
    schema = LibrarySchema(asset_table, asset_columns)
    schema.degraded.extend(
        f"{feature}: {asset_table} has no {column}"
        for column, feature in OPTIONAL_ASSET_COLUMNS
        if column not in asset_columns
    )
    _add_attributes(connection, tables, schema)
    _add_resources(connection, tables, schema)
    _add_albums(connection, tables, schema)
    return schema


def _add_attributes(
    connection: sqlite3.Connection, tables: set[str], schema: LibrarySchema
) -> None:
    if ATTRIBUTES_TABLE in tables:
        schema.attribute_columns = columns_of(connection, ATTRIBUTES_TABLE)
    if "ZASSET" not in schema.attribute_columns:
        schema.attribute_columns = frozenset()
        schema.degraded.append(
            f"original file names and time zones: no usable {ATTRIBUTES_TABLE} table"
        )


def _add_resources(connection: sqlite3.Connection, tables: set[str], schema: LibrarySchema) -> None:
    if RESOURCES_TABLE in tables:
        schema.resource_columns = columns_of(connection, RESOURCES_TABLE)
    if not schema.availability_known:
        schema.degraded.append(
            "originals only in iCloud, as the library marks them: no "
            f"{RESOURCES_TABLE} with ZASSET, ZLOCALAVAILABILITY and ZDATASTORESUBTYPE"
        )


def _add_albums(connection: sqlite3.Connection, tables: set[str], schema: LibrarySchema) -> None:
    if ALBUMS_TABLE not in tables:
        schema.degraded.append(f"albums: no {ALBUMS_TABLE} table")
        return
    schema.album_columns = columns_of(connection, ALBUMS_TABLE)
    schema.album_join, why = find_album_join(connection, tables)
    if schema.album_join is None:
        schema.degraded.append(f"albums: {why}")
    elif not schema.albums_known:
        schema.degraded.append(f"albums: {ALBUMS_TABLE} has no Z_PK and ZTITLE")
