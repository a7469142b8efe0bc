"""The mobilebackup2 wire format as the phone speaks it: DeviceLink messages and file frames.

Every DeviceLink message is a 4-byte big-endian length and a plist whose root is an array:
``["DLMessageVersionExchange", 400, 0]``, ``["DLMessageProcessMessage", {...}]``,
``["DLMessageUploadFiles", {}, progress, total_bytes]`` ... The host answers a request with
``["DLMessageStatusResponse", code, description, value]``. Files travel outside plists: a
name is a u32 big-endian length and UTF-8 bytes; a file's content is frames of u32 length
(payload + 1), one code byte (0x0C data, 0x00 success, 0x06 local error, 0x0B remote error)
and the payload; a u32 zero ends a list of files. Written from libimobiledevice's
``tools/idevicebackup2.c`` and pymobiledevice3's ``device_link.py`` (the two host sides),
not imported from either.
"""

from __future__ import annotations

import asyncio
import plistlib
import struct
from typing import Any

U32 = struct.Struct(">I")
CODE_SUCCESS = 0x00
CODE_ERROR_LOCAL = 0x06
CODE_ERROR_REMOTE = 0x0B
CODE_FILE_DATA = 0x0C
#: A message larger than this is not a DeviceLink message from any host we know.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: The DeviceLink version the phone offers (what iOS 16.1.1 sends: libimobiledevice #1379).
DEVICE_LINK_VERSION = (400, 0)
#: mobilebackup2 protocol versions the phone speaks (hosts offer 2.0 and 2.1).
PROTOCOL_VERSIONS = (2.1, 2.0)
#: Progress and sizes travel as reals and unsigned integers after the message name.
EMPTY_PARAMETER = "___EmptyParameterString___"


class LinkClosed(Exception):
    """The host hung up (or sent something no DeviceLink host sends)."""


class DeviceLinkStream:
    """One host connection to the phone's mobilebackup2 service, seen from the phone."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read_exactly(self, count: int) -> bytes:
        """``count`` bytes from the host, or :class:`LinkClosed`."""
        try:
            return await self.reader.readexactly(count)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            raise LinkClosed("the host closed the connection") from error

    async def read_u32(self) -> int:
        """One big-endian u32 (a length)."""
        value: int = U32.unpack(await self.read_exactly(U32.size))[0]
        return value

    async def read_message(self) -> list[Any]:
        """The next DeviceLink message (an array plist)."""
        length = await self.read_u32()
        if length > MAX_MESSAGE_BYTES:
            raise LinkClosed(f"message of {length} bytes")
        try:
            message = plistlib.loads(await self.read_exactly(length))
        except plistlib.InvalidFileException as error:
            raise LinkClosed("not a plist") from error
        if not isinstance(message, list) or not message or not isinstance(message[0], str):
            raise LinkClosed(f"not a DeviceLink message: {message!r:.200}")
        return message

    async def send_message(self, message: list[Any]) -> None:
        """Send one DeviceLink message (binary plist, as the phone does)."""
        body = plistlib.dumps(message, fmt=plistlib.FMT_BINARY)
        await self.send_raw(U32.pack(len(body)) + body)

    async def send_raw(self, data: bytes) -> None:
        """Write bytes and wait for the socket to take them (backpressure)."""
        if self.writer.transport.is_closing():
            raise LinkClosed("the connection is closing")
        self.writer.write(data)
        await self.writer.drain()

    async def process_message(self, content: dict[str, Any]) -> None:
        """``DLMessageProcessMessage`` (a reply to Hello, or the end of an operation)."""
        await self.send_message(["DLMessageProcessMessage", content])

    async def request(self, message: list[Any]) -> tuple[int, str, Any]:
        """Send a request the host must answer with a DLMessageStatusResponse; its parts."""
        await self.send_message(message)
        return await self.read_status()

    async def read_status(self) -> tuple[int, str, Any]:
        """The host's ``DLMessageStatusResponse``: (signed code, description, value)."""
        reply = await self.read_message()
        if reply[0] != "DLMessageStatusResponse" or len(reply) < 2:
            raise LinkClosed(f"expected a status response, got {reply[0]}")
        code = int(reply[1])
        # Hosts send negative codes as their 64-bit unsigned pattern.
        if code >= 1 << 63:
            code -= 1 << 64
        description = str(reply[2]) if len(reply) > 2 else ""
        value = reply[3] if len(reply) > 3 else None
        return code, description, value


def name_frame(name: str) -> bytes:
    """A file name as it precedes a file: u32 length + UTF-8."""
    raw = name.encode()
    return U32.pack(len(raw)) + raw


def data_frame(code: int, payload: bytes = b"") -> bytes:
    """One content frame: u32 (payload + 1), the code byte, the payload."""
    return U32.pack(len(payload) + 1) + bytes([code]) + payload


#: The u32 zero that ends a list of files in both directions.
END_OF_FILES = U32.pack(0)
