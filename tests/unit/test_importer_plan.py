"""A run's plan: which present files it copies, which it excludes (and writes so), and groups."""

from __future__ import annotations

from rollkeeper.domain.files import MediaKind
from rollkeeper.domain.filters import FileFilter
from rollkeeper.importer.plan import plan_groups, select_files
from rollkeeper.store import ARCHIVED, EXCLUDED, FAILED, PENDING
from rollkeeper.store.records import ManifestEntry

FOLDER = "/DCIM/100APPLE"


def entry(
    entry_id: int, name: str, status: str = PENDING, reason: str = "", folder: str = FOLDER
) -> ManifestEntry:
    return ManifestEntry(entry_id, "U1", folder, name, 10, 1, 1, status, True, None, None, reason)


def test_selection_copies_pending_and_failed_and_writes_only_changed_exclusions() -> None:
    """Archived files are counted, excluded ones counted (their status written only when it is
    new or its reason changed), files no longer excluded go back to pending and are copied."""
    present = [
        entry(1, "IMG_0001.HEIC", ARCHIVED),
        entry(2, "IMG_0002.MOV"),
        entry(3, "IMG_0003.MOV", EXCLUDED, "media_kind_video_not_selected"),
        entry(4, "IMG_0004.MOV", EXCLUDED, "before_since_date"),
        entry(5, "IMG_0005.JPG", FAILED, "read_error"),
        entry(6, "IMG_0006.JPG", EXCLUDED, "screenshot"),
        entry(7, "notes.txt"),
    ]
    rules = FileFilter(media_kinds=frozenset({MediaKind.PHOTO}))
    selection = select_files(present, rules)
    assert [item.id for item in selection.to_copy] == [5, 6]
    assert (selection.already_archived, selection.excluded) == (1, 4)
    assert selection.status_changes == [
        (2, EXCLUDED, "media_kind_video_not_selected"),
        (4, EXCLUDED, "media_kind_video_not_selected"),
        (6, PENDING, ""),
        (7, EXCLUDED, "not_media"),
    ]


def test_groups_keep_archived_members_out_and_put_failed_groups_last() -> None:
    """A Live Photo whose photo is archived is planned with its video only; groups that failed
    before go after the others; folders with nothing to copy are not grouped at all."""
    photo = entry(1, "IMG_0001.HEIC", ARCHIVED)
    video = entry(2, "IMG_0001.MOV", FAILED, "read_error")
    other = entry(3, "IMG_0002.JPG")
    elsewhere = entry(4, "IMG_0100.JPG", ARCHIVED, folder="/DCIM/101APPLE")
    plan = plan_groups([photo, video, other, elsewhere], [video, other])
    assert [[member.id for member in members] for _group, members in plan.groups] == [[3], [2]]
    assert [member.path for member in plan.groups[1][0].members] == [
        photo.phone_path,
        video.phone_path,
    ]
    assert set(plan.present_by_path) == {photo.phone_path, video.phone_path, other.phone_path}
