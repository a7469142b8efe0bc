"""Copy one phone file into a ``.partial`` file, hashing as bytes arrive, resumable after an unplug.

The partial lives inside the archive (``<archive>/.rollkeeper/partial/``), so the final rename is
on one filesystem and atomic. Reading the next chunk from the phone overlaps with writing and
hashing the previous one in a worker thread. After an unplug the partial keeps the bytes written
so far (always a prefix of the phone file); the next attempt hashes that prefix from disk and
asks the phone only for the rest, by seek.

While the bytes arrive, every :data:`WRITEBACK_BYTES` written are handed to the disk at once
(:func:`~rollkeeper.host.durability.start_writeback`, Linux ``sync_file_range``): the disk
writes the file back during the download instead of all at the final fsync, which then has
little left to do. Each chunk goes from the reply to ``write`` and to the hash as the same
buffer (memoryviews, no copy on this side).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rollkeeper.archive.boundary import make_archive_folders
from rollkeeper.host.durability import fsync_descriptor, fsync_file, start_writeback
from rollkeeper.importer.hashing import Hasher, hash_file, new_hasher
from rollkeeper.ports import MAXIMUM_READ_BYTES, PhoneFiles

#: Bytes asked of the phone per READ (the AFC maximum: fewer round trips, bounded memory).
CHUNK_BYTES = MAXIMUM_READ_BYTES

#: Bytes written between two writeback starts: large enough that the disk gets long runs,
#: small enough that a fast link never leaves much dirty for the final fsync.
WRITEBACK_BYTES = 8 * 1024 * 1024

__all__ = [
    "CHUNK_BYTES",
    "SizeMismatchError",
    "TransferOutcome",
    "download_to_partial",
    "fsync_file",
]


class SizeMismatchError(Exception):
    """The phone served a different number of bytes than its stat said: nothing is kept."""

    def __init__(self, phone_path: str, expected: int, received: int) -> None:
        relation = "more" if received > expected else "fewer"
        super().__init__(
            f"{phone_path}: the phone served {relation} bytes ({received}) than it reported "
            f"({expected})"
        )
        self.expected = expected
        self.received = received


@dataclass(frozen=True, slots=True)
class TransferOutcome:
    """A complete, fsync'ed partial file and what it took."""

    content_hash: str
    size: int
    bytes_from_phone: int
    resumed_from: int


class _PartialSink:
    """Appends to the partial file and feeds the hash; runs in a worker thread."""

    def __init__(self, stream: BinaryIO, hasher: Hasher, start: int = 0) -> None:
        self._stream = stream
        self._hasher = hasher
        #: Bytes of the file on disk (the prefix kept plus what was written since).
        self._written = start
        #: Where the next writeback starts: everything before it was handed to the disk.
        self._writeback_from = start

    def __call__(self, chunk: bytes | bytearray) -> None:
        # An unbuffered write may take only part of the chunk (a disk filling up takes what
        # fits and says so by the count, not by an error): write the rest, whose failure then
        # raises (ENOSPC). Hash only what is on disk, so the partial stays an exact prefix.
        view = memoryview(chunk)
        while view:
            written = self._stream.write(view)
            if not written:
                raise OSError(errno.ENOSPC, "the partial file took no more bytes")
            self._hasher.update(view[:written])
            view = view[written:]
            self._written += written
        if self._written - self._writeback_from >= WRITEBACK_BYTES:
            start_writeback(
                self._stream.fileno(), self._writeback_from, self._written - self._writeback_from
            )
            self._writeback_from = self._written


def _open_partial(partial: Path, keep_bytes: int) -> BinaryIO:
    """Open the partial for appending after its first ``keep_bytes`` bytes (0600)."""
    descriptor = os.open(partial, os.O_RDWR | os.O_CREAT, 0o600)
    stream = os.fdopen(descriptor, "r+b", buffering=0)
    stream.truncate(keep_bytes)
    stream.seek(keep_bytes)
    return stream


def _finish(stream: BinaryIO, expected_size: int, durable: bool = True) -> None:
    """fsync the partial after checking that it holds every byte (never trust a write count)."""
    stream.flush()
    on_disk = os.fstat(stream.fileno()).st_size
    if on_disk != expected_size:
        raise OSError(errno.EIO, f"the partial file holds {on_disk} bytes, not {expected_size}")
    if durable:
        fsync_descriptor(stream.fileno())
    else:
        # The caller fsyncs later: hand the tail to the disk now, so that fsync waits less.
        start_writeback(stream.fileno(), 0, on_disk)


async def download_to_partial(
    files: PhoneFiles,
    phone_path: str,
    expected_size: int,
    partial: Path,
    on_bytes: Callable[[int], None] | None = None,
    durable: bool = True,
) -> TransferOutcome:
    """Bring ``partial`` to the full content of ``phone_path``, fsync'ed, and return its hash.

    ``durable=False`` leaves the fsync to the caller (:func:`fsync_file` before the partial is
    placed), so that the disk's writeback of this file overlaps with the next download.

    Raises :class:`SizeMismatchError` (after deleting the partial, whose content cannot be
    trusted) when the phone serves more or fewer bytes than ``expected_size``. Any phone error
    propagates with the partial kept as a valid prefix for the next attempt.
    """
    hasher = new_hasher()
    # The archive may be a slow (USB) disk: setting the partial up runs off the event loop,
    # in one worker-thread call per file.
    stream, existing = await asyncio.to_thread(_start_partial, partial, expected_size, hasher)
    handle: int | None = None
    try:
        handle = await files.open(phone_path)
        if existing:
            await files.seek(handle, existing)
        sink = _PartialSink(stream, hasher, existing)
        received = await _copy_rest(files, handle, sink, existing, expected_size, on_bytes)
        if received != expected_size:
            stream.close()
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            raise SizeMismatchError(phone_path, expected_size, received)
        await asyncio.to_thread(_finish, stream, expected_size, durable)
    finally:
        if not stream.closed:
            stream.close()
        if handle is not None:
            with contextlib.suppress(Exception):
                await files.close(handle)
    return TransferOutcome(
        content_hash=hasher.hexdigest(),
        size=received,
        bytes_from_phone=received - existing,
        resumed_from=existing,
    )


def _start_partial(partial: Path, expected_size: int, hasher: Hasher) -> tuple[BinaryIO, int]:
    """The partial opened for appending after the prefix an earlier attempt left (already fed
    to ``hasher``), and that prefix's length; a partial longer than the file starts over."""
    make_archive_folders(partial.parent, private=True)
    existing = partial.stat().st_size if partial.exists() else 0
    if existing > expected_size:
        existing = 0
    if existing:
        hash_file(partial, hasher, existing)
    return _open_partial(partial, existing), existing


async def _copy_rest(
    files: PhoneFiles,
    handle: int,
    sink: _PartialSink,
    received: int,
    expected_size: int,
    on_bytes: Callable[[int], None] | None,
) -> int:
    """Read the file from the phone after its first ``received`` bytes into ``sink``; returns
    the bytes received in all (more than ``expected_size`` when the phone served more).

    Reading the next chunk overlaps with writing and hashing the previous one in a worker
    thread; whatever happens, the write in flight lands before this returns or raises, so the
    partial stays an exact prefix of the file.
    """
    pending_write: asyncio.Future[None] | None = None
    try:
        while True:
            # One byte more than the stat promises: a reply one byte short of that, completing
            # the stat's size, is the end of the file, so the usual last READ that only says
            # "end of file" is saved (one round trip per file); a file longer than its stat
            # still shows as more bytes than expected, and any other short reply reads on.
            asked = min(CHUNK_BYTES, expected_size - received + 1)
            chunk = await files.read(handle, asked)
            if pending_write is not None:
                await pending_write
                pending_write = None
            if not chunk:
                break
            received += len(chunk)
            if received > expected_size:
                break
            pending_write = asyncio.ensure_future(asyncio.to_thread(sink, chunk))
            if on_bytes is not None:
                on_bytes(len(chunk))
            if len(chunk) < asked and received == expected_size:
                break
        if pending_write is not None:
            await pending_write
            pending_write = None
    finally:
        if pending_write is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pending_write)
    return received
