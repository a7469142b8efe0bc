"""pymobiledevice3's mobilebackup2 client, with every host write made replace-by-rename.

A device backup is written into a working copy whose unchanged files are hard links to the
previous snapshot's (:mod:`.snapshots`). pymobiledevice3's ``DeviceLink`` writes a received
file with ``open(path, "wb")`` and copies items with ``shutil.copy`` over the destination:
both truncate and rewrite the destination's *inode*, which for a hard link is also the
previous snapshot's file, silently changing a backup that was complete. :class:`SafeDeviceLink`
writes each received or copied file to a new temporary file beside it and renames it into
place, so a linked inode is never opened for writing; moves and removals only change
directory entries and are safe as they are.

:class:`SnapshotBackupService` is ``Mobilebackup2Service`` using that link; it also reports
the free space and purge requests the phone asks about, for the run's record.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import struct
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, cast

from pymobiledevice3.exceptions import ConnectionTerminatedError
from pymobiledevice3.safe_paths import resolve_device_path
from pymobiledevice3.services.device_link import (
    CODE_ERROR_REMOTE,
    CODE_FILE_DATA,
    CODE_FORMAT,
    CODE_SUCCESS,
    SIZE_FORMAT,
    DeviceLink,
    DLMessage,
)
from pymobiledevice3.services.mobilebackup2 import Mobilebackup2Service

#: Temporary files are named ``.<name>.rk-partial`` beside their final name; a stopped backup
#: leaves at most these, which the next run removes.
PARTIAL_SUFFIX = ".rk-partial"
_SIZE = struct.calcsize(SIZE_FORMAT)
_CODE = struct.calcsize(CODE_FORMAT)


def partial_path(final: Path) -> Path:
    """The temporary file a received file is written to before its rename."""
    return final.with_name(f".{final.name}{PARTIAL_SUFFIX}")


class BackgroundFlusher:
    """fsyncs received files on one worker thread while the transfer goes on.

    The snapshot is called complete only after everything it holds is on disk; flushing each
    file as soon as it is renamed overlaps the disk's writeback with the phone's sending, so
    the final flush finds little left to write.
    """

    def __init__(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fsync")
        self._pending: list[concurrent.futures.Future[None]] = []

    def submit(self, path: Path) -> None:
        """Start flushing ``path`` (a missing file is not an error: the phone may remove it)."""
        self._pending.append(self._executor.submit(_fsync_quietly, path))

    def wait(self) -> None:
        """Block until every submitted flush is done; the worker then stops."""
        for future in self._pending:
            future.result()
        self._pending.clear()
        self._executor.shutdown(wait=True)


def _fsync_quietly(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class LinkEvents:
    """What the phone asked of the host during one backup (kept for the run's record)."""

    def __init__(self) -> None:
        self.flusher = BackgroundFlusher()
        self.files_received = 0
        self.bytes_received = 0
        self.free_space_reported: int | None = None
        self.purge_requested_bytes: int | None = None
        #: Paths (relative to the backup folder) written by this run: flushed before the
        #: snapshot is called complete.
        self.written: list[Path] = []


class SafeDeviceLink(DeviceLink):
    """A ``DeviceLink`` that never writes into an existing inode (see the module docstring)."""

    def __init__(self, *args: Any, events: LinkEvents | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events = events if events is not None else LinkEvents()

    async def upload_files(self, _message: DLMessage) -> None:
        """Receive files from the phone, each into a new file renamed over its final name."""
        while True:
            device_name = await self._prefixed_recv()
            if not device_name:
                break
            file_name = await self._prefixed_recv()
            size, code = await self._frame_header()
            keep = self.preserve_file(file_name, device_name) if self.preserve_file else True
            final = resolve_device_path(self.root_path, file_name)
            if keep:
                size, code = await self._receive_into(final, size, code)
            else:
                size, code = await self._consume_file_transfer(size, code)
            if code == CODE_ERROR_REMOTE:
                error_message = (await self._recvall(size)).decode(errors="replace")
                warnings.warn(
                    f"Failed to fully upload: {file_name} ({device_name}): {error_message}",
                    stacklevel=2,
                )
                continue
            if code != CODE_SUCCESS:
                raise ConnectionTerminatedError(f"unexpected DeviceLink code {code:#x}")
            if self.post_file_receive is not None:
                self.post_file_receive(file_name, device_name)
        await self.status_response(0)

    async def _frame_header(self) -> tuple[int, int]:
        (size,) = struct.unpack(SIZE_FORMAT, await self._recvall(_SIZE))
        (code,) = struct.unpack(CODE_FORMAT, await self._recvall(_CODE))
        return size - _CODE, code

    async def _receive_into(self, final: Path, size: int, code: int) -> tuple[int, int]:
        """Write the frames of one file to its partial, then rename it over ``final``."""
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_path(final)
        # A new inode every time, even over a stale partial of a stopped run.
        partial.unlink(missing_ok=True)
        with partial.open("xb") as destination:
            size, code = await self._consume_counted(size, code, destination)
        if code == CODE_SUCCESS:
            os.replace(partial, final)
            self.events.files_received += 1
            self.events.written.append(final)
            self.events.flusher.submit(final)
        else:
            partial.unlink(missing_ok=True)
        return size, code

    async def _consume_counted(
        self, size: int, code: int, destination: BinaryIO
    ) -> tuple[int, int]:
        while size and code == CODE_FILE_DATA:
            chunk = await self._recvall(size)
            destination.write(chunk)
            self.events.bytes_received += len(chunk)
            size, code = await self._frame_header()
        return size, code

    async def copy_item(self, message: DLMessage) -> None:
        """Copy a file (or folder) the way ``cp`` to a new name would, never into an inode."""
        source = resolve_device_path(self.root_path, cast(str, message[1]))
        if not source.exists():
            await self.status_response(0)
            return
        destination = resolve_device_path(self.root_path, cast(str, message[2]))
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            temporary = partial_path(destination)
            shutil.rmtree(temporary, ignore_errors=True)
            shutil.copytree(source, temporary)
            if destination.exists():
                shutil.rmtree(destination)
            os.replace(temporary, destination)
        else:
            temporary = partial_path(destination)
            shutil.copyfile(source, temporary)
            os.replace(temporary, destination)
            self.events.written.append(destination)
        await self.status_response(0)

    async def get_free_disk_space(self, message: DLMessage) -> None:
        """Answer as pymobiledevice3 does, and remember the figure."""
        await super().get_free_disk_space(message)
        self.events.free_space_reported = self._reported_free_space

    async def purge_disk_space(self, message: DLMessage) -> None:
        """Nothing is purged (old snapshots go only after a new one completes); say so."""
        amount = message[1] if len(message) > 1 else None
        if isinstance(amount, int) and not isinstance(amount, bool):
            self.events.purge_requested_bytes = amount
        await super().purge_disk_space(message)


class SnapshotBackupService(Mobilebackup2Service):
    """``Mobilebackup2Service`` whose DeviceLink is a :class:`SafeDeviceLink`."""

    def __init__(self, lockdown: Any, events: LinkEvents) -> None:
        super().__init__(lockdown)
        self.link_events = events

    @asynccontextmanager
    async def device_link(
        self,
        backup_directory: Path,
        filter_callback: Callable[..., bool] | None = None,
        password: str = "",
    ) -> AsyncIterator[DeviceLink]:
        """The version exchanges of pymobiledevice3's own, over a :class:`SafeDeviceLink`."""
        await self.connect()
        service = self._service
        if service is None:
            raise ConnectionTerminatedError("mobilebackup2 did not connect")
        link = SafeDeviceLink(
            service,
            backup_directory,
            preserve_file=lambda file_name, device_name: self.should_preserve_backup_file(
                file_name, device_name, filter_callback
            ),
            events=self.link_events,
        )
        await link.version_exchange()
        await self.version_exchange(link)
        try:
            yield link
        finally:
            with suppress(ConnectionTerminatedError, OSError):
                await link.disconnect()
