"""In-memory fakes of rollkeeper's own ports (rollkeeper.ports), for unit and contract tests.

Each fake stands for one port: :class:`FakePhoneFiles` for ``PhoneFiles`` (the phone's media
folder), :class:`FakeStore` for ``BackupStore`` (the state database, with the readers of
``StateStore`` that tests read it back with), :class:`FakeClock` for ``Clock``. tests/contract/
runs the same assertions against each fake and the real thing (the simulator over
pymobiledevice3, a real SQLite file, the system clock), so a fake that drifts from what it
stands for fails there. A fake is never the only test of a path: the importer is tested end to
end with real parts in tests/e2e and tests/reliability.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import posixpath
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from rollkeeper.ports import (
    MAXIMUM_READ_BYTES,
    BackupStore,
    Clock,
    FileNotOnPhoneError,
    ListedName,
    PhoneFiles,
    PhoneReadError,
    RawStat,
    stats_one_by_one,
)
from rollkeeper.store.records import (
    ARCHIVED,
    PENDING,
    ArchiveEntry,
    DeviceRecord,
    ManifestEntry,
    RunCounts,
    RunRecord,
    utc_now_text,
)
from tests.fake_folders import FakeFolderSummaries

# -- the phone's files ---------------------------------------------------------------------------


@dataclass
class FakePhoneFile:
    """One file of the fake phone: its bytes and times (nanoseconds since the epoch)."""

    content: bytes
    birth_time_ns: int
    modified_time_ns: int


class FakePhoneFiles:
    """A phone's media folder in memory, answering as the simulator's AFC server does.

    Folders exist because files are in them (and ``/`` and ``/DCIM`` always do, as on a phone).
    Names are listed sorted, like the simulator lists its host folder; ``raw_names`` adds
    entries that are not valid UTF-8, listed but impossible to ask for by name.
    """

    def __init__(self) -> None:
        self.files: dict[str, FakePhoneFile] = {}
        self.raw_names: dict[str, list[bytes]] = {}
        #: Requests received, by the AFC operation they stand for.
        self.requests: Counter[str] = Counter()
        self._handles: dict[int, tuple[str, int]] = {}
        self._next_handle = itertools.count(1)
        #: Each folder's modification time: moved whenever an entry is added or removed in it
        #: (as APFS does; a file rewritten in place leaves its folder's alone).
        self.folder_mtime_ns: dict[str, int] = {}
        self._moment = itertools.count(1_700_000_000_000_000_000, 1_000_000)

    def _folder_changed(self, path: str) -> None:
        stamp = next(self._moment)
        parent = posixpath.dirname(path)
        self.folder_mtime_ns[parent] = stamp
        while parent not in ("/", ""):
            parent = posixpath.dirname(parent)
            self.folder_mtime_ns.setdefault(parent, stamp)

    def add_file(
        self, path: str, content: bytes, birth_time_ns: int, modified_time_ns: int | None = None
    ) -> None:
        """Put a file on the phone (``/DCIM/100APPLE/IMG_0001.JPG``); a new name moves its
        folder's modification time, content written over a listed name does not."""
        if path not in self.files:
            self._folder_changed(path)
        self.files[path] = FakePhoneFile(
            content, birth_time_ns, birth_time_ns if modified_time_ns is None else modified_time_ns
        )

    def remove_file(self, path: str) -> None:
        """Delete a file on the phone (its folder's modification time moves)."""
        del self.files[path]
        self._folder_changed(path)

    def add_raw_name(self, folder: str, raw: bytes) -> None:
        """List ``raw`` (bytes that are not UTF-8) in ``folder``."""
        self.raw_names.setdefault(folder, []).append(raw)

    def _folders(self) -> set[str]:
        folders = {"/", "/DCIM", *self.raw_names}
        for path in self.files:
            parent = posixpath.dirname(path)
            while parent not in folders:
                folders.add(parent)
                parent = posixpath.dirname(parent)
        return folders

    def _children(self, path: str, folders: set[str]) -> set[str]:
        return {
            posixpath.basename(child)
            for child in [*self.files, *folders]
            if child != path and posixpath.dirname(child) == path
        }

    async def list_folder(self, path: str) -> list[ListedName]:
        """The entries of a folder: sorted names of the files and folders in it."""
        self.requests["READ_DIR"] += 1
        if path in self.files:
            raise PhoneReadError(f"READ_DIR {path}: not a folder", "READ_ERROR")
        folders = self._folders()
        if path not in folders:
            raise FileNotOnPhoneError(f"READ_DIR {path}")
        entries = [
            ListedName(name.encode(), name) for name in sorted(self._children(path, folders))
        ]
        entries.extend(ListedName(raw, None) for raw in self.raw_names.get(path, []))
        return entries

    async def stat(self, path: str) -> RawStat:
        """The fields the phone sends for a file or folder."""
        self.requests["GET_FILE_INFO"] += 1
        file = self.files.get(path)
        if file is not None:
            size = len(file.content)
            return RawStat(
                {
                    "st_size": str(size),
                    "st_blocks": str((size + 511) // 512),
                    "st_nlink": "1",
                    "st_ifmt": "S_IFREG",
                    "st_mtime": str(file.modified_time_ns),
                    "st_birthtime": str(file.birth_time_ns),
                }
            )
        folders = self._folders()
        if path in folders:
            # As APFS (and the simulator) answer: a link per entry plus two, 32 bytes each.
            entries = len(self._children(path, folders)) + len(self.raw_names.get(path, []))
            mtime = str(self.folder_mtime_ns.get(path, 1))
            fields = {"st_size": str(32 * (entries + 2)), "st_nlink": str(entries + 2)}
            return RawStat({**fields, "st_ifmt": "S_IFDIR", "st_mtime": mtime})
        raise FileNotOnPhoneError(f"STAT {path}")

    async def stat_many(
        self, paths: Sequence[str]
    ) -> list[RawStat | FileNotOnPhoneError | PhoneReadError]:
        """The stat of each path, in order (one GET_FILE_INFO counted per path)."""
        return await stats_one_by_one(self.stat, paths)

    async def open(self, path: str) -> int:
        """A handle on a file, positioned at its start."""
        self.requests["FILE_OPEN"] += 1
        if path not in self.files:
            if path in self._folders():
                raise PhoneReadError(f"OPEN {path}: is a folder", "OBJECT_IS_DIR")
            raise FileNotOnPhoneError(f"OPEN {path}")
        handle = next(self._next_handle)
        self._handles[handle] = (path, 0)
        return handle

    async def seek(self, handle: int, offset: int) -> None:
        """Move a handle to ``offset`` bytes from the start."""
        self.requests["FILE_SEEK"] += 1
        path, _position = self._handle(handle)
        self._handles[handle] = (path, offset)

    async def read(self, handle: int, size: int) -> bytes:
        """Up to ``size`` (at most 4 MiB) bytes at the handle's position."""
        self.requests["READ"] += 1
        path, position = self._handle(handle)
        chunk = self.files[path].content[position : position + min(size, MAXIMUM_READ_BYTES)]
        self._handles[handle] = (path, position + len(chunk))
        return chunk

    async def close(self, handle: int) -> None:
        """Release a handle (an unknown one is no error, as with the real adapter)."""
        self.requests["FILE_CLOSE"] += 1
        self._handles.pop(handle, None)

    def _handle(self, handle: int) -> tuple[str, int]:
        try:
            return self._handles[handle]
        except KeyError:
            raise PhoneReadError(f"handle {handle} is not open", "INVALID_ARG") from None


# -- the store -----------------------------------------------------------------------------------


@dataclass
class _Run:
    record: RunRecord
    failures: list[tuple[str, str, str]] = field(default_factory=list)


class FakeStore(FakeFolderSummaries):
    """The state database in memory: the ``BackupStore`` port plus the readers tests use."""

    def __init__(self) -> None:
        self._files: list[ManifestEntry] = []
        self._archive: dict[str, ArchiveEntry] = {}
        self._devices: dict[str, DeviceRecord] = {}
        self._runs: dict[int, _Run] = {}
        self._ids = itertools.count(1)
        self._run_ids = itertools.count(1)
        FakeFolderSummaries.__init__(self)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write inside is undone on an exception (nested: only the inner ones)."""
        saved = copy.deepcopy((self._files, self._archive, self._devices, self._runs))
        try:
            yield
        except BaseException:
            self._files, self._archive, self._devices, self._runs = saved
            raise

    # -- the manifest ------------------------------------------------------------------------

    def _replace(self, entry: ManifestEntry, **changes: object) -> None:
        index = next(i for i, candidate in enumerate(self._files) if candidate.id == entry.id)
        self._files[index] = replace(entry, **changes)  # type: ignore[arg-type]

    def known_folders(self, udid: str) -> list[str]:
        return sorted({e.folder for e in self._files if e.udid == udid and e.present})

    def present_files(self, udid: str, folder: str) -> dict[str, ManifestEntry]:
        return {entry.name: entry for entry in self._present(udid, folder)}

    def mark_absent(
        self, udid: str, folder: str, names: Iterable[str], now: datetime | None = None
    ) -> int:
        count = 0
        for name in names:
            for entry in self._present(udid, folder):
                if entry.name == name:
                    self._replace(entry, present=False)
                    count += 1
        return count

    def mark_folder_absent(self, udid: str, folder: str, now: datetime | None = None) -> int:
        present = self._present(udid, folder)
        for entry in present:
            self._replace(entry, present=False)
        return len(present)

    def observe_files(
        self,
        udid: str,
        folder: str,
        files: Iterable[tuple[str, int, int, int]],
        now: datetime | None = None,
    ) -> None:
        for name, size, birth_time_ns, modified_time_ns in files:
            for entry in self._present(udid, folder):
                if entry.name == name and (entry.size, entry.birth_time_ns) != (
                    size,
                    birth_time_ns,
                ):
                    self._replace(entry, present=False)
            known = next(
                (
                    e
                    for e in self._files
                    if (e.udid, e.folder, e.name, e.size, e.birth_time_ns)
                    == (udid, folder, name, size, birth_time_ns)
                ),
                None,
            )
            if known is not None:
                self._replace(known, present=True)
                self._checked[known.id] = utc_now_text(now)
                continue
            file_id = next(self._ids)
            self._checked[file_id] = utc_now_text(now)
            self._files.append(
                ManifestEntry(
                    id=file_id,
                    udid=udid,
                    folder=folder,
                    name=name,
                    size=size,
                    birth_time_ns=birth_time_ns,
                    modified_time_ns=modified_time_ns,
                    status=PENDING,
                    present=True,
                    archive_path=None,
                    content_hash=None,
                    failure_reason="",
                )
            )

    def touch_present(self, udid: str, folder: str, now: datetime | None = None) -> None:
        return None  # the fake keeps no last-seen stamps

    def set_file_status(self, file_id: int, status: str, failure_reason: str = "") -> None:
        for entry in self._files:
            if entry.id == file_id:
                self._replace(entry, status=status, failure_reason=failure_reason)

    def status_counts(self, udid: str) -> dict[str, int]:
        return dict(Counter(e.status for e in self._files if e.udid == udid and e.present))

    def count_archived_not_present(self, udid: str) -> int:
        return sum(
            1 for e in self._files if e.udid == udid and not e.present and e.status == ARCHIVED
        )

    def manifest(
        self, udid: str | None = None, *, present_only: bool = False
    ) -> list[ManifestEntry]:
        chosen = [
            e
            for e in self._files
            if (udid is None or e.udid == udid) and (e.present or not present_only)
        ]
        return sorted(chosen, key=lambda e: (e.udid, e.folder, e.name))

    # -- the archive ---------------------------------------------------------------------------

    def archive_entry(self, relative_path: str) -> ArchiveEntry | None:
        return self._archive.get(relative_path)

    def archive_entry_by_hash(self, content_hash: str) -> ArchiveEntry | None:
        matching = [e for e in self._archive.values() if e.content_hash == content_hash]
        return min(matching, key=lambda e: e.relative_path) if matching else None

    def record_archived(
        self,
        file_id: int,
        *,
        relative_path: str,
        content_hash: str,
        hash_algorithm: str,
        size: int,
        origin: str,
        capture_time: str | None,
        capture_source: str | None,
        now: datetime | None = None,
    ) -> None:
        stamp = utc_now_text(now)
        self._archive.setdefault(
            relative_path,
            ArchiveEntry(relative_path, content_hash, hash_algorithm, size, origin, stamp, stamp),
        )
        for entry in self._files:
            if entry.id == file_id:
                self._replace(
                    entry,
                    status=ARCHIVED,
                    archive_path=relative_path,
                    content_hash=content_hash,
                    failure_reason="",
                )

    # -- phones and runs -----------------------------------------------------------------------

    def _device_or_new(self, udid: str, stamp: str) -> DeviceRecord:
        return self._devices.get(udid) or DeviceRecord(
            udid, "", "", "", stamp, stamp, "disconnected", "", stamp, 0, 0, 0, 0, None, None
        )

    def record_device_seen(
        self,
        udid: str,
        *,
        name: str | None = None,
        product_type: str | None = None,
        product_version: str | None = None,
        now: datetime | None = None,
    ) -> None:
        stamp = utc_now_text(now)
        device = replace(self._device_or_new(udid, stamp), last_seen_at=stamp)
        for column, value in (
            ("name", name),
            ("product_type", product_type),
            ("product_version", product_version),
        ):
            if value is not None:
                device = replace(device, **{column: value})  # type: ignore[arg-type]
        self._devices[udid] = device

    def set_device_state(
        self, udid: str, state: str, detail: str = "", now: datetime | None = None
    ) -> None:
        stamp = utc_now_text(now)
        self._devices[udid] = replace(
            self._device_or_new(udid, stamp),
            state=state,
            state_detail=detail,
            state_changed_at=stamp,
        )

    def set_device_progress(
        self, udid: str, files_done: int, files_total: int, bytes_done: int, bytes_total: int
    ) -> None:
        if udid in self._devices:
            self._devices[udid] = replace(
                self._devices[udid],
                progress_files_done=files_done,
                progress_files_total=files_total,
                progress_bytes_done=bytes_done,
                progress_bytes_total=bytes_total,
            )

    def device(self, udid: str) -> DeviceRecord | None:
        return self._devices.get(udid)

    def start_run(self, udid: str, now: datetime | None = None) -> int:
        run_id = next(self._run_ids)
        self._runs[run_id] = _Run(
            _run_record(run_id, udid, utc_now_text(now), None, "running", RunCounts(), "")
        )
        return run_id

    def finish_run(
        self,
        run_id: int,
        outcome: str,
        counts: RunCounts,
        error: str = "",
        now: datetime | None = None,
    ) -> None:
        stamp = utc_now_text(now)
        run = self._runs[run_id]
        record = run.record
        run.record = _run_record(
            record.id, record.udid, record.started_at, stamp, outcome, counts, error
        )
        if outcome == "complete" and record.udid in self._devices:
            self._devices[record.udid] = replace(
                self._devices[record.udid], last_complete_run_id=run_id, last_complete_at=stamp
            )

    def add_run_failure(self, run_id: int, phone_path: str, reason: str, detail: str = "") -> None:
        self._runs[run_id].failures.append((phone_path, reason, detail))

    def runs(self, udid: str | None = None, limit: int = 50) -> list[RunRecord]:
        chosen = [run.record for run in self._runs.values() if udid in (None, run.record.udid)]
        return sorted(chosen, key=lambda record: record.id, reverse=True)[:limit]

    def run_failures(self, run_id: int) -> list[tuple[str, str, str]]:
        return list(self._runs[run_id].failures)


def _run_record(
    run_id: int,
    udid: str,
    started_at: str,
    finished_at: str | None,
    outcome: str,
    counts: RunCounts,
    error: str,
) -> RunRecord:
    return RunRecord(
        id=run_id,
        udid=udid,
        started_at=started_at,
        finished_at=finished_at,
        outcome=outcome,
        files_found=counts.files_found,
        files_copied=counts.files_copied,
        bytes_copied=counts.bytes_copied,
        files_already_archived=counts.files_already_archived,
        files_deduplicated=counts.files_deduplicated,
        files_excluded=counts.files_excluded,
        files_failed=counts.files_failed,
        files_pending=counts.files_pending,
        files_not_on_phone=counts.files_not_on_phone,
        items_rejected=counts.items_rejected,
        error=error,
    )


# -- the clock -----------------------------------------------------------------------------------


class FakeClock:
    """A clock that only moves when told to (aware UTC, like the real one)."""

    def __init__(self, start: datetime = datetime(2024, 5, 1, 12, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the time forward."""
        self.now += timedelta(seconds=seconds)


if TYPE_CHECKING:
    # Each fake implements its port (checked by mypy, not at run time).
    _phone_files: PhoneFiles = FakePhoneFiles()
    _store: BackupStore = FakeStore()
    _clock: Clock = FakeClock()
