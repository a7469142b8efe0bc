"""A phone's Photos library copied into the state folder: only when it changed, never torn.

``/PhotoData/Photos.sqlite`` is in WAL mode, so its newest rows may be only in ``-wal``: the
database, ``-wal`` and ``-shm`` are copied together and opened locally. Real libraries are
0.1-3 GB, so a copy is made only when the phone's stat of the database or the WAL (size,
mtime) differs from that of the last good snapshot: a plug-in with nothing new costs two
GET_FILE_INFO requests and no READ.

A copy taken while the phone writes may be inconsistent. It is **torn** when the database's stat
changed during the copy, when the WAL header on the phone after the copy differs from the one
copied (the log was restarted: SQLite would silently ignore every frame whose salts do not
match), when the database or WAL ended early, or when sealing fails (``quick_check``, fewer WAL
frames accepted than committed: :mod:`.database_file`). A torn copy is retried (a few times),
then the **last good** snapshot is used and the run says so. A copy cut by an unplug resumes:
each file's partial is named by the phone's stat, so the next plug-in asks only for the rest
when the phone's file is the same.

Layout of one phone's folder (0700, files 0600): ``Photos.sqlite`` (the last good snapshot,
sealed: one file, rollback-journal mode), ``snapshot.json`` (the phone's stat it was taken at,
when, its WAL header), ``incoming/`` (partials of a copy under way), ``work/`` (sealing).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from rollkeeper.host.durability import fsync_folder
from rollkeeper.host.permissions import ensure_private_dir, write_private_file
from rollkeeper.library.database_file import SnapshotDamagedError, seal
from rollkeeper.library.phone_copy import ShortCopyError, copy_prefix, read_head
from rollkeeper.library.wal import HEADER_BYTES, summarize
from rollkeeper.ports import Clock, FileNotOnPhoneError, PhoneFiles, PhoneReadError, system_clock

log = structlog.get_logger("rollkeeper.library")

#: Where AFC serves the Photos library (its ``-wal`` and ``-shm`` beside it).
LIBRARY_PATH = "/PhotoData/Photos.sqlite"
WAL_SUFFIX = "-wal"
SHM_SUFFIX = "-shm"
SNAPSHOT_NAME = "Photos.sqlite"
RECORD_NAME = "snapshot.json"
#: Copies tried before the last good snapshot is used instead.
COPY_ATTEMPTS = 3

#: Outcomes of :meth:`LibrarySnapshots.refresh`.
UNCHANGED = "unchanged"
COPIED = "copied"
FALLBACK = "fallback"
UNAVAILABLE = "unavailable"


class TornCopyError(Exception):
    """The phone changed the library while it was copied: the copy is not one moment of it."""


class SnapshotRefusedError(Exception):
    """The library is not copied at all this time (too large): the last good one is used."""


@dataclass(frozen=True, slots=True)
class FileStat:
    """The parts of a phone stat that say a file changed."""

    size: int
    modified_ns: int


@dataclass(frozen=True, slots=True)
class LibraryStat:
    """The phone's stat of the library's three files (None: the file is not there)."""

    database: FileStat
    wal: FileStat | None
    shm: FileStat | None

    def signature(self) -> dict[str, list[int] | None]:
        """What decides whether a new copy is needed: the database's and the WAL's stat (the
        ``-shm`` changes with every reader and holds nothing a copy needs)."""
        return {
            "database": [self.database.size, self.database.modified_ns],
            "wal": None if self.wal is None else [self.wal.size, self.wal.modified_ns],
        }


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    """What a refresh did and which snapshot to read (None: there is none)."""

    outcome: str
    database: Path | None
    detail: str = ""
    bytes_read: int = 0
    attempts: int = 0
    #: When the snapshot in use was copied (ISO 8601), if there is one.
    taken_at: str | None = None


async def _file_stat(files: PhoneFiles, path: str) -> FileStat | None:
    try:
        raw = await files.stat(path)
    except FileNotOnPhoneError:
        return None
    size = raw.integer("st_size")
    modified = raw.integer("st_mtime")
    if raw.kind not in (None, "S_IFREG") or size is None:
        raise PhoneReadError(f"{path} is not a regular file with a size", None)
    return FileStat(size, modified if modified is not None else 0)


async def phone_library_stat(files: PhoneFiles) -> LibraryStat | None:
    """The phone's stat of the library files; None when the phone has no library there."""
    database = await _file_stat(files, LIBRARY_PATH)
    if database is None:
        return None
    return LibraryStat(
        database,
        await _file_stat(files, LIBRARY_PATH + WAL_SUFFIX),
        await _file_stat(files, LIBRARY_PATH + SHM_SUFFIX),
    )


class LibrarySnapshots:
    """The snapshots of one phone's library in one private folder."""

    def __init__(
        self,
        folder: Path,
        max_bytes: int,
        clock: Clock = system_clock,
        attempts: int = COPY_ATTEMPTS,
    ) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._clock = clock
        self._attempts = max(1, attempts)

    @property
    def sealed(self) -> Path:
        """The last good snapshot (it may not exist yet)."""
        return self.folder / SNAPSHOT_NAME

    def record(self) -> dict[str, Any] | None:
        """What ``snapshot.json`` says of the last good snapshot, or None (missing, damaged,
        or its snapshot file is gone)."""
        try:
            document = json.loads((self.folder / RECORD_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(document, dict) or not self.sealed.is_file():
            return None
        return document

    def last_good(self, outcome: str, detail: str, attempts: int = 0) -> SnapshotResult:
        """The last good snapshot as the result (or none at all: ``unavailable``)."""
        record = self.record()
        if record is None:
            return SnapshotResult(UNAVAILABLE, None, detail, attempts=attempts)
        taken = record.get("copied_at")
        return SnapshotResult(
            outcome, self.sealed, detail, attempts=attempts, taken_at=str(taken) if taken else None
        )

    async def refresh(self, files: PhoneFiles) -> SnapshotResult:
        """Copy the library if it changed since the last good snapshot; see the module docstring.

        Phone errors that end the session (unplugged, not answering) propagate, partials kept.
        """
        await asyncio.to_thread(ensure_private_dir, self.folder)
        try:
            stat = await phone_library_stat(files)
        except PhoneReadError as error:
            return self.last_good(FALLBACK, f"{LIBRARY_PATH} cannot be read over AFC: {error}")
        if stat is None:
            return self.last_good(FALLBACK, f"the phone shows no {LIBRARY_PATH}")
        record = self.record()
        if record is not None and record.get("phone_stat") == stat.signature():
            return SnapshotResult(UNCHANGED, self.sealed, taken_at=str(record.get("copied_at")))
        return await self._copy_with_retries(files, stat)

    async def _copy_with_retries(self, files: PhoneFiles, first: LibraryStat) -> SnapshotResult:
        """Copy until one copy is whole, at most a few times; else the last good snapshot."""
        problems: list[str] = []
        for attempt in range(1, self._attempts + 1):
            try:
                read = await self._attempt(files, first if attempt == 1 else None)
            except (
                TornCopyError,
                ShortCopyError,
                SnapshotDamagedError,
                FileNotOnPhoneError,
            ) as error:
                problems.append(str(error) or type(error).__name__)
                log.warning("library_copy_torn", attempt=attempt, reason=problems[-1])
                await asyncio.to_thread(self._discard, self.folder / "incoming")
                continue
            except SnapshotRefusedError as error:
                return self.last_good(FALLBACK, str(error), attempt)
            except PhoneReadError as error:
                await asyncio.to_thread(self._discard, self.folder / "incoming")
                return self.last_good(FALLBACK, f"reading {LIBRARY_PATH} failed: {error}", attempt)
            except OSError as error:
                await asyncio.to_thread(self._discard, self.folder / "incoming")
                detail = f"cannot write the library snapshot: {error.strerror or error}"
                return self.last_good(FALLBACK, detail, attempt)
            taken = (self.record() or {}).get("copied_at")
            return SnapshotResult(
                COPIED, self.sealed, bytes_read=read, attempts=attempt, taken_at=str(taken)
            )
        return self.last_good(
            FALLBACK, f"no copy was usable ({'; '.join(problems)})", self._attempts
        )

    async def _attempt(self, files: PhoneFiles, known: LibraryStat | None) -> int:
        """One copy: the phone's stat (``known`` on the first attempt), the size limit, the
        three files, the check against the phone, the seal. Returns the bytes read."""
        stat = known if known is not None else await phone_library_stat(files)
        if stat is None:
            raise TornCopyError(f"{LIBRARY_PATH} disappeared")
        size = stat.database.size + (stat.wal.size if stat.wal else 0)
        if size > self.max_bytes:
            raise SnapshotRefusedError(
                f"the library is {size:,} bytes, more than the {self.max_bytes:,} allowed"
                " ([library] max_size_gb)"
            )
        parts = await asyncio.to_thread(self._prepare_incoming, stat)
        read = await self._copy_files(files, parts)
        committed = await self._check_against_phone(files, stat, parts[WAL_SUFFIX][1])
        await asyncio.to_thread(self._seal, parts, committed, stat)
        log.info(
            "library_copied",
            bytes_read=read,
            database_bytes=stat.database.size,
            wal_bytes=stat.wal.size if stat.wal else 0,
        )
        return read

    def _prepare_incoming(self, stat: LibraryStat) -> dict[str, tuple[FileStat | None, Path]]:
        """The partial of each file, named by its phone stat; partials of older stats removed."""
        incoming = ensure_private_dir(self.folder / "incoming")
        parts = {
            suffix: (file_stat, incoming / _partial_name(suffix, file_stat))
            for suffix, file_stat in (
                ("", stat.database),
                (WAL_SUFFIX, stat.wal),
                (SHM_SUFFIX, stat.shm),
            )
        }
        wanted = {path.name for _, path in parts.values()}
        for stale in incoming.iterdir():
            if stale.name not in wanted:
                stale.unlink(missing_ok=True)
        return parts

    @staticmethod
    async def _copy_files(files: PhoneFiles, parts: dict[str, tuple[FileStat | None, Path]]) -> int:
        read = 0
        for suffix, (file_stat, partial) in parts.items():
            if file_stat is None:
                continue
            try:
                read += await copy_prefix(files, LIBRARY_PATH + suffix, file_stat.size, partial)
            except (ShortCopyError, FileNotOnPhoneError):
                if suffix != SHM_SUFFIX:
                    raise
                # The -shm is rebuilt by SQLite from the -wal anyway: a -shm that changed
                # under the copy is left out, not a torn copy.
                await asyncio.to_thread(partial.unlink, missing_ok=True)
        return read

    @staticmethod
    async def _check_against_phone(files: PhoneFiles, stat: LibraryStat, wal_partial: Path) -> int:
        """Raise :class:`TornCopyError` when the phone's library is no longer the one copied;
        returns the WAL frames up to its last commit (what SQLite must accept)."""
        after = await phone_library_stat(files)
        if after is None or after.database != stat.database:
            raise TornCopyError("the library database changed while it was copied")
        if stat.wal is None:
            return 0
        copied_head = await asyncio.to_thread(_head, wal_partial)
        if len(copied_head) == HEADER_BYTES:
            phone_head = await read_head(files, LIBRARY_PATH + WAL_SUFFIX, HEADER_BYTES)
            if phone_head[:HEADER_BYTES] != copied_head:
                raise TornCopyError("the WAL was restarted while it was copied")
        summary = await asyncio.to_thread(summarize, wal_partial)
        if summary.problem:
            raise TornCopyError(summary.problem)
        return summary.committed_frames

    def _seal(
        self, parts: dict[str, tuple[FileStat | None, Path]], committed: int, stat: LibraryStat
    ) -> None:
        work = self.folder / "work"
        self._discard(work)
        ensure_private_dir(work)
        for suffix, (file_stat, partial) in parts.items():
            if file_stat is not None and partial.exists():
                os.replace(partial, work / (SNAPSHOT_NAME + suffix))
        try:
            sealed = seal(work / SNAPSHOT_NAME, committed)
        except BaseException:
            self._discard(work)
            raise
        os.replace(work / SNAPSHOT_NAME, self.sealed)
        fsync_folder(self.folder)
        record = {
            "version": 1,
            "phone_stat": stat.signature(),
            "copied_at": _iso(self._clock()),
            "wal_frames_used": sealed.wal_frames_used,
            "size": self.sealed.stat().st_size,
        }
        write_private_file(self.folder / RECORD_NAME, json.dumps(record, indent=1).encode())
        self._discard(work)
        self._discard(self.folder / "incoming")

    @staticmethod
    def _discard(folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)


def _partial_name(suffix: str, file_stat: FileStat | None) -> str:
    if file_stat is None:
        return f"{SNAPSHOT_NAME}{suffix}.absent"
    return f"{SNAPSHOT_NAME}{suffix}.{file_stat.size}-{file_stat.modified_ns}.partial"


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as stream:
            return stream.read(HEADER_BYTES)
    except FileNotFoundError:
        return b""


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
