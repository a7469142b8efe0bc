"""Download the planned groups from the phone while the groups already downloaded are placed.

Making a group durable and placing it (fsync of each file, the capture date, collision checks,
link, folder fsyncs, one transaction per file) does not need the phone: done one group at a time
after the download, it leaves the link idle and waits for the disk. Here a downloader reads the
next groups (at most ``download_ahead`` ahead) while a placer finishes the earlier ones. Only
one file is read from the phone at any moment, so an unplug costs at most the chunk in flight;
placement stays sequential and in plan order, so collisions and dedup decide exactly as they
would one group at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import structlog

from rollkeeper.archive.locations import WORKING_FOLDER_NAME
from rollkeeper.device.errors import PhoneNotRespondingError
from rollkeeper.domain.grouping import MediaGroup
from rollkeeper.host.durability import fsync_file
from rollkeeper.importer.group_placement import (
    DownloadedMember,
    GroupPlacer,
    archive_write_error,
)
from rollkeeper.importer.hashing import new_hasher
from rollkeeper.importer.ledger import RunLedger
from rollkeeper.importer.plan import PlannedGroup
from rollkeeper.importer.transfer import SizeMismatchError, download_to_partial
from rollkeeper.ports import FileNotOnPhoneError, PhoneFiles, PhoneReadError
from rollkeeper.store.library import IO_ERROR_REASON
from rollkeeper.store.records import ManifestEntry

log = structlog.get_logger("rollkeeper.backup")

#: Groups downloaded ahead of the one being placed, at most: a few are enough to keep the link
#: busy while the disk catches up; partials wait on disk, not in RAM.
DOWNLOAD_AHEAD_GROUPS = 4


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


def partial_path(archive_root: Path, udid: str, entry: ManifestEntry) -> Path:
    """The work file of one phone file identity; its name is derived, never device-supplied."""
    identity = f"{udid}\0{entry.folder}\0{entry.name}\0{entry.size}\0{entry.birth_time_ns}"
    key = _text_hash(identity)[:40]
    device_key = _text_hash(udid)[:16]
    return archive_root / WORKING_FOLDER_NAME / "partial" / device_key / f"{key}.partial"


class GroupPipeline:
    """Copies the groups of one run: downloads ahead, places in order."""

    def __init__(
        self,
        files: PhoneFiles,
        archive_root: Path,
        udid: str,
        ledger: RunLedger,
        placer: GroupPlacer,
        stop_requested: Callable[[], bool],
        download_ahead: int = DOWNLOAD_AHEAD_GROUPS,
    ) -> None:
        self._files = files
        self._archive_root = archive_root
        self._udid = udid
        self._ledger = ledger
        self._placer = placer
        self._stop_requested = stop_requested
        self._download_ahead = download_ahead

    async def copy(self, groups: list[PlannedGroup]) -> None:
        """Download the groups one file at a time while the groups already downloaded are made
        durable and placed, in plan order.

        A stop request ends the run (:class:`StopRequestedError`) after the file being read and
        the groups already downloaded.
        """
        ready_groups: asyncio.Queue[tuple[MediaGroup, list[DownloadedMember]] | None] = (
            asyncio.Queue(maxsize=max(1, self._download_ahead))
        )
        stopped_early = False

        async def download_all() -> None:
            nonlocal stopped_early
            cancelled = False
            try:
                for group, entries in groups:
                    if self._stop_requested():
                        stopped_early = True
                        break
                    ready = await self._download_group(entries)
                    if ready:
                        await ready_groups.put((group, ready))
            except asyncio.CancelledError:
                cancelled = True
                raise
            finally:
                if not cancelled:
                    await ready_groups.put(None)  # the end (the placer then awaits our error)

        downloader = asyncio.ensure_future(download_all())
        try:
            while (item := await ready_groups.get()) is not None:
                group, ready = item
                await self._make_durable(ready)
                await self._placer.place(group, ready)
            await downloader
        finally:
            if not downloader.done():
                downloader.cancel()
            await asyncio.gather(downloader, return_exceptions=True)
        if stopped_early:
            raise StopRequestedError("rollkeeper is stopping")

    async def _make_durable(self, ready: list[DownloadedMember]) -> None:
        """fsync each downloaded partial (the placement that follows vouches for its bytes)."""
        for member in ready:
            try:
                await asyncio.to_thread(fsync_file, member.partial)
            except OSError as error:
                raise archive_write_error(error, member.partial) from error

    async def _download_group(self, entries: list[ManifestEntry]) -> list[DownloadedMember]:
        """Copy every member of a group into its partial; the members that arrived whole."""
        ready: list[DownloadedMember] = []
        for entry in entries:
            member = DownloadedMember(entry, partial_path(self._archive_root, self._udid, entry))
            if await self._download(member):
                ready.append(member)
        return ready

    async def _download(self, member: DownloadedMember) -> bool:
        """Copy one member into its partial; False (recorded as failed) for file-level errors."""
        entry = member.entry
        ledger = self._ledger
        ledger.publish_progress(entry.phone_path)
        try:
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
