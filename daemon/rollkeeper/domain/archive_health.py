"""What ``status`` says of the archive itself: the scrub's findings and the archive's truth.

Pure: the counts come from the scrub's report and the state's findings, the words go to
``status``, ``status --check`` and the status page. The phones' own rules are in
:mod:`rollkeeper.domain.health`.
"""

from __future__ import annotations

from datetime import datetime

from rollkeeper.domain.health import format_day


def archive_check_findings(
    *,
    unresolved_damaged: int,
    archive_unreachable: bool,
    checked_at: datetime,
    latest_complete_at: datetime | None,
) -> tuple[list[str], list[str]]:
    """(critical, warnings) from the last archive check (scrub) that found something.

    Damaged or missing files that nothing has verified since are critical: the archive is the
    backup. An archive that was unreachable at the check is a warning, settled by any complete
    backup after it (which wrote to the archive, so it was back).
    """
    day = format_day(checked_at)
    critical: list[str] = []
    warnings: list[str] = []
    if unresolved_damaged:
        noun = "file" if unresolved_damaged == 1 else "files"
        critical.append(
            f"archive check on {day} found {unresolved_damaged} damaged or missing {noun}; "
            "run `rollkeeper verify`"
        )
    if archive_unreachable and (latest_complete_at is None or latest_complete_at <= checked_at):
        warnings.append(f"the archive folder was unreachable at the archive check on {day}")
    return critical, warnings


def archive_truth_findings(
    *, unavailable_reason: str, open_findings: int, lost: int
) -> tuple[list[str], list[str]]:
    """(critical, warnings) about the archive itself: not available (critical, in the check's
    own words), files lost from it (critical), files missing or damaged that the next
    plug-in of their phone restores (warning)."""
    critical: list[str] = []
    warnings: list[str] = []
    if unavailable_reason:
        critical.append(unavailable_reason)
    if lost:
        noun = "file" if lost == 1 else "files"
        critical.append(
            f"{lost} archived {noun} lost: missing from the archive and no longer on the phone"
            " (rollkeeper forget PATH if removed on purpose)"
        )
    if open_findings:
        noun = "file" if open_findings == 1 else "files"
        warnings.append(
            f"{open_findings} archived {noun} missing or damaged, restored at the next plug-in"
        )
    return critical, warnings
