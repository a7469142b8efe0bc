"""What a re-plug may skip: folder summaries, the rotating check and the full check.

:class:`~rollkeeper.importer.reconcile.ManifestReconciler` asks this module, before and after
listing the phone, three things:

* which folders its last listing still vouches for (:func:`folder_unchanged`): the folder's own
  stat and the fingerprint of its names are as recorded, every checked name is a present row,
  and every file is archived. Such a folder costs no manifest read and no per-file work;
* which settled files to re-stat whatever their folder says (:class:`RotatingCheck`): a file
  rewritten in place leaves its folder's stat alone, so each scan stats a slice of the least
  recently checked ones (``domain.folder_summary.rotating_slice_size``) in flight together with
  the listing, and a mismatch sends its whole folder through the full comparison;
* whether every file is due a stat anyway (:func:`full_check_is_due`,
  ``schedule.full_check_days``).

The rules themselves (the fingerprint, the slice size, the period) are pure, in
:mod:`rollkeeper.domain.folder_summary`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rollkeeper.device.scan import PhoneStats
from rollkeeper.domain.folder_summary import (
    FolderStat,
    full_check_due,
    names_fingerprint,
    rotating_slice_size,
)
from rollkeeper.ports import FolderSummaryStore
from rollkeeper.store.phone_folders import CheckedFile, FolderSummary

#: ``schedule.full_check_days``' default: every file is stat'ed at least once a week.
DEFAULT_FULL_CHECK_DAYS = 7.0


def folder_unchanged(
    summary: FolderSummary | None, stat: FolderStat | None, names: list[str], fingerprint: str
) -> bool:
    """True when the folder's last summary vouches for every file in it now."""
    return (
        summary is not None
        and stat is not None
        and stat.complete
        and summary.stat == stat
        and summary.names_fingerprint == fingerprint
        and summary.file_count == len(names)
        and not summary.has_unarchived
    )


def new_summary(
    folder: str, stat: FolderStat | None, names: list[str], present: int
) -> FolderSummary:
    """The summary to record for a folder just compared file by file."""
    return FolderSummary(folder, stat or FolderStat(), names_fingerprint(names), present)


def full_check_is_due(
    store: FolderSummaryStore, udid: str, now: datetime, period_days: float
) -> bool:
    """Whether this scan must stat every file (no full check yet, or the last is too old)."""
    recorded = store.full_check_at(udid)
    last = None if recorded is None else datetime.fromisoformat(recorded)
    return full_check_due(last, now, period_days)


@dataclass(slots=True)
class RotatingCheck:
    """The slice of settled files one scan re-stats, and what the stats said."""

    files: list[CheckedFile] = field(default_factory=list)
    #: Rows whose stat matched the manifest: ``checked_at`` moves to now.
    matched: list[int] = field(default_factory=list)
    #: Folders in which a file of the slice no longer matches (replaced in place, gone,
    #: refused): compared file by file this scan.
    changed_folders: set[str] = field(default_factory=set)

    @classmethod
    def pick(cls, store: FolderSummaryStore, udid: str, settled_files: int) -> RotatingCheck:
        """The least recently checked slice for a phone of ``settled_files`` settled files."""
        if settled_files <= 0:
            return cls()
        return cls(store.least_recently_checked(udid, rotating_slice_size(settled_files)))

    async def run(self, stats: PhoneStats) -> None:
        """Stat the slice (all in flight together, bounded by ``stats``) and sort the outcomes."""
        outcomes = await stats.stat_many([(checked.folder, checked.name) for checked in self.files])
        for checked, outcome in zip(self.files, outcomes, strict=True):
            same = outcome.rejection == "" and (outcome.size, outcome.birth_time_ns) == (
                checked.size,
                checked.birth_time_ns,
            )
            if same:
                self.matched.append(checked.id)
            else:
                # Another identity, gone (VANISHED) or refused: compare the folder in full.
                self.changed_folders.add(checked.folder)
