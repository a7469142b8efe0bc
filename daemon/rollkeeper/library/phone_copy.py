"""Copy the first N bytes of one phone file into a local file, resuming where an earlier copy
stopped; and read the first bytes of a phone file.

The library's files are not archive content (no hash, no placement), so they do not go through
:mod:`rollkeeper.importer.transfer`; they are copied the same way all the same: in chunks of at
most :data:`~rollkeeper.ports.MAXIMUM_READ_BYTES`, the local file always an exact prefix of what
the phone served, resumed by seek after an unplug, fsync'ed at the end. Unlike a photo, a
``-wal`` may grow while it is copied: the copy takes exactly the size its stat gave (frames
appended later belong to the next snapshot), so "more bytes than the stat" is not an error
here; fewer is (:class:`ShortCopyError`), because the file was cut while we read it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from rollkeeper.ports import MAXIMUM_READ_BYTES, PhoneFiles


class ShortCopyError(Exception):
    """The phone file ended before the size its stat gave: it changed during the copy."""


def _existing_bytes(target: Path) -> int:
    try:
        return target.stat().st_size
    except FileNotFoundError:
        return 0


def _open_for_append(target: Path, keep_bytes: int) -> int:
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.ftruncate(descriptor, keep_bytes)
    os.lseek(descriptor, keep_bytes, os.SEEK_SET)
    return descriptor


def _write_all(descriptor: int, chunk: bytes | bytearray) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(descriptor, view) :]


async def copy_prefix(
    files: PhoneFiles,
    phone_path: str,
    size: int,
    target: Path,
    on_bytes: Callable[[int], None] | None = None,
) -> int:
    """Bring ``target`` to the first ``size`` bytes of ``phone_path``; returns the bytes read
    from the phone this time (0 when ``target`` was already complete).

    An existing ``target`` shorter than ``size`` is taken as a prefix of the same file (its
    name is derived from the phone file's stat by the caller, so another stat means another
    target) and only the rest is asked for. Phone errors propagate with ``target`` kept.
    """
    existing = await asyncio.to_thread(_existing_bytes, target)
    if existing > size:
        existing = 0
    descriptor = await asyncio.to_thread(_open_for_append, target, existing)
    if existing == size:
        os.close(descriptor)  # complete already (or empty): nothing to ask the phone
        return 0
    received = existing
    handle: int | None = None
    try:
        handle = await files.open(phone_path)
        if existing:
            await files.seek(handle, existing)
        while received < size:
            chunk = await files.read(handle, min(MAXIMUM_READ_BYTES, size - received))
            if not chunk:
                raise ShortCopyError(
                    f"{phone_path} ended at {received} bytes, its stat said {size}"
                )
            chunk = chunk[: size - received]
            await asyncio.to_thread(_write_all, descriptor, chunk)
            received += len(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
        await asyncio.to_thread(os.fsync, descriptor)
    finally:
        os.close(descriptor)
        if handle is not None:
            await files.close(handle)
    return received - existing


async def read_head(files: PhoneFiles, phone_path: str, size: int) -> bytes:
    """The first ``size`` bytes (at most) of a phone file, in one READ."""
    handle = await files.open(phone_path)
    try:
        return bytes(await files.read(handle, min(size, MAXIMUM_READ_BYTES)))
    finally:
        await files.close(handle)
