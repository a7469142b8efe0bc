"""Which phone files a backup skips on purpose, and why (pure: the config's filters as rules).

An excluded file is not a failure: ``audit`` lists it as excluded and a run can be complete with
excluded files. The ``since`` date is compared with the phone's birth time, known from the scan
before any byte is read (the capture date is only known after the download).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from rollkeeper.domain.files import MediaKind, is_screenshot, media_kind


@dataclass(frozen=True, slots=True)
class FileFilter:
    """The ``[filters]`` settings that apply to single files."""

    media_kinds: frozenset[MediaKind] = frozenset(MediaKind)
    since: date | None = None
    screenshots: bool = True


def exclusion_reason(name: str, birth_time_ns: int, rules: FileFilter) -> str | None:
    """Why a file is excluded (a short snake_case reason), or None when it is to be backed up."""
    kind = media_kind(name)
    if kind is None:
        return "not_media"
    if kind not in rules.media_kinds:
        return f"media_kind_{kind.value}_not_selected"
    if not rules.screenshots and is_screenshot(name):
        return "screenshot"
    if rules.since is not None:
        try:
            born = datetime.fromtimestamp(birth_time_ns / 1e9).date()
        except (OverflowError, OSError, ValueError):
            return None
        if born < rules.since:
            return "before_since_date"
    return None


def device_selected(udid: str, name: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    """Whether a phone is backed up under the per-phone include/exclude lists (UDID or name)."""
    keys = {udid, name}
    include_set = set(include)
    if include_set and not keys & include_set:
        return False
    return not keys & set(exclude)
