"""Find a photo by its phone name or capture date: pure argument parsing, then one query.

``IMG_1234`` finds the whole group the phone made for that photo: ``IMG_1234.HEIC``, its Live
Photo video ``IMG_1234.MOV``, the rendered edit ``IMG_E1234.HEIC`` and the sidecars
``IMG_1234.AAE`` / ``IMG_O1234.AAE``. A name with an extension matches that name exactly; a
name with ``*``, ``?`` or ``[`` is a glob. Case never matters (phones write upper case, some
tools lower case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

#: A phone name without extension whose number can carry the E (edit) / O (original) marker.
_GROUP_STEM = re.compile(r"^(?P<prefix>[A-Za-z]+_)(?P<number>\d+)$")
_DATE_PREFIX = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_GLOB_CHARACTERS = frozenset("*?[")


class FindQueryError(ValueError):
    """A ``find`` argument that cannot be understood (said in one line)."""


@dataclass(frozen=True, slots=True)
class FindQuery:
    """What to look for: any of the name globs, on one phone, captured on a date prefix."""

    name_globs: tuple[str, ...]
    udid: str | None
    capture_date_prefix: str | None


def name_globs(name_or_glob: str) -> tuple[str, ...]:
    """The SQLite GLOB patterns (lower case) a ``find`` name argument stands for."""
    text = name_or_glob.strip()
    if not text:
        raise FindQueryError("the name is empty; give a phone name such as IMG_1234")
    if "/" in text:
        # Manifest names are bare file names; folders are a separate column.
        text = text.rsplit("/", 1)[1]
        if not text:
            raise FindQueryError(f"{name_or_glob!r} names a folder, not a file")
    lowered = text.lower()
    if _GLOB_CHARACTERS & set(lowered):
        return (lowered,)
    group = _GROUP_STEM.match(lowered)
    if group is not None:
        prefix, number = group["prefix"], group["number"]
        return (
            f"{prefix}{number}.*",
            f"{prefix}e{number}.*",
            f"{prefix}o{number}.*",
        )
    if "." in lowered:
        return (lowered,)
    # A bare stem (FullSizeRender, a renamed file): the exact name or any extension of it.
    return (lowered, f"{lowered}.*")


def capture_date_prefix(value: str) -> str:
    """Check a ``--date`` value (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``) and return it."""
    text = value.strip()
    if not _DATE_PREFIX.match(text):
        raise FindQueryError(f"{value!r} is not a date; write YYYY, YYYY-MM or YYYY-MM-DD")
    parts = [int(part) for part in text.split("-")]
    try:
        date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except ValueError as error:
        raise FindQueryError(f"{value!r} is not a real date: {error}") from None
    return text


def build_query(name_or_glob: str | None, udid: str | None, when: str | None) -> FindQuery:
    """Turn the command's arguments into a query; at least one criterion is required."""
    if name_or_glob is None and udid is None and when is None:
        raise FindQueryError("say what to find: a phone name (IMG_1234), --date or --device")
    return FindQuery(
        name_globs=() if name_or_glob is None else name_globs(name_or_glob),
        udid=udid,
        capture_date_prefix=None if when is None else capture_date_prefix(when),
    )
