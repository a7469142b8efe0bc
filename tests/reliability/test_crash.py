"""kill -9 of a real ``rollkeeper run`` at random instants: after a restart nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollkeeper.simulator import SimulatorThread
from tests.reliability.crash import crash_campaign

#: Trials in CI; ``make faults CRASH_TRIALS=...`` runs more.
CI_TRIALS = 30


@pytest.mark.slow
def test_kill_minus_nine_at_random_instants_loses_and_duplicates_nothing(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """kill -9 of the service at random instants, then a restart, loses no file and stores none
    twice; most kills land while files are being copied."""
    tally = crash_campaign(simulator, tmp_path, trials=CI_TRIALS, seed=11)
    failures = tally.notes[1:]
    assert failures == []
    assert tally.failures == 0
    assert tally.trials == CI_TRIALS
    # The throttle makes most kills land while files are still being copied.
    landed = int(tally.notes[0].rsplit(" ", 1)[1])
    assert landed >= CI_TRIALS // 2, tally.notes[0]
