"""The folder-summary half of :class:`tests.fakes.FakeStore`: the ``FolderSummaryStore`` port
in memory (``store/phone_folders.py`` is the real one; tests/contract/ holds them together).

A mixin: it reads the fake manifest's rows through ``_files`` and ``_present``, which
:class:`~tests.fakes.FakeStore` provides, and keeps the summaries, each row's last check
(``checked_at``) and each phone's last full check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from rollkeeper.store.phone_folders import CheckedFile, FolderSummary
from rollkeeper.store.records import ARCHIVED, EXCLUDED, ManifestEntry, utc_now_text


class FakeFolderSummaries:
    """Folder summaries, the rotating check's order and full checks, in memory."""

    _files: list[ManifestEntry]

    def __init__(self) -> None:
        self._summaries: dict[tuple[str, str], FolderSummary] = {}
        #: When each row was last stat'ed (``checked_at``).
        self._checked: dict[int, str] = {}
        self._full_checks: dict[str, str] = {}

    def _present(self, udid: str, folder: str) -> list[ManifestEntry]:
        return [e for e in self._files if e.udid == udid and e.folder == folder and e.present]

    def folder_summaries(self, udid: str) -> dict[str, FolderSummary]:
        return {
            folder: replace(
                summary,
                has_unarchived=any(e.status != ARCHIVED for e in self._present(udid, folder)),
            )
            for (owner, folder), summary in self._summaries.items()
            if owner == udid
        }

    def record_folder_summaries(
        self, udid: str, summaries: Iterable[FolderSummary], now: datetime | None = None
    ) -> None:
        for summary in summaries:
            self._summaries[(udid, summary.folder)] = summary

    def touch_folders(self, udid: str, folders: list[str], now: datetime | None = None) -> None:
        return None  # the fake keeps no last-seen stamps

    def forget_folders(self, udid: str, folders: list[str]) -> None:
        for folder in folders:
            self._summaries.pop((udid, folder), None)

    def least_recently_checked(self, udid: str, limit: int) -> list[CheckedFile]:
        settled = [
            e
            for e in self._files
            if e.udid == udid
            and e.present
            and e.status in (ARCHIVED, EXCLUDED)
            and e.folder.startswith("/DCIM/")
        ]
        settled.sort(key=lambda e: (self._checked.get(e.id, ""), e.id))
        return [
            CheckedFile(e.id, e.folder, e.name, e.size, e.birth_time_ns) for e in settled[:limit]
        ]

    def mark_checked(self, file_ids: list[int], now: datetime | None = None) -> None:
        for file_id in file_ids:
            self._checked[file_id] = utc_now_text(now)

    def full_check_at(self, udid: str) -> str | None:
        return self._full_checks.get(udid)

    def record_full_check(self, udid: str, now: datetime | None = None) -> None:
        self._full_checks[udid] = utc_now_text(now)
