"""Which of the files the scan found a run copies, and in which groups and order (pure).

Selection applies the config's filters: archived files are counted, excluded ones are marked
with their reason, the rest is to copy. Grouping puts each file to copy with its Live Photo
pair, edit and sidecars (:func:`rollkeeper.domain.grouping.group_files`), so a group's members
get one capture date and one collision suffix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rollkeeper.domain.files import PhoneFile
from rollkeeper.domain.filters import FileFilter, exclusion_reason
from rollkeeper.domain.grouping import MediaGroup, group_files
from rollkeeper.store.records import ARCHIVED, EXCLUDED, FAILED, PENDING, ManifestEntry

#: A group to copy and those of its members that need copying (archived members do not).
PlannedGroup = tuple[MediaGroup, list[ManifestEntry]]


@dataclass(slots=True)
class Selection:
    """What the filters made of the present files."""

    to_copy: list[ManifestEntry] = field(default_factory=list)
    already_archived: int = 0
    excluded: int = 0
    #: (file id, status, reason) to write, in the order of the files: an exclusion that is new
    #: or has a new reason, or a file no longer excluded going back to pending.
    status_changes: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass(slots=True)
class GroupPlan:
    """The groups to copy, in order, and the present files of their folders by phone path."""

    groups: list[PlannedGroup]
    present_by_path: dict[str, ManifestEntry]


def phone_file(entry: ManifestEntry) -> PhoneFile:
    """A manifest entry as the domain's phone file."""
    return PhoneFile(
        path=entry.phone_path,
        size=entry.size,
        birth_time_ns=entry.birth_time_ns,
        modified_time_ns=entry.modified_time_ns,
    )


def select_files(present: Iterable[ManifestEntry], rules: FileFilter) -> Selection:
    """Apply the filters: the entries to copy (pending or failed, not excluded)."""
    selection = Selection()
    for entry in present:
        if entry.status == ARCHIVED:
            selection.already_archived += 1
            continue
        reason = exclusion_reason(entry.name, entry.birth_time_ns, rules)
        if reason is not None:
            if entry.status != EXCLUDED or entry.failure_reason != reason:
                selection.status_changes.append((entry.id, EXCLUDED, reason))
            selection.excluded += 1
            continue
        if entry.status == EXCLUDED:
            selection.status_changes.append((entry.id, PENDING, ""))
        selection.to_copy.append(entry)
    return selection


def plan_groups(present: Iterable[ManifestEntry], to_copy: list[ManifestEntry]) -> GroupPlan:
    """Group every present file (archived members decide nothing but sit in their group),
    keeping the groups that have something to copy.

    A group never spans folders, so only the folders with something to copy are grouped: a
    phone of 100,000 archived files and one new photo groups one folder, not 100,000 files.
    """
    wanted = {entry.phone_path for entry in to_copy}
    folders = {entry.folder for entry in to_copy}
    candidates = [entry for entry in present if entry.folder in folders]
    by_path = {entry.phone_path: entry for entry in candidates}
    groups: list[PlannedGroup] = []
    for group in group_files(phone_file(entry) for entry in candidates):
        members = [by_path[member.path] for member in group.members if member.path in wanted]
        if members:
            groups.append((group, members))
    # Groups that failed before go last: a file the phone cannot serve (it stops answering on
    # it) must not keep every file after it from being backed up, run after run.
    groups.sort(key=lambda item: any(member.status == FAILED for member in item[1]))
    return GroupPlan(groups, by_path)
