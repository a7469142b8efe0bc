"""Heal what the presence check found: follow moved files, quarantine damage, copy again.

Checked by :class:`~rollkeeper.importer.job.BackupRun` before the scan (:meth:`ArchiveHealer.check`)
and, when the check found something, healed after the scan, before anything is copied or called
archived (docs/archive-truth.md):

* a **suspect** (stats moved, or the last re-hash failed) is hashed: the recorded hash means
  it is fine (its stats are stamped again); another hash means it is damaged;
* a **missing** file is first looked for elsewhere in the archive by content (the user moved
  or renamed it): then the record follows the file and nothing is copied;
* a **damaged** or resized copy is never deleted: it moves to the working folder's
  ``quarantine/`` with a ``archive_file_quarantined`` event;
* what is still missing is copied again from the phone when the phone holds it, and kept only
  when its hash is the **recorded** one (``restored``); a phone copy with other content is a
  new version, left to the normal copy (kept beside), and the old content is ``lost``;
* a file the phone no longer holds is ``lost`` (listed by ``status``, ``history --failed``,
  ``verify``) until it comes back or the user says ``rollkeeper forget``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import structlog

from rollkeeper.archive.boundary import make_archive_folders
from rollkeeper.archive.locations import WORKING_FOLDER_NAME, walk_file_paths
from rollkeeper.archive.presence import (
    DAMAGED,
    MISSING,
    RESIZED,
    PresenceReport,
    check_presence,
    placed_stats,
)
from rollkeeper.host.durability import fsync_folder
from rollkeeper.importer.hashing import hash_file
from rollkeeper.importer.partials import partial_path
from rollkeeper.importer.placement import PlacementError, place_without_replacing
from rollkeeper.importer.transfer import SizeMismatchError, download_to_partial
from rollkeeper.ports import PhoneFiles, PhoneReadError
from rollkeeper.store.archive_truth import (
    FOLLOWED,
    LOST,
    RESTORED,
    ArchiveTruthRepository,
    PlacedFile,
)
from rollkeeper.store.records import PENDING, RunCounts

log = structlog.get_logger("rollkeeper.backup")

QUARANTINE_FOLDER = "quarantine"


class ArchiveHealer:
    """Checks one phone's archived files and heals what is missing or damaged."""

    def __init__(
        self,
        truth: ArchiveTruthRepository,
        set_file_status: Callable[[int, str, str], None],
        add_run_failure: Callable[[int, str, str, str], None],
        root: Path,
        files: PhoneFiles,
        udid: str,
        run_id: int,
        counts: RunCounts,
        clock: Callable[[], datetime],
    ) -> None:
        self._truth = truth
        self._set_file_status = set_file_status
        self._add_run_failure = add_run_failure
        self._root = root
        self._files = files
        self._udid = udid
        self._run_id = run_id
        self._counts = counts
        self._clock = clock
        #: Untracked archive files by size, built on the first missing file (moved files).
        self._untracked: dict[int, list[str]] | None = None
        #: Findings still open after this run (a copy failed): the run cannot be complete.
        self.still_open = 0

    async def check(self) -> PresenceReport:
        """Check that every file counted as archived is there (nothing healed yet): what
        the check saw, with the stats it could stamp again recorded."""
        truth = self._truth
        skip = {finding.relative_path for finding in truth.findings(["forgotten"])}
        placed = truth.placed_rows(self._udid)
        report = await asyncio.to_thread(check_presence, self._root, placed, skip)
        truth.record_placed_stats(report.to_stamp)
        return report

    async def heal(self, report: PresenceReport | None = None) -> PresenceReport:
        """Deal with every finding of ``report`` (checked first when not given); returns what
        the check saw."""
        if report is None:
            report = await self.check()
        truth = self._truth
        self._with_hashes(report)
        damaged: list[tuple[PlacedFile, str, str]] = [
            (item, RESIZED, f"{size} bytes, recorded {item.size}") for item, size in report.resized
        ]
        for suspect in report.suspects:
            path = self._root / suspect.placed.relative_path
            on_disk = await asyncio.to_thread(_hash_or_empty, path)
            if on_disk == suspect.placed.content_hash:
                truth.record_placed_stats(
                    await asyncio.to_thread(
                        placed_stats, self._root, [suspect.placed.relative_path]
                    )
                )
                truth.mark_verified_now(suspect.placed.relative_path, self._clock())
                truth.close_finding(
                    suspect.placed.relative_path, RESTORED, self._run_id, "", self._clock()
                )
                continue
            damaged.append((suspect.placed, DAMAGED, suspect.why))
        for item in report.missing:
            if await self._follow_moved(item):
                continue
            await self._restore(item, MISSING, "not in the archive")
        for item, kind, detail in damaged:
            quarantined = await asyncio.to_thread(self._quarantine, item)
            self._truth.open_finding(
                item.relative_path, kind, item.content_hash, detail, self._clock()
            )
            self._truth.set_quarantine(item.relative_path, quarantined)
            log.warning(
                "archive_file_quarantined",
                udid=self._udid,
                path=item.relative_path,
                quarantine=quarantined,
                kind=kind,
                detail=detail,
            )
            await self._restore(item, kind, detail)
        return report

    def _with_hashes(self, report: PresenceReport) -> None:
        """Fill in the recorded hashes of the files in question (read only for them)."""

        def hashed(item: PlacedFile) -> PlacedFile:
            return replace(item, content_hash=self._truth.recorded_hash(item.relative_path) or "")

        report.missing = [hashed(item) for item in report.missing]
        report.resized = [(hashed(item), size) for item, size in report.resized]
        report.suspects = [replace(s, placed=hashed(s.placed)) for s in report.suspects]

    # -- moved files ---------------------------------------------------------------------------

    async def _follow_moved(self, item: PlacedFile) -> bool:
        """Look for the file's content elsewhere in the archive; follow it if found."""
        if self._untracked is None:
            tracked = self._truth.tracked_paths()
            self._untracked = await asyncio.to_thread(self._untracked_by_size, tracked)
        for candidate in list(self._untracked.get(item.size, [])):
            on_disk = await asyncio.to_thread(_hash_or_empty, self._root / candidate)
            if on_disk != item.content_hash:
                continue
            self._untracked[item.size].remove(candidate)
            self._truth.move_record(item.relative_path, candidate)
            self._truth.record_placed_stats(
                await asyncio.to_thread(placed_stats, self._root, [candidate])
            )
            self._truth.open_finding(
                item.relative_path, MISSING, item.content_hash, "", self._clock()
            )
            self._truth.close_finding(
                item.relative_path, FOLLOWED, self._run_id, f"moved to {candidate}", self._clock()
            )
            log.info(
                "archive_file_followed", udid=self._udid, path=item.relative_path, now_at=candidate
            )
            return True
        return False

    def _untracked_by_size(self, tracked: set[str]) -> dict[int, list[str]]:
        prefix = str(self._root) + os.sep
        by_size: dict[int, list[str]] = {}
        for full in walk_file_paths(str(self._root), skip_working_folder_of=self._root):
            relative = full[len(prefix) :]
            if relative in tracked or relative.endswith(".xmp"):
                continue
            try:
                size = os.lstat(full).st_size
            except OSError:
                continue
            by_size.setdefault(size, []).append(relative)
        return by_size

    # -- damage --------------------------------------------------------------------------------

    def _quarantine(self, item: PlacedFile) -> str:
        """Move the damaged copy into the working folder's quarantine (never delete it);
        returns where it went, relative to the archive (runs in a worker thread)."""
        source = self._root / item.relative_path
        folder = self._root / WORKING_FOLDER_NAME / QUARANTINE_FOLDER / f"run-{self._run_id}"
        target = folder / item.relative_path
        make_archive_folders(target.parent)  # fsync'ed: the damaged copy must survive a cut
        os.rename(source, target)
        fsync_folder(source.parent)
        fsync_folder(target.parent)
        return str(target.relative_to(self._root))

    # -- copying again ---------------------------------------------------------------------------

    async def _restore(self, item: PlacedFile, kind: str, detail: str) -> None:
        truth = self._truth
        now = self._clock()
        truth.open_finding(item.relative_path, kind, item.content_hash, detail, now)
        entry = truth.phone_file_for(self._udid, item.relative_path)
        if entry is None:
            self._lost(item, kind, "missing from the archive, no longer on the phone")
            return
        partial = partial_path(self._root, self._udid, entry)
        try:
            outcome = await download_to_partial(self._files, entry.phone_path, entry.size, partial)
        except (PhoneReadError, SizeMismatchError) as error:
            self.still_open += 1
            log.warning(
                "archive_restore_failed", udid=self._udid, path=item.relative_path, error=str(error)
            )
            return
        if outcome.content_hash != item.content_hash:
            # Other content under the same identity: a new version, copied beside by the
            # normal path; the archived content itself is gone.
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            self._set_file_status(entry.id, PENDING, "")
            self._lost(item, kind, "the phone's copy has other content")
            return
        final = self._root / item.relative_path
        try:
            await asyncio.to_thread(place_without_replacing, partial, final)
        except PlacementError:
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            self.still_open += 1
            return
        truth.record_placed_stats(
            await asyncio.to_thread(placed_stats, self._root, [item.relative_path])
        )
        truth.mark_verified_now(item.relative_path, now)
        truth.close_finding(item.relative_path, RESTORED, self._run_id, "", now)
        self._counts.files_restored += 1
        log.info("archive_file_restored", udid=self._udid, path=item.relative_path, kind=kind)

    def _lost(self, item: PlacedFile, kind: str, detail: str) -> None:
        """Settle a finding as lost: counted, listed by history --failed, status and verify."""
        self._truth.close_finding(item.relative_path, LOST, self._run_id, detail, self._clock())
        self._counts.files_lost += 1
        phone_path = self._truth.phone_path_of(self._udid, item.relative_path)
        self._add_run_failure(
            self._run_id, phone_path or item.relative_path, "archive_file_lost", item.relative_path
        )
        log.error(
            "archive_file_lost", udid=self._udid, path=item.relative_path, kind=kind, detail=detail
        )


def _hash_or_empty(path: Path) -> str:
    try:
        return hash_file(path)
    except OSError:
        return ""
