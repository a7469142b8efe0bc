"""The scrub's rotation, pure: which files one run takes, and whether the budget per run lets
the runs of the cron cadence cover the whole archive within the rotation.

A run takes the files verified longest ago while they fit in its byte budget
(:func:`select_batch`); with a budget of at least

    archive bytes / runs per rotation + the largest file

every file is re-verified within the rotation (:func:`needed_bytes_per_run`; the largest file
is the slack lost when the next file does not fit). :func:`rotation_budget` counts the cron's
runs in the rotation and compares.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

    from rollkeeper.store.state import ArchiveEntry

#: Counting cron fire times stops here: beyond it the needed budget per run is tiny anyway, and
#: a once-a-minute cron over a year would otherwise cost half a million iterations.
MAX_COUNTED_RUNS = 5000


@dataclass(frozen=True, slots=True)
class RotationBudget:
    """Whether ``bytes_per_run`` lets the scrub cover the archive within the rotation."""

    runs_per_rotation: int
    archive_bytes: int
    largest_file_bytes: int
    bytes_per_run: int
    needed_bytes_per_run: int

    @property
    def sufficient(self) -> bool:
        """True when the configured budget meets the rotation."""
        return self.bytes_per_run >= self.needed_bytes_per_run


def count_runs(trigger: CronTrigger, start: datetime, end: datetime) -> int:
    """How many times ``trigger`` fires in ``(start, end]`` (at most :data:`MAX_COUNTED_RUNS`)."""
    count = 0
    fire = trigger.get_next_fire_time(None, start + timedelta(seconds=1))
    while fire is not None and fire <= end and count < MAX_COUNTED_RUNS:
        count += 1
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return count


def needed_bytes_per_run(runs_per_rotation: int, archive_bytes: int, largest_file: int) -> int:
    """The smallest per-run budget that re-verifies ``archive_bytes`` in that many runs.

    Each run checks files in order until the next one does not fit, so it can fall short of its
    budget by less than one file: hence the largest file on top of an even share. A budget of
    the whole archive always suffices (one run covers everything).
    """
    if archive_bytes == 0:
        return 0
    if runs_per_rotation <= 0:
        # The cron does not fire even once within the rotation: no budget is enough.
        return archive_bytes + 1
    return min(archive_bytes, math.ceil(archive_bytes / runs_per_rotation) + largest_file)


def rotation_budget(
    trigger: CronTrigger,
    now: datetime,
    rotation_weeks: float,
    archive_bytes: int,
    largest_file: int,
    bytes_per_run: int,
) -> RotationBudget:
    """Compare the configured budget with what the cron cadence needs to meet the rotation."""
    runs = count_runs(trigger, now, now + timedelta(weeks=rotation_weeks))
    return RotationBudget(
        runs_per_rotation=runs,
        archive_bytes=archive_bytes,
        largest_file_bytes=largest_file,
        bytes_per_run=bytes_per_run,
        needed_bytes_per_run=needed_bytes_per_run(runs, archive_bytes, largest_file),
    )


def select_batch(entries: Iterable[ArchiveEntry], bytes_per_run: int) -> list[ArchiveEntry]:
    """Take entries in the given order while they fit in the budget.

    The first entry is always taken (even when larger than the budget) so the rotation never
    stalls; after that, the batch stops at the first entry that would overflow, keeping strict
    oldest-first order rather than skipping ahead to smaller files.
    """
    batch: list[ArchiveEntry] = []
    spent = 0
    for entry in entries:
        if batch and spent + entry.size > bytes_per_run:
            break
        batch.append(entry)
        spent += entry.size
        if spent >= bytes_per_run:
            break
    return batch
