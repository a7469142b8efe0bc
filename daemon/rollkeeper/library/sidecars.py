"""Keep an XMP sidecar beside each archived original, never over another tool's edit.

Sidecars are rollkeeper's own metadata, not backup content, so unlike the archive they are
rewritten when the library changes, under three rules:

* every version written is kept in the state (``library_sidecars``: its hash and its facts),
  so an album removed on the phone is still known;
* a sidecar is rewritten (atomically: a new file in the same folder, synced, renamed over the
  old one) only while its bytes are exactly a version rollkeeper wrote: one another tool
  (digiKam, darktable) edited, or one rollkeeper never wrote, is left alone and reported;
* a set of changes that would take albums or the favourite away from more than a few percent
  of the sidecars at once is refused whole (:func:`rollkeeper.domain.library.read_is_suspect`):
  a broken library looks exactly like that.

Writing is three steps, so that a crash at any point leaves every sidecar recognisable:
:meth:`SidecarKeeper.prepare` (a worker thread: read what is on disk, decide, write each new
sidecar beside its target and sync them all at once), the caller records the new versions in
the state, :meth:`SidecarKeeper.commit` (a worker thread: rename each into place, sync the
folders). Until the rename, the file on disk is a version already recorded; after it, the new
one, recorded too. The photo itself is never opened for writing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat as stat_module
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from rollkeeper.domain.library import DropCheck, SidecarFacts, drops_something, read_is_suspect
from rollkeeper.host.durability import fsync_folder
from rollkeeper.importer.hashing import new_hasher
from rollkeeper.library.xmp import SIDECAR_SUFFIX, sidecar_bytes
from rollkeeper.store.library_sidecars import KnownSidecar

log = structlog.get_logger("rollkeeper.library")

#: Why a sidecar was left alone (``library_sidecar_notes.reason``).
EDITED_ELSEWHERE = "edited_by_another_tool"
NOT_OURS = "not_written_by_rollkeeper"
NOT_A_FILE = "not_a_regular_file"
ORIGINAL_MISSING = "archived_file_missing"


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A sidecar written beside its target, synced, waiting to be renamed into place."""

    relative_path: str
    content_hash: str
    facts: dict[str, object]
    temporary: Path
    target: Path


@dataclass(slots=True)
class SidecarOutcome:
    """What one application of sidecars did (or, before :meth:`SidecarKeeper.commit`, will)."""

    check: DropCheck
    writes: list[PendingWrite] = field(default_factory=list)
    #: Sidecars found on disk as they should be, but not recorded as the newest version
    #: (a state rebuilt from scratch, a crash before the record): ``(path, hash, facts)``.
    adopted: list[tuple[str, str, dict[str, object]]] = field(default_factory=list)
    unchanged: int = 0
    #: ``(relative path of the archived file, reason)`` of each sidecar left alone.
    left_alone: list[tuple[str, str]] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """The whole set was refused as suspect: nothing was written."""
        return self.check.suspect

    @property
    def written(self) -> int:
        """Sidecars (to be) written."""
        return len(self.writes)


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


def _write_beside(target: Path, data: bytes) -> Path:
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.rollkeeper-tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)
    return temporary


class SidecarKeeper:
    """Decides and writes the sidecars of archived files (see the module docstring)."""

    def __init__(self, archive_root: Path, drop_limit_percent: float) -> None:
        self._archive_root = archive_root
        self._drop_limit_percent = drop_limit_percent

    def check(
        self, desired: Mapping[str, SidecarFacts], known: Mapping[str, KnownSidecar]
    ) -> DropCheck:
        """How many sidecars ``desired`` would take an album or the favourite from."""
        dropping = sum(
            1
            for relative_path, facts in desired.items()
            if (latest := known.get(relative_path)) is not None
            and drops_something(latest.facts, facts)
        )
        return read_is_suspect(dropping, len(desired), self._drop_limit_percent)

    def prepare(
        self, desired: Mapping[str, SidecarFacts], known: Mapping[str, KnownSidecar]
    ) -> SidecarOutcome:
        """Decide each sidecar and write the new ones beside their targets, synced (nothing is
        renamed yet); a suspect set writes nothing."""
        outcome = SidecarOutcome(self.check(desired, known))
        if outcome.refused:
            log.warning(
                "library_read_suspect",
                sidecars_dropping=outcome.check.dropping,
                sidecars=outcome.check.sidecars,
                limit_percent=outcome.check.limit_percent,
            )
            return outcome
        try:
            for relative_path in sorted(desired):
                reason = self._prepare_one(
                    relative_path, desired[relative_path], known.get(relative_path), outcome
                )
                if reason:
                    outcome.left_alone.append((relative_path, reason))
            if outcome.writes:
                os.sync()  # one sync for every new sidecar, not one fsync each
        except BaseException:
            self.discard(outcome)
            raise
        for relative_path, reason in outcome.left_alone:
            log.warning("sidecar_left_alone", path=relative_path + SIDECAR_SUFFIX, reason=reason)
        return outcome

    def _prepare_one(
        self,
        relative_path: str,
        facts: SidecarFacts,
        known: KnownSidecar | None,
        outcome: SidecarOutcome,
    ) -> str:
        """Decide one sidecar; returns why it is left alone ("" when it is not)."""
        if Path(relative_path).is_absolute() or ".." in Path(relative_path).parts:
            return NOT_OURS  # adopted files outside the archive keep their own folders
        if not (self._archive_root / relative_path).is_file():
            return ORIGINAL_MISSING
        target = sidecar_path(self._archive_root, relative_path)
        record = facts.as_record()
        existing = _read_existing(target)
        if isinstance(existing, str):
            return existing
        if (
            existing is not None
            and known is not None
            and known.facts == record
            and content_hash(existing) == known.latest_hash
        ):
            # The newest version, on disk, says it all: no XML to make (the costly part).
            outcome.unchanged += 1
            return ""
        data = sidecar_bytes(facts)
        wanted = content_hash(data)
        if existing is not None:
            on_disk = content_hash(existing)
            if on_disk == wanted:
                if known is None or known.latest_hash != wanted:
                    outcome.adopted.append((relative_path, wanted, record))
                outcome.unchanged += 1
                return ""
            if known is None:
                return NOT_OURS
            if on_disk not in known.hashes:
                return EDITED_ELSEWHERE
        temporary = _write_beside(target, data)
        outcome.writes.append(PendingWrite(relative_path, wanted, record, temporary, target))
        return ""

    @staticmethod
    def commit(outcome: SidecarOutcome) -> None:
        """Rename every prepared sidecar into place (after its version was recorded)."""
        folders: set[Path] = set()
        for write in outcome.writes:
            os.replace(write.temporary, write.target)
            folders.add(write.target.parent)
        for folder in sorted(folders):
            fsync_folder(folder)

    @staticmethod
    def discard(outcome: SidecarOutcome) -> None:
        """Remove prepared sidecars that will not be committed."""
        for write in outcome.writes:
            with contextlib.suppress(FileNotFoundError):
                write.temporary.unlink()
