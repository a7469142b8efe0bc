"""Group a folder's files the way Photos relates them: Live Photos, edits and sidecars.

An iPhone photo can be several files in one folder:

* ``IMG_1234.HEIC`` the original photo, ``IMG_1234.MOV`` its Live Photo video;
* ``IMG_E1234.HEIC`` / ``IMG_E1234.MOV`` the rendered edit (``E`` for edited);
* ``IMG_1234.AAE`` the edit instructions, ``IMG_O1234.AAE`` the original's adjustments.

They share the number ``1234`` and belong together in the archive: one folder, matching names,
one collision suffix for all. Files whose names do not follow the ``PREFIX_[E|O]digits`` pattern
group by their stem (the name without its extension). Grouping never crosses folders: a
``100APPLE/IMG_0001`` and a ``101APPLE/IMG_0001`` are different photos (numbering restarts).
Names are compared exactly (case-sensitively), as the phone's file system does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rollkeeper.domain.files import MediaKind, PhoneFile, media_kind, stem_of

#: ``IMG_E1234`` -> prefix ``IMG``, marker ``E``, number ``1234``.
_APPLE_STEM = re.compile(r"^(?P<prefix>[A-Za-z]+)_(?P<marker>[EO]?)(?P<number>[0-9]+)$")


@dataclass(frozen=True)
class MediaGroup:
    """Files of one folder that belong to one photo or video.

    ``key`` is the shared name without marker and extension (``IMG_1234``); it is unique within
    a folder, not across folders (see :attr:`folder`). ``members`` are sorted by name and include
    ``primary``: the original photo, else the original video, else an edited photo, else an
    edited video, else the first member. The primary's capture date decides the group's folder.
    """

    key: str
    members: tuple[PhoneFile, ...]
    primary: PhoneFile

    @property
    def folder(self) -> str:
        """The phone-side folder all members are in."""
        return self.primary.folder


def group_key(name: str) -> str:
    """The group a file name belongs to within its folder: ``IMG_E1234.MOV`` -> ``IMG_1234``."""
    stem = stem_of(name)
    match = _APPLE_STEM.match(stem)
    if match is None:
        return stem
    return f"{match['prefix']}_{match['number']}"


def _is_derived(name: str) -> bool:
    """Whether a name carries Apple's ``E`` (edit) or ``O`` (original adjustments) marker."""
    match = _APPLE_STEM.match(stem_of(name))
    return match is not None and match["marker"] != ""


def _primary_rank(file: PhoneFile) -> tuple[int, str]:
    kind = media_kind(file.name)
    derived = _is_derived(file.name)
    if kind is MediaKind.PHOTO:
        rank = 2 if derived else 0
    elif kind is MediaKind.VIDEO:
        rank = 3 if derived else 1
    else:
        rank = 4
    return (rank, file.name)


def group_files(files: Iterable[PhoneFile]) -> list[MediaGroup]:
    """Group files per folder and key; groups come sorted by (folder, key).

    Two entries with the same path cannot both be on a phone; if a caller passes duplicates,
    both are kept as members (nothing is dropped silently).
    """
    buckets: dict[tuple[str, str], list[PhoneFile]] = {}
    for file in files:
        buckets.setdefault((file.folder, group_key(file.name)), []).append(file)
    groups = []
    for (_, key), members in sorted(buckets.items()):
        ordered = tuple(sorted(members, key=lambda member: (member.name, member.identity)))
        primary = min(ordered, key=_primary_rank)
        groups.append(MediaGroup(key=key, members=ordered, primary=primary))
    return groups
