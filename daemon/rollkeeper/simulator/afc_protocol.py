"""The AFC wire format as the simulator speaks it: packet header, operation codes, status codes.

AFC (Apple File Conduit) frames every request and reply with a 40-byte little-endian header:
magic ``CFA6LPAA``, u64 ``entire_length`` (header + payload), u64 ``this_length`` (header +
the fixed part of the payload; only WRITE uses it differently), u64 ``packet_num`` (chosen by
the client, echoed by the reply so several requests can be in flight on one connection) and u64
``operation``. The constants are written out here from the protocol facts in
``shared/reference/iphone.md`` instead of being imported from pymobiledevice3, so the
simulator is an independent implementation that the real client checks.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable

MAGIC = b"CFA6LPAA"
HEADER = struct.Struct("<8sQQQQ")
HEADER_SIZE = HEADER.size  # 40
U64 = struct.Struct("<Q")
#: READ request: handle, size. SEEK request: handle, whence, offset (signed).
READ_REQUEST = struct.Struct("<QQ")
SEEK_REQUEST = struct.Struct("<QQq")


class Operation(enum.IntEnum):
    """AFC operation codes (the names follow pymobiledevice3's ``AfcOpcode``)."""

    STATUS = 0x01
    DATA = 0x02
    READ_DIR = 0x03
    READ_FILE = 0x04
    WRITE_FILE = 0x05
    WRITE_PART = 0x06
    TRUNCATE = 0x07
    REMOVE_PATH = 0x08
    MAKE_DIR = 0x09
    GET_FILE_INFO = 0x0A
    GET_DEVINFO = 0x0B
    WRITE_FILE_ATOM = 0x0C
    FILE_OPEN = 0x0D
    FILE_OPEN_RES = 0x0E
    READ = 0x0F
    WRITE = 0x10
    FILE_SEEK = 0x11
    FILE_TELL = 0x12
    FILE_TELL_RES = 0x13
    FILE_CLOSE = 0x14
    FILE_SET_SIZE = 0x15
    GET_CON_INFO = 0x16
    SET_CON_OPTIONS = 0x17
    RENAME_PATH = 0x18
    SET_FS_BS = 0x19
    SET_SOCKET_BS = 0x1A
    FILE_LOCK = 0x1B
    MAKE_LINK = 0x1C
    SET_FILE_TIME = 0x1E
    REMOVE_PATH_AND_CONTENTS = 0x22


#: Operations that would change the phone. The simulated phone is read-only: a backup tool must
#: never write to or delete from a phone (deleting over AFC leaves the Photos database stale).
WRITE_OPERATIONS = frozenset(
    {
        Operation.WRITE_FILE,
        Operation.WRITE_PART,
        Operation.TRUNCATE,
        Operation.REMOVE_PATH,
        Operation.MAKE_DIR,
        Operation.WRITE_FILE_ATOM,
        Operation.WRITE,
        Operation.FILE_SET_SIZE,
        Operation.RENAME_PATH,
        Operation.MAKE_LINK,
        Operation.SET_FILE_TIME,
        Operation.REMOVE_PATH_AND_CONTENTS,
    }
)


class Status(enum.IntEnum):
    """AFC status codes carried by a STATUS reply (u64 payload)."""

    SUCCESS = 0
    UNKNOWN_ERROR = 1
    OP_HEADER_INVALID = 2
    NO_RESOURCES = 3
    READ_ERROR = 4
    WRITE_ERROR = 5
    UNKNOWN_PACKET_TYPE = 6
    INVALID_ARG = 7
    OBJECT_NOT_FOUND = 8
    OBJECT_IS_DIR = 9
    PERM_DENIED = 10
    SERVICE_NOT_CONNECTED = 11
    OP_TIMEOUT = 12
    TOO_MUCH_DATA = 13
    END_OF_DATA = 14
    OP_NOT_SUPPORTED = 15
    OBJECT_EXISTS = 16
    OBJECT_BUSY = 17
    NO_SPACE_LEFT = 18
    OP_WOULD_BLOCK = 19
    IO_ERROR = 20


class FileOpenMode(enum.IntEnum):
    """FILE_OPEN modes (fopen's ``r``, ``r+``, ``w``, ``w+``, ``a``, ``a+``)."""

    RDONLY = 1
    RW = 2
    WRONLY = 3
    WR = 4
    APPEND = 5
    RDAPPEND = 6


def operation_name(code: int) -> str:
    """The name counted in ``PhoneState.afc_requests`` for an operation code, known or not."""
    try:
        return Operation(code).name
    except ValueError:
        return f"UNKNOWN_0x{code:x}"


def header(operation: int, packet_num: int, payload_length: int, fixed_length: int = 0) -> bytes:
    """A reply header; ``fixed_length`` is the payload part counted in ``this_length``."""
    return HEADER.pack(
        MAGIC,
        HEADER_SIZE + payload_length,
        HEADER_SIZE + (fixed_length if fixed_length else payload_length),
        packet_num,
        operation,
    )


def packet(operation: int, packet_num: int, payload: bytes = b"") -> bytes:
    """One whole reply packet (header and payload) for a payload that fits in memory."""
    return header(operation, packet_num, len(payload)) + payload


def status_packet(packet_num: int, status: Status) -> bytes:
    """A STATUS reply: success or an error code."""
    return packet(Operation.STATUS, packet_num, U64.pack(status))


def encode_name(name: str) -> bytes:
    """A name as UTF-8; surrogate escapes carry host names that are not valid UTF-8 unchanged."""
    return name.encode("utf-8", "surrogateescape")


def decode_name(raw: bytes) -> str:
    """The inverse of :func:`encode_name`: any byte string decodes, none is rejected here."""
    return raw.decode("utf-8", "surrogateescape")


def cstring_list(items: Iterable[str]) -> bytes:
    """``a\\0b\\0...`` as READ_DIR, GET_FILE_INFO and GET_DEVINFO send them."""
    listed = list(items)
    return encode_name("\0".join(listed)) + b"\0" if listed else b""


def key_value_list(pairs: Iterable[tuple[str, str]]) -> bytes:
    """``key\\0value\\0`` pairs (GET_FILE_INFO, GET_DEVINFO)."""
    return cstring_list(part for pair in pairs for part in pair)


def first_cstring(payload: bytes) -> str:
    """The path a request carries: everything before the first NUL (or the whole payload)."""
    end = payload.find(b"\0")
    return decode_name(payload if end < 0 else payload[:end])
