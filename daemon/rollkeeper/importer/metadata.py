"""Capture dates from a complete file (on disk, or just read into memory): when was it taken?

The date decides the archive folder (``{year}/{year}-{month}/``), in the local time of capture:

* Photos (HEIC, JPEG, PNG, DNG/TIFF): EXIF ``DateTimeOriginal`` (local wall-clock time) with
  ``OffsetTimeOriginal`` when present, else ``DateTimeDigitized`` with ``OffsetTimeDigitized``.
  Read with **exifread**: pure Python (no decoder, no native code facing hostile bytes), reads
  EXIF from JPEG, TIFF/DNG, HEIC and PNG ``eXIf`` chunks without decoding pixels.
* Videos (MOV, MP4, M4V): Apple's ``com.apple.quicktime.creationdate`` metadata key (local time
  with an offset, ``2023-07-14T18:32:05+0200``), else the ``mvhd`` creation time, which is UTC:
  that instant is turned into local time in ``zone`` (default: the host's local time zone, on
  the assumption that a phone's owner and its backup host usually share a zone; the result then
  says ``utc_offset`` of that zone at that instant). Read with **hachoir**: pure Python, parses
  QuickTime's ``keys``/``ilst`` metadata, and parses lazily, seeking over ``mdat`` (a 4 GB video
  costs the same as a 4 MB one).
* Otherwise :func:`capture_date_fallback`: the phone's birth time of the file, in ``zone``.

Robustness: a corrupt, truncated or hostile file gives None, never an exception. Every parser
reads through :class:`_BudgetedReader`, which refuses to read more than
:data:`MAX_READ_BYTES` bytes or make more than :data:`MAX_READ_CALLS` calls per file, so a file
that claims a 4 GB tag or loops its structure ends the parse instead of eating memory or time.
Dates far in the past or future (1970, 2100) are data, returned as they are.
"""

from __future__ import annotations

import io
import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, BinaryIO

import exifread
import structlog

from rollkeeper.domain.files import MediaKind
from rollkeeper.domain.layout import CaptureDate

log = structlog.get_logger(__name__)

#: Bytes any parser may read from one file. EXIF sits in the first few KB of a photo; a video's
#: ``moov`` is at most a few MB even for long 4K recordings, and only its headers are read.
MAX_READ_BYTES = 16 * 1024 * 1024
#: Read and seek calls any parser may make on one file.
MAX_READ_CALLS = 20_000
#: Atoms visited at each level of a QuickTime file (real files have fewer than 20).
MAX_ATOMS_PER_LEVEL = 512
#: Metadata keys looked at in a QuickTime ``keys`` atom (iPhones write about 10).
MAX_METADATA_KEYS = 256

#: ``mvhd`` creation times are seconds since 1904-01-01 UTC; zero means "not set".
_QUICKTIME_EPOCH = datetime(1904, 1, 1)

_EXIF_DATE = re.compile(r"^\s*(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"^\s*([+-])(\d{2}):(\d{2})\s*$")
_APPLE_DATE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?\s*$"
)
_APPLE_CREATION_KEY = "com.apple.quicktime.creationdate"


class _BudgetExceeded(Exception):
    """A parser tried to read more of a file than any real metadata needs."""


class _BudgetedReader(io.RawIOBase):
    """A read-only file wrapper that caps the bytes read and the calls made by a parser."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        super().__init__()
        self._raw = raw
        self._bytes_left = MAX_READ_BYTES
        self._calls_left = MAX_READ_CALLS

    def _spend_call(self) -> None:
        self._calls_left -= 1
        if self._calls_left < 0:
            raise _BudgetExceeded("too many reads")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._spend_call()
        view = memoryview(buffer).cast("B")
        if len(view) > self._bytes_left:
            raise _BudgetExceeded(f"read of {len(view)} bytes")
        count = self._raw.readinto(view)
        self._bytes_left -= count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._spend_call()
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


class _BudgetedBytes(io.BytesIO):
    """A file held in memory with :class:`_BudgetedReader`'s budgets, read without a buffer in
    between (through one, each seek of a parser refilled 8 KB: most of a small photo's cost)."""

    def __init__(self, data: bytes | bytearray) -> None:
        super().__init__(data)
        self._bytes_left = MAX_READ_BYTES
        self._calls_left = MAX_READ_CALLS

    def _spend(self, count: int) -> None:
        self._calls_left -= 1
        self._bytes_left -= count
        if self._calls_left < 0 or self._bytes_left < 0:
            raise _BudgetExceeded("too many reads or bytes")

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self._spend(len(chunk))
        return chunk

    def readinto(self, buffer: Any) -> int:
        count = super().readinto(buffer)
        self._spend(count)
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._spend(0)
        return super().seek(offset, whence)


def _quiet_hachoir() -> None:
    # hachoir prints warnings about odd files to stderr by default; a hostile file would make
    # the service's output noisy. We report the outcome ourselves.
    from hachoir.core import config
    from hachoir.core.log import log as hachoir_log

    config.quiet = True
    hachoir_log.use_print = False


def _valid_datetime(
    year: int, month: int, day: int, hour: int, minute: int, second: int
) -> datetime | None:
    try:
        return datetime(year, month, day, hour, minute, second)
    except (ValueError, OverflowError):
        return None


def _parse_offset_text(text: str) -> timedelta | None:
    """``+02:00`` / ``-0530`` / ``Z`` -> timedelta; None when absent or not plausible."""
    text = text.strip().replace(":", "")
    if text == "Z":
        return timedelta(0)
    match = re.fullmatch(r"([+-])(\d{2})(\d{2})", text)
    if match is None:
        return None
    hours, minutes = int(match[2]), int(match[3])
    if hours > 23 or minutes > 59:
        return None
    offset = timedelta(hours=hours, minutes=minutes)
    return -offset if match[1] == "-" else offset


def parse_exif_date(date_text: str, offset_text: str | None = None) -> CaptureDate | None:
    """``"2023:07:14 18:32:05"`` (+ ``"+02:00"``) -> CaptureDate; None when unusable.

    Cameras write ``"0000:00:00 00:00:00"`` or blanks for "unknown"; those are None. An offset
    that does not parse is dropped (the date stays: it is the local time either way).
    """
    match = _EXIF_DATE.match(date_text.replace("\x00", ""))
    if match is None:
        return None
    local = _valid_datetime(*(int(part) for part in match.groups()[:6]))
    if local is None:
        return None
    offset = None
    if offset_text is not None and _EXIF_OFFSET.match(offset_text.replace("\x00", "")):
        offset = _parse_offset_text(offset_text.replace("\x00", ""))
    return CaptureDate(local=local, utc_offset=offset, source="exif")


def parse_apple_date(text: str) -> CaptureDate | None:
    """Apple's ``com.apple.quicktime.creationdate`` (``2023-07-14T18:32:05+0200``)."""
    match = _APPLE_DATE.match(text.replace("\x00", ""))
    if match is None:
        return None
    local = _valid_datetime(*(int(part) for part in match.groups()[:6]))
    if local is None:
        return None
    offset = _parse_offset_text(match[7]) if match[7] else None
    return CaptureDate(local=local, utc_offset=offset, source="quicktime")


def _from_utc(moment: datetime, source: str, zone: tzinfo | None) -> CaptureDate | None:
    """A UTC instant (naive or aware) as the local time in ``zone`` (None: the host's zone)."""
    try:
        aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        local = aware.astimezone(zone)
    except (ValueError, OverflowError, OSError):
        return None
    return CaptureDate(
        local=local.replace(tzinfo=None), utc_offset=local.utcoffset(), source=source
    )


def capture_date_fallback(birth_time_ns: int, zone: tzinfo | None = None) -> CaptureDate:
    """The phone's birth time of the file as the capture date (source ``"birth_time"``).

    The birth time is an instant; it becomes local time in ``zone`` (default: the host's local
    zone). Out-of-range values (a hostile phone's) are clamped to the representable range
    rather than raising, so a file is never lost for want of a date.
    """
    seconds, nanoseconds = divmod(birth_time_ns, 1_000_000_000)
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(
            microseconds=nanoseconds // 1000
        )
    except (ValueError, OverflowError, OSError):
        moment = (
            datetime.min.replace(tzinfo=UTC) if seconds < 0 else datetime.max.replace(tzinfo=UTC)
        )
    result = _from_utc(moment, "birth_time", zone)
    if result is None:
        # Only at the very edges of datetime's range, where no zone shift fits: keep UTC.
        result = CaptureDate(
            local=moment.replace(tzinfo=None), utc_offset=timedelta(0), source="birth_time"
        )
    return result


def _tag_text(tag: Any) -> str | None:
    """The text of an ASCII EXIF tag as exifread gives it; None for other types."""
    values = getattr(tag, "values", None)
    return values if isinstance(values, str) else None


def _read_exif(path: Path) -> CaptureDate | None:
    with path.open("rb") as raw:
        return _exif_from(io.BufferedReader(_BudgetedReader(raw), buffer_size=8192))


def _exif_from(reader: BinaryIO) -> CaptureDate | None:
    """The EXIF capture date read through ``reader``, a budgeted file."""
    tags = exifread.process_file(reader, details=False, extract_thumbnail=False)
    for date_key, offset_key in (
        ("EXIF DateTimeOriginal", "EXIF OffsetTimeOriginal"),
        ("EXIF DateTimeDigitized", "EXIF OffsetTimeDigitized"),
    ):
        date_text = _tag_text(tags.get(date_key))
        if date_text is None:
            continue
        capture = parse_exif_date(date_text, _tag_text(tags.get(offset_key)))
        if capture is not None:
            return capture
    return None


def _bounded(fields: Any, limit: int = MAX_ATOMS_PER_LEVEL) -> Iterator[Any]:
    for count, field in enumerate(fields):
        if count >= limit:
            return
        yield field


def _atom_payload(atom: Any, name: str) -> Any | None:
    """The parsed payload of a hachoir Atom when it is the kind ``name``, else None."""
    # hachoir field sets support ``in`` and ``[]`` but have no ``get``.
    if name in atom:
        return atom[name]
    return None


def _apple_creation_date(meta: Any) -> CaptureDate | None:
    """``com.apple.quicktime.creationdate`` from a ``meta`` atom: its ``keys`` name the entries,
    its ``ilst`` holds their values by index."""
    keys: list[str] = []
    values: dict[int, bytes] = {}
    for atom in _bounded(meta["tags"]):
        key_list = _atom_payload(atom, "keys")
        if key_list is not None:
            keys.extend(_metadata_key_names(key_list))
        item_list = _atom_payload(atom, "ilst")
        if item_list is not None:
            values.update(_metadata_values(item_list))
    if _APPLE_CREATION_KEY not in keys:
        return None
    raw = values.get(keys.index(_APPLE_CREATION_KEY) + 1)  # ilst indexes keys from 1
    if raw is None or len(raw) < 8:
        return None
    type_indicator = int.from_bytes(raw[:4], "big")
    if type_indicator != 1:  # 1 = UTF-8 text, what Apple writes for dates
        return None
    return parse_apple_date(raw[8:].decode("utf-8", "replace"))


def _metadata_key_names(key_list: Any) -> Iterator[str]:
    """The names of a ``keys`` atom, in order (a name that is not bytes as "")."""
    for key_atom in _bounded(key_list.array("key"), MAX_METADATA_KEYS):
        data = key_atom["data"].value if "data" in key_atom else b""
        yield data.decode("utf-8", "replace") if isinstance(data, bytes) else ""


def _metadata_values(item_list: Any) -> Iterator[tuple[int, bytes]]:
    """(key index, raw value) of each entry of an ``ilst`` atom that has both."""
    for item in _bounded(item_list, MAX_METADATA_KEYS):
        if "index" not in item or "value" not in item:
            continue
        value_atom = item["value"]
        if "data" in value_atom and isinstance(value_atom["data"].value, bytes):
            yield item["index"].value, value_atom["data"].value


def _apple_creation_date_or_none(atom: Any) -> CaptureDate | None:
    """Apple's date from a ``meta`` atom; a broken ``meta`` still leaves ``mvhd`` to use."""
    try:
        meta = _atom_payload(atom, "meta")
        if meta is None or "tags" not in meta:
            return None
        return _apple_creation_date(meta)
    except Exception as error:  # noqa: BLE001 - hachoir raises any type on a hostile file
        log.debug("quicktime_metadata_unreadable", error=type(error).__name__)
        return None


def _read_quicktime(path: Path, zone: tzinfo | None) -> CaptureDate | None:
    with path.open("rb") as raw:
        return _quicktime_from(_BudgetedReader(raw), f"file:{path}", zone)


def _quicktime_from(reader: io.IOBase, source: str, zone: tzinfo | None) -> CaptureDate | None:
    """The QuickTime capture date read through ``reader``, a budgeted file."""
    from hachoir.parser.container.mp4 import MP4File
    from hachoir.stream import InputIOStream

    _quiet_hachoir()
    stream = InputIOStream(reader, source=source, tags=[])
    parser = MP4File(stream)
    if parser.validate() is not True:
        return None
    mvhd_date: datetime | None = None
    for top in _bounded(parser):
        movie = _atom_payload(top, "movie")
        if movie is None:
            continue
        for child in _bounded(movie):
            header = _atom_payload(child, "movie_hdr")
            if header is not None and "creation_date" in header:
                value = header["creation_date"].value
                if isinstance(value, datetime) and value != _QUICKTIME_EPOCH:
                    mvhd_date = value
            apple = _apple_creation_date_or_none(child)
            if apple is not None:
                return apple
        break  # one moov per file
    if mvhd_date is None:
        return None
    return _from_utc(mvhd_date, "quicktime", zone)


def read_capture_date(
    path: Path, kind: MediaKind, *, zone: tzinfo | None = None
) -> CaptureDate | None:
    """The capture date recorded inside a complete file; None when it has none we can trust.

    Never raises for the file's content: corrupt, truncated or hostile files give None and a
    ``capture_date_unreadable`` debug event. Sidecars carry no capture date (None). ``zone`` is
    where a UTC-only date (a video's ``mvhd``) becomes local time; None means the host's zone.
    """
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None  # a FIFO or device would block open() or never end
        if kind is MediaKind.PHOTO:
            return _read_exif(path)
        if kind is MediaKind.VIDEO:
            return _read_quicktime(path, zone)
        return None
    except Exception as error:  # noqa: BLE001 - the parsers raise any type on a hostile file
        # One bad file must not stop a backup: the caller falls back to the birth time.
        log.debug(
            "capture_date_unreadable",
            path=str(path),
            kind=str(kind),
            error=type(error).__name__,
            detail=str(error)[:200],
        )
        return None


def read_capture_date_from_bytes(
    data: bytes | bytearray, kind: MediaKind, *, zone: tzinfo | None = None
) -> CaptureDate | None:
    """:func:`read_capture_date` of a complete file held in memory (a small file just read from
    the phone), with the same parsers, budgets and "never raises" rule."""
    try:
        if kind is MediaKind.PHOTO:
            return _exif_from(_BudgetedBytes(data))
        if kind is MediaKind.VIDEO:
            return _quicktime_from(_BudgetedBytes(data), "memory", zone)
        return None
    except Exception as error:  # noqa: BLE001 - the parsers raise any type on a hostile file
        log.debug(
            "capture_date_unreadable",
            path="<memory>",
            kind=str(kind),
            error=type(error).__name__,
            detail=str(error)[:200],
        )
        return None
