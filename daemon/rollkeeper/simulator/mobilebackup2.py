"""The simulated phone's ``com.apple.mobilebackup2``: a full backup driven by the phone.

In mobilebackup2 the phone leads: after the DeviceLink version exchange and ``Hello``, the host
sends ``DLMessageProcessMessage {MessageName: Backup}`` and then only answers the phone's
requests until a final ``DLMessageProcessMessage`` carries the ``ErrorCode``. The simulated
phone's sequence follows a real one (libimobiledevice #180):

1. With :attr:`BackupBehaviour.passcode_prompt` (iOS 16.1+ with a passcode) the phone asks for
   the passcode on its screen and sends **nothing** until ``Simulator.enter_passcode`` is
   called; after :attr:`~BackupBehaviour.passcode_wait_seconds` (about 3 minutes on a real
   phone) it ends the backup with ErrorCode 208 "Device locked".
2. ``DLMessageDownloadFiles [<udid>/Status.plist]``; if the host's Status.plist says
   ``SnapshotState finished``, also ``<udid>/Manifest.db``: files whose size and mtime match
   the previous Manifest.db are not sent again (an incremental backup).
3. ``DLContentsOfDirectory <udid>``, ``DLMessageGetFreeDiskSpace``. If the free space does not
   exceed the upload size + 128 MiB, ``DLMessagePurgeDiskSpace [amount, 4]`` (amount =
   shortfall + 2 GiB, as pymobiledevice3 measured); a host that cannot purge gets ErrorCode 105.
4. ``DLMessageCreateDirectory <udid>/xx`` for each folder, ``DLMessageUploadFiles`` batches
   (Status.plist "uploading" first), ``DLMessageRemoveItems`` for files gone since last time,
   then Manifest.db, Manifest.plist and Status.plist "finished", then ErrorCode 0.

The content is :mod:`.backup_content`; the wire format :mod:`.mobilebackup2_protocol`.
"""

from __future__ import annotations

import asyncio
import plistlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import structlog
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from rollkeeper.simulator.backup_content import (
    BackupItem,
    StandInCipher,
    backup_items,
    manifest_db,
    manifest_plist,
    previous_sizes,
    status_plist,
)
from rollkeeper.simulator.mobilebackup2_protocol import (
    CODE_FILE_DATA,
    CODE_SUCCESS,
    END_OF_FILES,
    PROTOCOL_VERSIONS,
    U32,
    DeviceLinkStream,
    LinkClosed,
    data_frame,
    name_frame,
)
from rollkeeper.simulator.phone import PhoneState
from rollkeeper.simulator.runtime import EventLog

log = structlog.get_logger(__name__)

MOBILEBACKUP2_SERVICE = "com.apple.mobilebackup2"
ERROR_DEVICE_LOCKED = 208
ERROR_NOT_ENOUGH_SPACE = 105
#: What the phone adds to its upload size before comparing with the host's free space, and
#: what it adds to the shortfall in a purge request (pymobiledevice3 ``device_link.py``).
FREE_SPACE_HEADROOM = 0x8000000
PURGE_OVERSHOOT = 0x80000000
#: Bytes per data frame and per upload batch.
FRAME_BYTES = 1024 * 1024
BATCH_BYTES = 64 * 1024 * 1024
BATCH_FILES = 256


class Mobilebackup2Server:
    """Serves mobilebackup2 connections for one simulated phone."""

    def __init__(self, phone: PhoneState, events: EventLog, unplug: Callable[[], None]) -> None:
        self.phone = phone
        self.events = events
        self._unplug = unplug

    @property
    def udid(self) -> str:
        """The phone's UDID (the folder the host keeps its backup in)."""
        return self.phone.identity.udid

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection: version exchange, then requests until the host leaves."""
        stream = DeviceLinkStream(reader, writer)
        try:
            major = self.phone.backup.device_link_major
            await stream.send_message(["DLMessageVersionExchange", major, 0])
            reply = await stream.read_message()
            if (
                reply[0] != "DLMessageVersionExchange"
                or len(reply) < 2
                or reply[1] != "DLVersionsOk"
            ):
                log.info("mobilebackup2_version_refused", udid=self.udid, reply=repr(reply)[:200])
                return
            await stream.send_message(["DLMessageDeviceReady"])
            while True:
                message = await stream.read_message()
                if message[0] == "DLMessageDisconnect":
                    return
                if message[0] != "DLMessageProcessMessage" or len(message) < 2:
                    continue
                await self._process(stream, message[1] if isinstance(message[1], dict) else {})
        except LinkClosed as reason:
            log.debug("mobilebackup2_closed", udid=self.udid, reason=str(reason))
        except (ConnectionError, OSError) as error:
            log.debug("mobilebackup2_failed", udid=self.udid, error=repr(error))
        finally:
            writer.close()

    async def _process(self, stream: DeviceLinkStream, request: dict[str, Any]) -> None:
        name = str(request.get("MessageName", ""))
        if name == "Hello":
            offered = request.get("SupportedProtocolVersions", [])
            common = [version for version in PROTOCOL_VERSIONS if version in offered]
            if not common:
                await stream.process_message({"MessageName": "Response", "ErrorCode": 1})
                return
            await stream.process_message(
                {"MessageName": "Response", "ErrorCode": 0, "ProtocolVersion": common[0]}
            )
            return
        if name == "Backup":
            await BackupRun(self, stream, request).run()
            return
        await stream.process_message(
            {"ErrorCode": 1, "ErrorDescription": f"{name} is not simulated (MBErrorDomain/1)"}
        )

    def unplug(self) -> None:
        """Cut the cable (the unplug-mid-backup fault)."""
        self._unplug()


class BackupRun:
    """One Backup request, from the passcode prompt to the final ErrorCode."""

    def __init__(
        self, server: Mobilebackup2Server, stream: DeviceLinkStream, request: dict[str, Any]
    ) -> None:
        self.server = server
        self.stream = stream
        self.phone = server.phone
        self.behaviour = server.phone.backup
        self.udid = server.udid
        options = request.get("Options")
        self.force_full = bool(isinstance(options, dict) and options.get("ForceFullBackup"))
        self.cipher = StandInCipher(_phone_key(self.udid)) if self.behaviour.will_encrypt else None
        self.bytes_sent = 0
        self.files_sent = 0

    async def run(self) -> None:
        """The whole backup; ends with a DLMessageProcessMessage carrying the ErrorCode."""
        events = self.server.events
        events.record("backup_requested", self.udid)
        if self.behaviour.passcode_prompt and not await self._passcode_entered():
            events.record("backup_passcode_timeout", self.udid)
            await self._finish(ERROR_DEVICE_LOCKED, "Device locked (MBErrorDomain/208)")
            return
        items = await asyncio.to_thread(backup_items, self.phone)
        previous = await self._previous_backup()
        incremental = previous is not None
        known = previous or {}
        changed = [item for item in items if known.get(item.file_id) != (item.size, item.mtime)]
        current_ids = {item.file_id for item in items}
        removed = sorted(identifier for identifier in known if identifier not in current_ids)
        await self.stream.request(["DLContentsOfDirectory", self.udid, {}, 1.0])
        upload_bytes = sum(item.size for item in changed) + 4096 * (len(items) + 1)
        if self.behaviour.claimed_upload_bytes is not None:
            upload_bytes = self.behaviour.claimed_upload_bytes
        if not await self._enough_space(upload_bytes):
            events.record("backup_disk_full", self.udid, needed=upload_bytes)
            await self._finish(
                ERROR_NOT_ENOUGH_SPACE,
                "Not enough free disk space on the computer to back up (MBErrorDomain/105)",
            )
            return
        backup_uuid = str(uuid.uuid4()).upper()
        for folder in sorted({item.file_id[:2] for item in changed}):
            await self.stream.request(
                ["DLMessageCreateDirectory", f"{self.udid}/{folder}", {}, 2.0]
            )
        status = status_plist(state="uploading", full=not incremental, backup_uuid=backup_uuid)
        await self._upload_inline([("Status.plist", status)], progress=3.0)
        await self._upload_items(changed)
        if removed:
            paths = [f"{self.udid}/{identifier[:2]}/{identifier}" for identifier in removed]
            await self.stream.request(["DLMessageRemoveItems", paths, {}, 98.0])
        database = await asyncio.to_thread(manifest_db, items)
        if self.cipher is not None:
            database = self.cipher.encrypt(database)
        encrypted = self.cipher is not None
        metadata = [
            ("Manifest.db", database),
            (
                "Manifest.plist",
                manifest_plist(self.phone, encrypted=encrypted, key=_phone_key(self.udid)),
            ),
            (
                "Status.plist",
                status_plist(state="finished", full=not incremental, backup_uuid=backup_uuid),
            ),
        ]
        await self._upload_inline(metadata, progress=99.0)
        self.behaviour.backups_completed += 1
        self.behaviour.last_backup_bytes_sent = self.bytes_sent
        self.behaviour.last_backup_files_sent = self.files_sent
        events.record(
            "backup_finished",
            self.udid,
            incremental=incremental,
            files_sent=self.files_sent,
            bytes_sent=self.bytes_sent,
            removed=len(removed),
        )
        await self._finish(0, "")

    async def _finish(self, code: int, description: str) -> None:
        content: dict[str, Any] = {"ErrorCode": code}
        if description:
            content["ErrorDescription"] = description
        await self.stream.process_message(content)

    async def _passcode_entered(self) -> bool:
        """Show the passcode prompt and wait; False when nobody entered it in time."""
        entered = asyncio.Event()
        self.behaviour.passcode_entered = entered
        self.server.events.record("backup_passcode_requested", self.udid)
        try:
            async with asyncio.timeout(self.behaviour.passcode_wait_seconds):
                await entered.wait()
        except TimeoutError:
            return False
        finally:
            self.behaviour.passcode_entered = None
        self.server.events.record("backup_passcode_entered", self.udid)
        return True

    async def _previous_backup(self) -> dict[str, tuple[int, int]] | None:
        """fileID -> (size, mtime) of the host's last finished backup, or None for a full one."""
        status = await self._download(f"{self.udid}/Status.plist")
        if self.force_full or status is None:
            return None
        try:
            state = plistlib.loads(status).get("SnapshotState")
        except (plistlib.InvalidFileException, ValueError, AttributeError):
            return None
        if state != "finished":
            return None
        database = await self._download(f"{self.udid}/Manifest.db")
        if not database:
            return None
        if self.cipher is not None:
            try:
                database = self.cipher.decrypt(database)
            except ValueError:
                return None
        return await asyncio.to_thread(previous_sizes, database)

    async def _download(self, path: str) -> bytes | None:
        """Ask the host for one of its files: its bytes, or None if it has none."""
        await self.stream.send_message(["DLMessageDownloadFiles", [path], {}, 0.0])
        content = bytearray()
        failed = False
        while True:
            name_length = await self.stream.read_u32()
            if name_length == 0:
                break
            await self.stream.read_exactly(name_length)
            while True:
                frame_length = await self.stream.read_u32()
                code = (await self.stream.read_exactly(1))[0]
                payload = (
                    await self.stream.read_exactly(frame_length - 1) if frame_length > 1 else b""
                )
                if code == CODE_FILE_DATA:
                    content += payload
                    continue
                failed = code != CODE_SUCCESS
                break
        await self.stream.read_status()
        return None if failed else bytes(content)

    async def _enough_space(self, upload_bytes: int) -> bool:
        """The free-space exchange: True to go on, False for ErrorCode 105."""
        required = upload_bytes + FREE_SPACE_HEADROOM
        for attempt in range(2):
            code, _description, free = await self.stream.request(
                ["DLMessageGetFreeDiskSpace", {}, 2.0]
            )
            if code == 0 and isinstance(free, int) and free > required:
                return True
            if attempt == 1:
                return False
            reported = free if isinstance(free, int) else 0
            amount = max(0, required - reported) + PURGE_OVERSHOOT
            self.server.events.record("backup_purge_requested", self.udid, amount=amount)
            purge_code, _text, _value = await self.stream.request(
                ["DLMessagePurgeDiskSpace", amount, 4]
            )
            if purge_code != 0:
                return False
        return False

    async def _upload_inline(self, files: list[tuple[str, bytes]], *, progress: float) -> None:
        """Upload metadata files (to ``<udid>/<name>``) in one batch."""
        total = sum(len(content) for _name, content in files)
        await self.stream.send_message(["DLMessageUploadFiles", {}, progress, total])
        for name, content in files:
            await self.stream.send_raw(name_frame(name) + name_frame(f"{self.udid}/{name}"))
            for start in range(0, len(content), FRAME_BYTES):
                await self.stream.send_raw(
                    data_frame(CODE_FILE_DATA, content[start : start + FRAME_BYTES])
                )
            await self.stream.send_raw(data_frame(CODE_SUCCESS))
        await self.stream.send_raw(END_OF_FILES)
        await self.stream.read_status()

    async def _upload_items(self, items: list[BackupItem]) -> None:
        """Upload the changed files in batches, each answered by a status response."""
        total = sum(item.size for item in items) or 1
        done = 0
        for batch in _batches(items):
            progress = 5.0 + 90.0 * done / total
            await self.stream.send_message(
                ["DLMessageUploadFiles", {}, progress, sum(item.size for item in batch)]
            )
            for item in batch:
                await self._send_item(item)
                done += item.size
            await self.stream.send_raw(END_OF_FILES)
            await self.stream.read_status()

    async def _send_item(self, item: BackupItem) -> None:
        device_name = _device_name(item)
        await self.stream.send_raw(
            name_frame(device_name) + name_frame(f"{self.udid}/{item.stored_name}")
        )
        for piece in self._content(item):
            await self._send_data(piece)
        await self.stream.send_raw(data_frame(CODE_SUCCESS))
        self.files_sent += 1

    def _content(self, item: BackupItem) -> Iterator[bytes]:
        if self.cipher is None:
            yield from item.chunks(FRAME_BYTES)
            return
        padder = padding.PKCS7(128).padder()
        encryptor = Cipher(algorithms.AES(self.cipher.key), modes.CBC(b"\x00" * 16)).encryptor()
        for piece in item.chunks(FRAME_BYTES):
            yield encryptor.update(padder.update(piece))
        yield encryptor.update(padder.finalize()) + encryptor.finalize()

    async def _send_data(self, piece: bytes) -> None:
        if not piece:
            return
        limit = self.behaviour.unplug_after_bytes
        if limit is not None and self.bytes_sent + len(piece) >= limit:
            # One-shot: the cable comes out part-way through this frame.
            self.behaviour.unplug_after_bytes = None
            head = piece[: max(0, limit - self.bytes_sent)]
            self.stream.writer.write(U32.pack(len(piece) + 1) + bytes([CODE_FILE_DATA]) + head)
            self.server.events.record("backup_unplugged", self.udid, bytes_sent=limit)
            self.server.unplug()
            raise LinkClosed("unplugged mid-backup")
        await self.stream.send_raw(data_frame(CODE_FILE_DATA, piece))
        self.bytes_sent += len(piece)


def _batches(items: list[BackupItem]) -> Iterator[list[BackupItem]]:
    batch: list[BackupItem] = []
    size = 0
    for item in items:
        if batch and (size + item.size > BATCH_BYTES or len(batch) >= BATCH_FILES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item.size
    if batch:
        yield batch


def _device_name(item: BackupItem) -> str:
    """The name the phone gives a file (its path on the phone, as real phones send)."""
    if item.domain == "CameraRollDomain":
        return f"/var/mobile/{item.relative_path}"
    return f"{item.domain}/{item.relative_path}"


def _phone_key(udid: str) -> bytes:
    """The stand-in backup key: the same for every backup of a phone, never sent."""
    return uuid.uuid5(uuid.NAMESPACE_OID, f"backup-key/{udid}").bytes * 2
