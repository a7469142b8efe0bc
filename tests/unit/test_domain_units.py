"""The one byte and duration formatter every command and notification shows sizes with."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rollkeeper.domain.units import format_bytes, format_duration


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1_536, "1.5 kB"),
        (4_200_000_000, "4.2 GB"),
        (3 * 10**12, "3.0 TB"),
        (5 * 10**15, "5000.0 TB"),
    ],
)
def test_bytes_are_shown_in_decimal_units_with_one_decimal(count: int, shown: str) -> None:
    """Sizes use decimal units (1 kB = 1000 B, as file managers count), whole bytes below a
    kilobyte, one decimal above, and TB is the largest unit (no PB surprises)."""
    assert format_bytes(count) == shown


def test_a_size_just_under_a_unit_rounds_within_that_unit() -> None:
    """999,949 bytes stay in kB: the unit is chosen before rounding, never after."""
    assert format_bytes(999_949) == "999.9 kB"
    assert format_bytes(1_000_000) == "1.0 MB"


@pytest.mark.parametrize(
    ("delta", "shown"),
    [
        (timedelta(seconds=45), "45 s"),
        (timedelta(minutes=12, seconds=59), "12 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(hours=3, minutes=5), "3 h 5 min"),
        (timedelta(days=4, hours=7), "4 days"),
    ],
)
def test_durations_use_the_largest_sensible_unit(delta: timedelta, shown: str) -> None:
    """Durations read as people say them: seconds, then minutes, hours with minutes up to two
    days, then whole days."""
    assert format_duration(delta) == shown
