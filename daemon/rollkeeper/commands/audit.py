"""``rollkeeper audit [--device UDID] [--json] [--hash]``: the evidence behind "backed up".

With the phone attached, list and stat every file of its media folders afresh (no shortcut
from earlier scans), and classify each one against the state database and the archive on disk:

* ``archived``: the archive holds it, the file is on disk with the recorded size (with
  ``--hash``: and the recorded content hash);
* ``archive_damaged``: the database says archived but the archive file is missing, of another
  size or (``--hash``) other content;
* ``pending``: not copied yet (new since the last backup, or its copy not finished);
* ``failed``: its copy failed (with the reason), or the phone's entry was refused as unsafe;
* ``excluded``: left out by a filter of the current config (with the reason).

Originals not on the phone (iCloud "Optimize iPhone Storage") leave no file in the media
folder, so they are found from the phone's Photos library (``/PhotoData/Photos.sqlite``): assets
it lists under DCIM whose file the listing lacks are ``not_on_phone``. Where the library cannot
be read the answer is ``unknown``, said as such.

The audit only reads: the phone (over its own AFC connection), the state database (read-only)
and the archive. It may run while the service runs. Exit status: 0 only when nothing is
pending, failed or damaged; 1 when something is; 2 when the audit could not be done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rollkeeper.domain.health import printable

if TYPE_CHECKING:
    from rollkeeper.config import Config
    from rollkeeper.device.phone_files import PhoneFilesystem
    from rollkeeper.domain.filters import FileFilter
    from rollkeeper.store.state import ManifestEntry, StateStore

#: Version of the ``--json`` document.
JSON_VERSION = 1

EXIT_COMPLETE = 0
EXIT_INCOMPLETE = 1
EXIT_CANNOT_AUDIT = 2

#: File classes, in the order the text report lists them.
ARCHIVED = "archived"
ARCHIVE_DAMAGED = "archive_damaged"
PENDING = "pending"
FAILED = "failed"
EXCLUDED = "excluded"
NOT_ON_PHONE = "not_on_phone"
CLASSES: tuple[str, ...] = (ARCHIVED, ARCHIVE_DAMAGED, PENDING, FAILED, EXCLUDED, NOT_ON_PHONE)
#: Classes that mean "not backed up": any of them makes the exit status 1.
PROBLEM_CLASSES = frozenset({ARCHIVE_DAMAGED, PENDING, FAILED})

MEDIA_ROOT = "/DCIM"
PHOTOS_LIBRARY = "/PhotoData/Photos.sqlite"
STAT_CONCURRENCY = 64
LISTING_CONCURRENCY = 8
#: Lines per class in the text report before "... and N more".
TEXT_LIMIT = 50

DESCRIPTION = """\
Check, with the phone attached, what became of every photo and video on it: archived (the
file is in the archive with the recorded size), pending, failed (and why), excluded by a filter,
or an original not on the phone at all (iCloud "Optimize iPhone Storage", read from the phone's
Photos library where it can be; "unknown" where it cannot).

The phone is listed afresh, every file stat'ed: this is the evidence behind "backed up". The
audit only reads and may run while the service runs.

Exit status: 0 only when nothing on the phone is pending or failed and every archived file is
in place; 1 otherwise; 2 when the audit could not run (no phone, locked, not trusted, broken
config).
"""


class AuditError(Exception):
    """The audit could not be done (one line for the user, exit status 2)."""


@dataclass(frozen=True, slots=True)
class AuditedFile:
    """One file of the phone (or asset of its library) and its class."""

    phone_path: str
    size: int | None
    file_class: str
    reason: str = ""
    archive_path: str | None = None


@dataclass(slots=True)
class PhoneAudit:
    """The audit of one phone."""

    udid: str
    name: str = ""
    model: str = ""
    ios_version: str = ""
    files: list[AuditedFile] = field(default_factory=list)
    #: ``read`` (the Photos library was read), else ``unknown``.
    photos_library: str = "unknown"
    photos_library_detail: str = ""

    def count(self, file_class: str) -> int:
        """How many files are in one class."""
        return sum(1 for item in self.files if item.file_class == file_class)

    @property
    def complete(self) -> bool:
        """True when nothing on the phone is pending, failed or damaged in the archive."""
        return not any(item.file_class in PROBLEM_CLASSES for item in self.files)


# -- pure classification -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhoneEntry:
    """A file found on the phone now: its checked name and stat'ed identity, or a rejection."""

    folder: str
    name: str
    size: int = 0
    birth_time_ns: int = 0
    rejection: str = ""
    detail: str = ""

    @property
    def phone_path(self) -> str:
        """The full phone-side path."""
        return f"{self.folder}/{self.name}"


@dataclass(frozen=True, slots=True)
class ArchiveCheck:
    """What the archive on disk says about one archived manifest entry."""

    damaged_reason: str  # "" when the file is in place


def classify(
    entry: PhoneEntry,
    manifest: Mapping[tuple[str, str, int, int], ManifestEntry],
    exclusion: str | None,
    archive_check: ArchiveCheck | None,
) -> AuditedFile:
    """The class of one phone file (pure: the caller did the I/O).

    ``manifest`` maps identities (folder, name, size, birth time) to entries; ``exclusion`` is
    the current filter's reason to leave the file out; ``archive_check`` is the on-disk check of
    the matching archived entry.
    """
    if entry.rejection:
        reason = entry.rejection + (f": {entry.detail}" if entry.detail else "")
        return AuditedFile(entry.phone_path, None, FAILED, reason)
    known = manifest.get((entry.folder, entry.name, entry.size, entry.birth_time_ns))
    if known is not None and known.status == "archived":
        if archive_check is not None and archive_check.damaged_reason:
            return AuditedFile(
                entry.phone_path,
                entry.size,
                ARCHIVE_DAMAGED,
                archive_check.damaged_reason,
                known.archive_path,
            )
        return AuditedFile(entry.phone_path, entry.size, ARCHIVED, "", known.archive_path)
    if exclusion is not None:
        return AuditedFile(entry.phone_path, entry.size, EXCLUDED, exclusion)
    if known is None:
        return AuditedFile(entry.phone_path, entry.size, PENDING, "new_since_last_backup")
    if known.status == "failed":
        return AuditedFile(entry.phone_path, entry.size, FAILED, known.failure_reason or "failed")
    return AuditedFile(entry.phone_path, entry.size, PENDING, "not_copied_yet")


# -- reading the phone -------------------------------------------------------------------------


async def _list_and_stat(files: PhoneFilesystem) -> list[PhoneEntry]:
    """Every file of the media folders, stat'ed; unsafe names and odd stats as rejections."""
    from rollkeeper.device.phone_files import FileNotOnPhoneError, PhoneReadError
    from rollkeeper.device.scan import check_stat, printable_raw_name
    from rollkeeper.domain.names import NameRejected, check_phone_name

    def checked(folder: str, raw: bytes, text: str | None) -> tuple[str | None, PhoneEntry | None]:
        if text is None:
            return None, PhoneEntry(folder, printable_raw_name(raw), rejection="name_not_utf8")
        try:
            return check_phone_name(text), None
        except NameRejected as rejection:
            return None, PhoneEntry(
                folder, printable_raw_name(raw), rejection=rejection.reason, detail=str(rejection)
            )

    try:
        top = await files.list_folder(MEDIA_ROOT)
    except FileNotOnPhoneError:
        return []
    entries: list[PhoneEntry] = []
    folders: list[str] = []
    for listed in top:
        name, rejected = checked(MEDIA_ROOT, listed.raw, listed.text)
        if rejected is not None:
            entries.append(rejected)
        elif name is not None:
            folders.append(f"{MEDIA_ROOT}/{name}")

    listing_limit = asyncio.Semaphore(LISTING_CONCURRENCY)
    stat_limit = asyncio.Semaphore(STAT_CONCURRENCY)

    async def stat_one(folder: str, name: str) -> PhoneEntry | None:
        async with stat_limit:
            try:
                raw = await files.stat(f"{folder}/{name}")
            except FileNotOnPhoneError:
                return None  # deleted on the phone while we looked
            except PhoneReadError as error:
                return PhoneEntry(folder, name, rejection="stat_failed", detail=str(error))
        outcome = check_stat(name, raw)
        if outcome.rejection:
            return PhoneEntry(folder, name, rejection=outcome.rejection, detail=outcome.detail)
        return PhoneEntry(folder, name, outcome.size, outcome.birth_time_ns)

    async def audit_folder(folder: str) -> list[PhoneEntry]:
        async with listing_limit:
            try:
                listing = await files.list_folder(folder)
            except FileNotOnPhoneError:
                return []
            except PhoneReadError as error:
                return [
                    PhoneEntry(
                        MEDIA_ROOT,
                        folder.rsplit("/", 1)[-1],
                        rejection="unlistable_folder",
                        detail=str(error),
                    )
                ]
        found: list[PhoneEntry] = []
        names: list[str] = []
        for listed in listing:
            name, rejected = checked(folder, listed.raw, listed.text)
            if rejected is not None:
                found.append(rejected)
            elif name is not None:
                names.append(name)
        stats = await asyncio.gather(*(stat_one(folder, name) for name in sorted(names)))
        found.extend(entry for entry in stats if entry is not None)
        return found

    for folder_entries in await asyncio.gather(*(audit_folder(f) for f in sorted(folders))):
        entries.extend(folder_entries)
    return entries


async def _download(files: PhoneFilesystem, phone_path: str, target: Path) -> bool:
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


async def _photos_library(files: PhoneFilesystem) -> tuple[list[str] | None, str]:
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


# -- the archive -------------------------------------------------------------------------------


def _check_archive(
    entry: ManifestEntry,
    archive_root: Path,
    store: StateStore | None,
    check_hashes: bool,
) -> ArchiveCheck:
    from rollkeeper.importer.hashing import hash_file

    if entry.archive_path is None:
        return ArchiveCheck("archive_path_missing_in_state")
    relative = Path(entry.archive_path)
    # Adopted files are recorded where they are, by absolute path.
    path = relative if relative.is_absolute() else archive_root / relative
    recorded = store.archive_entry(entry.archive_path) if store is not None else None
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return ArchiveCheck("archive_file_missing")
    except OSError as error:
        return ArchiveCheck(f"archive_file_unreadable: {error.strerror or error}")
    expected_size = recorded.size if recorded is not None else entry.size
    if size != expected_size:
        return ArchiveCheck(f"archive_file_size_differs: {size} bytes, expected {expected_size}")
    if check_hashes:
        expected_hash = recorded.content_hash if recorded is not None else entry.content_hash
        try:
            actual = hash_file(path)
        except OSError as error:
            return ArchiveCheck(f"archive_file_unreadable: {error.strerror or error}")
        if expected_hash and actual != expected_hash:
            return ArchiveCheck("archive_file_content_differs")
    return ArchiveCheck("")


# -- one phone ---------------------------------------------------------------------------------


async def audit_phone(
    udid: str,
    config: Config,
    store: StateStore | None,
    check_hashes: bool = False,
) -> PhoneAudit:
    """Open a session with the phone and audit every file it holds."""
    from rollkeeper import bootstrap
    from rollkeeper.device.session import open_session

    file_filter: FileFilter = bootstrap.backup_settings(config).file_filter
    archive_root = Path(config.archive.path)
    async with open_session(udid, bootstrap.session_settings(config)) as session:
        result = PhoneAudit(
            udid=udid,
            name=session.info.name,
            model=session.info.product_type,
            ios_version=session.info.product_version,
        )
        entries = await _list_and_stat(session.files)
        assets, why_unknown = await _photos_library(session.files)
    _classify_all(result, entries, store, file_filter, archive_root, check_hashes)
    if assets is None:
        result.photos_library = "unknown"
        result.photos_library_detail = why_unknown
    else:
        result.photos_library = "read"
        listed = {entry.phone_path for entry in entries}
        for path in sorted(set(assets) - listed):
            result.files.append(
                AuditedFile(path, None, NOT_ON_PHONE, "original_not_on_phone (iCloud)")
            )
    return result


def _classify_all(
    result: PhoneAudit,
    entries: Sequence[PhoneEntry],
    store: StateStore | None,
    file_filter: FileFilter,
    archive_root: Path,
    check_hashes: bool,
) -> None:
    from rollkeeper.domain.filters import exclusion_reason

    manifest: dict[tuple[str, str, int, int], ManifestEntry] = {}
    if store is not None:
        for row in store.manifest(result.udid):
            # The schema keeps one row per identity (UNIQUE), present on the phone or not.
            manifest[(row.folder, row.name, row.size, row.birth_time_ns)] = row
    for entry in entries:
        known = manifest.get((entry.folder, entry.name, entry.size, entry.birth_time_ns))
        archive_check = None
        if not entry.rejection and known is not None and known.status == "archived":
            archive_check = _check_archive(known, archive_root, store, check_hashes)
        exclusion = (
            None
            if entry.rejection
            else exclusion_reason(entry.name, entry.birth_time_ns, file_filter)
        )
        result.files.append(classify(entry, manifest, exclusion, archive_check))


# -- the command -------------------------------------------------------------------------------


async def audit_attached(
    config: Config, device: str | None, check_hashes: bool
) -> list[PhoneAudit]:
    """Audit every attached phone (or the one named), reading the state database read-only."""
    from rollkeeper import bootstrap
    from rollkeeper.device.errors import PhoneUnavailableError, UsbmuxdUnavailableError
    from rollkeeper.device.events import describe_usbmux_address, list_attached, usbmuxd_fix_hint
    from rollkeeper.store.state import StateDamagedError, StateStore

    address = bootstrap.usbmux_address(config)
    try:
        attached = await list_attached(address, frozenset(config.device.connection_types))
    except Exception as error:
        raise AuditError(
            f"cannot reach usbmuxd at {describe_usbmux_address(address)} "
            f"({type(error).__name__}); {usbmuxd_fix_hint()}"
        ) from None
    if not attached:
        raise AuditError("no iPhone is attached: plug it in, unlock it, and try again")
    state_path = Path(config.state.path)
    store: StateStore | None = None
    if state_path.exists():
        try:
            store = StateStore.open(state_path, read_only=True)
        except StateDamagedError as error:
            raise AuditError(str(error)) from None
    try:
        audits: list[PhoneAudit] = []
        matched = False
        for phone in attached:
            if device is not None and phone.udid != device:
                # A name is only known once a session is open; try it below.
                known = store.device(phone.udid) if store is not None else None
                if known is None or known.name != device:
                    continue
            matched = True
            try:
                audits.append(await audit_phone(phone.udid, config, store, check_hashes))
            except PhoneUnavailableError as error:
                hint = f"; {error.hint}" if error.hint else ""
                raise AuditError(f"cannot audit {phone.udid}: {error}{hint}") from None
            except UsbmuxdUnavailableError as error:
                raise AuditError(f"{error}; {usbmuxd_fix_hint()}") from None
        if not matched:
            udids = ", ".join(phone.udid for phone in attached)
            raise AuditError(f"no attached iPhone is {device!r} (attached: {udids})")
        return audits
    finally:
        if store is not None:
            store.close()


def audit_as_dict(audits: Sequence[PhoneAudit]) -> dict[str, Any]:
    """The ``audit --json`` document (docs/status.md)."""
    phones = []
    for audit in audits:
        counts: dict[str, int | None] = {name: audit.count(name) for name in CLASSES}
        if audit.photos_library != "read":
            counts[NOT_ON_PHONE] = None
        phones.append(
            {
                "udid": audit.udid,
                "name": audit.name,
                "model": audit.model,
                "ios_version": audit.ios_version,
                "complete": audit.complete,
                "counts": counts,
                "photos_library": {
                    "status": audit.photos_library,
                    "detail": audit.photos_library_detail,
                },
                "files": [
                    {
                        "phone_path": item.phone_path,
                        "size": item.size,
                        "class": item.file_class,
                        "reason": item.reason,
                        "archive_path": item.archive_path,
                    }
                    for item in audit.files
                ],
            }
        )
    return {
        "version": JSON_VERSION,
        "complete": all(audit.complete for audit in audits),
        "phones": phones,
    }


def render_text(audits: Sequence[PhoneAudit], out: TextIO) -> None:
    """The audit for people: counts, then every file that is not archived."""
    for audit in audits:
        label = printable(audit.name, 80) or audit.udid
        out.write(f"{label} ({audit.udid})\n")
        on_phone = [item for item in audit.files if item.file_class != NOT_ON_PHONE]
        out.write(
            f"  {len(on_phone):,} files on the phone: {audit.count(ARCHIVED):,} archived, "
            f"{audit.count(PENDING):,} pending, {audit.count(FAILED):,} failed, "
            f"{audit.count(EXCLUDED):,} excluded"
        )
        if audit.count(ARCHIVE_DAMAGED):
            out.write(f", {audit.count(ARCHIVE_DAMAGED):,} DAMAGED in the archive")
        out.write("\n")
        if audit.photos_library == "read":
            out.write(
                f"  {audit.count(NOT_ON_PHONE):,} originals not on the phone (in iCloud only)\n"
            )
        else:
            out.write(f"  originals not on the phone: unknown ({audit.photos_library_detail})\n")
        for file_class in (ARCHIVE_DAMAGED, FAILED, PENDING, EXCLUDED, NOT_ON_PHONE):
            items = [item for item in audit.files if item.file_class == file_class]
            for item in items[:TEXT_LIMIT]:
                reason = f": {printable(item.reason, 300)}" if item.reason else ""
                path = printable(item.phone_path, 300)
                out.write(f"  {file_class.upper():<16}{path}{reason}\n")
            if len(items) > TEXT_LIMIT:
                out.write(f"  ... and {len(items) - TEXT_LIMIT:,} more {file_class} (--json)\n")
        if audit.complete:
            out.write("  Everything on the phone is backed up (or excluded by a filter).\n")
        else:
            out.write("  NOT everything on the phone is backed up.\n")


def run_audit(args: argparse.Namespace, *, environ: Mapping[str, str], out: TextIO) -> int:
    """The command with its environment and output injected."""
    from rollkeeper.config import ConfigError, load_config, resolve_config_path

    try:
        config = load_config(resolve_config_path(getattr(args, "config", None), environ), environ)
    except ConfigError as error:
        first = error.problems[0] if error.problems else error
        sys.stderr.write(f"rollkeeper audit: the config is broken: {first}\n")
        return EXIT_CANNOT_AUDIT
    from rollkeeper.host.logs import configure_logging

    # Log events of the libraries and adapters go to standard error, warnings and worse only,
    # so that standard output stays the report (and valid JSON with --json).
    level = config.logging.level if config.logging.level in ("warning", "error") else "warning"
    configure_logging(level, config.logging.format, sys.stderr)
    try:
        audits = asyncio.run(audit_attached(config, args.device, args.hash))
    except AuditError as error:
        sys.stderr.write(f"rollkeeper audit: {error}\n")
        return EXIT_CANNOT_AUDIT
    if args.json:
        json.dump(audit_as_dict(audits), out, indent=2)
        out.write("\n")
    else:
        render_text(audits, out)
    return EXIT_COMPLETE if all(audit.complete for audit in audits) else EXIT_INCOMPLETE


def handle(args: argparse.Namespace) -> int:
    """Entry point from the command line."""
    os.umask(0o077)  # the copy of the phone's Photos library is private data
    return run_audit(args, environ=os.environ, out=sys.stdout)


def register(subparsers: Any) -> None:
    """Add ``audit`` to the ``rollkeeper`` command line."""
    parser = subparsers.add_parser(
        "audit",
        help="with the phone attached: what of it is backed up, pending, failed, excluded",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--device",
        metavar="UDID",
        default=None,
        help="only this attached phone (UDID, or its name as rollkeeper last saw it)",
    )
    parser.add_argument(
        "--hash",
        action="store_true",
        help="also re-hash every archived file and compare with the recorded hash (slow)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=handle)
