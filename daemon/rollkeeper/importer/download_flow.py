"""The small pieces of :mod:`.pipeline`'s flow control: the groups however they come (a list
or the scan's stream), the limit on downloads in flight, the batches of small files.

Kept apart from the pipeline so that its class holds only the order of work (download ahead,
place in plan order) and these rules can be read, and tested, on their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable
from typing import Any

from rollkeeper.domain.grouping import MediaGroup
from rollkeeper.importer.plan import PlannedGroup
from rollkeeper.importer.small_transfer import SMALL_FILE_BYTES
from rollkeeper.store.records import ManifestEntry

#: Groups of small files downloading at once, at most (their round trips overlap): with
#: :data:`SMALL_FILE_BYTES` each, what an unplug can cost stays one 4 MiB chunk.
SMALL_GROUPS_IN_FLIGHT = 4

#: Small files read together by one ``read_whole_many`` (their groups: one batch download), at
#: most: this many files ...
SMALL_BATCH_FILES = 16
#: ... and this many bytes (what an unplug can cost: one batch is read at a time).
SMALL_BATCH_BYTES = SMALL_GROUPS_IN_FLIGHT * SMALL_FILE_BYTES
#: Only files up to this size are read in batches: for them the round trips are most of the
#: time. Larger small files (a 1 MB photo) move faster on their own, four in flight, each
#: written while the next arrives: batched, one batch's reads wait for its slowest file and the
#: link idles while a batch is written (backup-now fell to 0.75x the code before on 300 x 1 MB
#: + 200 MB, bench/peers.py).
BATCH_FILE_BYTES = 256 * 1024

#: The groups of one batch download, with their entries.
SmallBatch = list[tuple[MediaGroup, list[ManifestEntry]]]

#: The groups to copy: a whole plan, or a stream of them as the scan plans each folder
#: (:class:`~rollkeeper.importer.folder_stream.FolderStream`).
PlannedGroups = Iterable[PlannedGroup] | AsyncIterable[PlannedGroup]


async def each_group(groups: PlannedGroups) -> AsyncGenerator[PlannedGroup, None]:
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


def batch_full(batch: SmallBatch, entries: list[ManifestEntry]) -> bool:
    """Whether ``batch`` (not empty) has no room for a group of ``entries``."""
    if not batch:
        return False
    files = sum(len(batched) for _, batched in batch) + len(entries)
    size = sum(entry.size for _, batched in batch for entry in batched)
    return files > SMALL_BATCH_FILES or size + sum(e.size for e in entries) > SMALL_BATCH_BYTES


async def wait_below(in_flight: set[asyncio.Future[Any]], limit: int) -> bool:
    """Wait until fewer than ``limit`` downloads are in flight (``in_flight`` loses the ones
    done); False when one of them failed."""
    while len(in_flight) >= limit:
        done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        in_flight.difference_update(done)
        if any(task.cancelled() or task.exception() is not None for task in done):
            return False
    return True


def forget_when_done(downloads: set[asyncio.Future[Any]]) -> Callable[[asyncio.Future[Any]], None]:
    """A done-callback: forget a finished download and mark its error seen (the placer still
    raises it when it reaches that download; one it never reaches, after an earlier failure,
    is not an unretrieved error)."""

    def forget(task: asyncio.Future[Any]) -> None:
        downloads.discard(task)
        if not task.cancelled():
            task.exception()

    return forget
