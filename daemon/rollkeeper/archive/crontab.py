"""Crontab strings with crontab's meaning, for APScheduler 3.x.

APScheduler 3's ``CronTrigger.from_crontab`` passes the day-of-week field through unchanged,
but APScheduler numbers days from Monday = 0 while crontab numbers them from Sunday = 0 (and
also accepts 7 for Sunday). ``"0 3 * * 0"`` would run on Mondays. This module rewrites the
day-of-week field into day names, which both agree on, before handing it over.
"""

from __future__ import annotations

from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

#: Crontab day numbers (Sunday = 0) to the names APScheduler understands.
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class CrontabError(ValueError):
    """A crontab string that is not five fields of valid crontab syntax."""


def _day_number(token: str) -> int:
    lowered = token.lower()
    if lowered in _DAY_NAMES:
        return _DAY_NAMES.index(lowered)
    if not lowered.isdigit() or not 0 <= int(lowered) <= 7:
        raise CrontabError(f"day of week {token!r} is not 0-7 or sun-sat")
    return int(lowered) % 7


def crontab_days(field: str) -> list[int]:
    """The crontab day numbers (Sunday = 0) a day-of-week field selects, sorted."""
    days: set[int] = set()
    for item in field.split(","):
        if not item:
            raise CrontabError(f"empty item in day of week {field!r}")
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CrontabError(f"step {step_text!r} in day of week {field!r}")
            step = int(step_text)
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            start_text, end_text = span.split("-", 1)
            first = _day_number(start_text)
            # 7 is Sunday at the end of a range ("5-7" = Friday to Sunday).
            last = 7 if end_text.strip() == "7" else _day_number(end_text)
            if last < first:
                raise CrontabError(f"range {span!r} in day of week {field!r} runs backwards")
        else:
            first = _day_number(span)
            last = 6 if step_text else first
        days.update(day % 7 for day in range(first, last + 1, step))
    return sorted(days)


def crontab_trigger(expression: str, timezone: tzinfo | str | None = None) -> CronTrigger:
    """An APScheduler 3 trigger for a five-field crontab string, with crontab's day numbers.

    Raises :class:`CrontabError` for anything that is not five valid fields.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise CrontabError(
            f"{expression!r} has {len(fields)} fields; a crontab string has five:"
            " minute hour day-of-month month day-of-week"
        )
    minute, hour, day, month, day_of_week = fields
    if day_of_week != "*":
        day_of_week = ",".join(_DAY_NAMES[number] for number in crontab_days(day_of_week))
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            timezone=timezone,
        )
    except ValueError as error:
        raise CrontabError(f"{expression!r}: {error}") from error
