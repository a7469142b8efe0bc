"""Archive layout: where a file lands inside the user's archive folder.

Pure domain code (no I/O). The layout is a user-written template such as
``{year}/{month}/{name}`` whose placeholders are listed in ``LAYOUT_PLACEHOLDERS``.
"""

from __future__ import annotations

LAYOUT_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "name",
        "stem",
        "extension",
        "device_name",
        "udid",
    }
)
