"""What every reliability test checks and how it drives a backup in-process.

The invariants of a backup tool, stated once: the archive holds exactly the phone's content (by
hash), every file once; no ``.partial`` outside ``.rollkeeper/``; the state database passes
``PRAGMA integrity_check``; every manifest row that says "archived" points at a file on disk with
the recorded hash, and every file on disk is vouched for by the database. Tests call
:func:`check_archive` after each trial and add its figures to a :class:`Tally` that ``make faults``
prints and docs/reliability.md quotes.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rollkeeper.archive.locations import WORKING_FOLDER_NAME
from rollkeeper.device.session import SessionSettings
from rollkeeper.importer.hashing import hash_file
from rollkeeper.importer.job import BackupSettings, RunResult
from rollkeeper.service.phone_backup import back_up_phone
from rollkeeper.store import ARCHIVED, StateStore

#: The layout the tests use (the default of the config).
LAYOUT = "{year}/{year}-{month}/{name}"
#: The AFC read size: a resume may read again at most the one chunk that was in flight.
CHUNK_BYTES = 4 * 1024 * 1024
#: Ceiling for one in-process backup run.
RUN_TIMEOUT_SECONDS = 60.0


@dataclass
class Tally:
    """Figures of a fault campaign: what ``make faults`` reports."""

    trials: int = 0
    failures: int = 0
    files_checked: int = 0
    bytes_checked: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.trials += other.trials
        self.failures += other.failures
        self.files_checked += other.files_checked
        self.bytes_checked += other.bytes_checked
        self.notes.extend(other.notes)


def phone_files(media_root: Path) -> dict[str, str]:
    """Phone path (``/DCIM/100APPLE/IMG_0001.HEIC``) -> hash of every file the phone serves."""
    found: dict[str, str] = {}
    for path in sorted((media_root / "DCIM").rglob("*")):
        if path.is_file():
            found["/" + str(path.relative_to(media_root))] = hash_file(path)
    return found


def archive_files(archive: Path) -> dict[str, str]:
    """Relative path -> hash of every file in the archive, the work folder excluded."""
    found: dict[str, str] = {}
    for path in sorted(archive.rglob("*")):
        relative = path.relative_to(archive)
        if relative.parts and relative.parts[0] == WORKING_FOLDER_NAME:
            continue
        if path.is_file() or path.is_symlink():
            found[str(relative)] = hash_file(path)
    return found


def stray_partials(archive: Path) -> list[Path]:
    """``.partial`` files outside the work folder (there must be none)."""
    return [
        path
        for path in archive.rglob("*.partial")
        if path.relative_to(archive).parts[0] != WORKING_FOLDER_NAME
    ]


@dataclass(frozen=True)
class ArchiveCheck:
    """What :func:`check_archive` found: problems (empty = all invariants hold) and figures."""

    problems: list[str]
    files: int
    bytes: int


def check_archive(
    archive: Path, state_path: Path, expected_hashes: Iterable[str], udid: str | None = None
) -> ArchiveCheck:
    """Every invariant of a finished backup, as a list of problems (empty when all hold).

    ``expected_hashes``: the content of the phone (one hash per phone file; equal contents
    count once, since the archive stores each content once).
    """
    on_disk = archive_files(archive)
    problems = _archive_problems(archive, on_disk, set(expected_hashes))
    store = StateStore.open(state_path, read_only=True)
    try:
        problems.extend(_database_problems(store, on_disk, udid))
    finally:
        store.close()
    total = sum((archive / relative).stat().st_size for relative in on_disk)
    return ArchiveCheck(problems, len(on_disk), total)


def _archive_problems(archive: Path, on_disk: dict[str, str], wanted: set[str]) -> list[str]:
    """The archive's files against the phone's content: none missing, none extra, each content
    once, and no ``.partial`` outside the work folder."""
    problems: list[str] = []
    stored = list(on_disk.values())
    missing = wanted - set(stored)
    if missing:
        problems.append(f"{len(missing)} phone file(s) not in the archive")
    extra = {path: digest for path, digest in on_disk.items() if digest not in wanted}
    if extra:
        problems.append(f"files in the archive that the phone never had: {sorted(extra)[:5]}")
    if len(stored) != len(set(stored)):
        duplicates = sorted(path for path, digest in on_disk.items() if stored.count(digest) > 1)
        problems.append(f"the same content stored twice: {duplicates[:6]}")
    strays = stray_partials(archive)
    if strays:
        problems.append(f".partial outside {WORKING_FOLDER_NAME}/: {strays[:5]}")
    return problems


def _database_problems(store: StateStore, on_disk: dict[str, str], udid: str | None) -> list[str]:
    """The state database against the archive's files: intact, every file on disk vouched for
    with its hash and every recorded file on disk, every present manifest entry archived."""
    problems: list[str] = []
    verdict = store.integrity_check()
    if verdict != "ok":
        problems.append(f"integrity_check: {verdict}")
    records = {entry.relative_path: entry for entry in store.archive_entries()}
    for relative, digest in on_disk.items():
        record = records.get(relative)
        if record is None:
            problems.append(f"on disk but not in the database: {relative}")
        elif record.content_hash != digest:
            problems.append(f"database hash differs from the file: {relative}")
    problems.extend(
        f"in the database but not on disk: {relative}"
        for relative in records
        if relative not in on_disk
    )
    for entry in store.manifest(udid):
        if entry.status != ARCHIVED:
            if entry.present:
                problems.append(f"not archived: {entry.phone_path} ({entry.status})")
            continue
        if entry.archive_path not in on_disk:
            problems.append(f"archived entry without its file: {entry.phone_path}")
        elif on_disk[entry.archive_path] != entry.content_hash:
            problems.append(f"archived entry with another hash: {entry.phone_path}")
    return problems


def snapshot_tree(root: Path, skip: Iterable[Path] = ()) -> dict[str, tuple[int, int]]:
    """Path -> (size, mode) of everything under ``root`` (not following symlinks)."""
    skipped = [path.resolve() for path in skip]
    found: dict[str, tuple[int, int]] = {}
    for folder, folders, files in os.walk(root):
        here = Path(folder)
        folders[:] = [name for name in folders if (here / name).resolve() not in skipped]
        for name in [*folders, *files]:
            path = here / name
            status = path.lstat()
            found[str(path.relative_to(root))] = (status.st_size, status.st_mode)
    return found


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for a condition the code under test makes true, polling it with a ceiling."""
    wake = threading.Event()
    remaining = timeout
    step = 0.005
    while not predicate():
        if remaining <= 0:
            raise AssertionError(f"waited {timeout}s for {what}")
        wake.wait(step)
        remaining -= step


def backup_settings(archive: Path) -> BackupSettings:
    """The backup settings the tests use: the archive and the default layout."""
    return BackupSettings(archive_root=archive, layout=LAYOUT)


def session_settings(address: str, pairing_dir: Path, afc_timeout: float = 30.0) -> SessionSettings:
    """How the in-process tests reach the simulator."""
    return SessionSettings(
        usbmux_address=address, pairing_dir=pairing_dir, afc_timeout_seconds=afc_timeout
    )


async def run_backup(
    store: StateStore, archive: Path, udid: str, session: SessionSettings
) -> RunResult:
    """One in-process backup run through a real session (phone errors propagate), by the
    same sequence as the service and ``backup-now``."""
    turn = await asyncio.wait_for(
        back_up_phone(udid, store, session, backup_settings(archive)), RUN_TIMEOUT_SECONDS
    )
    assert turn.result is not None, f"no run: {turn.skipped}"
    return turn.result
