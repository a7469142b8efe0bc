"""The audit's fresh listing of a phone is the scanner's survey: nothing the phone listed is
silently skipped, a folder that vanishes between listings included.

Real pymobiledevice3 over usbmuxd and lockdown to the simulator, serving real files; the only
addition is a wrapper that deletes one folder on the phone's disk right after ``/DCIM`` was
listed, as a user deleting an album in that instant would.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from pathlib import Path

from rollkeeper.audit.classify import FAILED, PENDING, PhoneAudit, PhoneEntry, classify
from rollkeeper.audit.listing import entries_of_survey, list_media_afresh
from rollkeeper.audit.text import render_text
from rollkeeper.device.scan import PhoneSurvey, RejectedItem
from rollkeeper.device.session import SessionSettings, open_session
from rollkeeper.ports import FileNotOnPhoneError, ListedName, PhoneFiles, PhoneReadError, RawStat
from rollkeeper.simulator import SimulatorThread
from tests import media

UDID = "00008110-00AA00000000A0D1"


class FolderVanishesAfterTopListing:
    """The phone's files, except that ``vanishing`` is deleted on the phone's disk as soon as
    ``/DCIM`` has been listed (so it is listed there, and gone when it is listed itself)."""

    def __init__(self, files: PhoneFiles, vanishing: Path) -> None:
        self._files = files
        self._vanishing = vanishing

    async def list_folder(self, path: str) -> Sequence[ListedName]:
        """The real listing; after that of ``/DCIM``, the folder is deleted."""
        listed = await self._files.list_folder(path)
        if path == "/DCIM":
            shutil.rmtree(self._vanishing)
        return listed

    async def stat(self, path: str) -> RawStat:
        """The real stat."""
        return await self._files.stat(path)

    async def stat_many(
        self, paths: Sequence[str]
    ) -> list[RawStat | FileNotOnPhoneError | PhoneReadError]:
        """The real stats."""
        return await self._files.stat_many(paths)

    async def open(self, path: str) -> int:
        """The real open."""
        return await self._files.open(path)

    async def seek(self, handle: int, offset: int) -> None:
        """The real seek."""
        await self._files.seek(handle, offset)

    async def read(self, handle: int, size: int) -> bytes | bytearray:
        """The real read."""
        return await self._files.read(handle, size)

    async def close(self, handle: int) -> None:
        """The real close."""
        await self._files.close(handle)


async def test_a_folder_that_vanishes_between_listings_is_a_failed_item_of_the_audit(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A folder listed in /DCIM but gone when listed itself is an ``unlistable_folder`` entry,
    classed failed, printed in the text and making the audit incomplete; the other folder's
    files are all there."""
    phone = tmp_path / "phone"
    media.make_blob(phone / "DCIM" / "100APPLE" / "IMG_0001.JPG", 1_000, seed="one")
    media.make_blob(phone / "DCIM" / "100APPLE" / "IMG_0002.JPG", 2_000, seed="two")
    media.make_blob(phone / "DCIM" / "101APPLE" / "IMG_0101.JPG", 3_000, seed="gone")
    simulator.add_phone(UDID, phone)
    settings = SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pairing")
    async with open_session(UDID, settings) as session:
        files = FolderVanishesAfterTopListing(session.files, phone / "DCIM" / "101APPLE")
        entries = await list_media_afresh(files)

    assert [(entry.phone_path, entry.size, entry.rejection) for entry in entries] == [
        ("/DCIM/101APPLE", 0, "unlistable_folder"),
        ("/DCIM/100APPLE/IMG_0001.JPG", 1_000, ""),
        ("/DCIM/100APPLE/IMG_0002.JPG", 2_000, ""),
    ]
    [vanished] = [entry for entry in entries if entry.rejection]
    assert vanished.detail  # the phone's answer, for the user

    audit = PhoneAudit(udid=UDID, name="Ana's iPhone")
    audit.files = [classify(entry, {}, None, None) for entry in entries]
    assert [(item.phone_path, item.file_class) for item in audit.files] == [
        ("/DCIM/101APPLE", FAILED),
        ("/DCIM/100APPLE/IMG_0001.JPG", PENDING),
        ("/DCIM/100APPLE/IMG_0002.JPG", PENDING),
    ]
    assert not audit.complete
    text = io.StringIO()
    render_text([audit], text)
    expected_line = f"FAILED          /DCIM/101APPLE: unlistable_folder: {vanished.detail}"
    assert expected_line in text.getvalue()


def test_a_rejected_name_keeps_its_exact_path_whatever_it_holds() -> None:
    """A refusal's path splits into folder and name losslessly, a slash in the name included,
    so the audit prints the path the scanner refused."""
    odd = "/DCIM/100APPLE/a/../b"
    survey = PhoneSurvey(rejected=[RejectedItem(odd, "separator", "has /")])
    assert entries_of_survey(survey) == [
        PhoneEntry("/DCIM/100APPLE/a/..", "b", rejection="separator", detail="has /")
    ]
    assert entries_of_survey(survey)[0].phone_path == odd
