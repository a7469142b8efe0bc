"""Put one downloaded group into the archive: its date, its names, never replacing anything.

The group's capture date (from its primary's metadata) chooses its folder; content the archive
already holds is recorded, not written again; a name taken by other content gets the group's
collision suffix (:mod:`rollkeeper.domain.collisions`, one suffix for every member); each file
is then moved into place without replacing anything and recorded in one transaction.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

import structlog

from rollkeeper.domain.collisions import (
    NoFreeSuffix,
    choose_group_suffix_async,
    suffix_of,
    suffixed,
)
from rollkeeper.domain.files import media_kind
from rollkeeper.domain.grouping import MediaGroup
from rollkeeper.domain.layout import CaptureDate, render_destination
from rollkeeper.importer.commit_hooks import after_commit
from rollkeeper.importer.hashing import hash_file
from rollkeeper.importer.ledger import RunLedger
from rollkeeper.importer.metadata import capture_date_fallback, read_capture_date
from rollkeeper.importer.placement import PlacementError, place_without_replacing
from rollkeeper.importer.settings import BackupSettings
from rollkeeper.ports import BackupStore
from rollkeeper.store.records import ARCHIVED, ManifestEntry

log = structlog.get_logger("rollkeeper.backup")

#: What is at a destination: nothing, this member's content, or something else.
FREE = "free"
SAME = "same"
OTHER = "other"


class PlacementHints(Protocol):
    """What the phone's Photos library adds to placing a group (:mod:`.library_files`): the
    name a file gets in the archive, and a capture date where the files carry none."""

    def archive_name(self, entry: ManifestEntry) -> str: ...

    def capture_date(self, phone_path: str) -> CaptureDate | None: ...


class ArchiveWriteError(Exception):
    """Writing to the archive failed (no space, read-only, gone): the run stops."""


def archive_write_error(error: OSError, path: Path) -> ArchiveWriteError:
    """The run-stopping error for a failed write at ``path``, said the way a user can act on."""
    if error.errno == errno.ENOSPC:
        return ArchiveWriteError(f"no space left on the archive's disk at {path.parent}")
    return ArchiveWriteError(f"cannot write the archive at {path}: {error.strerror or error}")


@dataclass(slots=True)
class DownloadedMember:
    """A group member copied into its partial: its entry, partial, hash and destination."""

    entry: ManifestEntry
    partial: Path
    content_hash: str = ""
    base_target: PurePosixPath | None = None
    #: Whether the download read the capture date from the bytes (``capture`` None then says
    #: the file has none), so placing does not read the partial again for it.
    capture_read: bool = False
    capture: CaptureDate | None = None
    #: An earlier run left this member's partial (the download resumes it).
    resumable: bool = False


class GroupPlacer:
    """Places the groups of one run, in plan order, into the archive and the store."""

    def __init__(
        self,
        store: BackupStore,
        settings: BackupSettings,
        ledger: RunLedger,
        udid: str,
        device_name: str,
        present_by_path: Mapping[str, ManifestEntry],
        hints: PlacementHints | None = None,
    ) -> None:
        self._store = store
        self._hints = hints
        self._settings = settings
        self._ledger = ledger
        self._udid = udid
        self._device_name = device_name
        self._present = present_by_path

    async def place(self, group: MediaGroup, ready: list[DownloadedMember]) -> None:
        """Record content already archived; give the rest one suffix and move it into place."""
        capture = await self._capture_date(group, ready)
        to_write: list[DownloadedMember] = []
        for member in ready:
            existing = self._store.archive_entry_by_hash(member.content_hash)
            if existing is not None and await asyncio.to_thread(
                self._archive_file_exists, existing.relative_path
            ):
                self._ledger.record_archived(
                    member.entry, existing.relative_path, member.content_hash, capture, "backup"
                )
                self._ledger.counts.files_deduplicated += 1
                member.partial.unlink(missing_ok=True)
                continue
            member.base_target = self._destination(capture, self._name(member.entry))
            to_write.append(member)
        if to_write:
            await self._write(group, to_write, capture)

    async def _write(
        self, group: MediaGroup, to_write: list[DownloadedMember], capture: CaptureDate
    ) -> None:
        bases = [self._base(member) for member in to_write]
        settled = self._settled_suffix(group, capture)
        if not settled and await self._place_where_free(to_write, bases, capture):
            return
        # What each destination asked about holds: asked once, hashed at most once.
        occupants: dict[tuple[int, PurePosixPath], str] = {}

        async def taken_by_other(index: int, target: PurePosixPath) -> bool:
            verdict = await self._occupant(target, to_write[index].content_hash)
            occupants[index, target] = verdict
            return verdict == OTHER

        try:
            suffix = await choose_group_suffix_async(bases, taken_by_other, settled)
        except NoFreeSuffix as error:
            for member in to_write:
                self._ledger.fail(member.entry, "destination_taken", str(error))
            return
        for index, (member, base) in enumerate(zip(to_write, bases, strict=True)):
            target = suffixed(base, suffix)
            if occupants.get((index, target)) == SAME:
                # Lost state: the file is already there with this content. Vouch for it.
                self._ledger.record_archived(
                    member.entry, str(target), member.content_hash, capture, "rebuilt"
                )
                member.partial.unlink(missing_ok=True)
                self._ledger.counts.files_deduplicated += 1
                continue
            await self._move_into_place(member, target, capture)

    async def _move_into_place(
        self, member: DownloadedMember, target: PurePosixPath, capture: CaptureDate
    ) -> None:
        final = self._settings.archive_root / target
        try:
            await asyncio.to_thread(place_without_replacing, member.partial, final)
        except PlacementError:
            # Someone created the name between our check and the move: try the next run.
            self._ledger.fail(member.entry, "destination_taken", str(target))
            return
        except OSError as error:
            raise archive_write_error(error, final) from error
        self._placed(member, target, capture)

    async def _place_where_free(
        self, to_write: list[DownloadedMember], bases: list[PurePosixPath], capture: CaptureDate
    ) -> bool:
        """Move every member to its destination without a suffix, in one worker-thread call,
        when every one of those names is free; False (nothing moved) when any is taken, and the
        suffix is then chosen as usual.

        This is the first try of :func:`choose_group_suffix_async` (no suffix, asked before
        any other when the group has no settled suffix) with the checks and the moves of the
        whole group in one call: the usual case, a name nobody has, costs one hop, not two
        per file. A name that appears between the check and the move still fails only its
        member (``destination_taken``), as in :meth:`_move_into_place`.
        """
        root = self._settings.archive_root
        moves = [
            (member.partial, root / base) for member, base in zip(to_write, bases, strict=True)
        ]
        outcome = await asyncio.to_thread(_move_all_if_free, moves)
        if outcome is None:
            return False
        placed, failure = outcome
        for member, base, done in zip(to_write, bases, placed, strict=False):
            if done:
                self._placed(member, base, capture)
            else:
                self._ledger.fail(member.entry, "destination_taken", str(base))
        if failure is not None:
            error, final = failure
            raise archive_write_error(error, final) from error
        return True

    def _placed(
        self, member: DownloadedMember, target: PurePosixPath, capture: CaptureDate
    ) -> None:
        """Record a member moved into place at ``target`` (committed with its batch)."""
        self._ledger.record_archived(
            member.entry, str(target), member.content_hash, capture, "backup"
        )
        self._ledger.counts.files_copied += 1
        after_commit(
            functools.partial(
                log.info,
                "file_archived",
                udid=self._udid,
                run_id=self._ledger.run_id,
                phone_path=member.entry.phone_path,
                path=str(target),
                bytes=member.entry.size,
            )
        )

    # -- the date and the names ----------------------------------------------------------------

    async def _capture_date(self, group: MediaGroup, ready: list[DownloadedMember]) -> CaptureDate:
        """The group's date: the primary's metadata, else any member's, else the library's
        capture date (a JPEG without EXIF, an AirDropped file), else the birth time.

        Members archived by an earlier run count too (read from their archived file), so a
        member copied later — a sidecar that failed, a file whose run was cut short — gets the
        date the group got, and lands beside it, not in its birth time's folder.
        """
        primary_path = group.primary.path
        ready_by_path = {member.entry.phone_path: member for member in ready}
        sources: list[tuple[str, Path, DownloadedMember | None]] = []
        for member in sorted(group.members, key=lambda member: member.path != primary_path):
            copied = ready_by_path.get(member.path)
            if copied is not None:
                sources.append((copied.entry.name, copied.partial, copied))
                continue
            settled = self._settled_file(member.path)
            if settled is not None:
                sources.append((*settled, None))
        for name, path, copied in sources:
            kind = media_kind(name)
            if kind is None:
                continue
            if copied is not None and copied.capture_read:
                found = copied.capture  # read from the bytes as they arrived
            else:
                found = await asyncio.to_thread(read_capture_date, path, kind)
            if found is not None:
                return found
        hinted = self._hints.capture_date(primary_path) if self._hints is not None else None
        return hinted or capture_date_fallback(group.primary.birth_time_ns)

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
            base = self._destination(capture, self._name(entry))
            settled = suffix_of(base, PurePosixPath(entry.archive_path))
            if settled is not None:
                return (settled,)
        return ()

    def _name(self, entry: ManifestEntry) -> str:
        """The file's name in the archive: the library's (an original name, an edit's E
        name) where it has one, else the phone's."""
        return self._hints.archive_name(entry) if self._hints is not None else entry.name

    def _destination(self, capture: CaptureDate, name: str) -> PurePosixPath:
        return render_destination(
            self._settings.layout, capture, name, self._device_name, self._udid
        )

    @staticmethod
    def _base(member: DownloadedMember) -> PurePosixPath:
        assert member.base_target is not None
        return member.base_target

    # -- what the archive holds ----------------------------------------------------------------

    def _archive_file_exists(self, relative_path: str) -> bool:
        path = Path(relative_path)
        full = path if path.is_absolute() else self._settings.archive_root / path
        return full.is_file()

    async def _occupant(self, target: PurePosixPath, content_hash: str) -> str:
        """:data:`FREE`, :data:`SAME` (this content is already there) or :data:`OTHER`."""
        full = self._settings.archive_root / target
        # The archive may be a slow (USB) disk: its stats run off the event loop.
        kind = await asyncio.to_thread(_kind_on_disk, full)
        if kind != "file":
            return FREE if kind == "nothing" else OTHER
        known = self._store.archive_entry(str(target))
        if known is not None:
            return SAME if known.content_hash == content_hash else OTHER
        on_disk = await asyncio.to_thread(hash_file, full)
        return SAME if on_disk == content_hash else OTHER


#: What :func:`_move_all_if_free` did: whether each member was moved, in order (as far as it
#: got), and the write error that stopped it, with the name it was writing.
MovesDone = tuple[list[bool], tuple[OSError, Path] | None]


def _move_all_if_free(moves: list[tuple[Path, Path]]) -> MovesDone | None:
    """Move each (partial, final) into place when no final name exists (not even a dangling
    link); None, with nothing moved, when one does. Runs in a worker thread."""
    if any(os.path.lexists(final) for _, final in moves):
        return None
    placed: list[bool] = []
    for partial, final in moves:
        try:
            place_without_replacing(partial, final)
        except PlacementError:
            placed.append(False)
        except OSError as error:
            return placed, (error, final)
        else:
            placed.append(True)
    return placed, None


def _kind_on_disk(path: Path) -> str:
    """``nothing`` (no entry, not even a dangling link), ``file`` (a regular file, not a link)
    or ``other`` (a link, a folder, a device ...)."""
    if not os.path.lexists(path):
        return "nothing"
    if path.is_symlink() or not path.is_file():
        return "other"
    return "file"
