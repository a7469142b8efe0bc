"""The replies of a batched stat, as the adapter turns them into the port's values.

:func:`rollkeeper.device.phone_files.stat_reply_of` is what each reply of
``PhoneFilesystem.stat_many`` goes through: the phone's bytes are untrusted, so bytes that are
not UTF-8, a key without a value and any error status must come out as values the scanner can
judge, never as an exception that ends the batch.
"""

from __future__ import annotations

from pymobiledevice3.services.afc import AfcError

from rollkeeper.device.phone_files import stat_reply_of
from rollkeeper.device.scan import check_stat
from rollkeeper.ports import FileNotOnPhoneError, PhoneReadError, RawStat


def test_a_reply_that_is_not_utf8_keeps_its_readable_fields() -> None:
    """Bytes that are not UTF-8 in a value are replaced, the other fields stay readable, and a
    trailing key without a value is dropped."""
    data = b"st_size\x004000\x00st_ifmt\x00S_IFREG\x00LinkTarget\x00\xff\xfe\x00st_mtime"
    reply = stat_reply_of("/DCIM/100APPLE/IMG_0001.JPG", AfcError.SUCCESS, data)
    assert isinstance(reply, RawStat)
    assert reply.integer("st_size") == 4000
    assert reply.kind == "S_IFREG"
    assert reply.fields["LinkTarget"] == "\ufffd\ufffd"
    assert "st_mtime" not in reply.fields


def test_an_empty_or_garbled_reply_is_a_stat_the_scanner_rejects() -> None:
    """An empty reply or one of nonsense is a stat without a size, which the scanner refuses
    with a reason rather than trusting."""
    for data in (b"", b"\x00\x00\x00", b"st_size\x00-5\x00st_ifmt\x00S_IFREG\x00"):
        reply = stat_reply_of("/DCIM/100APPLE/IMG_0001.JPG", AfcError.SUCCESS, data)
        assert isinstance(reply, RawStat)
        assert check_stat("IMG_0001.JPG", reply).rejection == "stat_without_size"


def test_error_statuses_are_refusals_of_that_path() -> None:
    """ "Object not found" is the path gone; any other status, even one AFC does not define, is a
    read error carrying the status."""
    path = "/DCIM/100APPLE/IMG_0001.JPG"
    assert isinstance(stat_reply_of(path, AfcError.OBJECT_NOT_FOUND, b""), FileNotOnPhoneError)
    for status in (AfcError.PERM_DENIED, AfcError.IO_ERROR, 9_999):
        reply = stat_reply_of(path, status, b"")
        assert isinstance(reply, PhoneReadError)
        assert reply.status == status
        assert path in str(reply)
