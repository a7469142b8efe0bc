"""Which originals the phone's Photos library knows under DCIM (``/PhotoData/Photos.sqlite``):
those the listing lacks are in iCloud only. The library is copied from the phone to a private
temporary folder and read as untrusted input."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from rollkeeper.domain.names import MEDIA_ROOT

if TYPE_CHECKING:
    from rollkeeper.ports import PhoneFiles

#: Where AFC serves the Photos library (its -wal and -shm beside it).
PHOTOS_LIBRARY = "/PhotoData/Photos.sqlite"


async def _download(files: PhoneFiles, phone_path: str, target: Path) -> bool:
    """Copy one phone file to ``target`` in bounded chunks; False when it does not exist."""
    from rollkeeper.device.phone_files import MAXIMUM_READ_BYTES, FileNotOnPhoneError

    try:
        handle = await files.open(phone_path)
    except FileNotOnPhoneError:
        return False
    try:
        with target.open("wb") as output:
            while chunk := await files.read(handle, MAXIMUM_READ_BYTES):
                output.write(chunk)
    finally:
        await files.close(handle)
    return True


def library_assets(database: Path) -> list[str]:
    """Phone paths (``/DCIM/100APPLE/IMG_0001.HEIC``) of the non-trashed assets a Photos
    library lists under DCIM. Raises ``sqlite3.Error`` or ``ValueError`` when the schema is not
    one we know (then the answer is "unknown")."""
    from rollkeeper.domain.names import NameRejected, check_phone_name

    connection = sqlite3.connect(database)
    try:
        # The file comes from the phone: untrusted. No schema-defined functions or triggers,
        # corrupt cells detected, and no string or blob larger than a path could need.
        connection.execute("PRAGMA trusted_schema = OFF")
        connection.execute("PRAGMA cell_size_check = ON")
        connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000)
        tables = {
            str(row[0])
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        table = next((name for name in ("ZASSET", "ZGENERICASSET") if name in tables), None)
        if table is None:
            raise ValueError("no ZASSET table")
        columns = {str(row[1]) for row in connection.execute(f"PRAGMA table_info({table})")}
        if not {"ZDIRECTORY", "ZFILENAME"} <= columns:
            raise ValueError(f"{table} has no ZDIRECTORY/ZFILENAME")
        query = f"SELECT ZDIRECTORY, ZFILENAME FROM {table}"
        if "ZTRASHEDSTATE" in columns:
            query += " WHERE coalesce(ZTRASHEDSTATE, 0) = 0"
        paths: list[str] = []
        for directory, filename in connection.execute(query):
            if not isinstance(directory, str) or not isinstance(filename, str):
                continue
            parts = [part for part in directory.strip("/").split("/") if part]
            if len(parts) != 2 or parts[0] != "DCIM":
                continue  # CPLAssets and other places are not the media folder
            try:
                folder = check_phone_name(parts[1])
                name = check_phone_name(filename)
            except NameRejected:
                continue
            paths.append(f"{MEDIA_ROOT}/{folder}/{name}")
        return paths
    finally:
        connection.close()


async def photos_library_assets(files: PhoneFiles) -> tuple[list[str] | None, str]:
    """The library's DCIM asset paths, or None and why they cannot be known."""
    from rollkeeper.device.phone_files import PhoneReadError

    with tempfile.TemporaryDirectory(prefix="rollkeeper-audit-") as folder:
        target = Path(folder) / "Photos.sqlite"
        try:
            if not await _download(files, PHOTOS_LIBRARY, target):
                return None, f"{PHOTOS_LIBRARY} is not readable over AFC on this phone"
            # The library is in WAL mode: its recent changes live in the -wal file.
            for suffix in ("-wal", "-shm"):
                await _download(files, PHOTOS_LIBRARY + suffix, Path(str(target) + suffix))
        except PhoneReadError as error:
            return None, f"{PHOTOS_LIBRARY}: {error}"
        try:
            return library_assets(target), ""
        except (sqlite3.Error, ValueError) as error:
            return None, f"{PHOTOS_LIBRARY}: not a Photos library rollkeeper can read ({error})"
