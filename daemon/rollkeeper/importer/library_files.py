"""The phone files the library names beyond DCIM: iCloud originals and rendered edits.

Two kinds of files, found from a library read (:class:`~rollkeeper.library.reader.LibraryRead`):

* originals under ``/PhotoData/CPLAssets/groupNNN/<UUID>.<ext>``: the files of a group folder
  whose stem is the ``ZFILENAME`` stem of one of its assets (a Live Photo's ``<UUID>.MOV``
  with its ``<UUID>.HEIC``); nothing else in the folder is touched;
* rendered edits of assets with adjustments, ``/PhotoData/Mutations/<dir>/<stem>/Adjustments/
  FullSizeRender.<ext>``.

Each folder is listed and reconciled with the manifest exactly as a DCIM folder is (a name
already settled costs no stat, a name gone is marked absent, a new name is stat'ed), so these
files get the same identity, dedup, resume and statuses as DCIM files. They are then grouped
per asset (original, Live Photo video, edit; for a DCIM original with a rendered edit, the DCIM
original joins the group so the edit lands beside it with its suffix) and placed with
:class:`LibraryHints`: original names from the library, edits named ``IMG_E…``, and the
library's capture date where the file carries none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from rollkeeper.device.scan import PhoneStats, RejectedItem, checked_names
from rollkeeper.domain.files import MediaKind, media_kind, stem_of
from rollkeeper.domain.grouping import MediaGroup
from rollkeeper.domain.layout import CaptureDate
from rollkeeper.domain.library import (
    RENDER_STEM,
    LibraryAsset,
    archive_name,
    edit_name,
    library_capture_date,
)
from rollkeeper.importer.plan import PlannedGroup, phone_file
from rollkeeper.importer.reconcile import SETTLED_STATUSES
from rollkeeper.ports import Clock, FileNotOnPhoneError, ManifestStore, PhoneFiles, PhoneReadError
from rollkeeper.store.records import ManifestEntry

#: Render folders listed at once (one READ_DIR per edited asset).
LISTING_CONCURRENCY = 8


@dataclass(slots=True)
class LibraryHints:
    """Names and dates of library files for the placer (the ``PlacementHints`` it takes)."""

    #: Phone path -> archive name (CPLAssets originals, rendered edits).
    names: dict[str, str] = field(default_factory=dict)
    #: Phone path of a group's primary -> the library's capture date.
    dates: dict[str, CaptureDate] = field(default_factory=dict)

    def archive_name(self, entry: ManifestEntry) -> str:
        """The name a file gets in the archive."""
        return self.names.get(entry.phone_path, entry.name)

    def capture_date(self, phone_path: str) -> CaptureDate | None:
        """The library's date of the group whose primary is ``phone_path``, if it knows one."""
        return self.dates.get(phone_path)


@dataclass(slots=True)
class LibraryFiles:
    """What the library's files beyond DCIM are now, and their groups."""

    #: Every present file of the folders listed, by phone path.
    present: dict[str, ManifestEntry] = field(default_factory=dict)
    #: DCIM originals of edited assets: members of their edit's group, copied by the DCIM scan.
    companions: dict[str, ManifestEntry] = field(default_factory=dict)
    groups: list[tuple[MediaGroup, list[ManifestEntry]]] = field(default_factory=list)
    hints: LibraryHints = field(default_factory=LibraryHints)
    rejected: list[RejectedItem] = field(default_factory=list)
    #: Folders the phone refused to list (what they hold is unknown).
    unlistable: list[str] = field(default_factory=list)
    listing_requests: int = 0


def _wanted_in_cpl_folder(names: Iterable[str], stems: set[str]) -> list[str]:
    return [name for name in names if stem_of(name) in stems]


def _is_render(name: str) -> bool:
    return stem_of(name) == RENDER_STEM and media_kind(name) in (MediaKind.PHOTO, MediaKind.VIDEO)


class LibraryFileSurvey:
    """Lists, stats and records the library's files beyond DCIM for one phone."""

    def __init__(self, files: PhoneFiles, store: ManifestStore, udid: str, clock: Clock) -> None:
        self._files = files
        self._store = store
        self._udid = udid
        self._clock = clock
        self._stats = PhoneStats(files)
        self._limit = asyncio.Semaphore(LISTING_CONCURRENCY)

    @property
    def stat_requests(self) -> int:
        """GET_FILE_INFO requests sent so far."""
        return self._stats.requests

    async def survey(self, assets: list[LibraryAsset]) -> LibraryFiles:
        """Reconcile every folder the assets name, then group their files."""
        found = LibraryFiles()
        cpl_stems: dict[str, set[str]] = {}
        for asset in assets:
            if asset.in_cpl_assets and asset.folder and asset.filename:
                cpl_stems.setdefault(asset.folder, set()).add(stem_of(asset.filename))
        edited = [asset for asset in assets if asset.has_adjustments and asset.render_folder()]
        render_folders = sorted({folder for asset in edited if (folder := asset.render_folder())})

        async def one(folder: str, wanted: set[str] | None) -> None:
            async with self._limit:
                await self._reconcile(folder, wanted, found)

        await asyncio.gather(
            *(one(folder, stems) for folder, stems in sorted(cpl_stems.items())),
            *(one(folder, None) for folder in render_folders),
        )
        self._group(assets, found)
        return found

    async def _reconcile(self, folder: str, stems: set[str] | None, found: LibraryFiles) -> None:
        """Bring the manifest of one library folder up to date; ``stems`` None = a render
        folder (only ``FullSizeRender.*`` counts)."""
        now = self._clock()
        known = self._store.present_files(self._udid, folder)
        try:
            listed = await self._files.list_folder(folder)
        except FileNotOnPhoneError:
            if known:  # offloaded to iCloud, or the edit was reverted: gone from the phone
                self._store.mark_folder_absent(self._udid, folder, now)
            return
        except PhoneReadError as error:
            found.rejected.append(RejectedItem(folder, "unlistable_folder", str(error)))
            found.unlistable.append(folder)
            return
        found.listing_requests += 1
        names = checked_names(folder, listed, found.rejected)
        if stems is None:
            names = [name for name in names if _is_render(name)]
        else:
            names = _wanted_in_cpl_folder(names, stems)
        listed_names = set(names)
        gone = [name for name in known if name not in listed_names]
        if gone:
            self._store.mark_absent(self._udid, folder, gone, now)
        to_stat = [
            name
            for name in names
            if name not in known or known[name].status not in SETTLED_STATUSES
        ]
        observed, rejected = await self._stats.stat_folder(folder, to_stat)
        found.rejected.extend(rejected)
        if observed:
            self._store.observe_files(
                self._udid,
                folder,
                [
                    (item.name, item.size, item.birth_time_ns, item.modified_time_ns)
                    for item in observed
                ],
                now,
            )
        self._store.touch_present(self._udid, folder, now)
        refreshed = self._store.present_files(self._udid, folder) if observed or gone else known
        for entry in refreshed.values():
            found.present[entry.phone_path] = entry

    def _group(self, assets: list[LibraryAsset], found: LibraryFiles) -> None:
        """One group per asset with files: its originals, its edits, and (for a DCIM original
        with an edit) the DCIM original itself, which decides the folder and the suffix."""
        dcim_cache: dict[str, dict[str, ManifestEntry]] = {}
        by_folder: dict[str, list[ManifestEntry]] = {}
        for entry in found.present.values():
            by_folder.setdefault(entry.folder, []).append(entry)
        for asset in sorted(assets, key=lambda item: item.uuid):
            if asset.folder is None or asset.filename is None:
                continue
            stem = stem_of(asset.filename)
            originals = (
                [entry for entry in by_folder.get(asset.folder, []) if stem_of(entry.name) == stem]
                if asset.in_cpl_assets
                else []
            )
            render_folder = asset.render_folder() if asset.has_adjustments else None
            renders = list(by_folder.get(render_folder, [])) if render_folder else []
            if not asset.in_cpl_assets and renders:
                folder_entries = dcim_cache.setdefault(
                    asset.folder, self._store.present_files(self._udid, asset.folder)
                )
                dcim = folder_entries.get(asset.filename)
                if dcim is not None:
                    originals.append(dcim)
                    found.companions[dcim.phone_path] = dcim
            if originals or renders:
                self._add_group(asset, originals, renders, found)

    @staticmethod
    def _add_group(
        asset: LibraryAsset,
        originals: list[ManifestEntry],
        renders: list[ManifestEntry],
        found: LibraryFiles,
    ) -> None:
        assert asset.filename is not None
        names = found.hints.names
        base_name = asset.filename
        if asset.in_cpl_assets:
            for entry in originals:
                names[entry.phone_path] = archive_name(asset.original_filename, entry.name)
            base_name = archive_name(asset.original_filename, asset.filename)
        for entry in renders:
            names[entry.phone_path] = edit_name(base_name, entry.name)
        members = sorted(originals + renders, key=lambda entry: entry.phone_path)
        primary = next(
            (entry for entry in originals if entry.name == asset.filename),
            originals[0] if originals else renders[0],
        )
        date = library_capture_date(asset)
        if date is not None:
            found.hints.dates[primary.phone_path] = date
        group = MediaGroup(
            key=stem_of(base_name),
            members=tuple(phone_file(entry) for entry in members),
            primary=phone_file(primary),
        )
        found.groups.append((group, members))


def groups_to_copy(
    groups: list[tuple[MediaGroup, list[ManifestEntry]]], to_copy: list[ManifestEntry]
) -> list[PlannedGroup]:
    """The groups that have something to copy, with those members (the rest stays settled)."""
    wanted = {entry.phone_path for entry in to_copy}
    planned: list[PlannedGroup] = []
    for group, members in groups:
        copying = [entry for entry in members if entry.phone_path in wanted]
        if copying:
            planned.append((group, copying))
    return planned
