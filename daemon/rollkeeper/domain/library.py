"""What the phone's Photos library says about an asset, and the rules rollkeeper applies to it.

Pure domain code. The library (``/PhotoData/Photos.sqlite``) is read by
:mod:`rollkeeper.library.reader`, which checks every value before it builds a
:class:`LibraryAsset`; the rules here decide names, dates and sidecar contents from those
checked values:

* **Names.** An original under ``PhotoData/CPLAssets`` is stored under its original file name
  (``ZORIGINALFILENAME``: ``IMG_7001.HEIC``) with the extension of the file itself; a rendered
  edit is stored as the ``E`` name of its original (``IMG_E7001.JPG``), so it groups with it.
* **Capture dates, in order:** the date embedded in the file (EXIF ``DateTimeOriginal``,
  QuickTime ``creationdate`` or ``mvhd``) wins where present; else the library's capture date
  (``ZDATECREATED``, UTC) in the asset's own time zone (``ZTIMEZONEOFFSET``, else an IANA
  ``ZTIMEZONENAME``, else the host's zone); else the phone's birth time of the file.
* **Sidecars.** One per archived file: a file stored once for several assets carries the union
  of their albums, favourite if any of them is, and every UUID.
* **Suspect reads.** A library read that would take albums or the favourite away from more
  than a few percent of the sidecars at once is refused (:func:`read_is_suspect`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from rollkeeper.domain.files import extension_of, stem_of
from rollkeeper.domain.layout import CaptureDate

#: Where the phone keeps originals downloaded from iCloud (the AFC root is the media root).
CPL_ASSETS_ROOT = "/PhotoData/CPLAssets"
#: Where rendered edits live: ``<root>/<ZDIRECTORY>/<stem>/Adjustments/FullSizeRender.*``.
MUTATIONS_ROOT = "/PhotoData/Mutations"
#: The name Photos gives a rendered edit (any extension).
RENDER_STEM = "FullSizeRender"
#: ``capture_source`` of a date taken from the library.
LIBRARY_SOURCE = "library"
#: The largest time-zone offset any place uses (UTC+14, UTC-12), with a margin.
LARGEST_OFFSET = timedelta(hours=18)

_APPLE_NAME = re.compile(r"^(?P<prefix>[A-Za-z]+)_(?P<number>[0-9]+)$")


@dataclass(frozen=True, slots=True)
class LibraryAsset:
    """One asset of the library, every field checked (None where the library had nothing
    usable). ``folder`` is the phone folder of its original (``/DCIM/100APPLE`` or
    ``/PhotoData/CPLAssets/group5``), None when the library puts it anywhere else."""

    uuid: str
    folder: str | None
    filename: str | None
    original_filename: str | None = None
    original_size: int | None = None
    created_utc: datetime | None = None
    utc_offset: timedelta | None = None
    time_zone_name: str | None = None
    favorite: bool = False
    hidden: bool = False
    trashed: bool = False
    #: ``photo``, ``video`` or None.
    kind: str | None = None
    live_photo: bool = False
    has_adjustments: bool = False
    #: The original resource is on the phone (True), only in iCloud (False), or not said.
    original_local: bool | None = None
    albums: tuple[str, ...] = ()

    @property
    def phone_path(self) -> str | None:
        """``/DCIM/100APPLE/IMG_0001.HEIC``, or None when the library names no usable file."""
        if self.folder is None or self.filename is None:
            return None
        return f"{self.folder}/{self.filename}"

    @property
    def in_cpl_assets(self) -> bool:
        """Whether the original lives under ``/PhotoData/CPLAssets`` (not in DCIM)."""
        return self.folder is not None and self.folder.startswith(CPL_ASSETS_ROOT + "/")

    @property
    def display_name(self) -> str:
        """The name a person knows the asset by: the original name, else the file name."""
        return self.original_filename or self.filename or self.uuid

    def render_folder(self) -> str | None:
        """Where Photos keeps this asset's rendered edit (``.../Adjustments``), if anywhere."""
        if self.folder is None or self.filename is None:
            return None
        relative = self.folder.removeprefix("/PhotoData").lstrip("/")
        return f"{MUTATIONS_ROOT}/{relative}/{stem_of(self.filename)}/Adjustments"


def phone_folder_for_directory(directory: str) -> str | None:
    """The phone folder of a library ``ZDIRECTORY`` (already split-checked by the reader):
    ``DCIM/100APPLE`` -> ``/DCIM/100APPLE``; ``CPLAssets/group5`` (or with ``PhotoData/``) ->
    ``/PhotoData/CPLAssets/group5``; anything else -> None (not a place rollkeeper copies)."""
    parts = [part for part in directory.split("/") if part]
    if len(parts) == 2 and parts[0] == "DCIM":
        return f"/DCIM/{parts[1]}"
    if parts[:1] == ["PhotoData"]:
        parts = parts[1:]
    if len(parts) == 2 and parts[0] == "CPLAssets":
        return f"{CPL_ASSETS_ROOT}/{parts[1]}"
    return None


def archive_name(original_filename: str | None, file_name: str) -> str:
    """The name a file of an asset gets in the archive.

    A file named by its UUID (``CPLAssets``) takes the original name's stem with its own
    extension: ``IMG_7001.HEIC`` + ``8F2C….heic`` -> ``IMG_7001.HEIC``; the Live Photo video
    ``8F2C….MOV`` -> ``IMG_7001.MOV``. Without an original name the file keeps its own.
    """
    if not original_filename:
        return file_name
    own_extension = extension_of(file_name)
    if own_extension == extension_of(original_filename):
        return original_filename
    if not own_extension:
        return stem_of(original_filename)
    return f"{stem_of(original_filename)}.{file_name.rpartition('.')[2]}"


def edit_name(original_name: str, render_name: str) -> str:
    """The archive name of a rendered edit: the ``E`` name of its original, with the render's
    extension in capitals as the camera writes them (``IMG_1234.HEIC`` + ``FullSizeRender.jpg``
    -> ``IMG_E1234.JPG``); a name that does not follow Apple's pattern gets ``_edited``
    (``beach.jpg`` -> ``beach_edited.JPG``)."""
    extension = extension_of(render_name)
    suffix = f".{extension}" if extension else ""
    stem = stem_of(original_name)
    match = _APPLE_NAME.match(stem)
    if match is not None:
        return f"{match['prefix']}_E{match['number']}{suffix}"
    return f"{stem}_edited{suffix}"


def library_capture_date(asset: LibraryAsset, zone: tzinfo | None = None) -> CaptureDate | None:
    """The library's capture date of an asset in its own time zone, or None.

    The offset is the asset's (the reader takes ``ZTIMEZONEOFFSET``, else the IANA zone named
    by ``ZTIMEZONENAME`` at that instant), else that of ``zone`` (None = the host's zone).
    """
    if asset.created_utc is None:
        return None
    moment = asset.created_utc.astimezone(UTC)
    offset = asset.utc_offset
    try:
        if offset is not None:
            return CaptureDate(
                local=(moment + offset).replace(tzinfo=None),
                utc_offset=offset,
                source=LIBRARY_SOURCE,
            )
        local = moment.astimezone(zone)
    except (OverflowError, ValueError):
        return None
    return CaptureDate(
        local=local.replace(tzinfo=None), utc_offset=local.utcoffset(), source=LIBRARY_SOURCE
    )


# -- sidecars --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SidecarFacts:
    """What one archived file's sidecar says: the union over the assets stored as that file."""

    uuids: tuple[str, ...]
    albums: tuple[str, ...] = ()
    favorite: bool = False
    hidden: bool = False
    recently_deleted: bool = False
    #: The capture date with its offset, when the library knows it.
    capture: CaptureDate | None = None

    def as_record(self) -> dict[str, object]:
        """The facts as JSON-ready data (kept for every sidecar version in the state)."""
        capture = None
        if self.capture is not None:
            capture = {
                "local": self.capture.local.isoformat(),
                "offset_seconds": (
                    None
                    if self.capture.utc_offset is None
                    else int(self.capture.utc_offset.total_seconds())
                ),
            }
        return {
            "uuids": list(self.uuids),
            "albums": list(self.albums),
            "favorite": self.favorite,
            "hidden": self.hidden,
            "recently_deleted": self.recently_deleted,
            "capture": capture,
        }


def sidecar_facts(assets: Sequence[LibraryAsset], zone: tzinfo | None = None) -> SidecarFacts:
    """The sidecar of a file stored once for ``assets``: their union (albums sorted, each once;
    the capture date of the first asset that has one, by UUID)."""
    ordered = sorted(assets, key=lambda asset: asset.uuid)
    albums = sorted({title for asset in ordered for title in asset.albums})
    capture = next(
        (date for date in (library_capture_date(asset, zone) for asset in ordered) if date), None
    )
    return SidecarFacts(
        uuids=tuple(dict.fromkeys(asset.uuid for asset in ordered)),
        albums=tuple(albums),
        favorite=any(asset.favorite for asset in ordered),
        hidden=any(asset.hidden for asset in ordered),
        recently_deleted=any(asset.trashed for asset in ordered),
        capture=capture,
    )


def drops_something(previous: dict[str, object], new: SidecarFacts) -> bool:
    """Whether ``new`` takes an album or the favourite away from a sidecar whose last written
    facts were ``previous`` (:meth:`SidecarFacts.as_record`)."""
    old_albums = previous.get("albums")
    kept = set(new.albums)
    if isinstance(old_albums, list) and any(title not in kept for title in old_albums):
        return True
    return previous.get("favorite") is True and not new.favorite


@dataclass(frozen=True, slots=True)
class DropCheck:
    """How many sidecars a library read would take albums or favourites from, out of how many."""

    dropping: int
    sidecars: int
    limit_percent: float
    suspect: bool = field(default=False)


#: A read is never suspect for fewer drops than this (a small archive changes by whole photos).
SUSPECT_FLOOR = 10


def read_is_suspect(dropping: int, sidecars: int, limit_percent: float) -> DropCheck:
    """Whether a read that drops albums or favourites from ``dropping`` of ``sidecars`` sidecars
    is suspect: more than ``limit_percent`` percent of them, and at least :data:`SUSPECT_FLOOR`.

    A broken or half-copied library looks like a user who emptied every album at once; a user
    who removes one album of a handful of photos must not be refused. ``limit_percent`` of 100
    or more never refuses (what a user sets once to accept a removal they made on purpose).
    """
    suspect = (
        limit_percent < 100
        and dropping >= SUSPECT_FLOOR
        and dropping * 100 > limit_percent * max(sidecars, 1)
    )
    return DropCheck(dropping, sidecars, limit_percent, suspect)


def printable_title(title: str, limit: int = 255) -> str:
    """An album title as text fit for XML and logs: characters XML 1.0 cannot carry (control
    characters, lone surrogates, U+FFFE/U+FFFF) dropped, blanks collapsed, at most ``limit``."""
    kept = "".join(character for character in title if _xml_character(character))
    kept = " ".join(kept.split())
    return kept[:limit]


def _xml_character(character: str) -> bool:
    code = ord(character)
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    ) and not 0x7F <= code <= 0x9F


def titles(values: Iterable[object]) -> tuple[str, ...]:
    """Checked album titles: text only, made printable, empty ones dropped, each once, sorted."""
    found = {printable_title(value) for value in values if isinstance(value, str)}
    found.discard("")
    return tuple(sorted(found))
