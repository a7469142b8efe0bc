"""The audit for people: counts, then every file that is not archived (untrusted names made
printable)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rollkeeper.audit.classify import (
    ARCHIVE_DAMAGED,
    ARCHIVED,
    EXCLUDED,
    FAILED,
    NOT_ON_PHONE,
    PENDING,
    PhoneAudit,
)
from rollkeeper.domain.display import printable

#: Lines per class in the text report before "... and N more".
TEXT_LIMIT = 50


def render_text(audits: Sequence[PhoneAudit], out: TextIO) -> None:
    """The audit for people: counts, then every file that is not archived."""
    for audit in audits:
        label = printable(audit.name, 80) or audit.udid
        out.write(f"{label} ({audit.udid})\n")
        on_phone = [item for item in audit.files if item.file_class != NOT_ON_PHONE]
        out.write(
            f"  {len(on_phone):,} files on the phone: {audit.count(ARCHIVED):,} archived, "
            f"{audit.count(PENDING):,} pending, {audit.count(FAILED):,} failed, "
            f"{audit.count(EXCLUDED):,} excluded"
        )
        if audit.count(ARCHIVE_DAMAGED):
            out.write(f", {audit.count(ARCHIVE_DAMAGED):,} DAMAGED in the archive")
        out.write("\n")
        if audit.photos_library == "read":
            out.write(
                f"  {audit.count(NOT_ON_PHONE):,} originals not on the phone (in iCloud only)\n"
            )
        else:
            out.write(f"  originals not on the phone: unknown ({audit.photos_library_detail})\n")
        for file_class in (ARCHIVE_DAMAGED, FAILED, PENDING, EXCLUDED, NOT_ON_PHONE):
            items = [item for item in audit.files if item.file_class == file_class]
            for item in items[:TEXT_LIMIT]:
                reason = f": {printable(item.reason, 300)}" if item.reason else ""
                path = printable(item.phone_path, 300, escape=True)
                out.write(f"  {file_class.upper():<16}{path}{reason}\n")
            if len(items) > TEXT_LIMIT:
                out.write(f"  ... and {len(items) - TEXT_LIMIT:,} more {file_class} (--json)\n")
        if audit.complete:
            out.write("  Everything on the phone is backed up (or excluded by a filter).\n")
        else:
            out.write("  NOT everything on the phone is backed up.\n")
