"""Keep an XMP sidecar beside each archived original, never over another tool's edit.

Sidecars are rollkeeper's own metadata, not backup content, so unlike the archive they are
rewritten when the library changes, under three rules:

* every version written is kept in the state (``library_sidecars``: its hash and its facts),
  so an album removed on the phone is still known;
* a sidecar is rewritten (atomically: a new file in the same folder, fsync'ed, renamed over
  the old one) only while its bytes are exactly the ones rollkeeper last wrote: one another
  tool (digiKam, darktable) edited, or one rollkeeper never wrote, is left alone and reported;
* a set of changes that would take albums or the favourite away from more than a few percent
  of the sidecars at once is refused whole (:func:`rollkeeper.domain.library.read_is_suspect`):
  a broken library looks exactly like that.

The photo itself is never opened for writing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat as stat_module
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import structlog

from rollkeeper.domain.library import DropCheck, SidecarFacts, drops_something, read_is_suspect
from rollkeeper.host.durability import fsync_folder
from rollkeeper.importer.hashing import new_hasher
from rollkeeper.library.xmp import SIDECAR_SUFFIX, sidecar_bytes
from rollkeeper.ports import Clock, system_clock
from rollkeeper.store.library import SidecarVersion

log = structlog.get_logger("rollkeeper.library")

#: Why a sidecar was left alone (``library_sidecar_notes.reason``).
EDITED_ELSEWHERE = "edited_by_another_tool"
NOT_OURS = "not_written_by_rollkeeper"
NOT_A_FILE = "not_a_regular_file"
ORIGINAL_MISSING = "archived_file_missing"


class SidecarVersions(Protocol):
    """What the keeper needs of the state: the last version of a sidecar, and a new one."""

    def latest_sidecar(self, relative_path: str) -> SidecarVersion | None: ...

    def add_sidecar_version(
        self,
        relative_path: str,
        content_hash: str,
        facts: dict[str, object],
        now: datetime | None = None,
    ) -> int: ...


@dataclass(slots=True)
class SidecarOutcome:
    """What one application of sidecars did."""

    check: DropCheck
    written: int = 0
    unchanged: int = 0
    #: ``(relative path of the archived file, reason)`` of each sidecar left alone.
    left_alone: list[tuple[str, str]] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """The whole set was refused as suspect: nothing was written."""
        return self.check.suspect


def content_hash(data: bytes) -> str:
    """The hash recorded for a sidecar's bytes (the archive's hash function)."""
    hasher = new_hasher()
    hasher.update(data)
    return hasher.hexdigest()


def sidecar_path(archive_root: Path, relative_path: str) -> Path:
    """Where the sidecar of an archived file goes: ``IMG_1234.HEIC`` -> ``IMG_1234.HEIC.xmp``."""
    return archive_root / (relative_path + SIDECAR_SUFFIX)


def _read_existing(path: Path) -> bytes | str | None:
    """The sidecar's bytes, None when there is none, or a reason it cannot be one of ours."""
    try:
        status = path.lstat()
    except FileNotFoundError:
        return None
    if not stat_module.S_ISREG(status.st_mode):
        return NOT_A_FILE
    return path.read_bytes()


def write_atomically(path: Path, data: bytes) -> None:
    """Give ``path`` the content ``data``: written beside it, fsync'ed, renamed over it."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.rollkeeper-tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    fsync_folder(path.parent)


class SidecarKeeper:
    """Writes the sidecars of archived files under the rules of the module docstring."""

    def __init__(
        self,
        archive_root: Path,
        versions: SidecarVersions,
        drop_limit_percent: float,
        clock: Clock = system_clock,
    ) -> None:
        self._archive_root = archive_root
        self._versions = versions
        self._drop_limit_percent = drop_limit_percent
        self._clock = clock

    def check(self, desired: Mapping[str, SidecarFacts]) -> DropCheck:
        """How many sidecars ``desired`` would take an album or the favourite from."""
        dropping = 0
        for relative_path, facts in desired.items():
            latest = self._versions.latest_sidecar(relative_path)
            if latest is not None and drops_something(latest.facts, facts):
                dropping += 1
        return read_is_suspect(dropping, len(desired), self._drop_limit_percent)

    def apply(self, desired: Mapping[str, SidecarFacts]) -> SidecarOutcome:
        """Write what changed, unless the whole set is suspect (then nothing is written)."""
        outcome = SidecarOutcome(self.check(desired))
        if outcome.refused:
            log.warning(
                "library_read_suspect",
                sidecars_dropping=outcome.check.dropping,
                sidecars=outcome.check.sidecars,
                limit_percent=outcome.check.limit_percent,
            )
            return outcome
        for relative_path in sorted(desired):
            reason = self._apply_one(relative_path, desired[relative_path], outcome)
            if reason:
                outcome.left_alone.append((relative_path, reason))
        for relative_path, reason in outcome.left_alone:
            log.warning("sidecar_left_alone", path=relative_path + SIDECAR_SUFFIX, reason=reason)
        return outcome

    def _apply_one(self, relative_path: str, facts: SidecarFacts, outcome: SidecarOutcome) -> str:
        """Bring one sidecar up to date; returns why it was left alone ("" when it was not)."""
        if Path(relative_path).is_absolute() or ".." in Path(relative_path).parts:
            return NOT_OURS  # adopted files outside the archive keep their own folders
        original = self._archive_root / relative_path
        if not original.is_file():
            return ORIGINAL_MISSING
        target = sidecar_path(self._archive_root, relative_path)
        data = sidecar_bytes(facts)
        wanted = content_hash(data)
        latest = self._versions.latest_sidecar(relative_path)
        existing = _read_existing(target)
        if isinstance(existing, str):
            return existing
        if existing is not None:
            on_disk = content_hash(existing)
            if on_disk == wanted:
                if latest is None or latest.content_hash != wanted:
                    # Ours after all (a state rebuilt from scratch): remember it.
                    self._versions.add_sidecar_version(
                        relative_path, wanted, facts.as_record(), self._clock()
                    )
                outcome.unchanged += 1
                return ""
            if latest is None:
                return NOT_OURS
            if latest.content_hash != on_disk:
                return EDITED_ELSEWHERE
        write_atomically(target, data)
        self._versions.add_sidecar_version(relative_path, wanted, facts.as_record(), self._clock())
        outcome.written += 1
        return ""
