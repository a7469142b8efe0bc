"""The ``[library]`` section: the phone's Photos library, read for what DCIM does not hold.

On by default: it is what backs up originals downloaded from iCloud (``PhotoData/CPLAssets``),
names the originals only in iCloud, and keeps albums and favourites in XMP sidecars. Every key
is described in docs/config.md and docs/library.md.
"""

from __future__ import annotations

from pydantic import Field

from rollkeeper.config.field_types import Section, StrictFlag, StrictNumber


class LibrarySettings(Section):
    section_help = (
        "The phone's Photos library: originals beyond DCIM (iCloud downloads), rendered edits, "
        "what is only in iCloud, and albums and favourites as XMP sidecars."
    )

    enabled: StrictFlag = Field(
        default=True,
        description=(
            "Copy the phone's Photos library (/PhotoData/Photos.sqlite, read-only, into the "
            "state folder) after the photos of a plug-in, and use it: back up the originals "
            "under PhotoData/CPLAssets under their original names, the edits Photos rendered, "
            "count the originals only in iCloud, write sidecars."
        ),
    )
    refresh_hours: StrictNumber = Field(
        default=24.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Read the library at most this often per phone (0 = at every plug-in); "
            "`rollkeeper backup-now --refresh-library` reads it now. It is copied again only "
            "when the phone's stat of it changed."
        ),
    )
    max_size_gb: StrictNumber = Field(
        default=10.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "A library (database and its WAL) larger than this many GB is not copied: the "
            "last good copy is used and status says why. Real libraries are 0.1-3 GB."
        ),
    )
    sidecars: StrictFlag = Field(
        default=True,
        description=(
            "Write an XMP sidecar beside each archived original (IMG_1234.HEIC.xmp) with its "
            "albums, favourite (rating 5), hidden and Recently Deleted keywords, UUID and "
            "capture date. A sidecar another program edited is never overwritten."
        ),
    )
    max_sidecar_drop_percent: StrictNumber = Field(
        default=5.0,
        ge=0,
        le=100,
        allow_inf_nan=False,
        description=(
            "A library read that would take albums or favourites away from more than this "
            "percent of the sidecars at once (and at least 10) is refused as suspect and "
            "shown by status. If you did remove them on the phone, set 100 for one plug-in."
        ),
    )
    album_folders: StrictFlag = Field(
        default=False,
        description=(
            "Also show each album as a folder of links, Albums/<title>/ in the archive (hard "
            "links; symbolic links where the disk has no hard links; none on exFAT). A view, "
            "never the only copy."
        ),
    )
    warn_icloud_only: StrictFlag = Field(
        default=True,
        description=(
            "`status --check` warns while originals are only in iCloud (not on the phone, so "
            "not in the archive); false silences the warning, not the count."
        ),
    )
