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
not read again. Where the phone port can (:class:`~rollkeeper.ports.WholeFileReads`),
consecutive groups of small files download as batches instead (:data:`SMALL_BATCH_FILES`,
:data:`SMALL_BATCH_BYTES`; their requests written a window at a time), one batch read from the
phone at a time: an unplug still costs at most 4 MiB. Groups
of large files are downloaded at most ``download_ahead`` ahead of the placer (their partials
wait on disk, not in RAM), groups of small files up to :data:`SMALL_AHEAD_FACTOR` times more,
which is what lets their batches grow.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import structlog

from rollkeeper.device.errors import PhoneNotRespondingError
from rollkeeper.domain.files import media_kind
from rollkeeper.domain.grouping import MediaGroup
from rollkeeper.importer.download_flow import (
    BATCH_FILE_BYTES,
    SMALL_BATCH_BYTES,
    SMALL_BATCH_FILES,
    SMALL_GROUPS_IN_FLIGHT,
    PlannedGroups,
    SmallBatch,
    batch_full,
    each_group,
    forget_when_done,
    wait_below,
)
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
from rollkeeper.importer.ledger import RunLedger
from rollkeeper.importer.partials import names_in, partial_folder, partial_name
from rollkeeper.importer.plan import PlannedGroup
from rollkeeper.importer.small_transfer import (
    SMALL_FILE_BYTES,
    SmallFile,
    SmallResult,
    download_small,
    download_small_many,
)
from rollkeeper.importer.transfer import SizeMismatchError, TransferOutcome, download_to_partial
from rollkeeper.ports import FileNotOnPhoneError, PhoneFiles, PhoneReadError, WholeFileReads
from rollkeeper.store.library import IO_ERROR_REASON
from rollkeeper.store.records import ManifestEntry

log = structlog.get_logger("rollkeeper.backup")

#: Groups downloaded ahead of the one being placed, at most: a few are enough to keep the link
#: busy while the disk catches up; partials wait on disk, not in RAM.
DOWNLOAD_AHEAD_GROUPS = 4

#: Groups of small files may be downloaded this many times ``download_ahead`` ahead.
SMALL_AHEAD_FACTOR = 8

#: One group's download: the group with its members that arrived whole, or None.
Download = asyncio.Future[ReadyGroup | None]


class StopRequestedError(Exception):
    """The service is shutting down: the run ends after the file in flight."""


#: AFC's IO_ERROR: how a listed original offloaded to iCloud fails to read (ifuse #54).
AFC_IO_ERROR = 20


def read_failure_reason(error: PhoneReadError) -> str:
    """``io_error`` for a read that failed the way an offloaded original fails, else
    ``read_error`` (the library decides whether an ``io_error`` file is only in iCloud)."""
    status = getattr(error.status, "value", error.status)
    return IO_ERROR_REASON if status == AFC_IO_ERROR else "read_error"


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
        #: One batch of small files read from the phone at a time (the next one is read while
        #: the one before is written): what an unplug costs stays SMALL_BATCH_BYTES.
        self._batch_reads = asyncio.Lock()

    async def copy(self, groups: PlannedGroups) -> None:
        """Download the groups while the groups already downloaded are made durable and
        placed, in plan order, a batch at a time. The groups may still be arriving (an async
        iterable): the copy then waits for each next one.

        A stop request ends the run (:class:`StopRequestedError`) after the files being read
        and the groups already downloaded.
        """
        self._earlier_partials = await asyncio.to_thread(names_in, self._partial_folder)
        queue: asyncio.Queue[Download | None] = asyncio.Queue()  # bounded by _wait_for_room
        downloads: set[asyncio.Future[Any]] = set()  # unfinished (cancelled if the run ends)
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
        downloads: set[asyncio.Future[Any]],
    ) -> bool:
        """Start each group's download, in plan order, into ``queue``; True when a stop request
        ended it early. Stops starting new ones once a download failed (the placer then ends
        the run with that failure).

        Where the phone can read several files at once (:class:`WholeFileReads`), consecutive
        groups of small files none of which an earlier run left a partial of are downloaded
        as batches (:meth:`_download_batch`, at most :data:`SMALL_BATCH_FILES` files and
        :data:`SMALL_BATCH_BYTES`); any other group downloads as before.
        """
        async with contextlib.aclosing(each_group(groups)) as each:
            return await self._start_each(groups, each, queue, downloads)

    async def _start_each(  # noqa: C901 - one loop over the plan, two kinds of download
        self,
        source: PlannedGroups,
        groups: AsyncIterator[PlannedGroup],
        queue: asyncio.Queue[Download | None],
        downloads: set[asyncio.Future[Any]],
    ) -> bool:
        """:meth:`_start_downloads` of the groups as they come. A batch still filling starts
        as soon as the source (a scan still going on) has no next group ready, so streaming
        never holds the first bytes back to fill a batch."""
        ready_now = getattr(source, "ready_now", None)
        in_flight: set[asyncio.Future[Any]] = set()
        small_in_flight = True  # whether every download in flight is of a small group
        batches = isinstance(self._files, WholeFileReads)
        batch: SmallBatch = []

        async def start_batch() -> bool:
            nonlocal small_in_flight
            # Two batches at once: one read from the phone while the one before is written.
            if not await wait_below(in_flight, 2 if small_in_flight else 1):
                return False
            await self._wait_for_room(self._download_ahead * SMALL_AHEAD_FACTOR)
            loop = asyncio.get_running_loop()
            futures: list[Download] = [loop.create_future() for _ in batch]
            task = asyncio.ensure_future(self._download_batch(list(batch), futures))
            started_now: list[asyncio.Future[Any]] = [task, *futures]
            for started in started_now:
                downloads.add(started)
                started.add_done_callback(forget_when_done(downloads))
            in_flight.add(task)
            small_in_flight = True
            self._unplaced += len(futures)
            for future in futures:
                await queue.put(future)
            batch.clear()
            return True

        async for group, entries in groups:
            if self._stop_requested():
                return True
            small = all(entry.size <= SMALL_FILE_BYTES for entry in entries)
            if batches and small and self._batchable(entries):
                if batch_full(batch, entries) and not await start_batch():
                    return False
                batch.append((group, entries))
                if ready_now is not None and not ready_now() and not await start_batch():
                    return False
                continue
            if batch and not await start_batch():
                return False
            limit = SMALL_GROUPS_IN_FLIGHT if small and small_in_flight else 1
            if not await wait_below(in_flight, limit):
                return False
            await self._wait_for_room(self._download_ahead * (SMALL_AHEAD_FACTOR if small else 1))
            task = asyncio.ensure_future(self._download_group(group, entries))
            downloads.add(task)
            task.add_done_callback(forget_when_done(downloads))
            in_flight.add(task)
            self._unplaced += 1
            small_in_flight = small
            await queue.put(task)
        if batch and self._stop_requested():
            return True
        if batch:
            await start_batch()
        return False

    def _batchable(self, entries: list[ManifestEntry]) -> bool:
        """Whether a group of small files can download in a batch: its files are at most
        :data:`BATCH_FILE_BYTES` each, it fits one, and no earlier run left a partial of any
        of its files (that one resumes, as a file alone does)."""
        return (
            len(entries) <= SMALL_BATCH_FILES
            and all(entry.size <= BATCH_FILE_BYTES for entry in entries)
            and sum(entry.size for entry in entries) <= SMALL_BATCH_BYTES
            and not any(
                partial_name(self._udid, entry) in self._earlier_partials for entry in entries
            )
        )

    async def _download_batch(self, batch: SmallBatch, futures: list[Download]) -> None:
        """Download the small files of several groups together (:func:`download_small_many`)
        and give each group's future its group with the members that arrived whole (None when
        none did). A failure that ends the run is every unsettled future's, and raised."""
        try:
            members = [
                (
                    group,
                    [
                        DownloadedMember(
                            entry, self._partial_folder / partial_name(self._udid, entry)
                        )
                        for entry in entries
                    ],
                )
                for group, entries in batch
            ]
            wanted = [
                SmallFile(
                    member.entry.phone_path,
                    member.entry.size,
                    member.partial,
                    media_kind(member.entry.name)
                    if member.entry.phone_path == group.primary.path
                    else None,
                )
                for group, group_members in members
                for member in group_members
            ]
            for small in wanted:
                self._ledger.start_file(small.phone_path)
            async with self._batch_reads:
                try:
                    results = await download_small_many(self._files, wanted)  # type: ignore[arg-type]
                except PhoneNotRespondingError as error:
                    # The file the phone left hanging is the one to retry last (the first of
                    # the batch where the phone's reply does not say).
                    entries = [
                        member.entry for _, group_members in members for member in group_members
                    ]
                    hanging = [entry for entry in entries if entry.phone_path in error.paths]
                    self._ledger.fail((hanging or entries)[0], "phone_not_responding", str(error))
                    raise
            outcomes = iter(results)
            for (group, group_members), future in zip(members, futures, strict=True):
                ready = [
                    member for member in group_members if self._settle_small(member, next(outcomes))
                ]
                future.set_result((group, ready) if ready else None)
        except BaseException as error:
            for future in futures:
                if not future.done():
                    if isinstance(error, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(error)
            raise

    def _settle_small(self, member: DownloadedMember, result: SmallResult) -> bool:
        """Whether one file of a batch arrived whole (its hash and capture date noted); a
        file-level refusal is recorded as failed, a write error raised (it ends the run)."""
        entry = member.entry
        if isinstance(result, OSError):
            raise archive_write_error(result, member.partial) from result
        if isinstance(result, Exception):
            return self._failed(entry, result)
        self._ledger.count_bytes(result.transfer.bytes_from_phone)
        member.capture_read = result.capture_read
        member.capture = result.capture
        member.content_hash = result.transfer.content_hash
        self._ledger.counts.bytes_copied += result.transfer.bytes_from_phone
        return True

    def _failed(self, entry: ManifestEntry, error: Exception) -> bool:
        """Record a file-level failure of ``entry`` (False), or raise what is not one."""
        ledger = self._ledger
        if isinstance(error, SizeMismatchError):
            ledger.fail(entry, "size_mismatch", str(error))
        elif isinstance(error, FileNotOnPhoneError):
            ledger.fail(entry, "vanished_from_phone", "the phone no longer has this file")
        elif isinstance(error, PhoneReadError):
            ledger.fail(entry, read_failure_reason(error), str(error))
        else:
            raise error
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
