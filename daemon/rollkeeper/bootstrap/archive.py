"""The archive's availability check, built for the run, the commands and the offsite job.

One check (:mod:`rollkeeper.archive.identity`) everywhere: a backup run asks it before it
writes, ``status`` and the scrub before they call anything archived, the offsite job before it
copies (an unmounted disk's empty mount point must not become an empty snapshot).
"""

from __future__ import annotations

from pathlib import Path

from rollkeeper.archive.identity import ArchiveGuard
from rollkeeper.config import Config
from rollkeeper.domain.archive_state import ArchiveProblem
from rollkeeper.offsite.archive_check import ArchiveAvailability, ArchiveCheck
from rollkeeper.offsite.archive_check import archive_availability as plain_availability
from rollkeeper.store import StateStore


def archive_guard(config: Config) -> ArchiveGuard:
    """The availability check of the config's archive folder."""
    return ArchiveGuard(Path(config.archive.path))


def archive_availability(store: StateStore) -> ArchiveCheck:
    """The offsite job's question "is the archive there?", answered by the identity check
    against ``store`` (read-only: it never makes a marker or a folder)."""

    def check(root: Path) -> ArchiveAvailability:
        state = ArchiveGuard(root).check(store.archive_truth)
        if state.available:
            return ArchiveAvailability(True)
        if state.problem in (ArchiveProblem.NEW, ArchiveProblem.UPGRADE):
            # No marker yet (no backup run since issue 13, or none at all): the next run
            # makes it; until then the plain check (there, and not empty) decides.
            return plain_availability(root)
        return ArchiveAvailability(False, state.reason)

    return check
