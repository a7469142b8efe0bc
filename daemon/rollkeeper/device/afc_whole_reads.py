"""Several small phone files read whole at once: their OPENs, READs and CLOSEs each in one write.

Read one after another, a 100 KB file costs three AFC round trips (OPEN, READ, CLOSE), each a
request written on its own and a reply waited for: for many small files, the per-request work
(pymobiledevice3's request path, a ``send`` that wakes the phone's side, a wake-up for the
reply) is most of the client's time. Here up to :data:`~rollkeeper.device.phone_files.
MAX_OPEN_FILES` files at a time are opened with one window of OPENs, read with one window of
READs (each of the file's stat size plus one byte, as a file read alone is, so a longer file
shows as more bytes) and closed with one window of CLOSEs (:func:`.afc_batch.send_requests`):
three writes and three round trips for the files together.

Each file's refusal stays its own (not found, not readable: its entry in the result); a phone
that stops answering, an unplug or a phone out of file slots ends the whole call, as it ends a
read alone. The handles opened are closed before the call returns (the CLOSE window, errors
ignored as :meth:`PhoneFilesystem.close` ignores them), and the file slots they took are
released. A READ reply shorter than asked and than the stat (a phone that serves a file in
pieces) is completed with READs of that handle one after another, as a file read alone is.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pymobiledevice3.services.afc import AFC_FOPEN_TEXTUAL_MODES, AfcError, AfcOpcode

from rollkeeper.device import afc_batch
from rollkeeper.device.errors import PhoneOutOfFileSlotsError
from rollkeeper.ports import MAXIMUM_READ_BYTES, FileNotOnPhoneError, PhoneReadError

#: What one file of :func:`read_whole_many` gives: its chunks as received, or its refusal.
WholeRead = list[bytes | bytearray] | FileNotOnPhoneError | PhoneReadError

_HANDLE = struct.Struct("<Q")
_READ_REQUEST = struct.Struct("<QQ")
_OPEN_READ_ONLY = _HANDLE.pack(int(AFC_FOPEN_TEXTUAL_MODES["r"]))


class FilesNotAnsweredError(TimeoutError):
    """The phone left requests of these files unanswered past the deadline (``what`` is the
    request: OPEN or READ)."""

    def __init__(self, what: str, paths: list[str]) -> None:
        super().__init__(f"no answer to {what} of {len(paths)} files")
        self.what = what
        self.paths = paths


def open_request(path: str) -> bytes:
    """A FILE_OPEN payload: the read-only mode and the path (as pymobiledevice3's ``fopen``)."""
    return _OPEN_READ_ONLY + path.encode("utf-8") + b"\x00"


def _refusal(what: str, status: object) -> FileNotOnPhoneError | PhoneReadError:
    if status == AfcError.OBJECT_NOT_FOUND:
        return FileNotOnPhoneError(what)
    return PhoneReadError(f"{what}: the phone answered {status}", status)


async def read_whole_many(
    afc: Any,
    files: Sequence[tuple[str, int]],
    timeout_seconds: float,
    read_more: Callable[[int, int], Awaitable[bytes | bytearray]],
) -> list[WholeRead]:
    """Each ``(path, stat size)``'s bytes, read whole, for at most a few files at once (the
    caller holds a file slot for each). ``read_more(handle, size)`` is one READ alone (for a
    reply that came short). Raises :class:`FilesNotAnsweredError` (a ``TimeoutError``) naming
    the files whose OPEN or READ is not answered in time,
    :class:`PhoneOutOfFileSlotsError` when the phone refuses an OPEN for want of slots, the
    connection's error when it ends."""
    try:
        replies = await afc_batch.send_requests(
            afc, [(AfcOpcode.FILE_OPEN, open_request(path)) for path, _ in files], timeout_seconds
        )
    except afc_batch.WindowNotAnsweredError as error:
        raise FilesNotAnsweredError("OPEN", [files[i][0] for i in error.unanswered]) from error
    results: list[WholeRead] = []
    handles: list[int] = []
    opened: list[int] = []  # the index of each file in ``handles``
    out_of_slots: PhoneOutOfFileSlotsError | None = None
    for index, ((path, _), (status, data)) in enumerate(zip(files, replies, strict=True)):
        if status == AfcError.SUCCESS and len(data) >= _HANDLE.size:
            handle = _HANDLE.unpack_from(data)[0]
            if handle:
                handles.append(handle)
                opened.append(index)
                results.append([])
                continue
            results.append(PhoneReadError(f"OPEN {path}: the phone returned no handle", None))
        else:
            if status == AfcError.NO_RESOURCES:
                out_of_slots = PhoneOutOfFileSlotsError(f"OPEN {path}: the phone answered {status}")
            results.append(_refusal(f"OPEN {path}", status))
    try:
        if out_of_slots is not None:
            raise out_of_slots
        await _read_opened(afc, files, handles, opened, results, timeout_seconds, read_more)
    finally:
        if handles:
            # Errors ignored, as a CLOSE alone ignores them: the connection may be gone.
            with contextlib.suppress(Exception):
                await afc_batch.send_requests(
                    afc,
                    [(AfcOpcode.FILE_CLOSE, _HANDLE.pack(handle)) for handle in handles],
                    timeout_seconds,
                )
    return results


async def _read_opened(
    afc: Any,
    files: Sequence[tuple[str, int]],
    handles: list[int],
    opened: list[int],
    results: list[WholeRead],
    timeout_seconds: float,
    read_more: Callable[[int, int], Awaitable[bytes | bytearray]],
) -> None:
    """One READ window for the opened files; a short reply is completed one READ at a time."""
    asked = [min(MAXIMUM_READ_BYTES, files[index][1] + 1) for index in opened]
    requests = [
        (AfcOpcode.READ, _READ_REQUEST.pack(handle, count))
        for handle, count in zip(handles, asked, strict=True)
    ]
    try:
        replies = await afc_batch.send_requests(afc, requests, timeout_seconds)
    except afc_batch.WindowNotAnsweredError as error:
        paths = [files[opened[i]][0] for i in error.unanswered]
        raise FilesNotAnsweredError("READ", paths) from error
    for handle, index, count, (status, data) in zip(handles, opened, asked, replies, strict=True):
        path, expected = files[index]
        if status != AfcError.SUCCESS:
            results[index] = PhoneReadError(f"READ {path}: the phone answered {status}", status)
            continue
        chunks: list[bytes | bytearray] = []
        received = 0
        chunk, wanted = data, count
        failure: PhoneReadError | None = None
        while chunk:
            chunks.append(chunk)
            received += len(chunk)
            if received > expected or (len(chunk) < wanted and received == expected):
                break
            # Short of the stat: read on, one READ alone (the phone serves it in pieces).
            wanted = min(MAXIMUM_READ_BYTES, expected - received + 1)
            try:
                chunk = await read_more(handle, wanted)
            except PhoneReadError as error:
                failure = error
                break
        results[index] = failure if failure is not None else chunks
