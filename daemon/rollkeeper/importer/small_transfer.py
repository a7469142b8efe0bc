"""Copy one small phone file (one READ) into its ``.partial`` file with one worker-thread call.

For a file of at most :data:`SMALL_FILE_BYTES`, the general path (:mod:`.transfer`) costs
several hops to a worker thread per file (set the partial up, write each chunk, finish) and the
placer reads the file back from disk for its capture date. Here the whole file is read from the
phone first (OPEN, READ, CLOSE: it is at most one chunk, which the general path holds in memory
too), and then ONE worker-thread call creates the partial, writes and hashes every byte, checks
the size on disk, starts its writeback and, for the group's primary, reads the capture date from
the bytes in memory.

What stays as in :mod:`.transfer`: every byte written is hashed, the partial is only ever an
exact prefix of the phone file (nothing is written before every byte arrived; an earlier
attempt's partial is replaced whole), the phone serving more or fewer bytes than its stat said
raises :class:`~rollkeeper.importer.transfer.SizeMismatchError` with the partial deleted, and
the fsync is the caller's (:mod:`.group_durability`, before the partial is placed).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rollkeeper.archive.boundary import make_archive_folders
from rollkeeper.domain.files import MediaKind
from rollkeeper.domain.layout import CaptureDate
from rollkeeper.host.durability import start_writeback
from rollkeeper.importer.hashing import new_hasher
from rollkeeper.importer.metadata import read_capture_date_from_bytes
from rollkeeper.importer.transfer import CHUNK_BYTES, SizeMismatchError, TransferOutcome
from rollkeeper.ports import FileNotOnPhoneError, PhoneFiles, PhoneReadError, WholeFileReads

#: A file this small is one READ (under the 4 MiB chunk): it is copied by :func:`download_small`,
#: and groups of such files download several at once (:mod:`.pipeline`).
SMALL_FILE_BYTES = 1024 * 1024

__all__ = [
    "SMALL_FILE_BYTES",
    "SmallFile",
    "SmallTransferOutcome",
    "download_small",
    "download_small_many",
]


@dataclass(frozen=True, slots=True)
class SmallTransferOutcome:
    """A complete partial (not yet fsync'ed), its hash, and the capture date if asked for."""

    transfer: TransferOutcome
    #: Whether the capture date was read (``capture`` None then means "the file has none").
    capture_read: bool
    capture: CaptureDate | None


async def download_small(
    files: PhoneFiles,
    phone_path: str,
    expected_size: int,
    partial: Path,
    on_bytes: Callable[[int], None] | None = None,
    capture_kind: MediaKind | None = None,
) -> SmallTransferOutcome:
    """Bring ``partial`` to the full content of the small file ``phone_path`` and return its
    hash (and its capture date when ``capture_kind`` is given); the caller fsyncs it.

    Raises :class:`SizeMismatchError` (after deleting any partial of the file) when the phone
    serves more or fewer bytes than ``expected_size``. A phone error propagates with the disk
    untouched (any earlier partial stays the valid prefix it was).
    """
    if expected_size > SMALL_FILE_BYTES:
        raise ValueError(f"{phone_path}: {expected_size} bytes is not a small file")
    chunks = await _read_whole(files, phone_path, expected_size)
    received = sum(len(chunk) for chunk in chunks)
    if received != expected_size:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise SizeMismatchError(phone_path, expected_size, received)
    if on_bytes is not None:
        on_bytes(received)
    content_hash, capture = await asyncio.to_thread(
        _write_partial, partial, chunks, expected_size, capture_kind
    )
    return SmallTransferOutcome(
        transfer=TransferOutcome(
            content_hash=content_hash, size=received, bytes_from_phone=received, resumed_from=0
        ),
        capture_read=capture_kind is not None,
        capture=capture,
    )


async def _read_whole(
    files: PhoneFiles, phone_path: str, expected_size: int
) -> list[bytes | bytearray]:
    """Every chunk the phone serves for ``phone_path``, stopping once it served more than
    ``expected_size`` (the caller then refuses the file)."""
    chunks: list[bytes | bytearray] = []
    received = 0
    handle = await files.open(phone_path)
    try:
        while True:
            # One byte more than the stat promises, as in transfer._copy_rest: a reply that
            # completes the stat's size short of what was asked is the end of the file (no last
            # READ that only says "end of file"); a longer file shows as more bytes.
            asked = min(CHUNK_BYTES, expected_size - received + 1)
            chunk = await files.read(handle, asked)
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
            if received > expected_size or (len(chunk) < asked and received == expected_size):
                break
    finally:
        with contextlib.suppress(Exception):
            await files.close(handle)
    return chunks


@dataclass(frozen=True, slots=True)
class SmallFile:
    """One small file for :func:`download_small_many`: where it is, its stat size, its partial,
    and the kind to read a capture date for (None: not asked)."""

    phone_path: str
    expected_size: int
    partial: Path
    capture_kind: MediaKind | None = None


#: One file's outcome in :func:`download_small_many`: its partial, or why it has none.
SmallResult = (
    SmallTransferOutcome | SizeMismatchError | FileNotOnPhoneError | PhoneReadError | OSError
)


async def download_small_many(
    files: WholeFileReads, wanted: Sequence[SmallFile]
) -> list[SmallResult]:
    """:func:`download_small` for several files at once: the phone reads them together
    (:meth:`~rollkeeper.ports.WholeFileReads.read_whole_many`: one write of OPENs, one of
    READs, one of CLOSEs for every few files), then ONE worker-thread call writes every
    partial. Each file's outcome is its own, as for :func:`download_small` (a refusal leaves
    its disk untouched, a size mismatch deletes its partial); the first write error (a full
    disk) is the outcome of that file and of every one after it, which are not written. A
    phone that stops answering or goes away raises, nothing written.
    """
    for small in wanted:
        if small.expected_size > SMALL_FILE_BYTES:
            raise ValueError(f"{small.phone_path}: {small.expected_size} bytes is not small")
    reads = await files.read_whole_many(
        [(small.phone_path, small.expected_size) for small in wanted]
    )
    return await asyncio.to_thread(_write_partials, wanted, reads)


def _write_partials(
    wanted: Sequence[SmallFile],
    reads: Sequence[list[bytes | bytearray] | FileNotOnPhoneError | PhoneReadError],
) -> list[SmallResult]:
    """Each file's partial written from its chunks (or its refusal); runs in a worker thread."""
    results: list[SmallResult] = []
    for small, read in zip(wanted, reads, strict=True):
        if not isinstance(read, list):
            results.append(read)
            continue
        received = sum(len(chunk) for chunk in read)
        if received != small.expected_size:
            small.partial.unlink(missing_ok=True)
            results.append(SizeMismatchError(small.phone_path, small.expected_size, received))
            continue
        try:
            content_hash, capture = _write_partial(
                small.partial, read, small.expected_size, small.capture_kind
            )
        except OSError as error:
            results.extend([error] * (len(wanted) - len(results)))
            return results
        transfer = TransferOutcome(
            content_hash=content_hash, size=received, bytes_from_phone=received, resumed_from=0
        )
        results.append(
            SmallTransferOutcome(
                transfer=transfer, capture_read=small.capture_kind is not None, capture=capture
            )
        )
    return results


def _write_partial(
    partial: Path,
    chunks: list[bytes | bytearray],
    expected_size: int,
    capture_kind: MediaKind | None,
) -> tuple[str, CaptureDate | None]:
    """Write the file's bytes as ``partial`` (replacing an earlier attempt's prefix), hash what
    was written, check the size on disk, start its writeback; runs in a worker thread."""
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except FileNotFoundError:
        # The first partial of this phone: its folder (inside an archive still there) is made.
        make_archive_folders(partial.parent, private=True)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    hasher = new_hasher()
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                # A write may take only part (a disk filling up): write the rest, whose failure
                # then raises (ENOSPC). Only what is on disk is hashed.
                written = os.write(descriptor, view)
                if not written:
                    raise OSError(errno.ENOSPC, "the partial file took no more bytes")
                hasher.update(view[:written])
                view = view[written:]
        on_disk = os.fstat(descriptor).st_size
        if on_disk != expected_size:
            raise OSError(errno.EIO, f"the partial file holds {on_disk} bytes, not {expected_size}")
        start_writeback(descriptor, 0, on_disk)  # the caller's fsync then waits less
    finally:
        os.close(descriptor)
    capture = None
    if capture_kind is not None:
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        capture = read_capture_date_from_bytes(data, capture_kind)
    return hasher.hexdigest(), capture
