"""Resolving a phone path of an AFC request to a host path under the media root, or to a fault.

Every path is resolved strictly inside the media root: ``..`` is refused, and a host symlink
whose target lies outside the root is "not found" (a phone's afcd is jailed to its media
folder). A path may instead name a hostile entry (a fault,
:class:`~rollkeeper.simulator.phone.HostileEntry`): those exist only in the simulator and never
touch the host. Either way the result carries the phone-side path that faults and counters are
keyed by.
"""

from __future__ import annotations

import os
import posixpath
import stat as stat_module
from collections.abc import Iterator
from dataclasses import dataclass

from rollkeeper.simulator.afc_errors import AfcRequestError
from rollkeeper.simulator.afc_protocol import Status
from rollkeeper.simulator.phone import HostileEntry, PhoneState


def canonical_path(phone_path: str) -> str:
    """``/DCIM//100APPLE/./X`` -> ``/DCIM/100APPLE/X``; any ``..`` is refused (PERM_DENIED).

    A real phone's afcd is jailed to the media folder; the simulator does not try to imitate
    how it treats ``..`` and refuses it outright, so no request can climb out of the root.
    """
    parts: list[str] = []
    for part in phone_path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise AfcRequestError(Status.PERM_DENIED)
        parts.append(part)
    return "/" + "/".join(parts)


def canonical_or_none(phone_path: str) -> str | None:
    """:func:`canonical_path`, or None where it refuses the path."""
    try:
        return canonical_path(phone_path)
    except AfcRequestError:
        return None


@dataclass
class HostTarget:
    """A request path that names something under the media root on the host."""

    fault_key: str
    host_path: str


@dataclass
class HostileTarget:
    """A request path that names a hostile entry (it exists only in the simulator)."""

    fault_key: str
    entry: HostileEntry


Target = HostTarget | HostileTarget


class MediaPaths:
    """The media root of one connection, and how request paths map into it.

    The root is resolved once, when the connection starts; the phone's hostile entries are
    read at every request, so a test may change them while a connection is open.
    """

    def __init__(self, phone: PhoneState) -> None:
        self.phone = phone
        self.root = os.path.realpath(phone.media_root)

    def hostile_entries(self) -> Iterator[tuple[str, str, HostileEntry]]:
        """(folder, joined path, entry) for every hostile entry, as clients would join them."""
        for folder, entries in self.phone.faults.hostile_entries.items():
            for entry in entries:
                yield folder, folder.rstrip("/") + "/" + entry.name, entry

    def hostile_target(self, requested: str) -> HostileTarget | None:
        """The hostile entry ``requested`` names, if any."""
        if not self.phone.faults.hostile_entries:
            return None
        wanted = {requested, "/" + requested.lstrip("/")}
        for folder, joined, entry in self.hostile_entries():
            candidates = {joined, posixpath.join(folder, entry.name)}
            if "\0" in entry.name:
                # A name holding NUL reaches the client split in pieces: each piece names it.
                pieces = (piece for piece in entry.name.split("\0") if piece)
                candidates.update(folder.rstrip("/") + "/" + piece for piece in pieces)
            if wanted & candidates:
                return HostileTarget(fault_key=joined, entry=entry)
        return None

    def target(self, requested: str) -> Target:
        """What a request path names: a hostile entry, else a host path under the root."""
        hostile = self.hostile_target(requested)
        if hostile is not None:
            return hostile
        canonical = canonical_path(requested)
        return HostTarget(fault_key=canonical, host_path=self.host_path(canonical))

    def host_path(self, canonical: str) -> str:
        """The host path of a canonical phone path, guaranteed to lie under the root.

        Each component below the root is checked with lstat (the root itself is already a
        real path): plain components cost one system call each, and only a path that holds a
        symlink pays for ``realpath`` and the check that the link stays inside the root.
        """
        current = self.root
        for part in canonical.split("/")[1:] if canonical != "/" else ():
            current = current + os.sep + part
            try:
                mode = os.lstat(current).st_mode
            except OSError:
                # Missing or unreachable: the caller's own system call reports why.
                return current
            if stat_module.S_ISLNK(mode):
                resolved = os.path.realpath(self.root + canonical)
                if resolved != self.root and not resolved.startswith(self.root + os.sep):
                    # A host symlink that leaves the root: a phone's jail would hide its target.
                    raise AfcRequestError(Status.OBJECT_NOT_FOUND)
                return resolved
        return current
