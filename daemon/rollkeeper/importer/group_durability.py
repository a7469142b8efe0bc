"""Make a batch of downloaded groups durable together: fsync, place, fsync folders, record.

Done one file at a time, durability costs a file fsync, two folder fsyncs and a transaction per
file, each waiting for the disk's journal. For a batch of groups already downloaded (whatever
the downloader has ready, at most :data:`BATCH_GROUPS`), the same protocol runs once per batch,
in the same order, so the guarantee is unchanged:

1. every partial of the batch is fsync'ed, several at once on a small thread pool
   (:data:`FSYNC_THREADS`; the file system commits their journal entries together);
2. each group is placed as before (its date, dedup, collision suffix, a link into place), in
   plan order; the folder fsyncs that placing asks for are collected instead of made
   (:func:`rollkeeper.host.durability.deferred_folder_syncs`);
3. each folder collected is fsync'ed once;
4. the records of the whole batch commit in one SQLite transaction, opened before step 2 so
   that a group sees the records of the groups placed before it in the batch (dedup by hash and
   the names taken decide exactly as one group at a time), and committed only after step 3.

A final name never points at bytes that are not durable (step 1 before step 2), and nothing is
recorded before its name is durable (step 3 before the commit). A crash (or power cut) between
2 and 4 leaves complete files under their final names with no record: the next run copies the
file again, finds the same content at the destination and records it as ``rebuilt``
(:mod:`.group_placement`), as it always did for a crash between link and record.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from rollkeeper.domain.grouping import MediaGroup
from rollkeeper.host.durability import deferred_folder_syncs, fsync_file, fsync_folder
from rollkeeper.importer.commit_hooks import collect_after_commit
from rollkeeper.importer.group_placement import DownloadedMember, archive_write_error

#: Groups made durable and recorded together at most (the downloader rarely has more ready).
BATCH_GROUPS = 32

#: Partials fsync'ed at once: enough for the journal to commit several files together; more
#: threads only queue on the same disk.
FSYNC_THREADS = 4

#: One downloaded group: what :meth:`GroupPlacer.place` takes.
ReadyGroup = tuple[MediaGroup, list[DownloadedMember]]


class TransactionalStore(Protocol):
    """The store's one operation this module needs: one transaction around many records."""

    def transaction(self) -> contextlib.AbstractContextManager[None]: ...


_pool: ThreadPoolExecutor | None = None

#: One batch at a time per store: two phones backing up at once share the service's one
#: connection, and a batch's transaction stays open across the awaits of its placements.
_batch_locks: weakref.WeakKeyDictionary[object, asyncio.Lock] = weakref.WeakKeyDictionary()


def _fsync_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="rollkeeper-fsync")
    return _pool


def _fsync_taken(
    work: collections.deque[tuple[int, Path]], results: list[BaseException | None]
) -> None:
    """fsync the files taken from ``work`` until none is left, putting what each fsync raised
    (None when it succeeded) at its index in ``results``. Several threads share one ``work``:
    a slow fsync holds back only its own thread, the others take the rest."""
    while True:
        try:
            index, partial = work.popleft()  # thread-safe: each file is taken once
        except IndexError:
            return
        try:
            fsync_file(partial)
        except Exception as error:  # noqa: BLE001 - handed back to the caller, in order
            results[index] = error


async def fsync_partials(members: Sequence[DownloadedMember]) -> None:
    """fsync every member's partial, several at once; the first failure stops the run.

    :data:`FSYNC_THREADS` pool calls share the batch's files (one call per thread, not one per
    file: a batch of small files costs a few thread hops, not one each).
    """
    loop = asyncio.get_running_loop()
    pool = _fsync_pool()
    work = collections.deque(enumerate(member.partial for member in members))
    results: list[BaseException | None] = [None] * len(members)
    threads = min(FSYNC_THREADS, len(members))
    answers = await asyncio.gather(
        *(loop.run_in_executor(pool, _fsync_taken, work, results) for _ in range(threads)),
        return_exceptions=True,
    )
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    for member, result in zip(members, results, strict=True):
        if isinstance(result, OSError):
            raise archive_write_error(result, member.partial) from result
        if isinstance(result, BaseException):
            raise result


def _fsync_folders(folders: set[Path]) -> None:
    for folder in sorted(folders):
        fsync_folder(folder)


class GroupDurability:
    """Places batches of downloaded groups with one fsync round and one transaction each."""

    def __init__(
        self,
        store: TransactionalStore,
        place: Callable[[MediaGroup, list[DownloadedMember]], Awaitable[None]],
    ) -> None:
        self._store = store
        self._place = place

    async def place_batch(self, batch: Sequence[ReadyGroup]) -> None:
        """Make every group of ``batch`` durable, place them in order and record them at once.

        An exception (an archive that cannot be written) rolls the batch's records back: the
        files already placed are complete and durable, and the next run records them as
        ``rebuilt``.
        """
        await fsync_partials([member for _, ready in batch for member in ready])
        lock = _batch_locks.setdefault(self._store, asyncio.Lock())
        async with lock:
            with collect_after_commit() as after_commit, self._store.transaction():
                with deferred_folder_syncs() as folders:
                    for group, ready in batch:
                        await self._place(group, ready)
                try:
                    await asyncio.to_thread(_fsync_folders, folders)
                except OSError as error:
                    raise archive_write_error(error, next(iter(folders))) from error
        for action in after_commit:
            action()  # the file_archived events, now that their records are committed
