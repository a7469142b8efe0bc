"""Download the planned groups from the phone while the groups already downloaded are placed.

Making a group durable and placing it (fsync of each file, the capture date, collision checks,
link, folder fsyncs, the records) does not need the phone: done one group at a time after the
download, it leaves the link idle and waits for the disk. Here a downloader reads the next
groups while a placer finishes the earlier ones, taking whatever is downloaded as one batch
(:mod:`.group_durability`: one round of concurrent fsyncs, one fsync per folder, one
transaction). Placement stays sequential and in plan order, so collisions and dedup decide
exactly as they would one group at a time.

What an unplug can cost stays one chunk: a group with a file over :data:`SMALL_FILE_BYTES`
downloads alone (one file read at a time, at most the 4 MiB chunk in flight is read again),
and groups of small files download up to :data:`SMALL_GROUPS_IN_FLIGHT` at once (their round
trips overlap), so at most that many files of at most 1 MiB are in flight: 4 MiB again. A small
file is read whole before anything is written (:mod:`.small_transfer`), unless an earlier run
left its partial: that one resumes, so a file downloaded but not placed before an unplug is
not read again. Groups
of large files are downloaded at most ``download_ahead`` ahead of the placer (their partials
wait on disk, not in RAM), groups of small files up to :data:`SMALL_AHEAD_FACTOR` times more,
which is what lets their batches grow.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Iterable
from pathlib import Path

import structlog

from rollkeeper.archive.locations import WORKING_FOLDER_NAME
from rollkeeper.device.errors import PhoneNotRespondingError
from rollkeeper.domain.files import media_kind
from rollkeeper.domain.grouping import MediaGroup
from rollkeeper.importer.group_durability import (
    BATCH_GROUPS,
    GroupDurability,
    ReadyGroup,
    TransactionalStore,
)
from rollkeeper.importer.group_placement import (
    DownloadedMember,
    GroupPlacer,
    archive_write_error,
)
from rollkeeper.importer.hashing import new_hasher
from rollkeeper.importer.ledger import RunLedger
from rollkeeper.importer.plan import PlannedGroup
from rollkeeper.importer.small_transfer import SMALL_FILE_BYTES, download_small
from rollkeeper.importer.transfer import SizeMismatchError, TransferOutcome, download_to_partial
from rollkeeper.ports import FileNotOnPhoneError, PhoneFiles, PhoneReadError
from rollkeeper.store.library import IO_ERROR_REASON
from rollkeeper.store.records import ManifestEntry

log = structlog.get_logger("rollkeeper.backup")

#: Groups downloaded ahead of the one being placed, at most: a few are enough to keep the link
#: busy while the disk catches up; partials wait on disk, not in RAM.
DOWNLOAD_AHEAD_GROUPS = 4

#: Groups of small files downloading at once, at most (x 1 MiB: still one chunk on an unplug).
SMALL_GROUPS_IN_FLIGHT = 4

#: Groups of small files may be downloaded this many times ``download_ahead`` ahead.
SMALL_AHEAD_FACTOR = 8

#: One group's download: the group with its members that arrived whole, or None.
Download = asyncio.Task[ReadyGroup | None]

#: The groups to copy: a whole plan, or a stream of them as the scan plans each folder
#: (:class:`~rollkeeper.importer.folder_stream.FolderStream`).
PlannedGroups = Iterable[PlannedGroup] | AsyncIterable[PlannedGroup]


async def _each(groups: PlannedGroups) -> AsyncGenerator[PlannedGroup, None]:
    """The groups one at a time, however they come; an async iterator left early is closed
    here (not by the garbage collector, at whatever moment it runs)."""
    if not isinstance(groups, AsyncIterable):
        for group in groups:
            yield group
        return
    iterator = aiter(groups)
    try:
        async for group in iterator:
            yield group
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()


class StopRequestedError(Exception):
    """The service is shutting down: the run ends after the file in flight."""


#: AFC's IO_ERROR: how a listed original offloaded to iCloud fails to read (ifuse #54).
AFC_IO_ERROR = 20


def read_failure_reason(error: PhoneReadError) -> str:
    """``io_error`` for a read that failed the way an offloaded original fails, else
    ``read_error`` (the library decides whether an ``io_error`` file is only in iCloud)."""
    status = getattr(error.status, "value", error.status)
    return IO_ERROR_REASON if status == AFC_IO_ERROR else "read_error"


def _text_hash(text: str) -> str:
    hasher = new_hasher()
    hasher.update(text.encode("utf-8", "surrogateescape"))
    return hasher.hexdigest()


def partial_folder(archive_root: Path, udid: str) -> Path:
    """The folder of one phone's work files; its name is derived, never device-supplied."""
    return archive_root / WORKING_FOLDER_NAME / "partial" / _text_hash(udid)[:16]


def partial_path(archive_root: Path, udid: str, entry: ManifestEntry) -> Path:
    """The work file of one phone file identity; its name is derived, never device-supplied."""
    return partial_folder(archive_root, udid) / partial_name(udid, entry)


def partial_name(udid: str, entry: ManifestEntry) -> str:
    """The name of :func:`partial_path` in :func:`partial_folder`."""
    identity = f"{udid}\0{entry.folder}\0{entry.name}\0{entry.size}\0{entry.birth_time_ns}"
    return f"{_text_hash(identity)[:40]}.partial"


def _names_in(folder: Path) -> frozenset[str]:
    """The names in ``folder``; none when it does not exist (yet)."""
    try:
        return frozenset(os.listdir(folder))
    except FileNotFoundError:
        return frozenset()


def _finished(downloads: set[Download]) -> Callable[[Download], None]:
    """A done-callback: forget a finished download and mark its error seen (the placer still
    raises it when it reaches that download; one it never reaches, after an earlier failure,
    is not an unretrieved error)."""

    def forget(task: Download) -> None:
        downloads.discard(task)
        if not task.cancelled():
            task.exception()

    return forget


class GroupPipeline:
    """Copies the groups of one run: downloads ahead, places in order, in batches."""

    def __init__(
        self,
        files: PhoneFiles,
        archive_root: Path,
        udid: str,
        ledger: RunLedger,
        placer: GroupPlacer,
        stop_requested: Callable[[], bool],
        download_ahead: int = DOWNLOAD_AHEAD_GROUPS,
        *,
        store: TransactionalStore,
    ) -> None:
        self._files = files
        self._archive_root = archive_root
        self._udid = udid
        self._ledger = ledger
        self._placer = placer
        self._stop_requested = stop_requested
        self._download_ahead = max(1, download_ahead)
        self._store = store
        #: Downloads started and not yet taken by the placer (what "ahead" counts).
        self._unplaced = 0
        #: Set each time the placer takes a download (a download waiting for room waits on it).
        self._taken = asyncio.Event()
        #: The phone's partial folder, and the partials earlier runs left in it (read once by
        #: :meth:`copy`): a small file with one resumes it instead of reading it whole again.
        self._partial_folder = partial_folder(archive_root, udid)
        self._earlier_partials: frozenset[str] = frozenset()

    async def copy(self, groups: PlannedGroups) -> None:
        """Download the groups while the groups already downloaded are made durable and
        placed, in plan order, a batch at a time. The groups may still be arriving (an async
        iterable): the copy then waits for each next one.

        A stop request ends the run (:class:`StopRequestedError`) after the files being read
        and the groups already downloaded.
        """
        self._earlier_partials = await asyncio.to_thread(_names_in, self._partial_folder)
        queue: asyncio.Queue[Download | None] = asyncio.Queue()  # bounded by _wait_for_room
        downloads: set[Download] = set()  # the unfinished ones (cancelled if the run ends)
        stopped_early = False

        async def download_all() -> None:
            nonlocal stopped_early
            cancelled = False
            try:
                stopped_early = await self._start_downloads(groups, queue, downloads)
            except asyncio.CancelledError:
                cancelled = True
                raise
            finally:
                if not cancelled:
                    await queue.put(None)  # the end (the placer then awaits our error)

        downloader = asyncio.ensure_future(download_all())
        try:
            await self._place_all(queue)
            await downloader
        except asyncio.CancelledError:
            for task in downloads:
                task.cancel()
            raise
        finally:
            if not downloader.done():
                downloader.cancel()
            # The files still in flight (small ones, at most four) end by themselves: done, or
            # failed with the connection; cancelling them could orphan a reply's future.
            await asyncio.gather(downloader, *downloads, return_exceptions=True)
        if stopped_early:
            raise StopRequestedError("rollkeeper is stopping")

    async def _place_all(self, queue: asyncio.Queue[Download | None]) -> None:
        """Take the downloads in plan order; place the first with every later one already
        downloaded as one batch (at most :data:`BATCH_GROUPS`).

        A download that failed ends the run, after the groups downloaded before it are placed.
        """
        durability = GroupDurability(self._store, self._placer.place)
        pending: collections.deque[Download] = collections.deque()
        ended = False
        while True:
            while not ended and (not pending or not queue.empty()):
                item = await queue.get()
                if item is None:
                    ended = True
                else:
                    pending.append(item)
            if not pending:
                return
            batch: list[ReadyGroup] = []
            try:
                downloaded = await self._take(pending)
                batch.extend([downloaded] if downloaded is not None else [])
                while pending and pending[0].done() and len(batch) < BATCH_GROUPS:
                    downloaded = self._take(pending).result()
                    batch.extend([downloaded] if downloaded is not None else [])
            finally:
                if batch:
                    await durability.place_batch(batch)

    def _take(self, pending: collections.deque[Download]) -> Download:
        """The next download in plan order, taken for placing: room for one more ahead."""
        self._unplaced -= 1
        self._taken.set()
        return pending.popleft()

    async def _start_downloads(
        self,
        groups: PlannedGroups,
        queue: asyncio.Queue[Download | None],
        downloads: set[Download],
    ) -> bool:
        """Start each group's download, in plan order, into ``queue``; True when a stop request
        ended it early. Stops starting new ones once a download failed (the placer then ends
        the run with that failure).
        """
        async with contextlib.aclosing(_each(groups)) as each:
            return await self._start_each(each, queue, downloads)

    async def _start_each(
        self,
        groups: AsyncIterator[PlannedGroup],
        queue: asyncio.Queue[Download | None],
        downloads: set[Download],
    ) -> bool:
        """:meth:`_start_downloads` of the groups as they come."""
        in_flight: set[Download] = set()
        small_in_flight = True  # whether every download in flight is of a small group
        async for group, entries in groups:
            if self._stop_requested():
                return True
            small = all(entry.size <= SMALL_FILE_BYTES for entry in entries)
            limit = SMALL_GROUPS_IN_FLIGHT if small and small_in_flight else 1
            while len(in_flight) >= limit:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                if any(task.cancelled() or task.exception() is not None for task in done):
                    return False
            await self._wait_for_room(self._download_ahead * (SMALL_AHEAD_FACTOR if small else 1))
            task = asyncio.ensure_future(self._download_group(group, entries))
            downloads.add(task)
            task.add_done_callback(_finished(downloads))
            in_flight.add(task)
            self._unplaced += 1
            small_in_flight = small
            await queue.put(task)
        return False

    async def _wait_for_room(self, ahead: int) -> None:
        """Wait until fewer than ``ahead`` downloads wait for the placer."""
        while self._unplaced >= ahead:
            self._taken.clear()
            await self._taken.wait()

    async def _download_group(
        self, group: MediaGroup, entries: list[ManifestEntry]
    ) -> ReadyGroup | None:
        """Copy every member of a group into its partial; the group with the members that
        arrived whole (None when none did)."""
        ready: list[DownloadedMember] = []
        for entry in entries:
            name = partial_name(self._udid, entry)
            member = DownloadedMember(entry, self._partial_folder / name)
            member.resumable = name in self._earlier_partials
            if await self._download(member, primary=entry.phone_path == group.primary.path):
                ready.append(member)
        return (group, ready) if ready else None

    async def _download(self, member: DownloadedMember, primary: bool = False) -> bool:
        """Copy one member into its partial; False (recorded as failed) for file-level errors.

        A small file takes :func:`download_small` (one worker-thread call; the group's primary
        also has its capture date read from the bytes in memory), unless an earlier run left
        its partial (resumed, not read whole again: what an unplug costs stays one chunk);
        any other file takes the general path.
        """
        entry = member.entry
        ledger = self._ledger
        ledger.start_file(entry.phone_path)
        outcome: TransferOutcome
        try:
            if entry.size <= SMALL_FILE_BYTES and not member.resumable:
                small = await download_small(
                    self._files,
                    entry.phone_path,
                    entry.size,
                    member.partial,
                    on_bytes=ledger.count_bytes,
                    capture_kind=media_kind(entry.name) if primary else None,
                )
                outcome = small.transfer
                member.capture_read = small.capture_read
                member.capture = small.capture
            else:
                outcome = await download_to_partial(
                    self._files,
                    entry.phone_path,
                    entry.size,
                    member.partial,
                    on_bytes=ledger.count_bytes,
                    durable=False,  # fsync'ed by the placer, while the next file downloads
                )
        except SizeMismatchError as error:
            ledger.fail(entry, "size_mismatch", str(error))
            return False
        except FileNotOnPhoneError:
            ledger.fail(entry, "vanished_from_phone", "the phone no longer has this file")
            return False
        except PhoneReadError as error:
            ledger.fail(entry, read_failure_reason(error), str(error))
            return False
        except PhoneNotRespondingError as error:
            # The session is lost either way; remember the file so the next run tries it last.
            ledger.fail(entry, "phone_not_responding", str(error))
            raise
        except OSError as error:
            raise archive_write_error(error, member.partial) from error
        if outcome.resumed_from:
            log.info(
                "partial_resumed",
                udid=self._udid,
                run_id=ledger.run_id,
                phone_path=entry.phone_path,
                offset=outcome.resumed_from,
            )
        member.content_hash = outcome.content_hash
        ledger.counts.bytes_copied += outcome.bytes_from_phone
        return True
