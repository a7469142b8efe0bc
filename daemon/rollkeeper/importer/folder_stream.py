"""Plan the copy folder by folder, as the scan records each folder, so a first backup streams.

A first backup of 100,000 files used to list and stat the whole phone before the first byte
was copied. Here each folder the scan has recorded is selected (the config's filters) and
grouped (:mod:`.plan`) at once, its files join the run's totals, and its groups are handed to
the copy (:meth:`GroupPipeline.copy` takes this stream as an async iterable).

The scan and the copy share one link. A copy given every group as it arrives takes the link
from the stats (in an earlier attempt the plan then took 31 s instead of 8): while the scan goes
on, the copy may take only :data:`GROUPS_PER_FOLDER_WHILE_SCANNING` groups for each folder
that arrived, the rest once the scan is done.

The groups go to the copy in exactly the order of a whole plan: grouping never crosses
folders, so planning a folder alone gives the groups a whole plan would, folders arrive in the
plan's order, and the groups that failed in an earlier run go last of all (a file the phone
cannot serve must not keep the others from being copied). Placement is in that order, so
collision suffixes and dedup decide as they would after a whole scan: the archive is the same.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, MutableMapping

from rollkeeper.domain.filters import FileFilter
from rollkeeper.importer.ledger import RunLedger
from rollkeeper.importer.plan import PlannedGroup, plan_groups, select_files
from rollkeeper.ports import BackupStore
from rollkeeper.store.records import FAILED, ManifestEntry

#: Groups of each folder handed to the copy while the scan goes on (the others once it is
#: done): enough for the first byte to move at once, few enough that the stats keep the link.
#: Measured with bench/first_scan.py (docs/benchmarks.md, "4. First scan").
GROUPS_PER_FOLDER_WHILE_SCANNING = 1


def by_folder(present: list[ManifestEntry]) -> list[list[ManifestEntry]]:
    """A whole scan's present entries cut into their folders (they come folder by folder)."""
    folders: dict[str, list[ManifestEntry]] = {}
    for entry in present:
        folders.setdefault(entry.folder, []).append(entry)
    return list(folders.values())


def _failed_before(group: PlannedGroup) -> bool:
    return any(member.status == FAILED for member in group[1])


class FolderStream:
    """The groups to copy, folder by folder as the scan records them; totals grow with them.

    ``while_scanning`` None hands every group at once (nothing is copied before the scan is
    done in that case: the run heals the archive first).
    """

    def __init__(
        self,
        store: BackupStore,
        rules: FileFilter,
        ledger: RunLedger,
        present_by_path: MutableMapping[str, ManifestEntry],
        while_scanning: int | None = GROUPS_PER_FOLDER_WHILE_SCANNING,
    ) -> None:
        self._store = store
        self._rules = rules
        self._ledger = ledger
        #: The placer's view of the present files of the folders planned so far.
        self._present_by_path = present_by_path
        self._while_scanning = while_scanning
        #: The groups not yet handed over, in plan order (folder by folder).
        self._ready: collections.deque[PlannedGroup] = collections.deque()
        #: Groups the copy may still take while the scan goes on.
        self._allowed = 0
        self._failed: list[PlannedGroup] = []
        self._arrived = asyncio.Event()
        self._scanning = True
        self._closed = False
        #: What the filters made of the folders so far (the run's counts at the end).
        self.already_archived = 0
        self.excluded = 0
        #: Groups handed to the copy before the scan was done (for the log and the tests).
        self.groups_while_scanning = 0

    def add_folder(self, folder: str, present: list[ManifestEntry]) -> None:
        """One folder's present files, just recorded by the scan: select, group, hand over."""
        del folder  # the entries carry it; the name is for the scan's callback signature
        selection = select_files(present, self._rules)
        for file_id, status, reason in selection.status_changes:
            self._store.set_file_status(file_id, status, reason)
        self.already_archived += selection.already_archived
        self.excluded += selection.excluded
        if not selection.to_copy:
            return
        plan = plan_groups(present, selection.to_copy)
        self._present_by_path.update(plan.present_by_path)
        self._ledger.add_totals(selection.to_copy)
        fresh = [group for group in plan.groups if not _failed_before(group)]
        self._failed.extend(group for group in plan.groups if _failed_before(group))
        self._ready.extend(fresh)
        if fresh and self._while_scanning is not None:
            self._allowed += self._while_scanning
        self._ledger.publish_progress("")
        self._arrived.set()

    def scan_done(self) -> None:
        """Every folder is in: every group may go to the copy, those that failed last."""
        self._scanning = False
        self._ready.extend(self._failed)
        self._failed = []
        self._arrived.set()

    def close(self) -> None:
        """The scan failed (the phone went): hand nothing more; the copy ends with what it
        already took."""
        self._scanning = False
        self._closed = True
        self._ready.clear()
        self._arrived.set()

    def _may_hand(self) -> bool:
        """Whether the next group may go to the copy now."""
        if self._closed or not self._ready:
            return False
        return not self._scanning or self._while_scanning is None or self._allowed > 0

    def ready_now(self) -> bool:
        """Whether a next group can be taken without waiting for the scan (the copy starts a
        batch of small files that is still filling when not)."""
        return self._may_hand() or not self._scanning

    def __aiter__(self) -> AsyncIterator[PlannedGroup]:
        return self._groups()

    async def _groups(self) -> AsyncIterator[PlannedGroup]:
        while True:
            while self._may_hand():
                if self._scanning:
                    self._allowed -= 1
                    self.groups_while_scanning += 1
                yield self._ready.popleft()
            if not self._scanning:
                return
            self._arrived.clear()
            await self._arrived.wait()
