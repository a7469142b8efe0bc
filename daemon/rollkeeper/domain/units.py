"""Byte counts and durations in the words people read (pure: no I/O, no clock).

One formatter for every place that shows a size, so ``status``, ``history``, ``verify``,
``adopt`` and the notifications never disagree about what "1.2 GB" means.
"""

from __future__ import annotations

from datetime import timedelta

#: Decimal units, as Finder, GNOME Files and most file managers count.
BYTE_UNITS: tuple[str, ...] = ("B", "kB", "MB", "GB", "TB")


def format_bytes(count: int) -> str:
    """Bytes for people in decimal units: ``512 B``, ``1.5 GB``; nothing past ``TB``."""
    value = float(count)
    for unit in BYTE_UNITS:
        if abs(value) < 1000 or unit == BYTE_UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable: the last unit always returns")  # pragma: no cover


def format_duration(delta: timedelta) -> str:
    """A duration for people: ``45 s``, ``12 min``, ``3 h 5 min``, ``4 days``."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds // 86400} days"
