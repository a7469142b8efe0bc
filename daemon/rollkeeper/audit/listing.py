"""Every file of a phone's media folders, listed and stat'ed afresh (no shortcut from earlier
scans), as the audit's entries.

The phone side is the backup's own scanner (:func:`rollkeeper.device.scan.survey_media_files`):
the same name and stat checks, and it records nothing. This module only turns its survey into
:class:`~rollkeeper.audit.classify.PhoneEntry` items, the files and the refusals alike, so that
a refused name or a folder that could not be listed (``unlistable_folder``, also a folder that
vanished between the listing of ``/DCIM`` and its own) is reported, never skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollkeeper.audit.classify import PhoneEntry
from rollkeeper.device.scan import survey_media_files

if TYPE_CHECKING:
    from rollkeeper.device.scan import PhoneSurvey
    from rollkeeper.ports import PhoneFiles


def entries_of_survey(survey: PhoneSurvey) -> list[PhoneEntry]:
    """The audit's entries of one survey: each refusal and each file, ordered by folder, then
    name (so ``/DCIM``'s own refusals, unlistable folders among them, come first)."""
    entries = [
        PhoneEntry(observed.folder, observed.name, observed.size, observed.birth_time_ns)
        for observed in survey.files
    ]
    for item in survey.rejected:
        # The split is lossless (``folder + "/" + name`` is the path again), whatever the name.
        folder, _, name = item.phone_path.rpartition("/")
        entries.append(PhoneEntry(folder, name, rejection=item.reason, detail=item.detail))
    entries.sort(key=lambda entry: (entry.folder, entry.name))
    return entries


async def list_media_afresh(files: PhoneFiles) -> list[PhoneEntry]:
    """Every file of the media folders, stat'ed; unsafe names and odd stats as rejections."""
    return entries_of_survey(await survey_media_files(files))
