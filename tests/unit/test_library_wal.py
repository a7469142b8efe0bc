"""The WAL header and frame checks against WAL files written by SQLite itself."""

from __future__ import annotations

import shutil
import sqlite3
import struct
from pathlib import Path

from rollkeeper.library.wal import HEADER_BYTES, parse_header, summarize, wal_checksum


def make_wal(folder: Path, rows: int) -> Path:
    """A database in WAL mode with ``rows`` committed inserts only in its -wal; returns the
    copy of the -wal taken while the writer had it open."""
    database = folder / "source.db"
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    connection.execute("CREATE TABLE t (x)")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for number in range(rows):
        connection.execute("INSERT INTO t VALUES (?)", (number,))
    copy = folder / "copy.db-wal"
    shutil.copyfile(str(database) + "-wal", copy)
    connection.close()
    return copy


def test_sqlite_s_own_header_parses_and_its_checksum_matches(tmp_path: Path) -> None:
    """A header SQLite wrote is accepted with its page size; our checksum is SQLite's."""
    wal = make_wal(tmp_path, 3).read_bytes()
    header, problem = parse_header(wal[:HEADER_BYTES])
    assert problem == "" and header is not None
    assert header.page_size == 4096
    big_endian = struct.unpack(">I", wal[:4])[0] & 1 == 1
    assert wal_checksum(wal[:24], big_endian) == struct.unpack(">II", wal[24:32])


def test_every_committed_frame_counts_while_the_salts_match(tmp_path: Path) -> None:
    """Each insert commits one frame: all of them match the header's salts and are committed."""
    summary = summarize(make_wal(tmp_path, 5))
    assert summary.frames == summary.matching_frames == summary.committed_frames == 5


def test_frames_from_another_generation_of_the_log_do_not_count(tmp_path: Path) -> None:
    """A header rewritten with new salts over old frames (the log restarted under the copy)
    leaves no frame SQLite would use: the copy would silently lack every row in it."""
    path = make_wal(tmp_path, 4)
    data = bytearray(path.read_bytes())
    salt_1 = struct.unpack_from(">I", data, 16)[0]
    struct.pack_into(">I", data, 16, salt_1 ^ 0xFFFF)
    big_endian = struct.unpack_from(">I", data, 0)[0] & 1 == 1
    struct.pack_into(">II", data, 24, *wal_checksum(bytes(data[:24]), big_endian))
    path.write_bytes(bytes(data))
    summary = summarize(path)
    assert summary.problem == ""
    assert summary.frames == 4 and summary.matching_frames == 0 and summary.committed_frames == 0


def test_a_damaged_header_is_named_not_trusted(tmp_path: Path) -> None:
    """A header whose checksum is wrong, or that is not a WAL at all, is a problem with a reason;
    an empty file is an empty WAL."""
    path = make_wal(tmp_path, 1)
    data = bytearray(path.read_bytes())
    data[12] ^= 1
    path.write_bytes(bytes(data))
    assert "checksum" in summarize(path).problem
    path.write_bytes(b"not a wal at all, not at all, no" * 2)
    assert "magic" in summarize(path).problem
    path.write_bytes(b"")
    assert summarize(path).empty
