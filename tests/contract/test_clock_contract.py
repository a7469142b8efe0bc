"""The clock port: the fake clock tells time the way the system clock does (aware UTC)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rollkeeper.ports import Clock, system_clock
from tests.fakes import FakeClock


@pytest.fixture(params=["fake", "system"])
def clock(request: pytest.FixtureRequest) -> Clock:
    """The fake clock, or the system's."""
    return FakeClock() if request.param == "fake" else system_clock


def test_now_is_aware_utc_and_never_goes_back(clock: Clock) -> None:
    """Every reading is timezone-aware, in UTC, and no earlier than the one before."""
    readings = [clock() for _ in range(50)]
    for reading in readings:
        assert reading.utcoffset() == timedelta(0)
    assert readings == sorted(readings)


def test_the_fake_clock_moves_only_when_told() -> None:
    """FakeClock stands still until advanced, then moves by exactly that much."""
    clock = FakeClock()
    start = clock()
    assert clock() == start
    clock.advance(90)
    assert clock() - start == timedelta(seconds=90)
