"""The rules of "safe to free on the phone" (rollkeeper.domain.freeable), without I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from rollkeeper.domain.freeable import (
    FAVOURITE,
    NOT_ARCHIVED,
    NOT_IN_ARCHIVE,
    NOT_VERIFIED,
    TOO_NEW,
    VERIFY_FAILED,
    PhoneFileFacts,
    freeable_assets,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ROTATION = timedelta(weeks=8)
OLD = NOW - timedelta(days=400)


def safe(name: str, **changes: object) -> PhoneFileFacts:
    """A file that is safe to free unless ``changes`` say otherwise."""
    facts = PhoneFileFacts(
        udid="U",
        folder="/DCIM/100APPLE",
        name=name,
        size=1_000,
        taken_at=OLD,
        archived=True,
        archive_path=f"2024/{name}",
        verified_at=NOW - timedelta(days=3),
        whole_in_archive=True,
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


def report(*files: PhoneFileFacts, favourites_known: bool = False):  # type: ignore[no-untyped-def]
    return freeable_assets(
        files,
        now=NOW,
        older_than=timedelta(days=90),
        rotation=ROTATION,
        favourites_known=favourites_known,
    )


def test_an_asset_is_listed_whole_or_not_at_all() -> None:
    """A Live Photo whose video is not archived keeps its photo on the phone too; a complete
    pair is one asset with both files and their summed size."""
    held = report(safe("IMG_0001.HEIC"), safe("IMG_0001.MOV", archived=False, archive_path=None))
    assert held.assets == () and held.held_back == {NOT_ARCHIVED: 1}
    listed = report(safe("IMG_0001.HEIC"), safe("IMG_0001.MOV", size=3_000))
    (asset,) = listed.assets
    assert [item.name for item in asset.files] == ["IMG_0001.HEIC", "IMG_0001.MOV"]
    assert asset.size == 4_000 and listed.total_bytes == 4_000 and listed.file_count == 2


def test_verification_must_fall_within_the_scrub_rotation() -> None:
    """Verified just inside the rotation: listed; just outside, or never: held back."""
    inside = safe("IMG_1.HEIC", verified_at=NOW - ROTATION + timedelta(minutes=1))
    outside = safe("IMG_2.HEIC", verified_at=NOW - ROTATION - timedelta(minutes=1))
    never = safe("IMG_3.HEIC", verified_at=None)
    result = report(inside, outside, never)
    assert [asset.key for asset in result.assets] == ["IMG_1"]
    assert result.held_back == {NOT_VERIFIED: 2}


def test_a_failed_check_holds_back_until_a_later_match() -> None:
    """A failed re-hash after the last match holds the file back; a match after the failure
    (the file was repaired) frees it again."""
    failed = safe("IMG_1.HEIC", verify_failed_at=NOW - timedelta(days=1))
    repaired = safe(
        "IMG_2.HEIC",
        verify_failed_at=NOW - timedelta(days=5),
        verified_at=NOW - timedelta(days=1),
    )
    result = report(failed, repaired)
    assert [asset.key for asset in result.assets] == ["IMG_2"]
    assert result.held_back == {VERIFY_FAILED: 1}


def test_new_missing_and_favourite_files_stay() -> None:
    """Taken after the cut-off, missing or changed in the archive now, or a favourite: held
    back, each counted once by its most serious reason."""
    result = report(
        safe("IMG_1.HEIC", taken_at=NOW - timedelta(days=89)),
        safe("IMG_2.HEIC", whole_in_archive=False),
        safe("IMG_3.HEIC", favourite=True),
        safe("IMG_4.HEIC", whole_in_archive=False, taken_at=NOW),
        favourites_known=True,
    )
    assert result.assets == ()
    assert result.held_back == {TOO_NEW: 1, NOT_IN_ARCHIVE: 2, FAVOURITE: 1}


def test_assets_come_oldest_first_with_their_span() -> None:
    """Assets are listed oldest first and the span runs from the first to the last."""
    newer = safe("IMG_2.HEIC", taken_at=OLD + timedelta(days=30))
    older = safe("IMG_1.HEIC", taken_at=OLD)
    result = report(newer, older)
    assert [asset.key for asset in result.assets] == ["IMG_1", "IMG_2"]
    assert result.span == (OLD, OLD + timedelta(days=30))
    assert report().span is None
