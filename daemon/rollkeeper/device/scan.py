"""Scan the phone's DCIM folders against the manifest: list every folder, stat only what is new.

A re-plug with nothing new costs one READ_DIR for ``/DCIM``, one per folder, and one canary stat:
names the last listing showed and that are already archived are not stat'ed again. The canary
(the first archived file of the phone, stat'ed every time) catches a phone that was erased and
filled again under the same names, which a listing cannot tell apart; then everything is
stat'ed. Every name is untrusted: it is checked before it is used in a request or a path, and a
rejected item is reported once per scan with its reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from rollkeeper.device.phone_files import (
    FileNotOnPhoneError,
    ListedName,
    PhoneFilesystem,
    PhoneReadError,
    RawStat,
)
from rollkeeper.domain.names import NameRejected, check_phone_name
from rollkeeper.store import ARCHIVED, EXCLUDED, ManifestEntry, StateStore

log = structlog.get_logger("rollkeeper.scan")

MEDIA_ROOT = "/DCIM"
#: Folder listings in flight at once.
LISTING_CONCURRENCY = 8
#: GET_FILE_INFO requests in flight at once (AFC matches replies by packet number).
STAT_CONCURRENCY = 64
#: SQLite stores signed 64-bit integers: a phone's number beyond that cannot be recorded (a
#: size that large cannot be real; a time that large is clamped).
LARGEST_STORED_INTEGER = 2**63 - 1
#: Statuses that need no new stat while the name stays in the listing.
SETTLED_STATUSES = frozenset({ARCHIVED, EXCLUDED})


@dataclass(frozen=True, slots=True)
class RejectedItem:
    """Something the phone listed that rollkeeper refuses to touch, and why."""

    phone_path: str
    reason: str
    detail: str = ""


@dataclass(slots=True)
class ScanResult:
    """What the phone holds now, as manifest entries, plus what was refused."""

    folders: list[str] = field(default_factory=list)
    present: list[ManifestEntry] = field(default_factory=list)
    rejected: list[RejectedItem] = field(default_factory=list)
    listing_requests: int = 0
    stat_requests: int = 0
    full_rescan: bool = False
    #: Present files of folders in which every file is archived: counted, not held, so a
    #: re-plug of a phone of 100,000 archived files does not keep 100,000 entries in memory.
    archived_folder_files: int = 0


@dataclass(frozen=True, slots=True)
class StatOutcome:
    """A checked stat: the identity fields of a regular file, or the reason it was refused."""

    name: str
    size: int = 0
    birth_time_ns: int = 0
    modified_time_ns: int = 0
    rejection: str = ""
    detail: str = ""


def printable_raw_name(raw: bytes) -> str:
    """A listing entry made safe for logs: escaped, and cut to a readable length."""
    text = raw.decode("utf-8", errors="backslashreplace")
    text = "".join(
        character if character.isprintable() else repr(character)[1:-1] for character in text
    )
    return text if len(text) <= 120 else text[:117] + "..."


def _clamped(value: int | None) -> int | None:
    """A time beyond what the manifest can store, held at the largest storable value: the
    file is still backed up (its date folder is then the far future), and the same reply
    always gives the same identity."""
    return None if value is None else min(value, LARGEST_STORED_INTEGER)


def check_stat(name: str, raw: RawStat) -> StatOutcome:
    """Turn an untrusted GET_FILE_INFO reply into identity fields, or a rejection."""
    kind = raw.kind
    if kind == "S_IFDIR":
        return StatOutcome(name, rejection="folder_where_file_expected")
    if kind == "S_IFLNK":
        return StatOutcome(name, rejection="symbolic_link", detail=raw.fields.get("LinkTarget", ""))
    if kind not in (None, "S_IFREG"):
        return StatOutcome(name, rejection="not_a_regular_file", detail=str(kind))
    size = raw.integer("st_size")
    if size is None:
        return StatOutcome(name, rejection="stat_without_size")
    if size > LARGEST_STORED_INTEGER:
        return StatOutcome(name, rejection="stat_size_out_of_range", detail=str(size)[:40])
    modified = _clamped(raw.integer("st_mtime"))
    birth = _clamped(raw.integer("st_birthtime"))
    if birth is None:
        birth = modified
    if birth is None:
        return StatOutcome(name, rejection="stat_without_times")
    return StatOutcome(name, size, birth, modified if modified is not None else birth)


class Scanner:
    """Scans one phone into the manifest of ``store``."""

    def __init__(
        self,
        store: StateStore,
        udid: str,
        clock: Callable[[], datetime],
        stat_concurrency: int = STAT_CONCURRENCY,
    ) -> None:
        self._store = store
        self._udid = udid
        self._clock = clock
        self._stat_limit = asyncio.Semaphore(stat_concurrency)

    async def scan(self, files: PhoneFilesystem, full_rescan: bool = False) -> ScanResult:
        """List all media folders and bring the manifest up to date with the phone."""
        result = ScanResult(full_rescan=full_rescan)
        listings = await self._list_folders(files, result)
        if not full_rescan and await self._canary_changed(files, listings, result):
            log.warning("phone_content_reset_detected", udid=self._udid)
            result.full_rescan = True
        now = self._clock()
        for folder in self._store.known_folders(self._udid):
            if folder not in listings:
                self._store.mark_folder_absent(self._udid, folder, now)
        for folder, names in listings.items():
            await self._scan_folder(files, folder, names, result)
        return result

    async def _list_folders(
        self, files: PhoneFilesystem, result: ScanResult
    ) -> dict[str, list[str]]:
        """READ_DIR of /DCIM and of each folder in it; names checked, rejections recorded."""
        try:
            top = await files.list_folder(MEDIA_ROOT)
        except FileNotOnPhoneError:
            log.info("no_media_folder", udid=self._udid)
            return {}
        result.listing_requests += 1
        folder_names = self._checked_names(MEDIA_ROOT, top, result)
        limit = asyncio.Semaphore(LISTING_CONCURRENCY)

        async def list_one(folder: str) -> tuple[str, list[ListedName] | None]:
            async with limit:
                try:
                    return folder, await files.list_folder(folder)
                except (PhoneReadError, FileNotOnPhoneError) as error:
                    result.rejected.append(RejectedItem(folder, "unlistable_folder", str(error)))
                    return folder, None

        folders = [f"{MEDIA_ROOT}/{name}" for name in sorted(folder_names)]
        listed = await asyncio.gather(*(list_one(folder) for folder in folders))
        result.listing_requests += len(folders)
        listings: dict[str, list[str]] = {}
        for folder, entries in listed:
            if entries is None:
                continue
            listings[folder] = self._checked_names(folder, entries, result)
            result.folders.append(folder)
        return listings

    @staticmethod
    def _checked_names(folder: str, entries: list[ListedName], result: ScanResult) -> list[str]:
        names: list[str] = []
        for entry in entries:
            if entry.text is None:
                result.rejected.append(
                    RejectedItem(f"{folder}/{printable_raw_name(entry.raw)}", "name_not_utf8")
                )
                continue
            try:
                names.append(check_phone_name(entry.text))
            except NameRejected as rejection:
                result.rejected.append(
                    RejectedItem(
                        f"{folder}/{printable_raw_name(entry.raw)}",
                        rejection.reason,
                        str(rejection),
                    )
                )
        return names

    async def _canary_changed(
        self, files: PhoneFilesystem, listings: dict[str, list[str]], result: ScanResult
    ) -> bool:
        """Stat the first settled file still listed; True if its identity changed."""
        for folder in sorted(listings):
            known = self._store.present_files(self._udid, folder)
            listed = set(listings[folder])
            for name in sorted(known):
                entry = known[name]
                if name not in listed or entry.status not in SETTLED_STATUSES:
                    continue
                outcome = await self._stat(files, folder, name, result)
                return outcome.rejection != "" or (outcome.size, outcome.birth_time_ns) != (
                    entry.size,
                    entry.birth_time_ns,
                )
        return False

    async def _stat(
        self, files: PhoneFilesystem, folder: str, name: str, result: ScanResult
    ) -> StatOutcome:
        async with self._stat_limit:
            result.stat_requests += 1
            try:
                raw = await files.stat(f"{folder}/{name}")
            except FileNotOnPhoneError:
                return StatOutcome(name, rejection="vanished")
            except PhoneReadError as error:
                return StatOutcome(name, rejection="stat_failed", detail=str(error))
        return check_stat(name, raw)

    async def _scan_folder(
        self, files: PhoneFilesystem, folder: str, names: list[str], result: ScanResult
    ) -> None:
        now = self._clock()
        known = self._store.present_files(self._udid, folder)
        listed = set(names)
        gone = [name for name in known if name not in listed]
        if gone:
            self._store.mark_absent(self._udid, folder, gone, now)
        to_stat = [
            name
            for name in names
            if result.full_rescan or name not in known or known[name].status not in SETTLED_STATUSES
        ]
        outcomes = await asyncio.gather(
            *(self._stat(files, folder, name, result) for name in to_stat)
        )
        observed: list[tuple[str, int, int, int]] = []
        for outcome in outcomes:
            if outcome.rejection == "vanished":
                continue
            if outcome.rejection:
                result.rejected.append(
                    RejectedItem(f"{folder}/{outcome.name}", outcome.rejection, outcome.detail)
                )
                continue
            observed.append(
                (outcome.name, outcome.size, outcome.birth_time_ns, outcome.modified_time_ns)
            )
        if observed:
            self._store.observe_files(self._udid, folder, observed, now)
        self._store.touch_present(self._udid, folder, now)
        # Nothing observed and nothing gone: the entries read above are still the folder's
        # (a re-plug with nothing new reads each folder's manifest once, not twice).
        refreshed = self._store.present_files(self._udid, folder) if observed or gone else known
        if refreshed and all(entry.status == ARCHIVED for entry in refreshed.values()):
            result.archived_folder_files += len(refreshed)
            return
        result.present.extend(refreshed[name] for name in sorted(refreshed))
