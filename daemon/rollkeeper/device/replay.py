"""A recorded phone, played back: what :mod:`rollkeeper.device.recording` wrote, as a phone again.

:func:`load_recording` reads a recording into one :class:`RecordedPhone` per phone: its folders'
listings, its stats, the opens and reads that failed and where, and who it said it was.
:class:`ReplayedPhoneFiles` answers rollkeeper's phone-files port from that model, so the real
importer runs against it (``tests/replay/``). It is a model rather than a script: rollkeeper may
ask in another order or in other chunks than when the recording was made, and still gets the
phone's answers, with errors at the same paths and offsets. File contents are not in a
recording (only their sizes and hashes): each file serves pseudo-random bytes of its recorded
size, derived from its path, so no two files look alike.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollkeeper.device import errors as phone_errors
from rollkeeper.device.recording import FORMAT
from rollkeeper.ports import (
    MAXIMUM_READ_BYTES,
    FileNotOnPhoneError,
    ListedName,
    PhoneReadError,
    RawStat,
    stats_one_by_one,
)

#: Each file's bytes repeat a block of this size, drawn from a generator seeded by its path.
_BLOCK_BYTES = 1 << 20


class RecordingError(ValueError):
    """The file is not a recording this version can replay."""


@dataclass
class RecordedPhone:
    """One phone of a recording: who it said it was and how its files answered."""

    number: int
    udid: str = ""
    lockdown: dict[str, Any] = field(default_factory=dict)
    #: The session could not open: the recorded state (``waiting_for_trust`` ...).
    refused_state: str | None = None
    listings: dict[str, list[ListedName]] = field(default_factory=dict)
    stats: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Per path, the error a request of that kind got: ``("list_folder", path)`` -> error.
    errors: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: Per path, the offset from which reads failed, and how.
    read_failures: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A name for the replayed phone (the real one is not in the recording)."""
        return f"Recorded iPhone {self.number + 1}"

    def file_size(self, path: str) -> int:
        """The size the phone reported for a file (0 when it never said)."""
        value = self.stats.get(path, {}).get("st_size", "0")
        return int(value) if value.isdigit() else 0


def load_recording(path: Path) -> list[RecordedPhone]:
    """Every phone of a recording, in the order they were first recorded.

    :raises RecordingError: not a recording, or of another format version.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError as error:
        raise RecordingError(f"{path}: not a recording ({error})") from error
    if header.get("format") != FORMAT or header.get("version") != 1:
        raise RecordingError(f"{path}: not a version 1 {FORMAT}")
    phones: dict[int, RecordedPhone] = {}
    handles: dict[tuple[int, int], tuple[str, int]] = {}
    for line in lines[1:]:
        event = json.loads(line)
        phone = phones.setdefault(event["phone"], RecordedPhone(event["phone"]))
        if event["kind"] == "session":
            _session(phone, event)
        elif event["kind"] == "afc":
            _afc(phone, event, handles)
    return [phones[number] for number in sorted(phones)]


def _session(phone: RecordedPhone, event: dict[str, Any]) -> None:
    if event["outcome"] == "opened":
        phone.lockdown = event.get("lockdown", {})
        phone.udid = str(phone.lockdown.get("UniqueDeviceID", ""))
        phone.refused_state = None
    else:
        phone.refused_state = event.get("state") or "error"


def _listed(entries: list[dict[str, Any]]) -> list[ListedName]:
    listed = []
    for entry in entries:
        if "name" in entry:
            text = str(entry["name"])
            listed.append(ListedName(raw=text.encode("utf-8"), text=text))
        else:
            # A name that was not UTF-8: the same length, and not UTF-8 either.
            length = max(1, int(entry.get("length", 1)))
            listed.append(ListedName(raw=b"x" * (length - 1) + b"\xff", text=None))
    return listed


def _afc(
    phone: RecordedPhone, event: dict[str, Any], handles: dict[tuple[int, int], tuple[str, int]]
) -> None:
    operation = event["op"]
    error = event.get("error")
    if operation in ("list_folder", "stat", "open"):
        path = event["path"]
        if error is not None:
            phone.errors[(operation, path)] = error
        elif operation == "list_folder":
            phone.listings[path] = _listed(event["reply"])
        elif operation == "stat":
            phone.stats[path] = {key: str(value) for key, value in event["reply"].items()}
        else:
            handles[(phone.number, int(event["reply"]))] = (path, 0)
        return
    key = (phone.number, int(event["handle"]))
    if key not in handles:
        return
    path, position = handles[key]
    if operation == "seek" and error is None:
        handles[key] = (path, int(event["offset"]))
    elif operation == "read":
        if error is not None:
            known = phone.read_failures.get(path)
            if known is None or position < known[0]:
                phone.read_failures[path] = (position, error)
        else:
            handles[key] = (path, position + int(event["reply"]["bytes"]))


def replayed_error(error: dict[str, Any], what: str) -> Exception:
    """The port-level error a recorded one stands for."""
    kind = str(error.get("type", ""))
    if kind == "FileNotOnPhoneError":
        return FileNotOnPhoneError(what)
    cls = getattr(phone_errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, phone_errors.PhoneUnavailableError):
        return cls(f"replayed: {what}")
    return PhoneReadError(f"replayed: {what}", error.get("status"))


class ReplayedPhoneFiles:
    """The phone-files port of a :class:`RecordedPhone` (see the module docstring)."""

    def __init__(self, phone: RecordedPhone) -> None:
        self.phone = phone
        self._handles: dict[int, list[Any]] = {}
        self._next_handle = 1
        self._blocks: dict[str, bytes] = {}

    def _raise_recorded(self, operation: str, path: str) -> None:
        error = self.phone.errors.get((operation, path))
        if error is not None:
            raise replayed_error(error, f"{operation} {path}")

    async def list_folder(self, path: str) -> list[ListedName]:
        """The recorded listing of the folder."""
        self._raise_recorded("list_folder", path)
        if path not in self.phone.listings:
            raise FileNotOnPhoneError(f"READ_DIR {path}")
        return list(self.phone.listings[path])

    async def stat(self, path: str) -> RawStat:
        """The recorded stat of the path."""
        self._raise_recorded("stat", path)
        if path not in self.phone.stats:
            raise FileNotOnPhoneError(f"STAT {path}")
        return RawStat(dict(self.phone.stats[path]))

    async def stat_many(
        self, paths: Sequence[str]
    ) -> list[RawStat | FileNotOnPhoneError | PhoneReadError]:
        """The recorded stat (or refusal) of each path, in order."""
        return await stats_one_by_one(self.stat, paths)

    async def open(self, path: str) -> int:
        """A handle on the recorded file (its recorded refusal, if it had one)."""
        self._raise_recorded("open", path)
        if path not in self.phone.stats:
            raise FileNotOnPhoneError(f"OPEN {path}")
        handle = self._next_handle
        self._next_handle += 1
        self._handles[handle] = [path, 0]
        return handle

    async def seek(self, handle: int, offset: int) -> None:
        """Move the handle."""
        self._handles[handle][1] = offset

    async def read(self, handle: int, size: int) -> bytes:
        """The file's bytes from the handle's position, failing where the recording failed."""
        path, position = self._handles[handle]
        failure = self.phone.read_failures.get(path)
        end = self.phone.file_size(path)
        if failure is not None:
            if position >= failure[0]:
                raise replayed_error(failure[1], f"READ {path}")
            end = min(end, failure[0])
        count = max(0, min(size, MAXIMUM_READ_BYTES, end - position))
        data = self._bytes(path, position, count)
        self._handles[handle][1] = position + count
        return data

    async def close(self, handle: int) -> None:
        """Release the handle."""
        self._handles.pop(handle, None)

    def _bytes(self, path: str, offset: int, count: int) -> bytes:
        block = self._blocks.get(path)
        if block is None:
            block = self._blocks[path] = random.Random(path).randbytes(_BLOCK_BYTES)
        pieces = []
        while count > 0:
            start = offset % _BLOCK_BYTES
            piece = block[start : start + count]
            pieces.append(piece)
            offset += len(piece)
            count -= len(piece)
        return b"".join(pieces)


@dataclass(frozen=True, slots=True)
class ReplayedInfo:
    """Who the replayed phone says it is."""

    udid: str
    name: str
    product_type: str
    product_version: str


class ReplayedConnection:
    """A :class:`~rollkeeper.ports.PhoneConnection` to a recorded phone."""

    def __init__(self, phone: RecordedPhone) -> None:
        lockdown = phone.lockdown
        self.info = ReplayedInfo(
            udid=phone.udid or f"recorded-phone-{phone.number + 1}",
            name=phone.name,
            product_type=str(lockdown.get("ProductType", "")),
            product_version=str(lockdown.get("ProductVersion", "")),
        )
        self.files = ReplayedPhoneFiles(phone)
