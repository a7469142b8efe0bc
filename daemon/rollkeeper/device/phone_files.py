"""The phone's media folder over AFC, as untrusted raw data with a time limit on every request.

pymobiledevice3's ``listdir`` stops at the first name that is not UTF-8 and ``stat`` raises
``KeyError`` on a reply with a missing key and rounds times through floats. A phone is untrusted
input, so this adapter sends READ_DIR and GET_FILE_INFO itself (:func:`send_afc_request` and,
for many stats at once, :mod:`rollkeeper.device.afc_batch`: the two places that reach into
pymobiledevice3's AFC service) and returns raw values that the scanner checks. Every request has
a deadline (a batch: one per window of requests): a phone that stops answering becomes
:class:`PhoneNotRespondingError`, never a hung job.

Open files are bounded: at most :data:`MAX_OPEN_FILES` handles per AFC connection, a further
``open`` waits for a ``close``. afcd refuses opens beyond its own per-connection limit with
"No file slots" (libimobiledevice #284), and that limit is not published, so rollkeeper keeps far
below any plausible value (it reads one file at a time). A phone that refuses anyway
(:class:`PhoneOutOfFileSlotsError`) ends the run without blaming the file.

READ replies are received with one copy per byte: at the first READ the connection's
receiving side is handed to :class:`~rollkeeper.device.afc_receiver.AfcReceiver`
(:func:`receive_directly`), so a 4 MiB reply lands in a buffer of its own straight from the
socket instead of going through asyncio's stream buffer (three copies, and most of the client's
CPU at 300 MB/s). pymobiledevice3's reply matching and error handling stay as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from pymobiledevice3.exceptions import AfcException, AfcFileNotFoundError
from pymobiledevice3.services.afc import AfcError, AfcOpcode, AfcService

from rollkeeper.device import afc_batch, afc_whole_reads
from rollkeeper.device.afc_receiver import AfcReceiver
from rollkeeper.device.errors import (
    PhoneDisconnectedError,
    PhoneNotRespondingError,
    PhoneOutOfFileSlotsError,
)
from rollkeeper.device.translate import translate_or_raise
from rollkeeper.ports import (
    MAXIMUM_READ_BYTES,
    DecodedListing,
    FileNotOnPhoneError,
    ListedName,
    PhoneReadError,
    RawStat,
)

__all__ = [
    "MAXIMUM_READ_BYTES",
    "FileNotOnPhoneError",
    "ListedName",
    "PhoneFilesystem",
    "PhoneReadError",
    "RawStat",
    "StatReply",
]

#: One path's answer in :meth:`PhoneFilesystem.stat_many`.
StatReply = RawStat | FileNotOnPhoneError | PhoneReadError

_Result = TypeVar("_Result")

#: Files open at once on one AFC connection, at most (see the module docstring).
MAX_OPEN_FILES = 4

#: A READ request's payload: the handle and the byte count, little-endian.
_READ_REQUEST = struct.Struct("<QQ")


#: How afcd begins a listing: the folder's own entries.
_DOT_ENTRIES = ".\x00..\x00"


def _encode_path(path: str) -> bytes:
    return path.encode("utf-8") + b"\x00"


async def send_afc_request(afc: AfcService, opcode: AfcOpcode, payload: bytes) -> bytes:
    """One AFC request and the payload of its reply, unparsed.

    pymobiledevice3 has no public call for this: its ``listdir`` stops at the first name that is
    not UTF-8 and its ``stat`` raises ``KeyError`` for a missing key, so the raw reply is what an
    untrusted phone needs. ``AfcService._do_operation`` is the request path all of its public
    calls go through (the reply matched by packet number, an error status raised as
    ``AfcException`` / ``AfcFileNotFoundError``). It is private, so it is reached here only; the
    contract tests (tests/contract/) run it against the simulator with the installed version.
    """
    service: Any = afc
    data: bytes | bytearray = await service._do_operation(opcode, payload)  # noqa: SLF001 - no public raw AFC request; see the docstring
    # A large reply comes in a bytearray of its own (AfcReceiver); every reply but READ's is
    # parsed, and its parts kept, as bytes.
    return data if isinstance(data, bytes) else bytes(data)


async def _read_request(afc: AfcService, handle: int, size: int) -> bytes | bytearray:
    """One READ and its payload, as received (a large one in the bytearray it arrived in).

    The same request as pymobiledevice3's ``fread`` for at most 4 MiB, through the same private
    request path as :func:`send_afc_request`, but without ``fread``'s ``data += chunk``, which
    copies a bytearray reply into a new ``bytes``. A failure status raises ``AfcException``
    with it, as ``fread`` does (``_do_operation`` would make "object not found" a
    ``AfcFileNotFoundError``, which a READ on an open handle does not mean).
    """
    service: Any = afc
    try:
        data: bytes | bytearray = await service._do_operation(  # noqa: SLF001 - no public READ without a copy; see the docstring
            AfcOpcode.READ, _READ_REQUEST.pack(handle, size)
        )
    except AfcFileNotFoundError as error:
        raise AfcException("Failed to read from the file.", error.status) from error
    return data


class _Takeover:
    """Whether a connection's receiving side is :class:`AfcReceiver`'s yet, or cannot be."""

    PENDING = "pending"
    DONE = "done"
    IMPOSSIBLE = "impossible"


async def receive_directly(afc: AfcService) -> str:
    """Put :class:`AfcReceiver` on ``afc``'s connection in place of asyncio's stream reader.

    pymobiledevice3 reads AFC replies in one background task (``_afc_reader_loop``) through
    ``ServiceConnection.recvall``, i.e. ``reader.readexactly``, and matches each to its waiting
    request by packet number (``_afc_pending``). The handover, when no reply is outstanding
    (nothing can then be half-read in the stream's buffer: a phone sends nothing unasked):
    stop that task, make the receiver the connection's reader and the transport's protocol,
    and start the task again, so replies are matched and errors passed on exactly as before.
    The stopped task marks the connection as ended on its way out (``_afc_terminated``); the
    mark is cleared again while the connection is in fact alive. Returns ``"done"``,
    ``"pending"`` (requests in flight: try at a later READ) or ``"impossible"`` (not a plain
    socket on a selector loop: the stream reader stays). These are pymobiledevice3 privates,
    reached here only; tests/contract/ runs this against the installed version.
    """
    service: Any = afc
    connection = service.service
    if isinstance(connection.reader, AfcReceiver):
        return _Takeover.DONE
    writer: asyncio.StreamWriter = connection.writer
    transport = writer.transport
    if (
        not isinstance(asyncio.get_running_loop(), asyncio.SelectorEventLoop)
        or not isinstance(transport, asyncio.Transport)
        or writer.get_extra_info("ssl_object") is not None
        or writer.get_extra_info("socket") is None
        or transport.is_closing()
    ):
        return _Takeover.IMPOSSIBLE
    old_task: asyncio.Task[None] | None = service._afc_reader_task  # noqa: SLF001 - see the docstring
    if (
        service._afc_pending  # noqa: SLF001 - see the docstring
        or old_task is None
        or old_task.done()
        or service._afc_terminated.is_set()  # noqa: SLF001 - see the docstring
    ):
        # Replies outstanding, or pymobiledevice3's own reader not running (it restarts it,
        # and reports an ended connection, at the next request): not now.
        return _Takeover.PENDING
    receiver = AfcReceiver(transport, transport.get_protocol())
    old_task.cancel()
    connection.reader = receiver
    transport.set_protocol(receiver)
    service._afc_reader_task = asyncio.create_task(  # noqa: SLF001 - see the docstring
        service._afc_reader_loop(),  # noqa: SLF001 - see the docstring
        name="afc-reader",
    )
    await asyncio.wait([old_task])
    if not transport.is_closing():
        service._afc_terminated.clear()  # noqa: SLF001 - see the docstring
    return _Takeover.DONE


def raw_stat_of(data: bytes) -> RawStat:
    """A GET_FILE_INFO reply's NUL-separated key/value pairs (undecodable bytes replaced, an
    odd key without a value dropped)."""
    parts = data.decode("utf-8", errors="replace").split("\x00")
    if parts and parts[-1] == "":
        parts.pop()
    return RawStat(dict(zip(parts[0::2], parts[1::2], strict=False)))


def stat_reply_of(path: str, status: object, data: bytes) -> StatReply:
    """One reply of a batch as the port gives it: the stat, or the path's refusal."""
    if status == AfcError.SUCCESS:
        return raw_stat_of(data)
    if status == AfcError.OBJECT_NOT_FOUND:
        return FileNotOnPhoneError(f"STAT {path}")
    return PhoneReadError(f"STAT {path}: the phone answered {status}", status)


class PhoneFilesystem:
    """Read-only access to the phone's media folder through one AFC connection (the
    :class:`~rollkeeper.ports.PhoneFiles` port; its values and errors are defined there)."""

    def __init__(self, afc: AfcService, timeout_seconds: float = 30.0) -> None:
        self._afc = afc
        self.timeout_seconds = timeout_seconds
        self._file_slots = asyncio.Semaphore(MAX_OPEN_FILES)
        self._open_handles: set[int] = set()
        self._takeover = _Takeover.PENDING

    async def _bounded(self, operation: Awaitable[_Result], what: str) -> _Result:
        try:
            # asyncio.timeout, not wait_for: no task of its own per request (a scan sends one
            # request per file; 3.11's wait_for wraps each in a new task).
            async with asyncio.timeout(self.timeout_seconds):
                return await operation
        except TimeoutError as error:
            raise PhoneNotRespondingError(
                f"no answer to {what} within {self.timeout_seconds:g} s"
            ) from error
        except AfcFileNotFoundError as error:
            raise FileNotOnPhoneError(what) from error
        except AfcException as error:
            raise PhoneReadError(f"{what}: {error}", getattr(error, "status", None)) from error
        except (PhoneDisconnectedError, PhoneNotRespondingError):
            raise
        except Exception as error:
            translate_or_raise(error)
            raise  # pragma: no cover - translate_or_raise always raises

    async def _request(self, opcode: AfcOpcode, payload: bytes, what: str) -> bytes:
        return await self._bounded(send_afc_request(self._afc, opcode, payload), what)

    async def list_folder(self, path: str) -> Sequence[ListedName]:
        """The entries of a folder, without ``.`` and ``..``, undecodable names kept raw.

        Usually every name is UTF-8: the reply is decoded in one go and kept as text (a
        :class:`~rollkeeper.ports.DecodedListing`, no object per name). NUL is never part of a
        multi-byte sequence, so the texts split exactly as the bytes do."""
        data = await self._request(AfcOpcode.READ_DIR, _encode_path(path), f"READ_DIR {path}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return self._entries_one_by_one(data)
        # afcd lists "." and ".." first; anywhere else they are dropped one by one.
        if text.startswith(_DOT_ENTRIES):
            text = text[len(_DOT_ENTRIES) :]
        if text.endswith("\x00"):
            text = text[:-1]
        listing = DecodedListing(text)
        if "." in listing.texts or ".." in listing.texts:
            remaining = [name for name in listing.texts if name not in (".", "..")]
            listing = DecodedListing("\x00".join(remaining))
        return listing

    @staticmethod
    def _entries_one_by_one(data: bytes) -> list[ListedName]:
        """A listing with a name that is not UTF-8: each name decoded on its own."""
        raws = data.split(b"\x00")[:-1] if data.endswith(b"\x00") else data.split(b"\x00")
        entries: list[ListedName] = []
        for raw in raws:
            if raw in (b".", b".."):
                continue
            try:
                text: str | None = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            entries.append(ListedName(raw=raw, text=text))
        return entries

    async def stat(self, path: str) -> RawStat:
        """GET_FILE_INFO of a path, unparsed beyond its key/value pairs."""
        data = await self._request(AfcOpcode.GET_FILE_INFO, _encode_path(path), f"STAT {path}")
        return raw_stat_of(data)

    async def stat_many(self, paths: Sequence[str]) -> list[StatReply]:
        """GET_FILE_INFO of every path, pipelined: the port's ``stat_many``.

        The requests go out in windows of :data:`~rollkeeper.device.afc_batch.WINDOW` packets,
        each window written in one ``sendall``, two windows in flight, with one deadline per
        window instead of one per request (:mod:`rollkeeper.device.afc_batch`). A phone that
        stops answering is :class:`PhoneNotRespondingError` for the whole batch, an unplug
        :class:`PhoneDisconnectedError`; a path's own refusal is its entry in the list.
        """
        if not paths:
            return []
        payloads = [_encode_path(path) for path in paths]
        try:
            replies = await afc_batch.send_many(
                self._afc, AfcOpcode.GET_FILE_INFO, payloads, self.timeout_seconds
            )
        except afc_batch.ReaderNotRunning:
            # No reader to route the replies (before the first request, or after the connection
            # died): pymobiledevice3's own path starts one, or fails cleanly.
            return [await self._stat_reply(path) for path in paths]
        except TimeoutError as error:
            raise PhoneNotRespondingError(
                f"no answer to a batch of {len(paths)} STATs within {self.timeout_seconds:g} s"
            ) from error
        except (PhoneDisconnectedError, PhoneNotRespondingError):
            raise
        except Exception as error:
            translate_or_raise(error)
            raise  # pragma: no cover - translate_or_raise always raises
        return [
            stat_reply_of(path, status, data)
            for path, (status, data) in zip(paths, replies, strict=True)
        ]

    async def _stat_reply(self, path: str) -> StatReply:
        try:
            return await self.stat(path)
        except (FileNotOnPhoneError, PhoneReadError) as refusal:
            return refusal

    async def open(self, path: str) -> int:
        """Open a file read-only; returns the AFC handle. Waits while :data:`MAX_OPEN_FILES`
        are open on this connection."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self._file_slots.acquire()
        except TimeoutError as error:
            raise PhoneReadError(
                f"OPEN {path}: {MAX_OPEN_FILES} files stayed open on this connection", None
            ) from error
        try:
            handle: int = await self._bounded(self._afc.fopen(path, "r"), f"OPEN {path}")
        except PhoneReadError as error:
            self._file_slots.release()
            if error.status == AfcError.NO_RESOURCES:
                raise PhoneOutOfFileSlotsError(f"OPEN {path}: {error}") from error
            raise
        except BaseException:
            self._file_slots.release()
            raise
        if handle == 0:
            self._file_slots.release()
            raise PhoneReadError(f"OPEN {path}: the phone returned no handle", None)
        self._open_handles.add(handle)
        return handle

    async def read_whole_many(
        self, files: Sequence[tuple[str, int]]
    ) -> list[afc_whole_reads.WholeRead]:
        """Each ``(path, stat size)``'s bytes read whole, :data:`MAX_OPEN_FILES` files at a
        time with one write each for their OPENs, READs and CLOSEs (the port's
        ``read_whole_many``; :mod:`rollkeeper.device.afc_whole_reads`)."""
        results: list[afc_whole_reads.WholeRead] = []
        for start in range(0, len(files), MAX_OPEN_FILES):
            part = files[start : start + MAX_OPEN_FILES]
            if self._takeover == _Takeover.PENDING:
                self._takeover = await receive_directly(self._afc)
            taken = 0
            try:
                async with asyncio.timeout(self.timeout_seconds):
                    for _ in part:
                        await self._file_slots.acquire()
                        taken += 1
            except TimeoutError as error:
                for _ in range(taken):
                    self._file_slots.release()
                raise PhoneReadError(
                    f"OPEN {part[0][0]}: {MAX_OPEN_FILES} files stayed open on this connection",
                    None,
                ) from error
            try:
                results.extend(await self._whole_reads(part))
            finally:
                for _ in range(taken):
                    self._file_slots.release()
        return results

    async def _whole_reads(
        self, files: Sequence[tuple[str, int]]
    ) -> list[afc_whole_reads.WholeRead]:
        try:
            return await afc_whole_reads.read_whole_many(
                self._afc, files, self.timeout_seconds, self.read
            )
        except afc_batch.ReaderNotRunning:
            return [await self._whole_read_alone(path, size) for path, size in files]
        except afc_whole_reads.FilesNotAnsweredError as error:
            failure = PhoneNotRespondingError(
                f"no answer to {error.what} {error.paths[0] if error.paths else '?'} "
                f"(one of {len(files)} files read together) within {self.timeout_seconds:g} s"
            )
            failure.paths = tuple(error.paths)
            raise failure from error
        except TimeoutError as error:
            raise PhoneNotRespondingError(
                f"no answer to reading {len(files)} files within {self.timeout_seconds:g} s"
            ) from error
        except (PhoneDisconnectedError, PhoneNotRespondingError, PhoneOutOfFileSlotsError):
            raise
        except Exception as error:
            translate_or_raise(error)
            raise  # pragma: no cover - translate_or_raise always raises

    async def _whole_read_alone(self, path: str, size: int) -> afc_whole_reads.WholeRead:
        """One file read whole with requests one after another (no reader task yet)."""
        chunks: list[bytes | bytearray] = []
        try:
            handle = await self._bounded(self._afc.fopen(path, "r"), f"OPEN {path}")
            try:
                chunk = await self.read(handle, size + 1)
                while chunk:
                    chunks.append(chunk)
                    if sum(map(len, chunks)) >= size:
                        break
                    chunk = await self.read(handle, size + 1 - sum(map(len, chunks)))
            finally:
                with contextlib.suppress(PhoneReadError):
                    await self._bounded(self._afc.fclose(handle), "CLOSE")
        except (FileNotOnPhoneError, PhoneReadError) as refusal:
            return refusal
        return chunks

    async def seek(self, handle: int, offset: int) -> None:
        """Move a handle to ``offset`` bytes from the start (to resume a partial file)."""
        await self._bounded(self._afc.fseek(handle, offset, os.SEEK_SET), "SEEK")

    async def read(self, handle: int, size: int) -> bytes | bytearray:
        """Up to ``size`` (at most 4 MiB) bytes at the handle's position; b"" at the end.

        A chunk of 64 KiB or more is the bytearray it was received into (nothing else holds
        it), not a copy of it."""
        count = min(size, MAXIMUM_READ_BYTES)
        if count <= 0:
            return b""  # as fread: nothing asked, nothing sent
        if self._takeover == _Takeover.PENDING:
            self._takeover = await receive_directly(self._afc)
        return await self._bounded(_read_request(self._afc, handle, count), "READ")

    async def close(self, handle: int) -> None:
        """Close a handle; a failure to close a handle on a dead connection is not an error."""
        try:
            with contextlib.suppress(
                PhoneDisconnectedError, PhoneNotRespondingError, PhoneReadError
            ):
                await self._bounded(self._afc.fclose(handle), "CLOSE")
        finally:
            if handle in self._open_handles:
                self._open_handles.discard(handle)
                self._file_slots.release()
