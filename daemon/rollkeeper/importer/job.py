"""One backup run of one phone: scan, plan, copy, verify, record — the heart of rollkeeper.

Like beets' importer, a run is a pipeline of small steps over groups of files. For each group (a
Live Photo with its edit and sidecars) every member is copied into a ``.partial`` with its hash;
the group's capture date (from its primary's metadata) chooses its folder; content the archive
already holds is recorded, not written again; a name taken by other content gets the group's
collision suffix; then each file is moved into place without ever replacing anything and
recorded in one transaction. A run is ``complete`` only when nothing the phone holds is pending
or failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import structlog

from rollkeeper.archive.locations import WORKING_FOLDER_NAME
from rollkeeper.device.errors import PhoneNotRespondingError, PhoneUnavailableError
from rollkeeper.device.phone_files import FileNotOnPhoneError, PhoneReadError
from rollkeeper.device.scan import Scanner, ScanResult
from rollkeeper.device.session import PhoneSession
from rollkeeper.domain.collisions import suffix_candidates, suffixed
from rollkeeper.domain.files import PhoneFile, media_kind
from rollkeeper.domain.filters import FileFilter, exclusion_reason
from rollkeeper.domain.grouping import MediaGroup, group_files
from rollkeeper.domain.layout import CaptureDate, render_destination
from rollkeeper.importer.hashing import HASH_ALGORITHM, hash_file, new_hasher
from rollkeeper.importer.metadata import capture_date_fallback, read_capture_date
from rollkeeper.importer.placement import PlacementError, place_without_replacing
from rollkeeper.importer.transfer import SizeMismatchError, download_to_partial, fsync_file
from rollkeeper.store import (
    ARCHIVED,
    EXCLUDED,
    FAILED,
    PENDING,
    ManifestEntry,
    RunCounts,
    StateStore,
)

log = structlog.get_logger("rollkeeper.backup")

#: How often byte progress within a file is saved for ``status`` (once per file otherwise).
PROGRESS_SAVE_INTERVAL_SECONDS = 1.0

#: Groups downloaded ahead of the one being placed, at most (see BackupRun._copy_groups): a few
#: are enough to keep the link busy while the disk catches up; partials wait on disk, not in RAM.
DOWNLOAD_AHEAD_GROUPS = 4


@dataclass(frozen=True, slots=True)
class BackupSettings:
    """What a run needs from the config."""

    archive_root: Path
    layout: str
    file_filter: FileFilter = field(default_factory=FileFilter)


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a run has come; reported after every file."""

    udid: str
    device_name: str
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    current: str = ""


@dataclass(slots=True)
class RunResult:
    """What a run ended with."""

    run_id: int
    udid: str
    device_name: str
    outcome: str
    counts: RunCounts
    error: str = ""

    @property
    def complete(self) -> bool:
        """True only when every file found on the phone is archived or excluded."""
        return self.outcome == "complete"


class StopRequestedError(Exception):
    """The service is shutting down: the run ends after the file in flight."""


class ArchiveWriteError(Exception):
    """Writing to the archive failed (no space, read-only, gone): the run stops."""


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


def _phone_file(entry: ManifestEntry) -> PhoneFile:
    return PhoneFile(
        path=entry.phone_path,
        size=entry.size,
        birth_time_ns=entry.birth_time_ns,
        modified_time_ns=entry.modified_time_ns,
    )


@dataclass(slots=True)
class _Member:
    """A group member being copied: its entry, partial, hash and destination."""

    entry: ManifestEntry
    partial: Path
    content_hash: str = ""
    base_target: PurePosixPath | None = None


class BackupRun:
    """Backs up one phone through an open session into the archive and the store."""

    def __init__(
        self,
        store: StateStore,
        settings: BackupSettings,
        session: PhoneSession,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_progress: Callable[[Progress], None] | None = None,
        full_rescan: bool = False,
    ) -> None:
        self._store = store
        self._settings = settings
        self._session = session
        self._clock = clock
        self._on_progress = on_progress
        self._full_rescan = full_rescan
        self._udid = session.info.udid
        self._device_name = session.info.name
        self.counts = RunCounts()
        self._files_total = 0
        self._bytes_total = 0
        self._files_done = 0
        self._bytes_done = 0
        self._current = ""
        self._progress_saved_at = 0.0
        self._stop_requested = False
        self._present: dict[str, ManifestEntry] = {}
        #: Groups downloaded ahead of the one being placed (1: the next one only).
        self.download_ahead = DOWNLOAD_AHEAD_GROUPS
        self.run_id = 0

    def request_stop(self) -> None:
        """End the run after the file in flight (its partial is kept either way)."""
        self._stop_requested = True

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Run to the end; phone errors propagate after the run row is closed as interrupted."""
        info = self._session.info
        store = self._store
        store.record_device_seen(
            info.udid,
            name=info.name,
            product_type=info.product_type,
            product_version=info.product_version,
            now=self._clock(),
        )
        self.run_id = store.start_run(self._udid, self._clock())
        log.info("backup_started", udid=self._udid, run_id=self.run_id, device=self._device_name)
        store.set_device_state(self._udid, "backing_up", "scanning", self._clock())
        try:
            scan = await Scanner(store, self._udid, self._clock).scan(
                self._session.files, full_rescan=self._full_rescan
            )
            self._report_rejections(scan)
            todo = self._select(scan)
            groups = self._groups_to_copy(scan, todo)
            self._files_total = sum(1 for _ in todo)
            self._bytes_total = sum(entry.size for entry in todo)
            self._publish_progress("")
            await self._copy_groups(groups)
        except StopRequestedError as error:
            return self._close_run("interrupted", str(error))
        except PhoneUnavailableError as error:
            self._close_run("interrupted", str(error))
            raise
        except ArchiveWriteError as error:
            result = self._close_run("failed", str(error))
            log.error("backup_failed", udid=self._udid, run_id=self.run_id, error=str(error))
            return result
        except BaseException as error:
            self._close_run("interrupted", f"{type(error).__name__}: {error}")
            raise
        return self._close_run(None, "")

    def _close_run(self, outcome: str | None, error: str) -> RunResult:
        """Count what the phone holds now and write the run's row."""
        counts = self.counts
        statuses = self._store.status_counts(self._udid)
        counts.files_pending = statuses.get(PENDING, 0)
        counts.files_failed = statuses.get(FAILED, 0)
        counts.files_not_on_phone = self._store.count_archived_not_present(self._udid)
        if outcome is None:
            outcome = (
                "complete"
                if counts.files_pending == 0 and counts.files_failed == 0
                else "incomplete"
            )
        self._store.finish_run(self.run_id, outcome, counts, error, self._clock())
        state = {"complete": "up_to_date", "incomplete": "error"}.get(outcome, "error")
        detail = (
            error
            if error
            else (
                ""
                if outcome == "complete"
                else f"{counts.files_failed} failed, {counts.files_pending} pending"
            )
        )
        if outcome != "interrupted":
            self._store.set_device_state(self._udid, state, detail, self._clock())
        log.info(
            "backup_finished",
            udid=self._udid,
            run_id=self.run_id,
            outcome=outcome,
            files_found=counts.files_found,
            files_copied=counts.files_copied,
            bytes_copied=counts.bytes_copied,
            files_failed=counts.files_failed,
            files_pending=counts.files_pending,
        )
        return RunResult(
            run_id=self.run_id,
            udid=self._udid,
            device_name=self._device_name,
            outcome=outcome,
            counts=counts,
            error=error,
        )

    def _report_rejections(self, scan: ScanResult) -> None:
        for item in scan.rejected:
            log.warning(
                "item_rejected",
                udid=self._udid,
                run_id=self.run_id,
                phone_path=item.phone_path,
                reason=item.reason,
                detail=item.detail,
            )
            self._store.add_run_failure(self.run_id, item.phone_path, item.reason, item.detail)
        self.counts.items_rejected = len(scan.rejected)

    def _select(self, scan: ScanResult) -> list[ManifestEntry]:
        """Apply the filters; return the entries to copy (pending or failed, not excluded)."""
        rules = self._settings.file_filter
        todo: list[ManifestEntry] = []
        self.counts.files_found = len(scan.present) + scan.archived_folder_files
        self.counts.files_already_archived += scan.archived_folder_files
        for entry in scan.present:
            if entry.status == ARCHIVED:
                self.counts.files_already_archived += 1
                continue
            reason = exclusion_reason(entry.name, entry.birth_time_ns, rules)
            if reason is not None:
                if entry.status != EXCLUDED or entry.failure_reason != reason:
                    self._store.set_file_status(entry.id, EXCLUDED, reason)
                self.counts.files_excluded += 1
                continue
            if entry.status == EXCLUDED:
                self._store.set_file_status(entry.id, PENDING)
            todo.append(entry)
        return todo

    def _groups_to_copy(
        self, scan: ScanResult, todo: list[ManifestEntry]
    ) -> list[tuple[MediaGroup, list[ManifestEntry]]]:
        """Group every present file (archived members decide nothing but sit in their group),
        keeping the groups that have something to copy.

        A group never spans folders, so only the folders with something to copy are grouped:
        a phone of 100,000 archived files and one new photo groups one folder, not 100,000
        files."""
        wanted = {entry.phone_path for entry in todo}
        folders = {entry.folder for entry in todo}
        candidates = [entry for entry in scan.present if entry.folder in folders]
        by_path = {entry.phone_path: entry for entry in candidates}
        self._present = by_path
        plan: list[tuple[MediaGroup, list[ManifestEntry]]] = []
        for group in group_files(_phone_file(entry) for entry in candidates):
            members = [by_path[member.path] for member in group.members if member.path in wanted]
            if members:
                plan.append((group, members))
        # Groups that failed before go last: a file the phone cannot serve (it stops answering
        # on it) must not keep every file after it from being backed up, run after run.
        plan.sort(key=lambda item: any(member.status == FAILED for member in item[1]))
        return plan

    # -- the groups, pipelined ------------------------------------------------------------------

    async def _copy_groups(self, groups: list[tuple[MediaGroup, list[ManifestEntry]]]) -> None:
        """Download the groups one file at a time while the groups already downloaded are made
        durable and placed, in plan order.

        Making a group durable and placing it (fsync of each file, the capture date, collision
        checks, link, folder fsyncs, one transaction per file) does not need the phone: done
        one group at a time after the download, it leaves the link idle and waits for the
        disk. Here a downloader reads the next groups (at most :attr:`download_ahead` ahead)
        while a placer finishes the earlier ones. Only one file is read from the phone at any
        moment, so an unplug costs at most the chunk in flight, as before; placement stays
        sequential and in order, so collisions and dedup decide exactly as they would one
        group at a time. A stop request ends the run after the file being read and the groups
        already downloaded.
        """
        ready_groups: asyncio.Queue[tuple[MediaGroup, list[_Member]] | None] = asyncio.Queue(
            maxsize=max(1, self.download_ahead)
        )
        stopped_early = False

        async def download_all() -> None:
            nonlocal stopped_early
            cancelled = False
            try:
                for group, entries in groups:
                    if self._stop_requested:
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
                capture = await self._capture_date(group, ready)
                await self._place_group(group, ready, capture)
            await downloader
        finally:
            if not downloader.done():
                downloader.cancel()
            await asyncio.gather(downloader, return_exceptions=True)
        if stopped_early:
            raise StopRequestedError("rollkeeper is stopping")

    async def _make_durable(self, ready: list[_Member]) -> None:
        """fsync each downloaded partial (the placement that follows vouches for its bytes)."""
        for member in ready:
            try:
                await asyncio.to_thread(fsync_file, member.partial)
            except OSError as error:
                raise self._archive_error(error, member.partial) from error

    # -- one group ---------------------------------------------------------------------------

    async def _download_group(self, entries: list[ManifestEntry]) -> list[_Member]:
        """Copy every member of a group into its partial; the members that arrived whole."""
        ready: list[_Member] = []
        for entry in entries:
            member = _Member(entry, partial_path(self._settings.archive_root, self._udid, entry))
            if await self._download(member):
                ready.append(member)
        return ready

    async def _download(self, member: _Member) -> bool:
        """Copy one member into its partial; False (recorded as failed) for file-level errors."""
        entry = member.entry
        self._publish_progress(entry.phone_path)
        try:
            outcome = await download_to_partial(
                self._session.files,
                entry.phone_path,
                entry.size,
                member.partial,
                on_bytes=self._count_bytes,
                durable=False,  # fsync'ed by the placer, while the next file downloads
            )
        except SizeMismatchError as error:
            self._fail(entry, "size_mismatch", str(error))
            return False
        except FileNotOnPhoneError:
            self._fail(entry, "vanished_from_phone", "the phone no longer has this file")
            return False
        except PhoneReadError as error:
            self._fail(entry, "read_error", str(error))
            return False
        except PhoneNotRespondingError as error:
            # The session is lost either way; remember the file so the next run tries it last.
            self._fail(entry, "phone_not_responding", str(error))
            raise
        except OSError as error:
            raise self._archive_error(error, member.partial) from error
        if outcome.resumed_from:
            log.info(
                "partial_resumed",
                udid=self._udid,
                run_id=self.run_id,
                phone_path=entry.phone_path,
                offset=outcome.resumed_from,
            )
        member.content_hash = outcome.content_hash
        self.counts.bytes_copied += outcome.bytes_from_phone
        return True

    def _count_bytes(self, amount: int) -> None:
        self._bytes_done += amount
        now = time.monotonic()
        if now - self._progress_saved_at >= PROGRESS_SAVE_INTERVAL_SECONDS:
            # Within a large video, ``status`` still sees bytes move (and can give an ETA).
            self._progress_saved_at = now
            self._store.set_device_progress(
                self._udid, self._files_done, self._files_total, self._bytes_done, self._bytes_total
            )
        self._notify_progress(self._current)

    def _fail(self, entry: ManifestEntry, reason: str, detail: str) -> None:
        log.warning(
            "file_failed",
            udid=self._udid,
            run_id=self.run_id,
            phone_path=entry.phone_path,
            reason=reason,
            detail=detail,
        )
        self._store.set_file_status(entry.id, FAILED, reason)
        self._store.add_run_failure(self.run_id, entry.phone_path, reason, detail)
        self._files_done += 1

    def _archive_error(self, error: OSError, path: Path) -> ArchiveWriteError:
        if error.errno == errno.ENOSPC:
            return ArchiveWriteError(f"no space left on the archive's disk at {path.parent}")
        return ArchiveWriteError(f"cannot write the archive at {path}: {error.strerror or error}")

    async def _capture_date(self, group: MediaGroup, ready: list[_Member]) -> CaptureDate:
        """The group's date: the primary's metadata, else any member's, else the birth time.

        Members archived by an earlier run count too (read from their archived file), so a
        member copied later — a sidecar that failed, a file whose run was cut short — gets the
        date the group got, and lands beside it, not in its birth time's folder.
        """
        primary_path = group.primary.path
        ready_by_path = {member.entry.phone_path: member for member in ready}
        sources: list[tuple[str, Path]] = []
        for member in sorted(group.members, key=lambda member: member.path != primary_path):
            copied = ready_by_path.get(member.path)
            if copied is not None:
                sources.append((copied.entry.name, copied.partial))
                continue
            settled = self._settled_file(member.path)
            if settled is not None:
                sources.append(settled)
        for name, path in sources:
            kind = media_kind(name)
            if kind is None:
                continue
            found = await asyncio.to_thread(read_capture_date, path, kind)
            if found is not None:
                return found
        return capture_date_fallback(group.primary.birth_time_ns)

    def _settled_file(self, phone_path: str) -> tuple[str, Path] | None:
        """(name, archived file) of a group member archived by an earlier run, if on disk."""
        entry = self._present.get(phone_path)
        if entry is None or entry.status != ARCHIVED or not entry.archive_path:
            return None
        path = Path(entry.archive_path)
        full = path if path.is_absolute() else self._settings.archive_root / path
        return (entry.name, full) if full.is_file() else None

    def _settled_suffix(self, group: MediaGroup, capture: CaptureDate) -> tuple[int, ...]:
        """The collision suffix an earlier run gave this group's archived members, if any.

        Tried first for the members copied now, so a group keeps matching names
        (``IMG_1234~2.HEIC`` with ``IMG_1234~2.AAE``) however many runs it took, and a member
        placed by a run that crashed before recording it is found where it is, not copied again
        under another suffix.
        """
        for member in group.members:
            entry = self._present.get(member.path)
            if entry is None or entry.status != ARCHIVED or not entry.archive_path:
                continue
            base = render_destination(
                self._settings.layout, capture, entry.name, self._device_name, self._udid
            )
            archived = PurePosixPath(entry.archive_path)
            if archived == base:
                return (0,)
            stem = archived.name.rpartition(".")[0] or archived.name
            number = stem.rpartition("~")[2]
            if number.isdigit() and int(number) >= 2 and suffixed(base, int(number)) == archived:
                return (int(number),)
        return ()

    async def _place_group(
        self, group: MediaGroup, ready: list[_Member], capture: CaptureDate
    ) -> None:
        """Record content already archived; give the rest one suffix and move it into place."""
        to_write: list[_Member] = []
        for member in ready:
            existing = self._store.archive_entry_by_hash(member.content_hash)
            if existing is not None and self._archive_file_exists(existing.relative_path):
                self._record(member, existing.relative_path, capture, origin=None)
                self.counts.files_deduplicated += 1
                member.partial.unlink(missing_ok=True)
                continue
            member.base_target = render_destination(
                self._settings.layout, capture, member.entry.name, self._device_name, self._udid
            )
            to_write.append(member)
        if not to_write:
            return
        found_at: dict[int, PurePosixPath] = {}
        for suffix in itertools.chain(
            self._settled_suffix(group, capture), (0,), suffix_candidates()
        ):
            found_at.clear()
            taken = False
            for member in to_write:
                assert member.base_target is not None
                target = suffixed(member.base_target, suffix)
                verdict = await self._occupant(target, member.content_hash)
                if verdict == "same":
                    found_at[member.entry.id] = target
                elif verdict == "other":
                    taken = True
                    break
            if not taken:
                break
        for member in to_write:
            assert member.base_target is not None
            target = suffixed(member.base_target, suffix)
            if member.entry.id in found_at:
                # Lost state: the file is already there with this content. Vouch for it.
                self._record(member, str(target), capture, origin="rebuilt")
                member.partial.unlink(missing_ok=True)
                self.counts.files_deduplicated += 1
                continue
            try:
                await asyncio.to_thread(
                    place_without_replacing, member.partial, self._settings.archive_root / target
                )
            except PlacementError:
                # Someone created the name between our check and the move: try the next run.
                self._fail(member.entry, "destination_taken", str(target))
                continue
            except OSError as error:
                raise self._archive_error(error, self._settings.archive_root / target) from error
            self._record(member, str(target), capture, origin="backup")
            self.counts.files_copied += 1
            log.info(
                "file_archived",
                udid=self._udid,
                run_id=self.run_id,
                phone_path=member.entry.phone_path,
                path=str(target),
                bytes=member.entry.size,
            )

    def _archive_file_exists(self, relative_path: str) -> bool:
        path = Path(relative_path)
        full = path if path.is_absolute() else self._settings.archive_root / path
        return full.is_file()

    async def _occupant(self, target: PurePosixPath, content_hash: str) -> str:
        """``free``, ``same`` (this content is already there) or ``other``."""
        full = self._settings.archive_root / target
        if not os.path.lexists(full):
            return "free"
        if full.is_symlink() or not full.is_file():
            return "other"
        known = self._store.archive_entry(str(target))
        if known is not None:
            return "same" if known.content_hash == content_hash else "other"
        on_disk = await asyncio.to_thread(hash_file, full)
        return "same" if on_disk == content_hash else "other"

    def _record(
        self, member: _Member, relative_path: str, capture: CaptureDate, origin: str | None
    ) -> None:
        entry = member.entry
        self._store.record_archived(
            entry.id,
            relative_path=relative_path,
            content_hash=member.content_hash,
            hash_algorithm=HASH_ALGORITHM,
            size=entry.size,
            origin=origin or "backup",
            capture_time=capture.local.isoformat(),
            capture_source=capture.source,
            now=self._clock(),
        )
        self._files_done += 1
        self._publish_progress("")

    def _publish_progress(self, current: str) -> None:
        """Store the progress (for ``status``) and tell the caller; once per file."""
        self._current = current
        self._store.set_device_progress(
            self._udid, self._files_done, self._files_total, self._bytes_done, self._bytes_total
        )
        self._notify_progress(current)

    def _notify_progress(self, current: str) -> None:
        if self._on_progress is not None:
            with contextlib.suppress(Exception):
                self._on_progress(
                    Progress(
                        udid=self._udid,
                        device_name=self._device_name,
                        files_done=self._files_done,
                        files_total=self._files_total,
                        bytes_done=self._bytes_done,
                        bytes_total=self._bytes_total,
                        current=current,
                    )
                )
