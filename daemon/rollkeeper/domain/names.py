"""Checks for names and paths the phone sends, before any of them touches the host's disk.

Device-supplied names are untrusted: a hostile or broken phone (or a simulator playing one) can
list ``..``, ``/etc/passwd``, names with NUL or newlines, 4,096-character names or bytes that are
not UTF-8. Nothing here repairs a name; a bad name is rejected with a short reason code that is
logged and counted, and the file is reported as skipped, never silently renamed.
"""

from __future__ import annotations

import re

#: Longest name accepted, in UTF-8 bytes: the limit of ext4, APFS, btrfs and most others.
MAX_NAME_BYTES = 255
#: The root every camera-roll path must be under.
MEDIA_ROOT = "/DCIM"
#: A name the camera writes (``IMG_0001.HEIC``, ``IMG_E0001 2.MOV``): plain ASCII letters,
#: digits, ``_``, ``-``, ``.`` and spaces, not starting with ``.``, well under the length
#: limit. Such a name passes every check below, so it is accepted on one regular-expression
#: match (a re-plug of 100,000 files checks 100,000 names).
_ORDINARY_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_. -]{0,199}")
#: C0 controls, DEL and C1 controls.
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")


class NameRejected(Exception):
    """A phone-supplied name or path that must not be used; ``reason`` is a snake_case code.

    Reasons: ``empty``, ``dot_name``, ``separator``, ``nul``, ``control_character``,
    ``too_long``, ``not_utf8``, ``hidden``, ``not_absolute``, ``outside_dcim``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _printable(text: str, limit: int = 80) -> str:
    # The rejected text goes into logs and messages: escape it and keep it short.
    shown = text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    return ascii(shown[:limit] + ("..." if len(shown) > limit else ""))


def check_phone_name(name: str) -> str:
    """Return ``name`` if it is safe as a single path component on the host; else raise.

    Rejected: empty; ``.`` and ``..``; anything holding ``/``, ``\\`` or NUL; control
    characters (C0, DEL, C1: they corrupt logs and terminals); more than 255 UTF-8 bytes; text
    that is not valid UTF-8 (lone surrogates from ``surrogateescape`` decoding); and hidden
    names starting with ``.`` (the camera never writes them, and ``.partial`` files are ours).
    """
    if _ORDINARY_NAME.fullmatch(name):
        return name
    return check_name_thoroughly(name)


def check_name_thoroughly(name: str) -> str:
    """:func:`check_phone_name` without its shortcut for camera names: every check, one by
    one (what the shortcut is tested against)."""
    if name == "":
        raise NameRejected("empty", "empty file name")
    if name in (".", ".."):
        raise NameRejected("dot_name", f"file name {_printable(name)} refers to a folder")
    if "/" in name or "\\" in name:
        raise NameRejected("separator", f"file name {_printable(name)} holds a path separator")
    if "\x00" in name:
        raise NameRejected("nul", f"file name {_printable(name)} holds a NUL character")
    if _CONTROL_CHARACTER.search(name):
        raise NameRejected(
            "control_character", f"file name {_printable(name)} holds a control character"
        )
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise NameRejected(
            "not_utf8", f"file name {_printable(name)} is not valid UTF-8 text"
        ) from None
    if len(encoded) > MAX_NAME_BYTES:
        raise NameRejected(
            "too_long",
            f"file name {_printable(name)} is {len(encoded)} bytes long (at most {MAX_NAME_BYTES})",
        )
    if name.startswith("."):
        raise NameRejected("hidden", f"file name {_printable(name)} is hidden (starts with '.')")
    return name


#: Names joined with NUL (which no listed name can hold: the listing is split on it), all of
#: them ordinary.
_ORDINARY_NAMES = re.compile(
    r"[A-Za-z0-9_-][A-Za-z0-9_. -]{0,199}(?:\x00[A-Za-z0-9_-][A-Za-z0-9_. -]{0,199})*"
)


def all_ordinary(names: list[str]) -> bool:
    """True when every name (none holding NUL) is one the camera writes: a folder of them is
    checked in one regular-expression match instead of one call per name."""
    return not names or _ORDINARY_NAMES.fullmatch("\x00".join(names)) is not None


def all_ordinary_joined(joined: str) -> bool:
    """:func:`all_ordinary` of names already joined by NUL (a listing as the phone sent it):
    no join. An empty name (two NULs in a row) is not ordinary."""
    return not joined or _ORDINARY_NAMES.fullmatch(joined) is not None


def check_phone_path(path: str) -> str:
    """Return ``path`` if it is an absolute phone path under ``/DCIM`` with safe components.

    Every component after the root is checked with :func:`check_phone_name`; an empty
    component (``//``, a trailing ``/``) is rejected as ``empty``. ``/DCIM`` itself is accepted.
    """
    if not path.startswith("/"):
        raise NameRejected("not_absolute", f"phone path {_printable(path)} is not absolute")
    components = path[1:].split("/")
    if components[0] != MEDIA_ROOT[1:]:
        raise NameRejected("outside_dcim", f"phone path {_printable(path)} is not under /DCIM")
    for component in components:
        check_phone_name(component)
    return path
