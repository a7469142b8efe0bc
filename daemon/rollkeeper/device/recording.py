"""Record what a real phone answers, at rollkeeper's own ports, redacted, for replay in tests.

A proxy between usbmuxd and a client would see only TLS; the decoded exchange exists inside
rollkeeper. :class:`SessionRecorder` writes one JSON object per line to a private file (0600):
a header, then for each phone the outcome of opening its session (a state, or the lockdown
values seen), and every request of the phone-files port (:class:`~rollkeeper.ports.PhoneFiles`)
with its reply or error, each with the seconds since recording began. What is kept and what is
replaced is :mod:`rollkeeper.device.redaction`'s rule; :mod:`rollkeeper.device.replay` turns a
recording back into a phone that rollkeeper can back up. ``rollkeeper backup-now --record FILE``
makes one (docs/simulator.md, "Recording a real phone").
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO, TypeVar

from rollkeeper.device.redaction import (
    NameRedactor,
    content_summary,
    redact_lockdown_values,
    udid_stand_in,
)
from rollkeeper.ports import FileNotOnPhoneError, ListedName, PhoneFiles, PhoneReadError, RawStat

#: The first line of every recording says what it is.
FORMAT = "rollkeeper-phone-recording"
FORMAT_VERSION = 1

_Result = TypeVar("_Result")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


class SessionRecorder:
    """One recording file; :meth:`for_phone` gives each phone's recorder (thread-safe writes)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._stream: TextIO = os.fdopen(descriptor, "w", encoding="utf-8")
        self._phones: dict[str, PhoneRecorder] = {}
        self._write(
            {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "recorded_with": {
                    "rollkeeper": _version("rollkeeper"),
                    "pymobiledevice3": _version("pymobiledevice3"),
                },
                "redaction": "names as shapes, contents as sizes and SHA-256, times kept",
            }
        )

    def for_phone(self, udid: str) -> PhoneRecorder:
        """The recorder of one phone (the same one for the same UDID)."""
        if udid not in self._phones:
            number = len(self._phones)
            self._phones[udid] = PhoneRecorder(self, number, udid_stand_in(udid, number + 1))
        return self._phones[udid]

    def record(self, phone: int, kind: str, fields: dict[str, Any]) -> None:
        """Write one event line."""
        seconds = round(self._clock() - self._started, 6)
        self._write({"t": seconds, "phone": phone, "kind": kind, **fields})

    def _write(self, line: dict[str, Any]) -> None:
        text = json.dumps(line, sort_keys=True, default=str)
        with self._lock:
            if not self._stream.closed:
                self._stream.write(text + "\n")
                self._stream.flush()

    def close(self) -> None:
        """Finish the file."""
        with self._lock:
            self._stream.close()


class PhoneRecorder:
    """What one phone said: its session's outcome, its lockdown values, its files' replies."""

    def __init__(self, recording: SessionRecorder, number: int, udid: str) -> None:
        self._recording = recording
        self.number = number
        #: The stand-in UDID the recording uses for this phone.
        self.udid = udid
        self.names = NameRedactor()

    def record(self, kind: str, **fields: Any) -> None:
        """Write one event of this phone."""
        self._recording.record(self.number, kind, fields)

    def session_opened(self, values: dict[str, Any]) -> None:
        """The session is open: lockdown's values (all domains' defaults), redacted."""
        self.record("session", outcome="opened", lockdown=redact_lockdown_values(values, self.udid))

    def session_refused(self, error: BaseException) -> None:
        """The session could not open: the state and error type (never the message)."""
        self.record(
            "session",
            outcome="refused",
            error=type(error).__name__,
            state=getattr(error, "state", None),
        )

    def wrap(self, files: PhoneFiles) -> PhoneFiles:
        """The phone-files port of this session, recording every request and reply."""
        return RecordingPhoneFiles(files, self)


def _error(error: BaseException) -> dict[str, Any]:
    status = getattr(error, "status", None)
    return {"type": type(error).__name__, "status": None if status is None else int(status)}


def _recorded_stat(raw: RawStat) -> dict[str, Any]:
    """A stat's fields as recorded: sizes and times kept, a link's target only by length."""
    return {
        key: value if key != "LinkTarget" else {"length": len(value)}
        for key, value in raw.fields.items()
    }


class RecordingPhoneFiles:
    """A :class:`~rollkeeper.ports.PhoneFiles` that passes every call on and records it."""

    def __init__(self, inner: PhoneFiles, recorder: PhoneRecorder) -> None:
        self._inner = inner
        self._recorder = recorder

    async def _call(
        self,
        operation: str,
        fields: dict[str, Any],
        call: Awaitable[_Result],
        reply: Callable[[_Result], Any],
    ) -> _Result:
        try:
            result = await call
        except Exception as error:
            self._recorder.record("afc", op=operation, error=_error(error), **fields)
            raise
        self._recorder.record("afc", op=operation, reply=reply(result), **fields)
        return result

    def _path(self, path: str) -> str:
        return self._recorder.names.path(path)

    async def list_folder(self, path: str) -> Sequence[ListedName]:
        """READ_DIR, recorded with the listed names' stand-ins."""
        stand_in = self._path(path)

        def names(entries: Sequence[ListedName]) -> list[dict[str, Any]]:
            listed: list[dict[str, Any]] = []
            for entry in entries:
                if entry.text is None:
                    listed.append({"utf8": False, "length": len(entry.raw)})
                else:
                    listed.append({"name": self._recorder.names.name(stand_in, entry.text)})
            return listed

        return await self._call(
            "list_folder", {"path": stand_in}, self._inner.list_folder(path), names
        )

    async def stat(self, path: str) -> RawStat:
        """GET_FILE_INFO, recorded with every field (sizes and times are kept)."""
        return await self._call(
            "stat",
            {"path": self._path(path)},
            self._inner.stat(path),
            _recorded_stat,
        )

    async def stat_many(
        self, paths: Sequence[str]
    ) -> list[RawStat | FileNotOnPhoneError | PhoneReadError]:
        """GET_FILE_INFO of each path, sent together as the inner port does; each path is
        recorded as a ``stat`` of its own (so a replay answers ``stat`` and ``stat_many``
        alike), its refusal as that stat's error."""
        try:
            replies = await self._inner.stat_many(paths)
        except Exception as error:
            for path in paths:
                self._recorder.record("afc", op="stat", error=_error(error), path=self._path(path))
            raise
        for path, reply in zip(paths, replies, strict=True):
            if isinstance(reply, RawStat):
                self._recorder.record(
                    "afc", op="stat", reply=_recorded_stat(reply), path=self._path(path)
                )
            else:
                self._recorder.record("afc", op="stat", error=_error(reply), path=self._path(path))
        return replies

    async def open(self, path: str) -> int:
        """FILE_OPEN, recorded with its handle."""
        return await self._call(
            "open", {"path": self._path(path)}, self._inner.open(path), lambda handle: handle
        )

    async def seek(self, handle: int, offset: int) -> None:
        """FILE_SEEK."""
        await self._call(
            "seek",
            {"handle": handle, "offset": offset},
            self._inner.seek(handle, offset),
            lambda _none: None,
        )

    async def read(self, handle: int, size: int) -> bytes | bytearray:
        """READ, recorded as the size and hash of what came."""
        return await self._call(
            "read",
            {"handle": handle, "size": size},
            self._inner.read(handle, size),
            content_summary,
        )

    async def close(self, handle: int) -> None:
        """FILE_CLOSE."""
        await self._call("close", {"handle": handle}, self._inner.close(handle), lambda _n: None)
