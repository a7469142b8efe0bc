"""The ``[notifications]`` and ``[logging]`` sections: what you are told, and what is logged.

Hook commands are plain text here (they are run with ``sh -c`` by :mod:`rollkeeper.notify`);
the health-check URL must be http or https.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from rollkeeper.config.field_types import Section, StrictFlag, StrictNumber, StrictText


def _validate_url(value: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


class NotificationSettings(Section):
    section_help = "Telling you what happened, without spamming."

    desktop: StrictFlag = Field(
        default=True,
        description="Show desktop notifications (backup done, failed, overdue).",
    )
    on_success: StrictText = Field(
        default="",
        description=('A command run with sh -c after a successful backup ("" = none).'),
    )
    on_failure: StrictText = Field(
        default="",
        description='A command run with sh -c after a failed backup ("" = none).',
    )
    on_stale: StrictText = Field(
        default="",
        description=(
            'A command run with sh -c when a phone is overdue (see stale_after_days; "" = none).'
        ),
    )
    hook_timeout_seconds: StrictNumber = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description="A hook command still running after this long is stopped.",
    )
    healthcheck_url: Annotated[StrictText, AfterValidator(_validate_url)] = Field(
        default="",
        description=(
            "A healthchecks.io-style URL: pinged after each successful backup, URL/fail after "
            'a failure, so silence is noticed elsewhere too ("" = none).'
        ),
    )
    min_interval_minutes: StrictNumber = Field(
        default=60.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Repeated notifications of the same kind are sent at most this often (0 = always)."
        ),
    )


class LoggingSettings(Section):
    section_help = "The service's log (journalctl --user -u rollkeeper, or the launchd log file)."

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info",
        description='The least important events logged: "debug", "info", "warning", "error".',
    )
    format: Literal["auto", "console", "json"] = Field(
        default="auto",
        description=(
            '"console" (readable), "json" (one object per line), or "auto": console on a '
            "terminal, JSON otherwise."
        ),
    )
