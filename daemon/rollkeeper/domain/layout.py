"""Archive layout: where a file lands inside the user's archive folder.

Pure domain code (no I/O). The layout is the config key ``archive.layout``, a template such as
``{year}/{year}-{month}/{name}`` (the default). Folders are separated by ``/``; a placeholder is
a name from :data:`LAYOUT_PLACEHOLDERS` in braces; there are no format specs and no escapes.

Dates are the *local time of capture* (what the clock where the photo was taken showed), not
UTC and not the time of import: a photo taken at 00:30 on 1 January in Sydney (13:30 on
31 December in UTC) files under the new year, wherever the archive is.

Every rendered component is sanitised: values from the phone (``name``, ``stem``,
``extension``, ``device_name``, ``udid``) are untrusted, so a device called ``../../etc`` cannot
move a file out of the archive.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath

from rollkeeper.domain.files import extension_of, stem_of
from rollkeeper.domain.grouping import MediaGroup

LAYOUT_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "name",
        "stem",
        "extension",
        "device_name",
        "udid",
    }
)

#: The layout used when the config does not set ``archive.layout``.
DEFAULT_LAYOUT = "{year}/{year}-{month}/{name}"

#: Longest component written, in UTF-8 bytes (ext4/APFS allow 255).
MAX_COMPONENT_BYTES = 255
#: The file name keeps this many bytes free for a collision suffix (``~1234567``).
SUFFIX_RESERVE_BYTES = 8

_TOKEN = re.compile(r"\{([^{}]*)\}|([^{}]+)|([{}])")
_UNSAFE_CHARACTER = re.compile(r"[/\\\x00-\x1f\x7f-\x9f]")


class LayoutError(ValueError):
    """A layout that cannot be used; the message lists every problem."""


@dataclass(frozen=True)
class CaptureDate:
    """When a photo or video was taken, in the local time of capture.

    ``local`` is naive: the wall-clock time where it was taken. ``utc_offset`` is that place's
    offset from UTC when known (EXIF ``OffsetTimeOriginal``, Apple's QuickTime creationdate),
    else None. ``source`` says where the date came from: ``"exif"``, ``"quicktime"`` or
    ``"birth_time"`` (the phone's file creation time, the fallback).
    """

    local: datetime
    utc_offset: timedelta | None
    source: str

    def __post_init__(self) -> None:
        if self.local.tzinfo is not None:
            raise ValueError("CaptureDate.local must be naive (the local time of capture)")
        if self.utc_offset is not None and abs(self.utc_offset) >= timedelta(hours=24):
            raise ValueError(f"UTC offset out of range: {self.utc_offset}")


@functools.lru_cache(maxsize=64)
def _tokens(layout: str) -> tuple[tuple[str, str], ...]:
    """(kind, text) pairs: kind is "placeholder", "literal" or "stray" (an unmatched brace).

    Cached: a run renders every file's destination from the same few layout components.
    """
    tokens = []
    for match in _TOKEN.finditer(layout):
        placeholder, literal, stray = match.groups()
        if placeholder is not None:
            tokens.append(("placeholder", placeholder))
        elif literal is not None:
            tokens.append(("literal", literal))
        else:
            tokens.append(("stray", stray))
    return tuple(tokens)


def _split_components(layout: str) -> list[str]:
    return layout.split("/")


def validate_layout(layout: str) -> list[str]:
    """Every problem with a layout, as sentences for the user; an empty list means usable.

    Problems: empty; absolute (starts with ``/``); a backslash; an empty folder name (``//``,
    trailing ``/``); ``.`` or ``..`` as a folder; an unknown placeholder; an unmatched brace;
    a last component that does not end with ``{name}`` or with ``{extension}`` after a
    ``{stem}``. The last rule keeps every file's own name and extension in the archive, so
    members of a group keep matching names and the OS still knows what each file is.
    """
    problems: list[str] = []
    if layout.strip() == "":
        return ["the layout is empty; the default is " + DEFAULT_LAYOUT]
    if layout.startswith("/"):
        problems.append("the layout must be relative to the archive folder (remove the leading /)")
    if "\\" in layout:
        problems.append("use / to separate folders, not \\")
    for kind, text in _tokens(layout):
        if kind == "placeholder" and text not in LAYOUT_PLACEHOLDERS:
            known = ", ".join("{" + name + "}" for name in sorted(LAYOUT_PLACEHOLDERS))
            problems.append(f"unknown placeholder {{{text}}} (known: {known})")
        elif kind == "stray":
            problems.append(f"unmatched {text!r} in the layout")
    components = _split_components(layout.lstrip("/"))
    if any(component == "" for component in components):
        problems.append("the layout has an empty folder name (// or a trailing /)")
    if any(component.strip() in (".", "..") for component in components):
        problems.append("the layout may not use . or .. as a folder")
    last = components[-1]
    ends_with_name = last.endswith("{name}")
    ends_with_extension = last.endswith("{extension}") and "{stem}" in last
    if not (ends_with_name or ends_with_extension):
        problems.append(
            "the last part of the layout must end with {name} (or {stem}...{extension}) "
            "so each file keeps its own name"
        )
    return problems


@functools.lru_cache(maxsize=16)
def _layout_problems(layout: str) -> tuple[str, ...]:
    """:func:`validate_layout`, cached: a run renders every destination with one layout."""
    return tuple(validate_layout(layout))


def _clean_value(value: str) -> str:
    """An untrusted value made safe inside one path component."""
    return _UNSAFE_CHARACTER.sub("_", value)


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")


def _finish_component(component: str, *, is_file_name: bool) -> str:
    """Make a rendered component safe: never empty, ``.``/``..``, hidden, or too long."""
    component = component.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    component = _UNSAFE_CHARACTER.sub("_", component)
    if component.strip() in ("", ".", ".."):
        component = "_" + component.strip()
    if component.startswith("."):
        component = "_" + component[1:]
    if not is_file_name:
        return _truncate_utf8(component, MAX_COMPONENT_BYTES)
    limit = MAX_COMPONENT_BYTES - SUFFIX_RESERVE_BYTES
    if len(component.encode("utf-8")) <= limit:
        return component
    # Keep the extension: a truncated "IMG_...HEIC" must still open as a HEIC.
    stem, dot, extension = component.rpartition(".")
    if dot and stem and len(extension.encode("utf-8")) <= 16:
        room = limit - len(extension.encode("utf-8")) - 1
        return _truncate_utf8(stem, room) + "." + extension
    return _truncate_utf8(component, limit)


def placeholder_values(
    capture: CaptureDate, name: str, device_name: str, udid: str
) -> dict[str, str]:
    """The text each placeholder stands for (dates zero-padded; ``extension`` without a dot)."""
    local = capture.local
    return {
        "year": f"{local.year:04d}",
        "month": f"{local.month:02d}",
        "day": f"{local.day:02d}",
        "hour": f"{local.hour:02d}",
        "minute": f"{local.minute:02d}",
        "name": _clean_value(name),
        "stem": _clean_value(stem_of(name)),
        "extension": _clean_value(name.rpartition(".")[2] if extension_of(name) else ""),
        "device_name": _clean_value(device_name),
        "udid": _clean_value(udid),
    }


def render_destination(
    layout: str, capture: CaptureDate, name: str, device_name: str, udid: str
) -> PurePosixPath:
    """The relative path inside the archive where a file named ``name`` goes.

    Raises :class:`LayoutError` when :func:`validate_layout` finds problems (the config checks
    layouts when it loads, so this is a programming error by then). The result is always
    relative, has no ``.``/``..``/empty/hidden component and no component over 255 UTF-8 bytes;
    the file name keeps 8 bytes free for a collision suffix.
    """
    problems = _layout_problems(layout)
    if problems:
        raise LayoutError("; ".join(problems))
    values = placeholder_values(capture, name, device_name, udid)
    components = _split_components(layout)
    rendered = []
    for index, component in enumerate(components):
        text = "".join(
            values[text] if kind == "placeholder" else text for kind, text in _tokens(component)
        )
        rendered.append(_finish_component(text, is_file_name=index == len(components) - 1))
    return PurePosixPath(*rendered)


def render_group_destinations(
    layout: str, capture: CaptureDate, group: MediaGroup, device_name: str, udid: str
) -> dict[str, PurePosixPath]:
    """Destinations of every member of a group, by phone path, all on the group's date.

    ``capture`` is the date of the group's primary (a sidecar has no date of its own, and an
    edit must land beside its original), so the whole group shares one folder.
    """
    return {
        member.path: render_destination(layout, capture, member.name, device_name, udid)
        for member in group.members
    }
