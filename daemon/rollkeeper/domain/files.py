"""Files as the phone reports them, and what kind of media each one is.

Pure domain code. Every value here comes from the phone and is untrusted: the adapters check
names with :mod:`rollkeeper.domain.names` before building a :class:`PhoneFile`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PhoneFile:
    """One file as the phone reported it: its phone-side path, size and times (untrusted)."""

    #: Phone-side POSIX path, ``/DCIM/100APPLE/IMG_0001.HEIC``.
    path: str
    size: int
    #: ``st_birthtime`` and ``st_mtime`` in nanoseconds since the epoch.
    birth_time_ns: int
    modified_time_ns: int

    @property
    def folder(self) -> str:
        """The phone-side folder holding the file: ``/DCIM/100APPLE``."""
        folder, _, _ = self.path.rpartition("/")
        return folder or "/"

    @property
    def name(self) -> str:
        """The file's name: ``IMG_0001.HEIC``."""
        return self.path.rpartition("/")[2]

    @property
    def identity(self) -> tuple[str, int, int]:
        """What makes this file this file: (path, size, birth time).

        Never the name alone: names come back with other content (IMG_9999 rolls over to
        IMG_0001; a new phone starts at IMG_0001 again), and a different size or birth time at a
        known path means a new photo.
        """
        return (self.path, self.size, self.birth_time_ns)


class MediaKind(enum.StrEnum):
    """What a file is, judged by its extension (the phone's own naming, not its content)."""

    PHOTO = "photo"
    VIDEO = "video"
    SIDECAR = "sidecar"


#: Cameras' raw formats: photos imported from an SD card land in ``1xxIMPRT`` folders beside the
#: camera roll (libimobiledevice #698) under the camera's own names and formats, and Photos
#: imports raw files (Canon, Nikon, Sony, Fujifilm, Olympus, Panasonic, Pentax, Samsung, Leica,
#: Hasselblad, Phase One, Sigma).
CAMERA_RAW_EXTENSIONS = (
    "CR2", "CR3", "CRW", "NEF", "NRW", "ARW", "SRF", "SR2", "RAF", "ORF", "RW2", "PEF", "SRW",
    "RWL", "3FR", "IIQ", "X3F", "HIF",
)  # fmt: skip

_KIND_BY_EXTENSION: dict[str, MediaKind] = {
    **dict.fromkeys(
        ("HEIC", "HEIF", "JPG", "JPEG", "PNG", "DNG", "GIF", "TIF", "TIFF"), MediaKind.PHOTO
    ),
    **dict.fromkeys(CAMERA_RAW_EXTENSIONS, MediaKind.PHOTO),
    **dict.fromkeys(("MOV", "MP4", "M4V", "AVI"), MediaKind.VIDEO),
    "AAE": MediaKind.SIDECAR,
}


def extension_of(name: str) -> str:
    """The text after the last dot, upper-cased; empty when there is none (``"IMG"`` -> ``""``)."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        return ""
    return extension.upper()


def stem_of(name: str) -> str:
    """The name without its last extension: ``IMG_0001.HEIC`` -> ``IMG_0001``."""
    stem, dot, _ = name.rpartition(".")
    return stem if dot and stem else name


def extensions_of_kind(kind: MediaKind) -> tuple[str, ...]:
    """The extensions (upper case, no dot) that :func:`media_kind` calls ``kind``, sorted."""
    return tuple(
        sorted(extension for extension, found in _KIND_BY_EXTENSION.items() if found == kind)
    )


def media_kind(name: str) -> MediaKind | None:
    """The kind of media a file name denotes, case-insensitively; None when it is not media.

    Photos: HEIC HEIF JPG JPEG PNG DNG GIF TIF TIFF and cameras' raw formats
    (:data:`CAMERA_RAW_EXTENSIONS`, from SD-card imports). Videos: MOV MP4 M4V AVI. Sidecars: AAE
    (the edit instructions Photos keeps beside an edited photo; they are backed up with it).
    """
    return _KIND_BY_EXTENSION.get(extension_of(name))


def is_screenshot(name: str) -> bool:
    """Whether a camera-roll file is (very probably) a screenshot.

    The heuristic: iOS saves screenshots as PNG into DCIM under the ordinary ``IMG_nnnn`` names,
    and the camera never writes PNG, so a PNG in the camera roll is a screenshot; names starting
    with ``Screenshot`` (macOS and AirDrop copies) count too. A PNG saved from a web page or a
    chat also passes: the filter errs on the side of calling it a screenshot, which only matters
    to users who choose to skip screenshots.
    """
    return extension_of(name) == "PNG" or name.casefold().startswith("screenshot")
