"""The ``[schedule]`` and ``[filters]`` sections: when backups and checks run, and what they take.

The scrub's crontab line is checked by the same parser the scheduler uses, so the check and
the schedule agree on day numbers; ``since`` takes a TOML date or a ``YYYY-MM-DD`` string.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from rollkeeper.config.field_types import (
    Section,
    StrictFlag,
    StrictNumber,
    StrictText,
    StrictWhole,
)


def _validate_cron(value: str) -> str:
    # The same parser as the scheduler, so the check and the schedule agree on day numbers
    # (crontab's Sunday = 0; APScheduler's own from_crontab counts Monday as 0).
    from rollkeeper.archive.crontab import crontab_trigger

    try:
        crontab_trigger(value, timezone="UTC")
    except ValueError as error:
        detail = str(error).removeprefix(f"{value!r}: ")
        raise ValueError(
            f"{value!r} is not a crontab line"
            f" (minute hour day-of-month month day-of-week): {detail}"
        ) from None
    return value


def _parse_since(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        raise ValueError("must be a date such as 2024-01-31, not a date and time")
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f'{value!r} is not a date; write it as YYYY-MM-DD (or "" for no limit)'
            ) from None
    raise ValueError(f'must be a date such as 2024-01-31 or "", not {type(value).__name__}')


class ScheduleSettings(Section):
    section_help = "When backups, retries and archive checks run."

    debounce_seconds: StrictNumber = Field(
        default=2.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Wait this long after a phone appears before starting (tapping Trust unplugs and "
            "re-plugs the phone in software)."
        ),
    )
    retry_initial_seconds: StrictNumber = Field(
        default=5.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "First wait before retrying a failed or interrupted backup while the phone stays "
            "connected (locked, Trust not yet tapped, connection dropped). The wait grows "
            "with each failure, up to retry_max_seconds."
        ),
    )
    retry_max_seconds: StrictNumber = Field(
        default=300.0,
        gt=0,
        allow_inf_nan=False,
        description="The longest wait between retries (at least retry_initial_seconds).",
    )
    archive_recheck_seconds: StrictNumber = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "While the archive is unavailable (its disk not mounted) and a phone waits: how "
            "often to look again. On Linux a mount is noticed at once without this; the timer "
            "is the fallback (macOS, or a folder that comes back without a mount)."
        ),
    )
    scrub_cron: Annotated[StrictText, AfterValidator(_validate_cron)] = Field(
        default="0 4 * * sun",
        description=(
            "When to re-read archived files and check their hashes (a crontab line: minute "
            "hour day-of-month month day-of-week, in local time)."
        ),
    )
    scrub_bytes_per_run: StrictWhole = Field(
        default=20_000_000_000,
        gt=0,
        description="At most this many bytes are re-read per scrub run.",
    )
    scrub_rotation_weeks: StrictWhole = Field(
        default=8,
        gt=0,
        description="Every archived file is re-verified at least this often, in weeks.",
    )
    stale_after_days: StrictNumber = Field(
        default=7.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Warn (status, notification, on_stale hook) when a known phone has had no "
            "successful backup for this many days."
        ),
    )

    full_check_days: StrictNumber = Field(
        default=7.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Stat every file on the phone at a backup when the last such check is older than "
            "this many days (a re-plug otherwise stats each changed folder and a rotating "
            "slice of the rest, so a file replaced in place is found within 50 backups or "
            "this many days, whichever comes first)."
        ),
    )
    attached_rescan_hours: StrictNumber = Field(
        default=6.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Back up a phone that stays connected again every this many hours (photos can "
            "arrive while it charges: iCloud downloads, AirDrop)."
        ),
    )

    @field_validator("retry_max_seconds")
    @classmethod
    def _not_below_initial(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("retry_initial_seconds")
        if isinstance(initial, float) and value < initial:
            raise ValueError(f"must be at least retry_initial_seconds ({initial:g}), got {value:g}")
        return value


class FilterSettings(Section):
    section_help = "Which files to back up. Files left out are listed, never deleted."

    media_kinds: tuple[Literal["photo", "video", "sidecar"], ...] = Field(
        default=("photo", "video", "sidecar"),
        min_length=1,
        description=(
            'Kinds of files to copy: "photo", "video", "sidecar" (.AAE edit recipes, kept '
            "next to their photo)."
        ),
    )
    since: Annotated[datetime.date | None, BeforeValidator(_parse_since)] = Field(
        default=None,
        description=(
            "Only files captured on or after this date (YYYY-MM-DD, a TOML date or a string); "
            '"" for no limit.'
        ),
    )
    screenshots: StrictFlag = Field(
        default=True,
        description="Back up screenshots too.",
    )
    include_devices: tuple[StrictText, ...] = Field(
        default=(),
        description=(
            "Only back up these phones (UDIDs or phone names as shown by `rollkeeper "
            "devices`); empty means every phone."
        ),
    )
    exclude_devices: tuple[StrictText, ...] = Field(
        default=(),
        description="Never back up these phones (UDIDs or names); wins over include_devices.",
    )
