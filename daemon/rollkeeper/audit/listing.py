"""Every file of a phone's media folders, listed and stat'ed afresh (no shortcut from earlier
scans).

This re-does the phone side of the backup's scanner (:mod:`rollkeeper.device.scan`): the
same name and stat checks, without recording anything. It is one function on purpose, so that
it can be swapped for the scanner's own phone-side listing once that exists as a public
function that writes nothing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rollkeeper.audit.classify import PhoneEntry

if TYPE_CHECKING:
    from rollkeeper.ports import PhoneFiles

#: The phone's media folder (the root of AFC is the phone's media partition).
MEDIA_ROOT = "/DCIM"
#: Stats in flight at once: AFC matches replies by packet number, so many can be outstanding.
STAT_CONCURRENCY = 64
#: Folders listed at once.
LISTING_CONCURRENCY = 8


async def list_media_afresh(files: PhoneFiles) -> list[PhoneEntry]:
    """Every file of the media folders, stat'ed; unsafe names and odd stats as rejections."""
    from rollkeeper.device.phone_files import FileNotOnPhoneError, PhoneReadError
    from rollkeeper.device.scan import check_stat, printable_raw_name
    from rollkeeper.domain.names import NameRejected, check_phone_name

    def checked(folder: str, raw: bytes, text: str | None) -> tuple[str | None, PhoneEntry | None]:
        if text is None:
            return None, PhoneEntry(folder, printable_raw_name(raw), rejection="name_not_utf8")
        try:
            return check_phone_name(text), None
        except NameRejected as rejection:
            return None, PhoneEntry(
                folder, printable_raw_name(raw), rejection=rejection.reason, detail=str(rejection)
            )

    try:
        top = await files.list_folder(MEDIA_ROOT)
    except FileNotOnPhoneError:
        return []
    entries: list[PhoneEntry] = []
    folders: list[str] = []
    for listed in top:
        name, rejected = checked(MEDIA_ROOT, listed.raw, listed.text)
        if rejected is not None:
            entries.append(rejected)
        elif name is not None:
            folders.append(f"{MEDIA_ROOT}/{name}")

    listing_limit = asyncio.Semaphore(LISTING_CONCURRENCY)
    stat_limit = asyncio.Semaphore(STAT_CONCURRENCY)

    async def stat_one(folder: str, name: str) -> PhoneEntry | None:
        async with stat_limit:
            try:
                raw = await files.stat(f"{folder}/{name}")
            except FileNotOnPhoneError:
                return None  # deleted on the phone while we looked
            except PhoneReadError as error:
                return PhoneEntry(folder, name, rejection="stat_failed", detail=str(error))
        outcome = check_stat(name, raw)
        if outcome.rejection:
            return PhoneEntry(folder, name, rejection=outcome.rejection, detail=outcome.detail)
        return PhoneEntry(folder, name, outcome.size, outcome.birth_time_ns)

    async def audit_folder(folder: str) -> list[PhoneEntry]:
        async with listing_limit:
            try:
                listing = await files.list_folder(folder)
            except FileNotOnPhoneError:
                return []
            except PhoneReadError as error:
                return [
                    PhoneEntry(
                        MEDIA_ROOT,
                        folder.rsplit("/", 1)[-1],
                        rejection="unlistable_folder",
                        detail=str(error),
                    )
                ]
        found: list[PhoneEntry] = []
        names: list[str] = []
        for listed in listing:
            name, rejected = checked(folder, listed.raw, listed.text)
            if rejected is not None:
                found.append(rejected)
            elif name is not None:
                names.append(name)
        stats = await asyncio.gather(*(stat_one(folder, name) for name in sorted(names)))
        found.extend(entry for entry in stats if entry is not None)
        return found

    for folder_entries in await asyncio.gather(*(audit_folder(f) for f in sorted(folders))):
        entries.extend(folder_entries)
    return entries
