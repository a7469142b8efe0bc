"""Build a phone's Photos library at test time: ``PhotoData/Photos.sqlite`` with its WAL.

Phone content, not simulator code (docs/simulator.md): the simulator serves whatever the media
root holds, so a test lays out ``<root>/PhotoData/Photos.sqlite`` (+ ``-wal``, ``-shm``),
``<root>/PhotoData/CPLAssets/groupNNN/<UUID>.<ext>`` and
``<root>/PhotoData/Mutations/<dir>/<stem>/Adjustments/FullSizeRender.<ext>`` with the helpers
here, and the real pymobiledevice3 client reads them over AFC.

Two schema generations, with the tables and columns public queries (iLEAPP, osxphotos) show:

* ``ios13``: ``ZGENERICASSET``; albums joined through ``Z_26ASSETS`` (``Z_26ALBUMS``,
  ``Z_34ASSETS``, ``Z_FOK_34ASSETS``); entities GenericAsset 34, GenericAlbum 26.
* ``ios16``: ``ZASSET``; ``Z_28ASSETS`` (``Z_28ALBUMS``, ``Z_3ASSETS``, ``Z_FOK_3ASSETS``);
  entities Asset 3, GenericAlbum 28.

Both have ``ZADDITIONALASSETATTRIBUTES``, ``ZINTERNALRESOURCE`` (one row per original
resource: ``ZDATASTORESUBTYPE`` 1 photo, 3 video, ``ZLOCALAVAILABILITY`` 1 or -1),
``ZGENERICALBUM`` and ``Z_PRIMARYKEY``, plus a few tables rollkeeper never reads. The library is
written in WAL mode the way a phone leaves it while Photos runs: with ``rows_in_wal`` the schema
is checkpointed into the database file and every row is only in the ``-wal``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

APPLE_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)
LIBRARY_RELATIVE = Path("PhotoData") / "Photos.sqlite"


@dataclass(frozen=True)
class Generation:
    """The names one iOS generation gives its tables."""

    asset_table: str
    join_table: str
    album_column: str
    asset_column: str
    asset_entity: int
    album_entity: int


GENERATIONS = {
    "ios13": Generation("ZGENERICASSET", "Z_26ASSETS", "Z_26ALBUMS", "Z_34ASSETS", 34, 26),
    "ios16": Generation("ZASSET", "Z_28ASSETS", "Z_28ALBUMS", "Z_3ASSETS", 3, 28),
}


@dataclass
class Asset:
    """One asset row (with its attributes, resources and albums) to write."""

    uuid: str
    directory: str
    filename: str
    original_filename: str | None = None
    created: datetime | None = None
    timezone_offset: int | None = None
    timezone_name: str | None = None
    favorite: bool = False
    hidden: bool = False
    trashed: bool = False
    kind: int = 0
    kind_subtype: int = 0
    has_adjustments: bool = False
    #: True/False: one original resource row, local or not; None: no resource row at all.
    local: bool | None = True
    albums: Sequence[str] = ()
    original_size: int | None = None


@dataclass
class Library:
    """What a test wrote: the files on the host and the assets they hold."""

    root: Path
    generation: str
    assets: list[Asset] = field(default_factory=list)

    @property
    def database(self) -> Path:
        return self.root / LIBRARY_RELATIVE

    @property
    def wal(self) -> Path:
        return self.database.with_name("Photos.sqlite-wal")


def _schema(generation: Generation) -> str:
    return f"""
    CREATE TABLE Z_PRIMARYKEY (Z_ENT INTEGER PRIMARY KEY, Z_NAME VARCHAR, Z_SUPER INTEGER,
        Z_MAX INTEGER);
    CREATE TABLE {generation.asset_table} (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER,
        Z_OPT INTEGER, ZUUID VARCHAR, ZDIRECTORY VARCHAR, ZFILENAME VARCHAR,
        ZDATECREATED TIMESTAMP, ZMODIFICATIONDATE TIMESTAMP, ZFAVORITE INTEGER,
        ZHIDDEN INTEGER, ZTRASHEDSTATE INTEGER, ZTRASHEDDATE TIMESTAMP, ZKIND INTEGER,
        ZKINDSUBTYPE INTEGER, ZCLOUDLOCALSTATE INTEGER, ZCLOUDASSETGUID VARCHAR,
        ZHASADJUSTMENTS INTEGER, ZWIDTH INTEGER, ZHEIGHT INTEGER);
    CREATE TABLE ZADDITIONALASSETATTRIBUTES (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER,
        Z_OPT INTEGER, ZASSET INTEGER, ZORIGINALFILENAME VARCHAR, ZORIGINALFILESIZE INTEGER,
        ZTIMEZONEOFFSET INTEGER, ZTIMEZONENAME VARCHAR, ZTITLE VARCHAR);
    CREATE TABLE ZINTERNALRESOURCE (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
        ZASSET INTEGER, ZDATASTORESUBTYPE INTEGER, ZRESOURCETYPE INTEGER,
        ZLOCALAVAILABILITY INTEGER, ZREMOTEAVAILABILITY INTEGER, ZDATALENGTH INTEGER);
    CREATE TABLE ZGENERICALBUM (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
        ZKIND INTEGER, ZTITLE VARCHAR, ZUUID VARCHAR, ZTRASHEDSTATE INTEGER,
        ZCACHEDCOUNT INTEGER);
    CREATE TABLE {generation.join_table} ({generation.album_column} INTEGER,
        {generation.asset_column} INTEGER, Z_FOK_{generation.asset_column[2:]} INTEGER,
        PRIMARY KEY ({generation.album_column}, {generation.asset_column}));
    CREATE TABLE ZMOMENT (Z_PK INTEGER PRIMARY KEY, ZTITLE VARCHAR);
    CREATE TABLE ZKEYWORD (Z_PK INTEGER PRIMARY KEY, ZTITLE VARCHAR);
    CREATE INDEX Z_ASSET_DIRECTORY ON {generation.asset_table} (ZDIRECTORY, ZFILENAME);
    """


def _apple_seconds(moment: datetime | None) -> float | None:
    return None if moment is None else (moment - APPLE_EPOCH).total_seconds()


def _insert(
    connection: sqlite3.Connection, generation: Generation, assets: Iterable[Asset]
) -> None:
    album_keys: dict[str, int] = {
        str(title): number
        for number, (title,) in enumerate(
            connection.execute("SELECT ZTITLE FROM ZGENERICALBUM ORDER BY Z_PK"), start=1
        )
    }
    start = int(
        connection.execute(
            f"SELECT coalesce(max(Z_PK), 0) FROM {generation.asset_table}"
        ).fetchone()[0]
    )
    for key, asset in enumerate(assets, start=start + 1):
        connection.execute(
            f"INSERT INTO {generation.asset_table} (Z_PK, Z_ENT, Z_OPT, ZUUID, ZDIRECTORY,"
            " ZFILENAME, ZDATECREATED, ZFAVORITE, ZHIDDEN, ZTRASHEDSTATE, ZKIND, ZKINDSUBTYPE,"
            " ZCLOUDLOCALSTATE, ZHASADJUSTMENTS) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
            (
                key,
                generation.asset_entity,
                asset.uuid,
                asset.directory,
                asset.filename,
                _apple_seconds(asset.created),
                int(asset.favorite),
                int(asset.hidden),
                int(asset.trashed),
                asset.kind,
                asset.kind_subtype,
                int(asset.has_adjustments),
            ),
        )
        connection.execute(
            "INSERT INTO ZADDITIONALASSETATTRIBUTES (Z_ENT, Z_OPT, ZASSET, ZORIGINALFILENAME,"
            " ZORIGINALFILESIZE, ZTIMEZONEOFFSET, ZTIMEZONENAME) VALUES (1, 1, ?, ?, ?, ?, ?)",
            (
                key,
                asset.original_filename,
                asset.original_size,
                asset.timezone_offset,
                asset.timezone_name,
            ),
        )
        if asset.local is not None:
            subtypes = (1, 3) if asset.kind_subtype == 2 else ((3,) if asset.kind == 1 else (1,))
            for subtype in subtypes:
                connection.execute(
                    "INSERT INTO ZINTERNALRESOURCE (Z_ENT, Z_OPT, ZASSET, ZDATASTORESUBTYPE,"
                    " ZRESOURCETYPE, ZLOCALAVAILABILITY, ZREMOTEAVAILABILITY)"
                    " VALUES (1, 1, ?, ?, ?, ?, 1)",
                    (key, subtype, 0 if subtype == 1 else 1, 1 if asset.local else -1),
                )
        # A non-original resource that is never local (a thumbnail in iCloud): not what decides.
        connection.execute(
            "INSERT INTO ZINTERNALRESOURCE (Z_ENT, Z_OPT, ZASSET, ZDATASTORESUBTYPE,"
            " ZRESOURCETYPE, ZLOCALAVAILABILITY) VALUES (1, 1, ?, 2, 0, -1)",
            (key,),
        )
        for title in asset.albums:
            if title not in album_keys:
                album_keys[title] = len(album_keys) + 1
                connection.execute(
                    "INSERT INTO ZGENERICALBUM (Z_PK, Z_ENT, Z_OPT, ZKIND, ZTITLE, ZUUID,"
                    " ZTRASHEDSTATE) VALUES (?, ?, 1, 2, ?, ?, 0)",
                    (
                        album_keys[title],
                        generation.album_entity,
                        title,
                        f"ALBUM-{album_keys[title]}",
                    ),
                )
            connection.execute(
                f"INSERT INTO {generation.join_table} ({generation.album_column},"
                f" {generation.asset_column}) VALUES (?, ?)",
                (album_keys[title], key),
            )


def _copy_out(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        destination = Path(str(target) + suffix)
        if Path(str(source) + suffix).exists():
            shutil.copyfile(str(source) + suffix, destination)
        elif destination.exists():
            destination.unlink()


def write_library(
    root: Path,
    assets: Sequence[Asset],
    *,
    generation: str = "ios16",
    rows_in_wal: bool = True,
    extra_sql: str = "",
) -> Library:
    """Write ``<root>/PhotoData/Photos.sqlite`` (+ ``-wal``, ``-shm``) holding ``assets``.

    With ``rows_in_wal`` the database file holds only the schema and every row is in the
    ``-wal`` (a reader that ignores the WAL finds no asset); otherwise everything is
    checkpointed into the database file and the WAL is empty. ``extra_sql`` runs after the
    rows are in (to drop a table, remove a column, add a look-alike table, ...).
    """
    names = GENERATIONS[generation]
    with tempfile.TemporaryDirectory(prefix="photos-library-") as folder:
        work = Path(folder) / "Photos.sqlite"
        connection = sqlite3.connect(work, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA wal_autocheckpoint = 0")
            connection.executescript(_schema(names))
            connection.executemany(
                "INSERT INTO Z_PRIMARYKEY (Z_ENT, Z_NAME, Z_SUPER, Z_MAX) VALUES (?, ?, 0, 0)",
                [
                    (names.asset_entity, "Asset" if generation != "ios13" else "GenericAsset"),
                    (names.album_entity, "GenericAlbum"),
                ],
            )
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.execute("BEGIN")
            _insert(connection, names, assets)
            connection.execute("COMMIT")
            if extra_sql:
                connection.executescript(extra_sql)
            if not rows_in_wal:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            # Copied while the writer still has the library open, as the phone has it.
            _copy_out(work, root / LIBRARY_RELATIVE)
        finally:
            connection.close()
    return Library(root, generation, list(assets))


def change_library(library: Library, statements: Sequence[tuple[str, tuple[object, ...]]]) -> None:
    """Apply SQL to the phone's library as Photos would: the change lands in the ``-wal``."""
    with tempfile.TemporaryDirectory(prefix="photos-library-") as folder:
        work = Path(folder) / "Photos.sqlite"
        _copy_out(library.database, work)
        connection = sqlite3.connect(work, isolation_level=None)
        try:
            connection.execute("PRAGMA wal_autocheckpoint = 0")
            connection.execute("BEGIN")
            for statement, parameters in statements:
                connection.execute(statement, parameters)
            connection.execute("COMMIT")
            _copy_out(work, library.database)
        finally:
            connection.close()


def add_assets(library: Library, assets: Sequence[Asset]) -> None:
    """Add assets to a library written by :func:`write_library` (the rows land in the WAL)."""
    with tempfile.TemporaryDirectory(prefix="photos-library-") as folder:
        work = Path(folder) / "Photos.sqlite"
        _copy_out(library.database, work)
        connection = sqlite3.connect(work, isolation_level=None)
        try:
            connection.execute("PRAGMA wal_autocheckpoint = 0")
            connection.execute("BEGIN")
            _insert(connection, GENERATIONS[library.generation], assets)
            connection.execute("COMMIT")
            _copy_out(work, library.database)
        finally:
            connection.close()
    library.assets.extend(assets)


def asset_table(library: Library) -> str:
    """The asset table's name in this library's generation."""
    return GENERATIONS[library.generation].asset_table


def write_library_then_restart(
    root: Path, first: Sequence[Asset], later: Sequence[Asset], *, generation: str = "ios16"
) -> tuple[Library, Callable[[], None]]:
    """A library whose WAL is about to restart: returns it (its frames all checkpointed into
    the database, still in the ``-wal``) and a function that makes the phone write ``later``
    the way SQLite then does: a new WAL header with new salts over the old frames, and the
    database file left exactly as it was (same bytes, same mtime)."""
    names = GENERATIONS[generation]
    folder = Path(tempfile.mkdtemp(prefix="photos-library-"))
    work = folder / "Photos.sqlite"
    target = root / LIBRARY_RELATIVE
    connection = sqlite3.connect(work, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    connection.executescript(_schema(names))
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute("BEGIN")
    _insert(connection, names, first)
    connection.execute("COMMIT")
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    _copy_out(work, target)
    library = Library(root, generation, list(first))

    def restart() -> None:
        database_times = target.stat()
        connection.execute("BEGIN")
        _insert(connection, names, later)
        connection.execute("COMMIT")
        for suffix in ("-wal", "-shm"):
            shutil.copyfile(str(work) + suffix, str(target) + suffix)
        os.utime(target, ns=(database_times.st_atime_ns, database_times.st_mtime_ns))
        connection.close()
        shutil.rmtree(folder, ignore_errors=True)
        library.assets.extend(later)

    return library, restart
