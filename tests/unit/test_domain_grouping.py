"""Grouping a folder's files into Live Photos, edits with their sidecars, and lone files."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rollkeeper.domain.files import PhoneFile
from rollkeeper.domain.grouping import group_files, group_key


def phone_file(path: str, size: int = 100, birth: int = 1) -> PhoneFile:
    return PhoneFile(path=path, size=size, birth_time_ns=birth, modified_time_ns=birth)


def names_by_key(files: list[PhoneFile]) -> dict[tuple[str, str], list[str]]:
    return {
        (group.folder, group.key): [member.name for member in group.members]
        for group in group_files(files)
    }


def test_live_photo_edit_and_sidecars_form_one_group_with_the_original_as_primary() -> None:
    """A Live Photo, its edit and their sidecars form one group keyed by the number, with the
    original photo as its primary."""
    folder = "/DCIM/100APPLE/"
    files = [
        phone_file(folder + name)
        for name in (
            "IMG_E1234.MOV",
            "IMG_1234.AAE",
            "IMG_E1234.HEIC",
            "IMG_1234.MOV",
            "IMG_O1234.AAE",
            "IMG_1234.HEIC",
        )
    ]
    [group] = group_files(files)
    assert group.key == "IMG_1234"
    assert group.primary.name == "IMG_1234.HEIC"
    assert [member.name for member in group.members] == sorted(file.name for file in files)


def test_primary_falls_back_to_video_then_edit_then_first() -> None:
    """Without the original photo a group's primary is its video, else its edited photo, else its
    edited video, else its first sidecar."""
    folder = "/DCIM/100APPLE/"
    [video_group] = group_files(
        [phone_file(folder + "IMG_1.AAE"), phone_file(folder + "IMG_1.MOV")]
    )
    assert video_group.primary.name == "IMG_1.MOV"
    # The original was backed up in an earlier run; now only the edit and sidecars are new.
    [edit_group] = group_files(
        [
            phone_file(folder + "IMG_O0002.AAE"),
            phone_file(folder + "IMG_E0002.MOV"),
            phone_file(folder + "IMG_E0002.HEIC"),
        ]
    )
    assert edit_group.key == "IMG_0002"
    assert edit_group.primary.name == "IMG_E0002.HEIC"
    [edited_video] = group_files(
        [phone_file(folder + "IMG_O3.AAE"), phone_file(folder + "IMG_E3.MOV")]
    )
    assert edited_video.primary.name == "IMG_E3.MOV"
    [sidecars_only] = group_files(
        [phone_file(folder + "IMG_O4.AAE"), phone_file(folder + "IMG_4.AAE")]
    )
    assert sidecars_only.primary.name == "IMG_4.AAE"


def test_groups_never_cross_folders() -> None:
    """Files of the same number in two folders form two groups."""
    files = [
        phone_file("/DCIM/100APPLE/IMG_0001.HEIC"),
        phone_file("/DCIM/101APPLE/IMG_0001.HEIC"),
        phone_file("/DCIM/101APPLE/IMG_0001.MOV"),
    ]
    assert names_by_key(files) == {
        ("/DCIM/100APPLE", "IMG_0001"): ["IMG_0001.HEIC"],
        ("/DCIM/101APPLE", "IMG_0001"): ["IMG_0001.HEIC", "IMG_0001.MOV"],
    }


def test_different_numbers_and_unrelated_names_stay_apart() -> None:
    """Names that only look alike (another number, a copy suffix, another prefix, no extension) stay
    in groups of their own, while a FullSizeRender photo and video share one."""
    folder = "/DCIM/100APPLE/"
    files = [
        phone_file(folder + name)
        for name in (
            "IMG_0001.HEIC",
            "IMG_00010.HEIC",  # not the same number as 0001
            "IMG_0002.JPG",
            "FullSizeRender.jpg",
            "FullSizeRender.mov",
            "IMG_0001 (1).HEIC",
            "IMG_X0001.HEIC",
            "README",
            "IMG_E.HEIC",
        )
    ]
    groups = names_by_key(files)
    assert groups[("/DCIM/100APPLE", "IMG_0001")] == ["IMG_0001.HEIC"]
    assert groups[("/DCIM/100APPLE", "IMG_00010")] == ["IMG_00010.HEIC"]
    assert groups[("/DCIM/100APPLE", "FullSizeRender")] == [
        "FullSizeRender.jpg",
        "FullSizeRender.mov",
    ]
    assert groups[("/DCIM/100APPLE", "IMG_0001 (1)")] == ["IMG_0001 (1).HEIC"]
    assert groups[("/DCIM/100APPLE", "IMG_X0001")] == ["IMG_X0001.HEIC"]
    assert groups[("/DCIM/100APPLE", "README")] == ["README"]
    assert groups[("/DCIM/100APPLE", "IMG_E")] == ["IMG_E.HEIC"]
    assert len(groups) == 8


def test_names_are_compared_case_sensitively() -> None:
    """Names that differ only in case are not grouped together."""
    files = [phone_file("/DCIM/100APPLE/IMG_1.HEIC"), phone_file("/DCIM/100APPLE/img_1.MOV")]
    assert len(group_files(files)) == 2


def test_group_key() -> None:
    """The group key drops the extension and the E or O marker of edits and originals."""
    assert group_key("IMG_E1234.HEIC") == "IMG_1234"
    assert group_key("IMG_O1234.AAE") == "IMG_1234"
    assert group_key("IMG_1234.MOV") == "IMG_1234"
    assert group_key("IMG_E1234") == "IMG_1234"
    assert group_key("Photo.tar.gz") == "Photo.tar"


def test_duplicate_entries_are_kept_not_dropped() -> None:
    """Two entries with the same path are both kept in their group, not merged."""
    twice = [
        phone_file("/DCIM/100APPLE/IMG_1.HEIC", size=1),
        phone_file("/DCIM/100APPLE/IMG_1.HEIC", size=2),
    ]
    [group] = group_files(twice)
    assert sorted(member.size for member in group.members) == [1, 2]


def test_empty_input() -> None:
    """No files make no groups."""
    assert group_files([]) == []


_names = st.builds(
    lambda prefix, marker, number, extension: f"{prefix}_{marker}{number}.{extension}",
    st.sampled_from(["IMG", "VID"]),
    st.sampled_from(["", "E", "O"]),
    st.sampled_from(["0001", "0002", "1234"]),
    st.sampled_from(["HEIC", "MOV", "AAE", "JPG"]),
)


@given(
    st.lists(
        st.tuples(st.sampled_from(["/DCIM/100APPLE", "/DCIM/101APPLE"]), _names),
        unique=True,
        max_size=30,
    )
)
def test_every_file_is_in_exactly_one_group_and_groups_are_consistent(
    entries: list[tuple[str, str]],
) -> None:
    """Every file lands in exactly one group of its folder and key, each primary is a member, and
    the groups come sorted by folder and key."""
    files = [phone_file(f"{folder}/{name}") for folder, name in entries]
    groups = group_files(files)
    members = [member for group in groups for member in group.members]
    assert sorted(member.path for member in members) == sorted(file.path for file in files)
    for group in groups:
        assert group.primary in group.members
        assert {member.folder for member in group.members} == {group.folder}
        assert {group_key(member.name) for member in group.members} == {group.key}
    keys = [(group.folder, group.key) for group in groups]
    assert keys == sorted(set(keys))
