"""The SQLite write-ahead log of a copied Photos library: its header, and which frames count.

SQLite uses a frame of the ``-wal`` file only while the frame's salts equal the salts in the
WAL header (and its checksum chain holds): a WAL whose header was rewritten (the phone
checkpointed and restarted the log) while it was being copied, or a header copied from one
generation with frames from another, is *silently* ignored, and the copy then lacks the most
recent rows without any error. So a snapshot compares the header it copied with the header on
the phone after the copy, and counts here which frames SQLite can use; once the copy is open,
SQLite's own count of the frames it accepted (``PRAGMA wal_checkpoint``) must reach the last
commit counted here, or a frame's checksum broke and the copy is torn.

Format (sqlite.org/fileformat2.html#walformat): a 32-byte header (magic ``0x377f0682`` or
``0x377f0683``, version 3007000, page size, checkpoint sequence, salt-1, salt-2, checksum-1,
checksum-2, all big-endian) then frames of a 24-byte header (page number, database size after a
commit or 0, salt-1, salt-2, checksum-1, checksum-2) and one page each.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

HEADER_BYTES = 32
FRAME_HEADER_BYTES = 24
MAGIC_LITTLE_ENDIAN_CHECKSUMS = 0x377F0682
MAGIC_BIG_ENDIAN_CHECKSUMS = 0x377F0683
FORMAT_VERSION = 3007000


@dataclass(frozen=True, slots=True)
class WalHeader:
    """The fields of a WAL header that identify one generation of the log."""

    page_size: int
    checkpoint_sequence: int
    salt_1: int
    salt_2: int

    def as_record(self) -> dict[str, int]:
        """The header as JSON-ready data (kept with the snapshot)."""
        return {
            "page_size": self.page_size,
            "checkpoint_sequence": self.checkpoint_sequence,
            "salt_1": self.salt_1,
            "salt_2": self.salt_2,
        }


@dataclass(frozen=True, slots=True)
class WalSummary:
    """What a copied WAL holds: its header, its whole frames, and which of them SQLite uses."""

    header: WalHeader | None
    #: Whole frames in the file (a trailing partial frame is not counted).
    frames: int
    #: Frames from the start whose salts match the header (where SQLite stops reading).
    matching_frames: int
    #: The frame count up to and with the last commit among the matching ones: what a reader
    #: of the copy sees (frames after the last commit belong to a transaction in progress).
    committed_frames: int
    #: Why the header is unusable, when it is ("" for a good header or an empty file).
    problem: str = ""

    @property
    def empty(self) -> bool:
        """No header at all: a WAL of zero bytes (nothing beyond the database file)."""
        return self.header is None and not self.problem


def wal_checksum(data: bytes, big_endian: bool, first: int = 0, second: int = 0) -> tuple[int, int]:
    """SQLite's WAL checksum of ``data`` (a multiple of 8 bytes), continuing from a previous one."""
    count = len(data) // 4
    words = struct.unpack(f"{'>' if big_endian else '<'}{count}I", data[: count * 4])
    mask = 0xFFFFFFFF
    for index in range(0, count - 1, 2):
        first = (first + words[index] + second) & mask
        second = (second + words[index + 1] + first) & mask
    return first, second


def parse_header(data: bytes) -> tuple[WalHeader | None, str]:
    """The header of a WAL from its first 32 bytes, or None and why it is not one."""
    if len(data) == 0:
        return None, ""
    if len(data) < HEADER_BYTES:
        return None, f"the WAL is {len(data)} bytes, shorter than its header"
    magic, version, page_size, sequence, salt_1, salt_2, sum_1, sum_2 = struct.unpack(
        ">8I", data[:HEADER_BYTES]
    )
    if magic not in (MAGIC_LITTLE_ENDIAN_CHECKSUMS, MAGIC_BIG_ENDIAN_CHECKSUMS):
        return None, f"the WAL header has no WAL magic ({magic:#010x})"
    if version != FORMAT_VERSION:
        return None, f"the WAL format version is {version}, not {FORMAT_VERSION}"
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        return None, f"the WAL page size {page_size} is not a power of two from 512 to 65536"
    expected = wal_checksum(data[:24], magic == MAGIC_BIG_ENDIAN_CHECKSUMS)
    if expected != (sum_1, sum_2):
        return None, "the WAL header checksum does not match"
    return WalHeader(page_size, sequence, salt_1, salt_2), ""


def summarize(path: Path) -> WalSummary:
    """Read a WAL's header and every frame header (not the pages) and count what SQLite uses."""
    with path.open("rb") as stream:
        header_bytes = stream.read(HEADER_BYTES)
        header, problem = parse_header(header_bytes)
        if header is None:
            return WalSummary(None, 0, 0, 0, problem)
        size = path.stat().st_size
        frame_bytes = FRAME_HEADER_BYTES + header.page_size
        frames = max(0, (size - HEADER_BYTES) // frame_bytes)
        matching = committed = 0
        for index in range(frames):
            stream.seek(HEADER_BYTES + index * frame_bytes)
            _page, commit_size, salt_1, salt_2 = struct.unpack(
                ">4I", stream.read(FRAME_HEADER_BYTES)[:16]
            )
            if (salt_1, salt_2) != (header.salt_1, header.salt_2):
                break
            matching = index + 1
            if commit_size:
                committed = matching
    return WalSummary(header, frames, matching, committed)


def header_of(data: bytes) -> WalHeader | None:
    """The header of the first bytes of a WAL read from the phone (None: empty or not a WAL)."""
    return parse_header(data)[0]
