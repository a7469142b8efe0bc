"""The phone-files port: the fake phone answers exactly as the simulator over pymobiledevice3.

The real side is :class:`rollkeeper.device.phone_files.PhoneFilesystem` in a session opened
through usbmuxd and lockdown to the simulator, serving a folder of real files; the fake is
:class:`tests.fakes.FakePhoneFiles` holding the same files.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rollkeeper.device.scan import survey_media_files
from rollkeeper.device.session import SessionSettings, open_session
from rollkeeper.ports import (
    MAXIMUM_READ_BYTES,
    FileNotOnPhoneError,
    PhoneFiles,
    PhoneReadError,
    RawStat,
)
from tests import media
from tests.fakes import FakePhoneFiles

UDID = "00008110-00AA00000000C0A1"
NOT_UTF8 = b"IMG_\xff.JPG"
#: The phone's files: path -> (size, time in nanoseconds). One is over one read's maximum.
FILES = {
    "/DCIM/100APPLE/IMG_0001.JPG": (5_000, 1_700_000_000_123_456_789),
    "/DCIM/100APPLE/IMG_0002.MOV": (MAXIMUM_READ_BYTES + 1_000, 1_700_000_100_000_000_000),
    "/DCIM/101APPLE/IMG_0101.HEIC": (1_200, 1_700_000_200_000_000_000),
}


def make_media_root(root: Path) -> dict[str, bytes]:
    """Real files for the simulator to serve; returns each file's bytes by phone path."""
    contents: dict[str, bytes] = {}
    for phone_path, (size, time_ns) in FILES.items():
        host = root / phone_path.lstrip("/")
        media.make_blob(host, size, seed=phone_path)
        os.utime(host, ns=(time_ns, time_ns))
        contents[phone_path] = host.read_bytes()
    odd = root / "DCIM" / "101APPLE" / os.fsdecode(NOT_UTF8)
    odd.write_bytes(b"odd")
    return contents


@pytest.fixture(params=["fake", "simulator"])
async def phone(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[PhoneFiles, dict[str, bytes]]]:
    """(the phone's files, their bytes by path), from the fake or from the simulator."""
    contents = make_media_root(tmp_path / "phone")
    if request.param == "fake":
        fake = FakePhoneFiles()
        for path, data in contents.items():
            fake.add_file(path, data, FILES[path][1])
        fake.add_raw_name("/DCIM/101APPLE", NOT_UTF8)
        yield fake, contents
        return
    simulator = request.getfixturevalue("simulator")
    simulator.add_phone(UDID, tmp_path / "phone")
    settings = SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pairing")
    async with open_session(UDID, settings) as session:
        yield session.files, contents


async def test_a_folder_lists_its_names_without_dot_entries(
    phone: tuple[PhoneFiles, dict[str, bytes]],
) -> None:
    """Listing a folder gives the names of its files and folders, never ``.`` or ``..``."""
    files, _ = phone
    top = await files.list_folder("/DCIM")
    assert sorted(entry.text or "" for entry in top) == ["100APPLE", "101APPLE"]
    listed = await files.list_folder("/DCIM/100APPLE")
    assert sorted((entry.raw, entry.text) for entry in listed) == [
        (b"IMG_0001.JPG", "IMG_0001.JPG"),
        (b"IMG_0002.MOV", "IMG_0002.MOV"),
    ]


async def test_a_name_that_is_not_utf8_is_listed_raw(
    phone: tuple[PhoneFiles, dict[str, bytes]],
) -> None:
    """A name that is not UTF-8 is still listed, as its raw bytes and no text."""
    files, _ = phone
    listed = await files.list_folder("/DCIM/101APPLE")
    assert sorted((entry.raw, entry.text) for entry in listed) == [
        (b"IMG_0101.HEIC", "IMG_0101.HEIC"),
        (NOT_UTF8, None),
    ]


async def test_a_listing_reads_the_same_by_index_and_by_iteration(
    phone: tuple[PhoneFiles, dict[str, bytes]],
) -> None:
    """However the port holds a listing (the simulator's as texts only), its length, its
    entries by index, by slice and by iteration agree, each with its raw bytes and text."""
    files, _ = phone
    for folder in ("/DCIM", "/DCIM/100APPLE", "/DCIM/101APPLE"):
        listed = await files.list_folder(folder)
        entries = list(listed)
        assert len(listed) == len(entries) > 0
        assert [listed[index] for index in range(len(listed))] == entries
        assert list(listed[1:]) == entries[1:]
        for entry in entries:
            assert entry.text is None or entry.raw == entry.text.encode("utf-8")
            assert entry.raw not in (b".", b"..", b"")


async def test_listing_what_is_not_a_folder_fails_clearly(
    phone: tuple[PhoneFiles, dict[str, bytes]],
) -> None:
    """A missing folder is "not on the phone"; a file listed as a folder is a read error."""
    files, _ = phone
    with pytest.raises(FileNotOnPhoneError):
        await files.list_folder("/DCIM/999APPLE")
    with pytest.raises(PhoneReadError):
        await files.list_folder("/DCIM/100APPLE/IMG_0001.JPG")


async def test_stat_gives_the_kind_size_and_times_in_nanoseconds(
    phone: tuple[PhoneFiles, dict[str, bytes]],
) -> None:
    """A file's stat has its kind, exact size and times (ns); a folder's says folder; a missing
    path is "not on the phone"."""
    files, _ = phone
    for path, (size, time_ns) in FILES.items():
        raw = await files.stat(path)
        assert raw.kind == "S_IFREG"
        assert raw.integer("st_size") == size
        assert raw.integer("st_birthtime") == time_ns
        assert raw.integer("st_mtime") == time_ns
    assert (await files.stat("/DCIM/100APPLE")).kind == "S_IFDIR"
    with pytest.raises(FileNotOnPhoneError):
        await files.stat("/DCIM/100APPLE/IMG_9999.JPG")


async def test_a_file_reads_whole_in_bounded_pieces_then_empty(
    phone: tuple[PhoneFiles, dict[str, bytes]],
) -> None:
    """Reading returns the file's bytes, never more than the maximum per read even when asked
    for more, then ``b""`` at the end."""
    files, contents = phone
    path = "/DCIM/100APPLE/IMG_0002.MOV"
    handle = await files.open(path)
    try:
        pieces: list[bytes | bytearray] = []
        while piece := await files.read(handle, 2 * MAXIMUM_READ_BYTES):
            assert len(piece) <= MAXIMUM_READ_BYTES
            pieces.append(piece)
        assert b"".join(pieces) == contents[path]
        assert len(pieces[0]) == MAXIMUM_READ_BYTES
        assert await files.read(handle, 10) == b""
    finally:
        await files.close(handle)


async def test_seek_resumes_a_read_at_an_offset(
    phone: tuple[PhoneFiles, dict[str, bytes]],
) -> None:
    """After a seek, reads continue from that offset (how a partial file is resumed)."""
    files, contents = phone
    path = "/DCIM/100APPLE/IMG_0001.JPG"
    handle = await files.open(path)
    try:
        await files.seek(handle, 4_000)
        assert await files.read(handle, 600) == contents[path][4_000:4_600]
        assert await files.read(handle, 10_000) == contents[path][4_600:]
    finally:
        await files.close(handle)


async def test_opening_what_is_not_a_file_fails_and_closing_never_does(
    phone: tuple[PhoneFiles, dict[str, bytes]],
) -> None:
    """Opening a missing file is "not on the phone", opening a folder a read error; closing a
    handle twice raises nothing."""
    files, _ = phone
    with pytest.raises(FileNotOnPhoneError):
        await files.open("/DCIM/100APPLE/IMG_9999.JPG")
    with pytest.raises(PhoneReadError):
        await files.open("/DCIM/100APPLE")
    handle = await files.open("/DCIM/101APPLE/IMG_0101.HEIC")
    await files.close(handle)
    await files.close(handle)


async def test_a_survey_lists_and_stats_every_file_and_refuses_bad_names(
    phone: tuple[PhoneFiles, dict[str, bytes]],
) -> None:
    """survey_media_files (what audit classifies) finds every file with its identity, sorted,
    refuses the name that is not UTF-8, and costs one listing per folder and one stat per file.
    """
    files, _ = phone
    survey = await survey_media_files(files)
    assert [(item.phone_path, item.size, item.birth_time_ns) for item in survey.files] == [
        (path, size, time_ns) for path, (size, time_ns) in sorted(FILES.items())
    ]
    assert [(item.phone_path, item.reason) for item in survey.rejected] == [
        ("/DCIM/101APPLE/IMG_\\xff.JPG", "name_not_utf8")
    ]
    assert survey.folders == ["/DCIM/100APPLE", "/DCIM/101APPLE"]
    assert (survey.listing_requests, survey.stat_requests) == (3, 3)


async def test_a_batch_of_stats_answers_each_path_as_a_single_stat_does(
    phone: tuple[PhoneFiles, dict[str, bytes]],
) -> None:
    """``stat_many`` gives, in the order asked, what ``stat`` gives for each path: a file's
    fields, a folder's kind, and a missing path's "not on the phone" as a value, not raised; a
    batch longer than the adapter's window (300 paths) keeps that order; an empty batch is
    empty."""
    files, _ = phone
    paths = [*FILES, "/DCIM/100APPLE/IMG_9999.JPG", "/DCIM/100APPLE"]
    replies = await files.stat_many(paths)
    assert len(replies) == len(paths)
    for path, reply in zip(paths[:3], replies[:3], strict=True):
        assert isinstance(reply, RawStat)
        assert reply.fields == (await files.stat(path)).fields
    assert isinstance(replies[3], FileNotOnPhoneError)
    assert isinstance(replies[4], RawStat) and replies[4].kind == "S_IFDIR"

    many = [list(FILES)[index % len(FILES)] for index in range(300)]
    sizes = [
        reply.integer("st_size") if isinstance(reply, RawStat) else None
        for reply in await files.stat_many(many)
    ]
    assert sizes == [FILES[path][0] for path in many]
    assert await files.stat_many([]) == []
