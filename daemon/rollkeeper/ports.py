"""What the importer needs from the world, as Protocols: the phone's files, the store, a clock.

The backup run (:class:`rollkeeper.importer.job.BackupRun`) and the reconciliation of a scan
with the manifest (:mod:`rollkeeper.importer.reconcile`) are typed against these, not against
the adapters that implement them (:class:`rollkeeper.device.phone_files.PhoneFilesystem`,
:class:`rollkeeper.store.StateStore`). Each port has an in-memory fake in the tests, and
``tests/contract/`` runs the same assertions against the fake and the real thing, so the fakes
cannot drift from what they stand for.

The phone's replies are untrusted: :class:`PhoneFiles` returns them raw (:class:`ListedName`,
:class:`DecodedListing`, :class:`RawStat`) for the scanner to check. Every call may also raise
one of :mod:`rollkeeper.device.errors`' :class:`~rollkeeper.device.errors.PhoneUnavailableError`
(unplugged, not answering): the run ends there and is retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple, Protocol, overload, runtime_checkable

if TYPE_CHECKING:
    from rollkeeper.store.phone_folders import CheckedFile, FolderSummary
    from rollkeeper.store.records import ArchiveEntry, ManifestEntry, RunCounts

#: The most bytes one :meth:`PhoneFiles.read` returns: AFC reads are asked for in pieces of at
#: most this size (pymobiledevice3 concatenates larger reads with ``+=``, which is quadratic).
MAXIMUM_READ_BYTES = 4 * 1024 * 1024


# -- the phone's files ---------------------------------------------------------------------------


class ListedName(NamedTuple):
    """One folder entry: its text if it is valid UTF-8, and the raw bytes either way.

    A named tuple rather than a dataclass: a listing of 100,000 names makes 100,000 of them,
    and a tuple is made several times faster than a frozen dataclass.
    """

    raw: bytes
    text: str | None


class DecodedListing(Sequence[ListedName]):
    """A folder's entries when every name is UTF-8 (the usual case), kept as texts only.

    A re-plug lists every folder: 100,000 names. As :class:`ListedName` tuples they cost a
    tuple each and, since tuples the garbage collector cannot untrack stay tracked, repeated
    full collections while they pile up (measured: ~90 ms per 100,000 names against ~10 ms as
    plain strings). Here the names are ``joined`` (NUL-separated, as the phone sent them, so a
    folder's names are checked in one regular-expression match) and split into ``texts``; an
    entry is made only when someone asks for one.
    """

    __slots__ = ("joined", "texts")

    def __init__(self, joined: str) -> None:
        #: The names, NUL-separated, in listing order (no ``.``, ``..`` or trailing NUL).
        self.joined = joined
        #: The names in listing order.
        self.texts: list[str] = joined.split("\x00") if joined else []

    def __len__(self) -> int:
        return len(self.texts)

    @overload
    def __getitem__(self, index: int) -> ListedName: ...

    @overload
    def __getitem__(self, index: slice) -> list[ListedName]: ...

    def __getitem__(self, index: int | slice) -> ListedName | list[ListedName]:
        if isinstance(index, slice):
            return [ListedName(text.encode("utf-8"), text) for text in self.texts[index]]
        text = self.texts[index]
        return ListedName(text.encode("utf-8"), text)


@dataclass(frozen=True, slots=True)
class RawStat:
    """A stat reply as the phone sent it: any field may be missing or nonsense."""

    fields: dict[str, str]

    def integer(self, key: str) -> int | None:
        """The field as a non-negative integer, or None when missing or not a number."""
        value = self.fields.get(key)
        if value is None or not value.isdigit():
            return None
        return int(value)

    @property
    def kind(self) -> str | None:
        """``S_IFREG``, ``S_IFDIR``, ``S_IFLNK`` ... or None."""
        return self.fields.get("st_ifmt")


class FileNotOnPhoneError(Exception):
    """The phone says the path does not exist (any more)."""


class PhoneReadError(Exception):
    """The phone refused a request for another reason than "not found" (a read error, a
    folder opened as a file, a file listed as a folder)."""

    def __init__(self, message: str, status: object) -> None:
        super().__init__(message)
        self.status = status


async def stats_one_by_one(
    stat: Callable[[str], Awaitable[RawStat]], paths: Sequence[str]
) -> list[RawStat | FileNotOnPhoneError | PhoneReadError]:
    """``stat_many`` from a one-path ``stat``, one request after another: for a
    :class:`PhoneFiles` that answers from memory (the fake, a replay), where nothing is in
    flight."""
    replies: list[RawStat | FileNotOnPhoneError | PhoneReadError] = []
    for path in paths:
        try:
            replies.append(await stat(path))
        except (FileNotOnPhoneError, PhoneReadError) as refusal:
            replies.append(refusal)
    return replies


class PhoneFiles(Protocol):
    """Read-only access to the phone's media folder (``/DCIM/100APPLE/IMG_0001.HEIC``)."""

    async def list_folder(self, path: str) -> Sequence[ListedName]:
        """The entries of a folder, without ``.`` and ``..`` (a :class:`DecodedListing` when
        every name is UTF-8, or a list); :class:`FileNotOnPhoneError` when it does not exist,
        :class:`PhoneReadError` when it is not a folder."""
        ...

    async def stat(self, path: str) -> RawStat:
        """The phone's stat of a path (``st_ifmt``, ``st_size``, ``st_birthtime``, ``st_mtime``
        in nanoseconds, ...); :class:`FileNotOnPhoneError` when it does not exist."""
        ...

    async def stat_many(
        self, paths: Sequence[str]
    ) -> list[RawStat | FileNotOnPhoneError | PhoneReadError]:
        """The stat of every path, in order, the requests in flight together (a re-plug's
        folders and rotating check, a scan's files): each path's :class:`RawStat`, or its
        refusal as a :class:`FileNotOnPhoneError` / :class:`PhoneReadError` value (returned,
        not raised). A phone that stops answering or goes away raises for the whole batch, as
        :meth:`stat` does."""
        ...

    async def open(self, path: str) -> int:
        """Open a file for reading; returns a handle. :class:`FileNotOnPhoneError` when it does
        not exist, :class:`PhoneReadError` when it cannot be opened (a folder)."""
        ...

    async def seek(self, handle: int, offset: int) -> None:
        """Move a handle to ``offset`` bytes from the start (to resume a partial file)."""
        ...

    async def read(self, handle: int, size: int) -> bytes | bytearray:
        """Up to ``size`` (at most :data:`MAXIMUM_READ_BYTES`) bytes at the handle's position;
        ``b""`` at the end of the file. A ``bytearray`` is the buffer the bytes were received
        into, handed over (nothing else holds or changes it), so a chunk is never copied just
        to become ``bytes``."""
        ...

    async def close(self, handle: int) -> None:
        """Release a handle (never fails: a handle on a dead connection is gone anyway)."""
        ...


@runtime_checkable
class WholeFileReads(Protocol):
    """What a :class:`PhoneFiles` may add for many small files: several read whole at once.

    Optional (the importer reads small files one by one through :class:`PhoneFiles` when the
    port has not got it): the AFC adapter has it, the fakes and replays need not.
    """

    async def read_whole_many(
        self, files: Sequence[tuple[str, int]]
    ) -> list[list[bytes | bytearray] | FileNotOnPhoneError | PhoneReadError]:
        """Each ``(path, stat size)``'s bytes, read whole (its chunks, a READ of the stat size
        plus one byte first, so a file longer than its stat shows as more bytes), in order;
        a file's refusal is its entry (returned, not raised). A phone that stops answering or
        goes away raises for all of them, as :meth:`PhoneFiles.read` does."""
        ...


class PhoneIdentity(Protocol):
    """Who the phone says it is (untrusted text, shown to the user, never used as a path)."""

    @property
    def udid(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def product_type(self) -> str: ...

    @property
    def product_version(self) -> str: ...


class PhoneConnection(Protocol):
    """An open connection to one phone: who it is and its files."""

    @property
    def info(self) -> PhoneIdentity: ...

    @property
    def files(self) -> PhoneFiles: ...


# -- the store -----------------------------------------------------------------------------------


class ManifestStore(Protocol):
    """The manifest methods that reconciling a scan with the store calls."""

    def known_folders(self, udid: str) -> list[str]:
        """Folders of the phone with at least one present file, sorted."""
        ...

    def present_files(self, udid: str, folder: str) -> dict[str, ManifestEntry]:
        """The files the phone's last listing of ``folder`` showed, by name."""
        ...

    def mark_absent(
        self, udid: str, folder: str, names: Iterable[str], now: datetime | None = None
    ) -> int:
        """Mark present files of ``folder`` no longer listed as absent; returns how many."""
        ...

    def mark_folder_absent(self, udid: str, folder: str, now: datetime | None = None) -> int:
        """Mark every present file of a folder that is gone as absent; returns how many."""
        ...

    def observe_files(
        self,
        udid: str,
        folder: str,
        files: Iterable[tuple[str, int, int, int]],
        now: datetime | None = None,
    ) -> None:
        """Record ``(name, size, birth_time_ns, modified_time_ns)`` as present: a new identity
        is ``pending``; a known one keeps its status; another identity under a present name
        retires the old one (absent, kept)."""
        ...

    def touch_present(self, udid: str, folder: str, now: datetime | None = None) -> None:
        """Stamp every present file of a folder as seen now."""
        ...


class FolderSummaryStore(Protocol):
    """What a re-plug reads and writes instead of every file's row (store/phone_folders.py)."""

    def folder_summaries(self, udid: str) -> dict[str, FolderSummary]:
        """Every folder summary of a phone, by folder."""
        ...

    def record_folder_summaries(
        self, udid: str, summaries: Iterable[FolderSummary], now: datetime | None = None
    ) -> None:
        """Write (or replace) the summaries of folders compared file by file."""
        ...

    def touch_folders(self, udid: str, folders: list[str], now: datetime | None = None) -> None:
        """Stamp folders whose summary still holds as seen now."""
        ...

    def forget_folders(self, udid: str, folders: list[str]) -> None:
        """Drop the summaries of folders gone from the phone."""
        ...

    def least_recently_checked(self, udid: str, limit: int) -> list[CheckedFile]:
        """Up to ``limit`` settled present files, least recently stat'ed first."""
        ...

    def mark_checked(self, file_ids: list[int], now: datetime | None = None) -> None:
        """The files were stat'ed now and matched the manifest."""
        ...

    def full_check_at(self, udid: str) -> str | None:
        """When every file of the phone was last stat'ed (UTC ISO text), or None."""
        ...

    def record_full_check(self, udid: str, now: datetime | None = None) -> None:
        """Every file of the phone was stat'ed now."""
        ...


class ScanStore(ManifestStore, FolderSummaryStore, Protocol):
    """Everything a scan calls on the store."""


class BackupStore(ScanStore, Protocol):
    """Everything a backup run calls on the store: the manifest, the archive, runs, phones."""

    def transaction(self) -> AbstractContextManager[None]:
        """One atomic write around many calls: committed when it ends, rolled back on an
        exception; inside another transaction, a savepoint that commits with the outer one."""
        ...

    def record_device_seen(
        self,
        udid: str,
        *,
        name: str | None = None,
        product_type: str | None = None,
        product_version: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Note that a phone is attached now, with its name, model and iOS version."""
        ...

    def set_device_state(
        self, udid: str, state: str, detail: str = "", now: datetime | None = None
    ) -> None:
        """Record what a phone is doing now (``backing_up``, ``up_to_date``, ``error`` ...)."""
        ...

    def set_device_progress(
        self, udid: str, files_done: int, files_total: int, bytes_done: int, bytes_total: int
    ) -> None:
        """Record how far the current backup of a phone has come."""
        ...

    def set_file_status(self, file_id: int, status: str, failure_reason: str = "") -> None:
        """Mark a manifest entry pending, failed (with a reason) or excluded."""
        ...

    def status_counts(self, udid: str) -> dict[str, int]:
        """How many present files of a phone are in each status."""
        ...

    def count_archived_not_present(self, udid: str) -> int:
        """Archived files of a phone that its last listing no longer showed."""
        ...

    def archive_entry(self, relative_path: str) -> ArchiveEntry | None:
        """The archive record at a path, or None."""
        ...

    def archive_entry_by_hash(self, content_hash: str) -> ArchiveEntry | None:
        """Some archive record with this content (the first by path), or None."""
        ...

    def record_archived(
        self,
        file_id: int,
        *,
        relative_path: str,
        content_hash: str,
        hash_algorithm: str,
        size: int,
        origin: str,
        capture_time: str | None,
        capture_source: str | None,
        now: datetime | None = None,
    ) -> None:
        """At once: the archive holds ``relative_path`` (an existing record stays as it is) and
        the phone file is ``archived`` there."""
        ...

    def start_run(self, udid: str, now: datetime | None = None) -> int:
        """Open a run for a phone; returns its id (increasing)."""
        ...

    def finish_run(
        self,
        run_id: int,
        outcome: str,
        counts: RunCounts,
        error: str = "",
        now: datetime | None = None,
    ) -> None:
        """Close a run with its outcome and counts."""
        ...

    def add_run_failure(self, run_id: int, phone_path: str, reason: str, detail: str = "") -> None:
        """Remember why one file (or rejected item) failed in a run."""
        ...


# -- the clock -----------------------------------------------------------------------------------


class Clock(Protocol):
    """Now, as an aware UTC datetime (injected so tests can set time)."""

    def __call__(self) -> datetime: ...


def system_clock() -> datetime:
    """The real :class:`Clock`: the system's time, in UTC."""
    return datetime.now(UTC)
