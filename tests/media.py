"""Build realistic iPhone media on disk at test time (nothing binary is committed).

What the factory makes, and how close it is to a phone's files:

* JPEG, PNG, TIFF ("DNG") with EXIF ``DateTimeOriginal`` / ``OffsetTimeOriginal`` written by
  Pillow, the way the camera app writes them (``"YYYY:MM:DD HH:MM:SS"`` local time, ``"+02:00"``).
  A DNG is a TIFF with extra tags; the metadata path is the same TIFF/EXIF structure.
* HEIC written by pillow-heif (libheif). libheif stores item locations as a ``base_offset`` plus a
  zero extent offset, while iPhones write the absolute offset into the extent itself; the
  factory rewrites the ``iloc`` box the iPhone way by default (same bytes, same meaning), because
  exifread only follows the iPhone form. ``apple_iloc=False`` keeps libheif's form to test that.
* PNG screenshots carry EXIF (``UserComment = "Screenshot"``) like iOS screenshots do.
* MOV / MP4 are built atom by atom here, because no library at hand writes Apple's metadata
  ``keys`` atom: ``ftyp``, ``wide``, ``mdat`` (pseudo-random payload of any size), ``moov`` with
  ``mvhd`` (creation time in seconds since 1904, UTC), one video ``trak`` and the QuickTime
  ``meta`` (``hdlr mdta``, ``keys``, ``ilst``) holding ``com.apple.quicktime.creationdate``
  (``"2023-07-14T18:32:05+0200"``). iPhones write ``moov`` after ``mdat``; so does the factory
  unless ``moov_first=True``. The sample tables point at no real frames: nothing here decodes video.
* ``.AAE`` sidecars are XML property lists as Photos writes them.
* Payloads come from BLAKE3's extendable output keyed by a per-file seed: fast (GB/s), unique per
  file, reproducible.

``make_camera_roll`` lays a phone's media folder out and returns a description of every file so
end-to-end tests can assert where each one must land.
"""

from __future__ import annotations

import dataclasses
import os
import plistlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

import blake3
from PIL import Image

#: Seconds from 1904-01-01 (QuickTime's epoch) to 1970-01-01.
QUICKTIME_EPOCH_OFFSET = 2_082_844_800
_CHUNK = 4 * 1024 * 1024
_SAMPLE_BYTES = 1 << 30


# ---------------------------------------------------------------------------------------------
# Payloads
# ---------------------------------------------------------------------------------------------


def pseudo_random_bytes(seed: str, size: int, offset: int = 0) -> bytes:
    """``size`` reproducible pseudo-random bytes for ``seed``, starting at ``offset``."""
    return blake3.blake3(seed.encode()).digest(length=size, seek=offset)


def _write_payload(handle: BinaryIO, seed: str, size: int) -> None:
    write = handle.write
    done = 0
    while done < size:
        step = min(_CHUNK, size - done)
        write(pseudo_random_bytes(seed, step, done))
        done += step


def set_file_time(path: Path, when: datetime) -> int:
    """Set the host mtime (the simulator reports it as the phone's birth time); return it in ns."""
    nanoseconds = int(when.timestamp()) * 1_000_000_000
    os.utime(path, ns=(nanoseconds, nanoseconds))
    return nanoseconds


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def format_offset(offset: timedelta) -> str:
    """EXIF ``OffsetTime`` text for an offset: ``+02:00``, ``-05:30``."""
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def exif_bytes(
    taken: datetime | None,
    offset: timedelta | None = None,
    *,
    model: str = "iPhone 15 Pro",
    user_comment: str | None = None,
    raw_date: str | None = None,
) -> bytes:
    """EXIF block (``Exif\\0\\0`` + TIFF) as an iPhone writes it; ``taken`` is local and naive.

    ``raw_date`` writes that exact ``DateTimeOriginal`` text instead (for malformed dates).
    """
    exif = Image.Exif()
    exif[0x010F] = "Apple"  # Make
    exif[0x0110] = model  # Model
    sub_ifd = exif.get_ifd(0x8769)  # Exif IFD
    text = (
        raw_date if raw_date is not None else taken.strftime("%Y:%m:%d %H:%M:%S") if taken else None
    )
    if text is not None:
        exif[0x0132] = text  # DateTime (modification; a reader must not prefer it)
        sub_ifd[0x9003] = text  # DateTimeOriginal
        sub_ifd[0x9004] = text  # DateTimeDigitized
    if offset is not None:
        sub_ifd[0x9010] = format_offset(offset)  # OffsetTime
        sub_ifd[0x9011] = format_offset(offset)  # OffsetTimeOriginal
        sub_ifd[0x9012] = format_offset(offset)  # OffsetTimeDigitized
    if user_comment is not None:
        sub_ifd[0x9286] = b"ASCII\x00\x00\x00" + user_comment.encode("ascii")
    return exif.tobytes()


def _image(seed: str, size: tuple[int, int]) -> Image.Image:
    # Unique pixels per file so no two generated photos share a hash.
    raw = pseudo_random_bytes(seed, size[0] * size[1] * 3)
    return Image.frombytes("RGB", size, raw)


def make_jpeg(
    path: Path,
    taken: datetime | None,
    offset: timedelta | None = None,
    *,
    size: tuple[int, int] = (64, 48),
    raw_date: str | None = None,
    seed: str | None = None,
) -> Path:
    """A JPEG with EXIF DateTimeOriginal (+ OffsetTimeOriginal when ``offset`` is given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = exif_bytes(taken, offset, raw_date=raw_date)
    _image(seed or str(path), size).save(path, format="JPEG", exif=exif, quality=80)
    return path


def make_png_screenshot(
    path: Path,
    taken: datetime | None,
    offset: timedelta | None = None,
    *,
    exif: bool = True,
    seed: str | None = None,
) -> Path:
    """A PNG screenshot; iOS stores EXIF (``UserComment: Screenshot``) in an ``eXIf`` chunk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = _image(seed or str(path), (40, 80))
    if exif:
        image.save(path, format="PNG", exif=exif_bytes(taken, offset, user_comment="Screenshot"))
    else:
        image.save(path, format="PNG")
    return path


def make_dng(
    path: Path, taken: datetime | None, offset: timedelta | None = None, *, seed: str | None = None
) -> Path:
    """A TIFF-structured file named like ProRAW (``.DNG``) with the same EXIF tags."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _image(seed or str(path), (32, 24)).save(path, format="TIFF", exif=exif_bytes(taken, offset))
    return path


def make_heic(
    path: Path,
    taken: datetime | None,
    offset: timedelta | None = None,
    *,
    apple_iloc: bool = True,
    seed: str | None = None,
) -> Path:
    """A HEIC with EXIF, encoded by pillow-heif; see the module docstring for ``apple_iloc``."""
    import pillow_heif

    path.parent.mkdir(parents=True, exist_ok=True)
    heif = pillow_heif.from_pillow(_image(seed or str(path), (64, 48)))
    heif.info["exif"] = exif_bytes(taken, offset)
    heif.save(path, quality=50)
    if apple_iloc:
        path.write_bytes(_fold_iloc_base_offsets(path.read_bytes()))
    return path


def _fold_iloc_base_offsets(data: bytes) -> bytes:
    """Rewrite a version 0/1 ``iloc`` so each extent holds the absolute offset (base_offset 0)."""
    buffer = bytearray(data)
    meta = _find_box(buffer, b"meta", 0, len(buffer))
    if meta is None:
        raise ValueError("no meta box")
    start, end = meta
    iloc = _find_box(buffer, b"iloc", start + 4, end)  # meta is a full box: skip version/flags
    if iloc is None:
        raise ValueError("no iloc box")
    position, _ = iloc
    version = buffer[position]
    position += 4
    offset_size, length_size = buffer[position] >> 4, buffer[position] & 0xF
    base_offset_size = buffer[position + 1] >> 4
    index_size = buffer[position + 1] & 0xF if version in (1, 2) else 0
    position += 2
    if version == 2:
        raise ValueError("iloc version 2 not handled")
    count = struct.unpack_from(">H", buffer, position)[0]
    position += 2
    if offset_size != 4 or base_offset_size not in (0, 4):
        raise ValueError("unexpected iloc field sizes")
    for _ in range(count):
        position += 2  # item_ID
        if version == 1:
            position += 2  # construction_method
        position += 2  # data_reference_index
        base = 0

        if base_offset_size == 4:
            base = struct.unpack_from(">I", buffer, position)[0]
            struct.pack_into(">I", buffer, position, 0)
        position += base_offset_size
        extents = struct.unpack_from(">H", buffer, position)[0]
        position += 2
        for _ in range(extents):
            position += index_size
            extent_offset = struct.unpack_from(">I", buffer, position)[0]
            struct.pack_into(">I", buffer, position, extent_offset + base)
            position += offset_size + length_size
    return bytes(buffer)


def _find_box(data: bytearray, kind: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(payload start, box end) of the first box of ``kind`` among siblings in [start, end)."""
    position = start
    while position + 8 <= end:
        size, box_kind = struct.unpack_from(">I4s", data, position)
        if size < 8:
            return None
        if box_kind == kind:
            return position + 8, position + size
        position += size
    return None


# ---------------------------------------------------------------------------------------------
# QuickTime / MP4
# ---------------------------------------------------------------------------------------------


def atom(kind: bytes, *payload: bytes) -> bytes:
    """One QuickTime atom: 32-bit size, 4-byte type, payload."""
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full(version: int, flags: int = 0) -> bytes:
    return struct.pack(">I", (version << 24) | flags)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def mvhd(created_utc: datetime | None, *, duration_seconds: int = 3, timescale: int = 600) -> bytes:
    """``mvhd`` with the creation time; version 1 (64-bit times) when it does not fit 32 bits."""
    seconds = 0 if created_utc is None else int(created_utc.timestamp()) + QUICKTIME_EPOCH_OFFSET
    duration = duration_seconds * timescale
    tail = (
        struct.pack(">IH10s", 0x10000, 0x100, b"") + _MATRIX + struct.pack(">6I", 0, 0, 0, 0, 0, 2)
    )
    if 0 <= seconds < 2**32:
        return atom(
            b"mvhd", _full(0), struct.pack(">IIII", seconds, seconds, timescale, duration), tail
        )
    return atom(
        b"mvhd", _full(1), struct.pack(">QQIQ", seconds, seconds, timescale, duration), tail
    )


def apple_metadata(items: dict[str, str]) -> bytes:
    """QuickTime ``meta`` atom (not a full atom in QuickTime files) with ``mdta`` keys."""
    handler = atom(b"hdlr", _full(0), b"\x00" * 4, b"mdta", b"\x00" * 12, b"\x00")
    keys = atom(
        b"keys",
        _full(0),
        struct.pack(">I", len(items)),
        *(struct.pack(">I4s", 8 + len(key.encode()), b"mdta") + key.encode() for key in items),
    )
    entries = [
        atom(
            struct.pack(">I", index),
            atom(b"data", struct.pack(">II", 1, 0), value.encode("utf-8")),  # type 1 = UTF-8
        )
        for index, value in enumerate(items.values(), start=1)
    ]
    return atom(b"meta", handler, keys, atom(b"ilst", *entries))


def _video_track(
    created_seconds: int, duration: int, payload_offset: int, payload_size: int
) -> bytes:
    tkhd = atom(
        b"tkhd",
        _full(0, 0x3),
        struct.pack(">IIIII", created_seconds, created_seconds, 1, 0, duration),
        struct.pack(">8xHHH2x", 0, 0, 0),
        _MATRIX,
        struct.pack(">II", 1920 << 16, 1080 << 16),
    )
    mdhd = atom(
        b"mdhd",
        _full(0),
        struct.pack(">IIIIHH", created_seconds, created_seconds, 600, duration, 0x55C4, 0),
    )
    hdlr = atom(b"hdlr", _full(0), b"mhlr", b"vide", b"\x00" * 12, b"\x00")
    sample_entry = atom(
        b"hvc1",
        b"\x00" * 6,
        struct.pack(">H", 1),
        b"\x00" * 16,
        struct.pack(">HH", 1920, 1080),
        struct.pack(">II", 0x480000, 0x480000),
        b"\x00" * 4,
        struct.pack(">H", 1),
        b"\x00" * 32,
        struct.pack(">Hh", 24, -1),
    )
    # One sample per GiB of payload (each its own chunk): sizes must fit 32 bits.
    sample_sizes = [
        min(_SAMPLE_BYTES, payload_size - start) for start in range(0, payload_size, _SAMPLE_BYTES)
    ] or [0]
    offsets = [payload_offset + index * _SAMPLE_BYTES for index in range(len(sample_sizes))]
    count = len(sample_sizes)
    stbl = atom(
        b"stbl",
        atom(b"stsd", _full(0), struct.pack(">I", 1), sample_entry),
        atom(b"stts", _full(0), struct.pack(">III", 1, count, max(1, duration // count))),
        atom(b"stsc", _full(0), struct.pack(">IIII", 1, 1, 1, 1)),
        atom(b"stsz", _full(0), struct.pack(f">II{count}I", 0, count, *sample_sizes)),
        atom(b"co64", _full(0), struct.pack(f">I{count}Q", count, *offsets)),
    )
    dinf = atom(b"dinf", atom(b"dref", _full(0), struct.pack(">I", 1), atom(b"url ", _full(0, 1))))
    minf = atom(b"minf", atom(b"vmhd", _full(0, 1), b"\x00" * 8), dinf, stbl)
    return atom(b"trak", tkhd, atom(b"mdia", mdhd, hdlr, minf))


def make_video(
    path: Path,
    *,
    created_utc: datetime | None,
    apple_creationdate: str | None = None,
    payload_bytes: int = 4096,
    seed: str | None = None,
    brand: bytes = b"qt  ",
    moov_first: bool = False,
    sparse: bool = False,
) -> Path:
    """A MOV (``brand=b"qt  "``) or MP4 (``b"mp42"``) of about ``payload_bytes`` bytes.

    ``created_utc`` goes into ``mvhd``; ``apple_creationdate`` (``"2023-07-14T18:32:05+0200"``)
    into the Apple metadata keys; the ``mdat`` payload is pseudo-random and unique per ``seed``
    (default: the path). Large payloads use a 64-bit ``mdat`` size when needed. ``sparse``
    leaves the payload as a hole (zeros, no disk, instant): for "a 4 GB video" tests.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = seed or str(path)
    ftyp = atom(b"ftyp", brand, struct.pack(">I", 0), brand)
    wide = atom(b"wide")
    mdat_header_size = 16 if payload_bytes + 8 >= 2**32 else 8
    created_seconds = 0
    if created_utc is not None:
        created_seconds = max(
            0, min(2**32 - 1, int(created_utc.timestamp()) + QUICKTIME_EPOCH_OFFSET)
        )
    items = {}
    if apple_creationdate is not None:
        items["com.apple.quicktime.make"] = "Apple"
        items["com.apple.quicktime.creationdate"] = apple_creationdate

    def build_moov(payload_offset: int) -> bytes:
        parts = [
            mvhd(created_utc),
            _video_track(created_seconds, 1800, payload_offset, payload_bytes),
        ]
        if items:
            parts.append(apple_metadata(items))
        return atom(b"moov", *parts)

    if mdat_header_size == 16:
        mdat_header = struct.pack(">I4sQ", 1, b"mdat", 16 + payload_bytes)
    else:
        mdat_header = struct.pack(">I4s", 8 + payload_bytes, b"mdat")
    head = ftyp + (b"" if moov_first else wide)
    if moov_first:
        moov_size = len(build_moov(0))
        moov = build_moov(len(head) + moov_size + mdat_header_size)
        head += moov
    with path.open("wb") as handle:
        handle.write(head + mdat_header)
        if sparse:
            handle.seek(payload_bytes, os.SEEK_CUR)
        else:
            _write_payload(handle, seed, payload_bytes)
        if not moov_first:
            handle.write(build_moov(len(head) + mdat_header_size))
    return path


def apple_date_text(local: datetime, offset: timedelta) -> str:
    """Apple's creationdate text: local time with a ``+HHMM`` offset."""
    return local.strftime("%Y-%m-%dT%H:%M:%S") + format_offset(offset).replace(":", "")


# ---------------------------------------------------------------------------------------------
# Sidecars
# ---------------------------------------------------------------------------------------------


def make_aae(path: Path, *, seed: str | None = None) -> Path:
    """An ``.AAE`` adjustment sidecar (XML plist) like Photos writes next to an edit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "adjustmentBaseVersion": 0,
        "adjustmentData": pseudo_random_bytes(seed or str(path), 96),
        "adjustmentEditorBundleID": "com.apple.mobileslideshow",
        "adjustmentFormatIdentifier": "com.apple.photo",
        "adjustmentFormatVersion": "1.5",
        "adjustmentTimestamp": datetime(2023, 7, 15, 9, 0, 0),
    }
    path.write_bytes(plistlib.dumps(document, fmt=plistlib.FMT_XML))
    return path


def make_blob(path: Path, size: int, *, seed: str | None = None) -> Path:
    """A file of ``size`` pseudo-random bytes (unique per seed, default the path)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        _write_payload(handle, seed or str(path), size)
    return path


# ---------------------------------------------------------------------------------------------
# A camera roll
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedFile:
    """What a test may assert about one generated phone file."""

    #: Phone-side path served by the simulator: ``/DCIM/100APPLE/IMG_0001.HEIC``.
    phone_path: str
    #: Where the file is on the host (inside the simulator's media root).
    host_path: Path
    size: int
    #: The host mtime set on the file, in ns (the simulator reports it as the birth time).
    birth_time_ns: int
    #: Local time of capture the importer must find (naive), and where it comes from.
    capture_local: datetime
    capture_offset: timedelta | None
    capture_source: str  # "exif", "quicktime", "birth_time"
    #: The group key the importer must give (``IMG_0001``); members share folder and suffix.
    group: str
    kind: str  # "photo", "video", "sidecar"
    #: The local capture time of the group's primary: it decides the folder of every member
    #: (a sidecar has no date of its own and lands beside its photo).
    group_capture_local: datetime | None = None

    @property
    def name(self) -> str:
        return self.phone_path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class CameraRoll:
    """The media root (give it to the simulator as ``media_root``) and what it holds."""

    root: Path
    files: tuple[ExpectedFile, ...]

    def by_name(self, name: str) -> ExpectedFile:
        matches = [item for item in self.files if item.name == name]
        if len(matches) != 1:
            raise KeyError(name)
        return matches[0]

    def groups(self) -> dict[str, list[ExpectedFile]]:
        result: dict[str, list[ExpectedFile]] = {}
        for item in self.files:
            folder = item.phone_path.rsplit("/", 1)[0]
            result.setdefault(f"{folder}/{item.group}", []).append(item)
        return result

    @property
    def total_bytes(self) -> int:
        return sum(item.size for item in self.files)


def _local_from_birth(birth_ns: int, zone: timezone | None) -> tuple[datetime, timedelta | None]:
    aware = datetime.fromtimestamp(birth_ns / 1e9, tz=UTC).astimezone(zone)
    return aware.replace(tzinfo=None), aware.utcoffset()


def make_camera_roll(
    root: Path,
    *,
    first_number: int = 1,
    folder: str = "100APPLE",
    big_video_bytes: int | None = None,
    file_time: datetime | None = None,
    birth_zone: timezone | None = None,
    variant: str = "",
) -> CameraRoll:
    """Lay out ``root/DCIM/<folder>/`` like a phone's camera roll and describe every file.

    Contents, numbered from ``first_number`` (n):
      * IMG_n.HEIC + IMG_n.MOV: a Live Photo (EXIF + Apple creationdate, UTC+02:00);
      * IMG_(n+1).HEIC, IMG_E(n+1).HEIC (edit), IMG_(n+1).AAE, IMG_O(n+1).AAE: an edit;
      * IMG_(n+2).JPG: EXIF date in 2016 while its file time is ``file_time`` (years later);
      * IMG_(n+3).PNG: a screenshot (EXIF in an eXIf chunk);
      * IMG_(n+4).MOV: a video with Apple creationdate (UTC-07:00, a trip);
      * IMG_(n+5).MP4: a video with only the mvhd creation time (UTC);
      * IMG_(n+6).MOV: with ``big_video_bytes``, a large video of that size (moov at the end).
    Host mtimes are set to ``file_time`` plus a few seconds per file. ``birth_zone`` is the zone
    in which birth-time fallbacks are expected (None = the host's local zone), used for the
    sidecars, which carry no date of their own. Content is unique per name, ``file_time`` and
    ``variant`` and reproducible: the same names with another ``file_time`` or ``variant`` make
    an IMG_9999 -> IMG_0001 rollover or a new phone (same names, different bytes).
    """
    file_time = file_time or datetime(2024, 3, 9, 10, 0, 0, tzinfo=UTC)
    directory = root / "DCIM" / folder
    directory.mkdir(parents=True, exist_ok=True)
    # A camera never rewrites a file in place: the same name again (a rollover, a phone erased
    # and filled again) is a new file, the old one deleted first, so the folder's stat moves
    # as a phone's does.
    for number in range(first_number, first_number + 7):
        for existing in directory.glob(f"IMG_*{number:04d}.*"):
            existing.unlink()
    plus_two = timedelta(hours=2)
    minus_seven = timedelta(hours=-7)
    expected: list[ExpectedFile] = []
    counter = iter(range(10_000))

    def record(
        path: Path,
        kind: str,
        group: str,
        local: datetime | None,
        offset: timedelta | None,
        source: str,
    ) -> None:
        birth = set_file_time(path, file_time + timedelta(seconds=next(counter) * 7))
        if local is None:
            local, offset = _local_from_birth(birth, birth_zone)
        expected.append(
            ExpectedFile(
                phone_path=f"/DCIM/{folder}/{path.name}",
                host_path=path,
                size=path.stat().st_size,
                birth_time_ns=birth,
                capture_local=local,
                capture_offset=offset,
                capture_source=source,
                group=group,
                kind=kind,
            )
        )

    def seed(name: str) -> str:
        return f"{folder}/{name}#{variant}#{file_time.isoformat()}"

    n = first_number
    # 1. Live Photo.
    live_taken = datetime(2023, 7, 14, 18, 32, 5)
    key = f"IMG_{n:04d}"
    path = make_heic(directory / f"{key}.HEIC", live_taken, plus_two, seed=seed(f"{key}.HEIC"))
    record(path, "photo", key, live_taken, plus_two, "exif")
    path = make_video(
        directory / f"{key}.MOV",
        seed=seed(f"{key}.MOV"),
        created_utc=(live_taken - plus_two).replace(tzinfo=UTC),
        apple_creationdate=apple_date_text(live_taken, plus_two),
        payload_bytes=300_000,
    )
    record(path, "video", key, live_taken, plus_two, "quicktime")

    # 2. An edited photo with its sidecars.
    edit_taken = datetime(2023, 7, 15, 8, 1, 30)
    key = f"IMG_{n + 1:04d}"
    path = make_heic(directory / f"{key}.HEIC", edit_taken, plus_two, seed=seed(f"{key}.HEIC"))
    record(path, "photo", key, edit_taken, plus_two, "exif")
    path = make_heic(
        directory / f"IMG_E{n + 1:04d}.HEIC", edit_taken, plus_two, seed=seed(f"E{n + 1}")
    )
    record(path, "photo", key, edit_taken, plus_two, "exif")
    for sidecar in (f"{key}.AAE", f"IMG_O{n + 1:04d}.AAE"):
        path = make_aae(directory / sidecar, seed=seed(sidecar))
        record(path, "sidecar", key, None, None, "birth_time")

    # 3. A JPEG taken years before its file time (a photo saved from elsewhere, a restore).
    old_taken = datetime(2016, 12, 24, 23, 59, 58)
    key = f"IMG_{n + 2:04d}"
    path = make_jpeg(
        directory / f"{key}.JPG", old_taken, timedelta(hours=1), seed=seed(f"{key}.JPG")
    )
    record(path, "photo", key, old_taken, timedelta(hours=1), "exif")

    # 4. A screenshot.
    shot_taken = datetime(2024, 1, 2, 3, 4, 5)
    key = f"IMG_{n + 3:04d}"
    path = make_png_screenshot(
        directory / f"{key}.PNG", shot_taken, timedelta(hours=1), seed=seed(f"{key}.PNG")
    )
    record(path, "photo", key, shot_taken, timedelta(hours=1), "exif")

    # 5. A video on a trip (Apple key, local time of capture in UTC-7).
    trip_taken = datetime(2022, 8, 31, 22, 15, 0)
    key = f"IMG_{n + 4:04d}"
    path = make_video(
        directory / f"{key}.MOV",
        seed=seed(f"{key}.MOV"),
        created_utc=(trip_taken - minus_seven).replace(tzinfo=UTC),
        apple_creationdate=apple_date_text(trip_taken, minus_seven),
        payload_bytes=200_000,
    )
    record(path, "video", key, trip_taken, minus_seven, "quicktime")

    # 6. An MP4 with only the mvhd time (UTC): the local time is that instant in the host zone.
    mp4_utc = datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC)
    key = f"IMG_{n + 5:04d}"
    path = make_video(
        directory / f"{key}.MP4",
        created_utc=mp4_utc,
        payload_bytes=100_000,
        brand=b"mp42",
        seed=seed(f"{key}.MP4"),
    )
    local_mp4 = mp4_utc.astimezone(birth_zone)
    record(path, "video", key, local_mp4.replace(tzinfo=None), local_mp4.utcoffset(), "quicktime")

    # 7. A big video.
    if big_video_bytes is not None:
        big_taken = datetime(2024, 2, 29, 12, 0, 0)
        key = f"IMG_{n + 6:04d}"
        path = make_video(
            directory / f"{key}.MOV",
            seed=seed(f"{key}.MOV"),
            created_utc=(big_taken - plus_two).replace(tzinfo=UTC),
            apple_creationdate=apple_date_text(big_taken, plus_two),
            payload_bytes=big_video_bytes,
        )
        record(path, "video", key, big_taken, plus_two, "quicktime")

    # Each group's primary is recorded first above (photo before its video and sidecars).
    primary_dates: dict[str, datetime] = {}
    for item in expected:
        primary_dates.setdefault(item.group, item.capture_local)
    files = tuple(
        dataclasses.replace(item, group_capture_local=primary_dates[item.group])
        for item in expected
    )
    return CameraRoll(root=root, files=files)


def phone_paths(files: Iterable[ExpectedFile]) -> list[str]:
    """The phone-side paths of ``files``, sorted."""
    return sorted(item.phone_path for item in files)
