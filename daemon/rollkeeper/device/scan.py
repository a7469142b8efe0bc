"""Read the phone's DCIM folders: list them, check every name, stat names concurrently.

This is the phone side of a scan, and it writes nothing: it says what the phone holds and what
it refuses, and leaves deciding which names need a stat and recording what was seen in the
manifest to :mod:`rollkeeper.importer.reconcile`. ``rollkeeper audit`` uses
:func:`survey_media_files` (every file listed and stat'ed, no shortcut) to classify a phone
without touching the state database.

Every name is untrusted: it is checked before it is used in a request or a path, and a rejected
item is reported once per scan with its reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from rollkeeper.domain.folder_summary import FolderStat
from rollkeeper.domain.names import (
    MEDIA_ROOT,
    NameRejected,
    all_ordinary,
    all_ordinary_joined,
    check_phone_name,
)
from rollkeeper.ports import (
    DecodedListing,
    FileNotOnPhoneError,
    ListedName,
    PhoneFiles,
    PhoneReadError,
    RawStat,
)

log = structlog.get_logger("rollkeeper.scan")

#: Folder listings in flight at once.
LISTING_CONCURRENCY = 8
#: Folders whose batches of stats a survey keeps in flight at once.
SURVEY_FOLDERS_IN_FLIGHT = 2
#: SQLite stores signed 64-bit integers: a phone's number beyond that cannot be recorded (a
#: size that large cannot be real; a time that large is clamped).
LARGEST_STORED_INTEGER = 2**63 - 1
#: The rejection of a file that disappeared between the listing and its stat: not an error
#: (it was deleted on the phone meanwhile), so it is dropped rather than reported.
VANISHED = "vanished"


@dataclass(frozen=True, slots=True)
class RejectedItem:
    """Something the phone listed that rollkeeper refuses to touch, and why."""

    phone_path: str
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StatOutcome:
    """A checked stat: the identity fields of a regular file, or the reason it was refused."""

    name: str
    size: int = 0
    birth_time_ns: int = 0
    modified_time_ns: int = 0
    rejection: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ObservedFile:
    """A regular file the phone listed and stat'ed, with its checked identity fields."""

    folder: str
    name: str
    size: int
    birth_time_ns: int
    modified_time_ns: int

    @property
    def phone_path(self) -> str:
        """The full phone-side path."""
        return f"{self.folder}/{self.name}"


@dataclass(slots=True)
class MediaListing:
    """The media folders the phone listed, with their checked names, and what was refused."""

    #: Folder path (``/DCIM/100APPLE``) -> checked names in listing order; folders by name.
    folders: dict[str, list[str]] = field(default_factory=dict)
    rejected: list[RejectedItem] = field(default_factory=list)
    #: Folders the phone listed in ``/DCIM`` and then refused to list (PERM_DENIED, a read
    #: error): what they hold is unknown, which is not the same as empty or gone.
    unlistable: list[str] = field(default_factory=list)
    #: READ_DIR requests that were answered (``/DCIM`` and each folder in it).
    requests: int = 0
    #: With ``stat_folders``: each listed folder's own stat (fields None when it failed).
    folder_stats: dict[str, FolderStat] = field(default_factory=dict)
    #: GET_FILE_INFO requests sent for the folders themselves.
    folder_stat_requests: int = 0


@dataclass(slots=True)
class PhoneSurvey:
    """Every file of the media folders, listed and stat'ed, and everything refused."""

    #: Files by phone path (folders by name, names by name within a folder).
    files: list[ObservedFile] = field(default_factory=list)
    rejected: list[RejectedItem] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    listing_requests: int = 0
    stat_requests: int = 0


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


def checked_names(
    folder: str, entries: Sequence[ListedName], rejected: list[RejectedItem]
) -> list[str]:
    """The names of a listing that are safe to use, in listing order; the others are added to
    ``rejected`` with their reason."""
    if isinstance(entries, DecodedListing):
        # Every name decoded: one match over the listing as sent, no entry made per name.
        if all_ordinary_joined(entries.joined):
            return list(entries.texts)
    else:
        texts = [entry.text for entry in entries if entry.text is not None]
        if len(texts) == len(entries) and all_ordinary(texts):
            return texts
    names: list[str] = []
    for entry in entries:
        if entry.text is None:
            rejected.append(
                RejectedItem(f"{folder}/{printable_raw_name(entry.raw)}", "name_not_utf8")
            )
            continue
        try:
            names.append(check_phone_name(entry.text))
        except NameRejected as rejection:
            rejected.append(
                RejectedItem(
                    f"{folder}/{printable_raw_name(entry.raw)}", rejection.reason, str(rejection)
                )
            )
    return names


def check_folder_stat(raw: RawStat) -> FolderStat:
    """The fields of a folder's untrusted stat that tell a change of its entries (none when
    the phone does not call it a folder)."""
    if raw.kind != "S_IFDIR":
        return FolderStat()
    return FolderStat(
        _clamped(raw.integer("st_mtime")),
        _clamped(raw.integer("st_nlink")),
        _clamped(raw.integer("st_size")),
    )


def folder_stat_of_reply(reply: RawStat | FileNotOnPhoneError | PhoneReadError) -> FolderStat:
    """A folder's checked stat from its reply; an empty stat when the phone refused it."""
    if isinstance(reply, RawStat):
        return check_folder_stat(reply)
    return FolderStat()


async def list_media_folders(
    files: PhoneFiles, udid: str = "", *, stat_folders: bool = False
) -> MediaListing:
    """READ_DIR of ``/DCIM`` and of each folder in it (a few at once); names checked.

    With ``stat_folders`` every folder's own GET_FILE_INFO is sent in one batch
    (``PhoneFiles.stat_many``) in flight together with the READ_DIRs, for the folder summaries
    of a re-plug.

    A phone without ``/DCIM`` has no media (an empty listing). A folder that cannot be listed
    is a rejected item (``unlistable_folder``), not an error of the scan; one the phone refused
    (rather than one gone meanwhile) is also in ``unlistable``.
    """
    listing = MediaListing()
    try:
        top = await files.list_folder(MEDIA_ROOT)
    except FileNotOnPhoneError:
        log.info("no_media_folder", udid=udid)
        return listing
    listing.requests += 1
    folder_names = checked_names(MEDIA_ROOT, top, listing.rejected)
    limit = asyncio.Semaphore(LISTING_CONCURRENCY)

    async def list_one(folder: str) -> tuple[str, Sequence[ListedName] | None]:
        async with limit:
            try:
                return folder, await files.list_folder(folder)
            except PhoneReadError as error:
                listing.rejected.append(RejectedItem(folder, "unlistable_folder", str(error)))
                listing.unlistable.append(folder)
                return folder, None
            except FileNotOnPhoneError as error:
                # Gone between the two listings (deleted meanwhile): nothing in it to back up.
                listing.rejected.append(RejectedItem(folder, "unlistable_folder", str(error)))
                return folder, None

    folders = [f"{MEDIA_ROOT}/{name}" for name in sorted(folder_names)]
    listings = asyncio.gather(*(list_one(folder) for folder in folders))
    if stat_folders and folders:
        folder_replies, listed = await asyncio.gather(files.stat_many(folders), listings)
        listing.folder_stat_requests = len(folders)
        for folder, reply in zip(folders, folder_replies, strict=True):
            listing.folder_stats[folder] = folder_stat_of_reply(reply)
    else:
        listed = await listings
    listing.requests += len(folders)
    for folder, entries in listed:
        if entries is not None:
            listing.folders[folder] = checked_names(folder, entries, listing.rejected)
    return listing


def _outcome_of_reply(
    name: str, reply: RawStat | FileNotOnPhoneError | PhoneReadError
) -> StatOutcome:
    if isinstance(reply, RawStat):
        return check_stat(name, reply)
    if isinstance(reply, FileNotOnPhoneError):
        return StatOutcome(name, rejection=VANISHED)
    return StatOutcome(name, rejection="stat_failed", detail=str(reply))


class PhoneStats:
    """Stats of phone files, sent in batches (``PhoneFiles.stat_many``), checked, and counted.

    How many are in flight is the port's to bound: it windows a batch itself
    (``device.afc_batch.WINDOW``).
    """

    def __init__(self, files: PhoneFiles) -> None:
        self._files = files
        #: GET_FILE_INFO requests sent so far.
        self.requests = 0

    async def stat_many(self, paths: list[tuple[str, str]]) -> list[StatOutcome]:
        """The checked stats of ``(folder, name)`` pairs, in their order: one
        ``PhoneFiles.stat_many`` batch (the adapter pipelines it: a re-plug's slice is 2,000
        stats, a first scan 100,000), then each reply checked."""
        if not paths:
            return []
        self.requests += len(paths)
        replies = await self._files.stat_many([f"{folder}/{name}" for folder, name in paths])
        return [
            _outcome_of_reply(name, reply)
            for (_folder, name), reply in zip(paths, replies, strict=True)
        ]

    async def stat_folder(
        self, folder: str, names: list[str]
    ) -> tuple[list[ObservedFile], list[RejectedItem]]:
        """Stat ``names`` of one folder concurrently: the regular files, in the order of
        ``names``, and the rejections (files that vanished meanwhile are in neither)."""
        outcomes = await self.stat_many([(folder, name) for name in names])
        observed: list[ObservedFile] = []
        rejected: list[RejectedItem] = []
        for outcome in outcomes:
            if outcome.rejection == VANISHED:
                continue
            if outcome.rejection:
                rejected.append(
                    RejectedItem(f"{folder}/{outcome.name}", outcome.rejection, outcome.detail)
                )
                continue
            observed.append(
                ObservedFile(
                    folder,
                    outcome.name,
                    outcome.size,
                    outcome.birth_time_ns,
                    outcome.modified_time_ns,
                )
            )
        return observed, rejected


async def survey_media_files(files: PhoneFiles) -> PhoneSurvey:
    """List every media folder and stat every file in it; write nothing anywhere.

    What ``rollkeeper audit`` classifies: the phone as it is now, with no shortcut from an
    earlier scan. Files come sorted by folder, then name; rejections in the order they were
    found (listing problems first, then stat problems folder by folder).
    """
    listing = await list_media_folders(files)
    stats = PhoneStats(files)
    survey = PhoneSurvey(
        rejected=listing.rejected,
        folders=list(listing.folders),
        listing_requests=listing.requests,
    )
    # A few folders' batches at once, so the requests never drain between folders.
    limit = asyncio.Semaphore(SURVEY_FOLDERS_IN_FLIGHT)

    async def stat_folder(
        folder: str, names: list[str]
    ) -> tuple[list[ObservedFile], list[RejectedItem]]:
        async with limit:
            return await stats.stat_folder(folder, sorted(names))

    per_folder = await asyncio.gather(
        *(stat_folder(folder, names) for folder, names in listing.folders.items())
    )
    for observed, rejected in per_folder:
        survey.files.extend(observed)
        survey.rejected.extend(rejected)
    survey.stat_requests = stats.requests
    return survey
