"""Thumbnails of archived photos, made on demand in a limited worker process and cached.

Each thumbnail is made once by :mod:`rollkeeper.web.thumbnail_worker` in a process of its own
(memory and CPU limits set in the child, a wall-clock limit enforced here), from the archive
file opened here read-only (``O_NOFOLLOW``: a symbolic link put in the archive's place is not
followed) and handed over as standard input. The result is cached in the state folder, named by
the content hash (0600 files in a 0700 folder), never in the archive. A photo the worker could
not read is remembered until the service restarts, so a broken file costs one worker, not one
per page load.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from rollkeeper.host.permissions import ensure_private_dir, write_private_file

log = structlog.get_logger("rollkeeper.web.thumbnails")

#: What an archive id looks like: the content hash, lower-case hex (BLAKE3: 64 digits).
ARCHIVE_ID = re.compile(r"^[0-9a-f]{16,128}$")

#: The longer side of a thumbnail, in pixels (sharp at twice the size the page shows).
THUMBNAIL_EDGE = 320
#: The worker's limits: address space, CPU seconds, and the wall clock seen from here.
WORKER_MEMORY_BYTES = 1 << 30
WORKER_CPU_SECONDS = 20
WORKER_WALL_SECONDS = 30.0
#: Photos larger than this are not handed to a worker at all (a ProRAW DNG is ~75 MB).
MAX_SOURCE_BYTES = 256 * 1024 * 1024
#: A worker that writes more than this is not making a thumbnail.
MAX_THUMBNAIL_BYTES = 2 * 1024 * 1024
#: The cache keeps at most this many thumbnails; the least recently made go first.
MAX_CACHED = 2000
#: How long the pipes of a killed worker are read before it is left to the kernel.
DRAIN_SECONDS = 5.0
#: Workers at a time (a thumbnail costs about a core for a fraction of a second).
WORKERS_AT_ONCE = 2

_JPEG_START = b"\xff\xd8"


def worker_command() -> list[str]:
    """The worker: this interpreter, isolated from the environment (``-I``), on the module."""
    return [sys.executable, "-I", "-m", "rollkeeper.web.thumbnail_worker"]


@dataclass(frozen=True, slots=True)
class WorkerLimits:
    """What one worker may use."""

    memory_bytes: int = WORKER_MEMORY_BYTES
    cpu_seconds: int = WORKER_CPU_SECONDS
    wall_seconds: float = WORKER_WALL_SECONDS


class ThumbnailMaker:
    """Thumbnails by archive id (content hash), from a cache folder or a fresh worker."""

    def __init__(
        self,
        cache_folder: Path,
        *,
        command: Sequence[str] | None = None,
        limits: WorkerLimits | None = None,
        edge: int = THUMBNAIL_EDGE,
        max_cached: int = MAX_CACHED,
    ) -> None:
        self.cache_folder = cache_folder
        self._command = list(command) if command is not None else worker_command()
        self._limits = limits or WorkerLimits()
        self._edge = edge
        self._max_cached = max_cached
        self._refused: set[str] = set()
        self._in_flight: dict[str, asyncio.Lock] = {}
        self._workers = asyncio.Semaphore(WORKERS_AT_ONCE)

    def cached_path(self, archive_id: str) -> Path:
        """Where the thumbnail of ``archive_id`` is kept (the id is checked first)."""
        if not ARCHIVE_ID.match(archive_id):
            raise ValueError(f"not an archive id: {archive_id!r}")
        return self.cache_folder / f"{archive_id}.jpg"

    async def thumbnail(self, archive_id: str, source: Path) -> bytes | None:
        """The JPEG thumbnail of the archive file ``source`` whose content is ``archive_id``;
        None when no thumbnail can be made of it (not an image, too large, worker failed)."""
        cached = self.cached_path(archive_id)
        if archive_id in self._refused:
            return None
        lock = self._in_flight.setdefault(archive_id, asyncio.Lock())
        try:
            async with lock:
                found = await asyncio.to_thread(_read_if_present, cached)
                if found is not None:
                    return found
                async with self._workers:
                    made = await self._make(archive_id, source)
                if made is None:
                    self._refused.add(archive_id)
                    return None
                await asyncio.to_thread(self._store, cached, made)
                return made
        finally:
            if not lock.locked():
                self._in_flight.pop(archive_id, None)

    async def _make(self, archive_id: str, source: Path) -> bytes | None:
        try:
            descriptor = await asyncio.to_thread(_open_photo, source)
        except OSError as error:
            log.warning("thumbnail_source_unreadable", archive_id=archive_id, error=str(error))
            return None
        limits = self._limits
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command,
                "--edge",
                str(self._edge),
                "--memory-bytes",
                str(limits.memory_bytes),
                "--cpu-seconds",
                str(limits.cpu_seconds),
                stdin=descriptor,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=_worker_environment(),
                # Its own process group: a kill reaches anything it started, too.
                start_new_session=True,
            )
        except OSError as error:
            log.warning("thumbnail_worker_unstartable", error=str(error))
            return None
        finally:
            os.close(descriptor)
        assert process.stdout is not None and process.stderr is not None
        output = _CappedOutput(process, MAX_THUMBNAIL_BYTES)
        errors = _CappedOutput(process, 4096)
        try:
            async with asyncio.timeout(limits.wall_seconds):
                await asyncio.gather(output.read(process.stdout), errors.read(process.stderr))
                code = await process.wait()
        except TimeoutError:
            _kill(process)
            await _drain(process)
            log.warning("thumbnail_timeout", archive_id=archive_id, seconds=limits.wall_seconds)
            return None
        if output.overflowed:
            log.warning("thumbnail_too_large", archive_id=archive_id)
            return None
        if code != 0 or not output.data.startswith(_JPEG_START):
            log.info(
                "thumbnail_refused",
                archive_id=archive_id,
                exit_code=code,
                reason=errors.data.decode("utf-8", "replace").strip()[:200],
            )
            return None
        return output.data

    def _store(self, cached: Path, thumbnail: bytes) -> None:
        """Keep a thumbnail (0600 in the 0700 cache folder) and trim the cache to size."""
        try:
            ensure_private_dir(self.cache_folder)
            write_private_file(cached, thumbnail)
            self._trim()
        except OSError as error:
            # The page still gets its thumbnail; the next load makes it again.
            log.warning(
                "thumbnail_cache_unwritable", folder=str(self.cache_folder), error=str(error)
            )

    def _trim(self) -> None:
        entries = [entry for entry in os.scandir(self.cache_folder) if entry.name.endswith(".jpg")]
        if len(entries) <= self._max_cached:
            return
        entries.sort(key=lambda entry: entry.stat().st_mtime_ns)
        for entry in entries[: len(entries) - self._max_cached]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


class _CappedOutput:
    """One of a worker's output streams, kept up to a cap. Past the cap the worker is killed
    and the rest is read and dropped: the pipe must reach its end for the process to be
    reaped, and a reader that stopped would leave the pipe full and the worker unreaped."""

    def __init__(self, process: asyncio.subprocess.Process, cap: int) -> None:
        self._process = process
        self._cap = cap
        self._chunks: list[bytes] = []
        self._size = 0
        self.overflowed = False

    @property
    def data(self) -> bytes:
        """What was kept (empty after an overflow)."""
        return b"" if self.overflowed else b"".join(self._chunks)

    async def read(self, stream: asyncio.StreamReader) -> None:
        """Read ``stream`` to its end."""
        while chunk := await stream.read(65536):
            if self.overflowed:
                continue
            self._size += len(chunk)
            if self._size > self._cap:
                self.overflowed = True
                self._chunks.clear()
                _kill(self._process)
            else:
                self._chunks.append(chunk)


async def _drain(process: asyncio.subprocess.Process) -> None:
    """After a kill: read what is left of both pipes and reap the process, within a bound (a
    descendant that escaped the process group could hold a pipe open)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    while await stream.read(65536):
                        pass
            await process.wait()


def _kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the worker's whole process group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _open_photo(source: Path) -> int:
    """Open an archive file read-only for a worker: a regular file, not a symbolic link, not
    too large. Returns the descriptor (the caller closes it)."""
    descriptor = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{source} is not a regular file")
        if status.st_size > MAX_SOURCE_BYTES:
            raise OSError(f"{source} is larger than {MAX_SOURCE_BYTES} bytes")
        os.set_blocking(descriptor, True)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _read_if_present(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _worker_environment() -> dict[str, str]:
    """Nothing of the service's environment: a path, a locale, and few malloc arenas (each
    arena reserves address space, which the worker's limit counts)."""
    return {"PATH": os.defpath, "LC_ALL": "C", "MALLOC_ARENA_MAX": "2"}
