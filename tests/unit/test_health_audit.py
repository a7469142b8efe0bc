"""The pure classification behind `rollkeeper audit` (no phone, no database)."""

from __future__ import annotations

import io

from rollkeeper.audit.classify import ArchiveCheck, PhoneAudit, PhoneEntry, classify
from rollkeeper.audit.text import render_text
from rollkeeper.store import ManifestEntry

FOLDER = "/DCIM/100APPLE"


def _known(name: str, status: str, reason: str = "", size: int = 10) -> ManifestEntry:
    return ManifestEntry(
        id=1,
        udid="U1",
        folder=FOLDER,
        name=name,
        size=size,
        birth_time_ns=5,
        modified_time_ns=5,
        status=status,
        present=True,
        archive_path=f"2025/{name}" if status == "archived" else None,
        content_hash="h" if status == "archived" else None,
        failure_reason=reason,
    )


def _manifest(*entries: ManifestEntry) -> dict[tuple[str, str, int, int], ManifestEntry]:
    return {(e.folder, e.name, e.size, e.birth_time_ns): e for e in entries}


def _entry(name: str, size: int = 10) -> PhoneEntry:
    return PhoneEntry(FOLDER, name, size, 5)


def test_archived_only_with_the_same_identity_and_the_file_in_place() -> None:
    """A phone file counts as archived only with the same identity in the manifest and its archive
    file in place; a missing file is archive_damaged and another size is a new file, pending."""
    manifest = _manifest(_known("IMG_0001.HEIC", "archived"))
    fine = classify(_entry("IMG_0001.HEIC"), manifest, None, ArchiveCheck(""))
    assert (fine.file_class, fine.archive_path) == ("archived", "2025/IMG_0001.HEIC")
    damaged = classify(
        _entry("IMG_0001.HEIC"), manifest, None, ArchiveCheck("archive_file_missing")
    )
    assert (damaged.file_class, damaged.reason) == ("archive_damaged", "archive_file_missing")
    # Same name, other size: a different photo (IMG_9999 rolled over), not backed up yet.
    other = classify(_entry("IMG_0001.HEIC", size=11), manifest, None, None)
    assert (other.file_class, other.reason) == ("pending", "new_since_last_backup")


def test_pending_failed_excluded_and_rejected() -> None:
    """Pending and failed files keep their manifest reason, the current filter decides exclusion
    except for files already archived, and a name refused by the scan is failed with its reason."""
    manifest = _manifest(
        _known("IMG_0002.HEIC", "pending"),
        _known("IMG_0003.HEIC", "failed", "read_error"),
        _known("IMG_0004.PNG", "excluded", "screenshot"),
    )
    assert classify(_entry("IMG_0002.HEIC"), manifest, None, None).reason == "not_copied_yet"
    failed = classify(_entry("IMG_0003.HEIC"), manifest, None, None)
    assert (failed.file_class, failed.reason) == ("failed", "read_error")
    # The current filter decides: excluded now, whatever an earlier run recorded.
    excluded = classify(_entry("IMG_0003.HEIC"), manifest, "before_since_date", None)
    assert (excluded.file_class, excluded.reason) == ("excluded", "before_since_date")
    no_longer = classify(_entry("IMG_0004.PNG"), manifest, None, None)
    assert no_longer.file_class == "pending"
    # An archived file stays archived even if a filter would leave it out now.
    archived = _manifest(_known("IMG_0005.PNG", "archived"))
    kept = classify(_entry("IMG_0005.PNG"), archived, "screenshot", ArchiveCheck(""))
    assert kept.file_class == "archived"
    rejected = PhoneEntry(FOLDER, "..\\x1b", rejection="name_traversal", detail="'..'")
    refused = classify(rejected, manifest, None, None)
    assert (refused.file_class, refused.reason) == ("failed", "name_traversal: '..'")


def test_the_text_shows_phone_paths_exactly_and_names_in_words() -> None:
    """The audit's text keeps a phone path as it is (two blanks stay two, a control character
    is escaped) so the user can find the file, while the phone's name is folded into words."""
    audit = PhoneAudit(udid="U1", name="Ana's\n\niPhone")
    audit.files = [
        classify(PhoneEntry(FOLDER, "IMG  0001.JPG", 10, 1), {}, None, None),
        classify(PhoneEntry(FOLDER, "IMG_\x1b.JPG", rejection="control_character"), {}, None, None),
    ]
    out = io.StringIO()
    render_text([audit], out)
    text = out.getvalue()
    assert text.startswith("Ana's iPhone (U1)\n")
    assert f"PENDING         {FOLDER}/IMG  0001.JPG: new_since_last_backup\n" in text
    assert f"FAILED          {FOLDER}/IMG_\\x1b.JPG: control_character\n" in text
