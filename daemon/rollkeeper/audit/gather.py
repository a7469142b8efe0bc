"""A phone's audit put together: a session, the fresh listing, the Photos library, the state
database (read-only) and the archive on disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rollkeeper import bootstrap
from rollkeeper.audit.classify import (
    NOT_ON_PHONE,
    ArchiveCheck,
    AuditedFile,
    PhoneAudit,
    PhoneEntry,
    classify,
)
from rollkeeper.audit.library import icloud_only, read_library
from rollkeeper.audit.listing import list_media_afresh

if TYPE_CHECKING:
    from rollkeeper.config import Config
    from rollkeeper.device.events import AttachedPhone
    from rollkeeper.domain.filters import FileFilter
    from rollkeeper.store.state import ManifestEntry, StateStore


class AuditError(Exception):
    """The audit could not be done (one line for the user, exit status 2)."""


def _check_archive(
    entry: ManifestEntry,
    archive_root: Path,
    store: StateStore | None,
    check_hashes: bool,
) -> ArchiveCheck:
    """What the archive on disk says of one entry the state calls archived: there, with the
    recorded size (and, with ``check_hashes``, the recorded content)."""
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


async def audit_phone(
    udid: str,
    config: Config,
    store: StateStore | None,
    check_hashes: bool = False,
) -> PhoneAudit:
    """Open a session with the phone and audit every file it holds."""
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
        entries = await list_media_afresh(session.files)
        library = await read_library(session.files)
    entries = entries + library.library_files
    _classify_all(result, entries, store, file_filter, archive_root, check_hashes)
    if library.assets is None:
        result.photos_library = "unknown"
        result.photos_library_detail = library.detail
        return result
    result.photos_library = "read"
    result.photos_library_detail = "; ".join(library.degraded)
    listed = {entry.phone_path for entry in entries if not entry.rejection}
    unreadable = {item.phone_path for item in result.files if item.file_class == NOT_ON_PHONE}
    archived = (
        {entry.phone_path for entry in store.manifest(udid) if entry.status == "archived"}
        if store is not None
        else set()
    )
    result.icloud_only = [
        item
        for item in icloud_only(library.assets, listed, unreadable)
        if item.phone_path not in archived  # offloaded after it was backed up: safe here
    ]
    for item in result.icloud_only:
        if item.phone_path is None or item.phone_path not in listed:
            result.files.append(
                AuditedFile(
                    item.phone_path or item.name,
                    None,
                    NOT_ON_PHONE,
                    f"original_not_on_phone (iCloud: {item.reason})",
                )
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


async def audit_attached(
    config: Config, device: str | None, check_hashes: bool
) -> list[PhoneAudit]:
    """Audit every attached phone (or the one named), reading the state database read-only."""
    from rollkeeper.device.errors import PhoneUnavailableError, UsbmuxdUnavailableError
    from rollkeeper.device.events import (
        USBMUXD_REQUEST_ERRORS,
        list_attached,
        usbmuxd_fix_hint,
        usbmuxd_unreachable_message,
    )

    address = bootstrap.usbmux_address(config)
    try:
        attached = await list_attached(address, frozenset(config.device.connection_types))
    except USBMUXD_REQUEST_ERRORS as error:
        raise AuditError(usbmuxd_unreachable_message(address, error)) from None
    if not attached:
        raise AuditError("no iPhone is attached: plug it in, unlock it, and try again")
    store = _open_state_if_any(config)
    try:
        selected = _phones_asked_for(attached, device, store)
        if not selected:
            udids = ", ".join(phone.udid for phone in attached)
            raise AuditError(f"no attached iPhone is {device!r} (attached: {udids})")
        audits: list[PhoneAudit] = []
        for phone in selected:
            try:
                audits.append(await audit_phone(phone.udid, config, store, check_hashes))
            except PhoneUnavailableError as error:
                hint = f"; {error.hint}" if error.hint else ""
                raise AuditError(f"cannot audit {phone.udid}: {error}{hint}") from None
            except UsbmuxdUnavailableError as error:
                raise AuditError(f"{error}; {usbmuxd_fix_hint()}") from None
        return audits
    finally:
        if store is not None:
            store.close()


def _open_state_if_any(config: Config) -> StateStore | None:
    """The state database, read-only, or None before the first backup made one."""
    from rollkeeper.store.state import StateDamagedError

    if not bootstrap.state_path(config).exists():
        return None
    try:
        return bootstrap.open_state_read_only(config)
    except StateDamagedError as error:
        raise AuditError(str(error)) from None


def _phones_asked_for(
    attached: Sequence[AttachedPhone], device: str | None, store: StateStore | None
) -> list[AttachedPhone]:
    """The attached phones to audit: all of them, or those whose UDID or (as the state last
    knew it: a name is only known once a session is open) name is ``device``."""
    if device is None:
        return list(attached)
    selected: list[AttachedPhone] = []
    for phone in attached:
        known = store.device(phone.udid) if store is not None else None
        if phone.udid == device or (known is not None and known.name == device):
            selected.append(phone)
    return selected
