"""Power cuts at random instants of a real ``rollkeeper run``: nothing recorded is lost.

The campaign (:mod:`tests.reliability.power_cut`) at CI size, and the proof that it bites: with
rollkeeper's fsync of finished partial files removed (a test-only ``sitecustomize`` given to
the service processes, never a switch in the product) the same campaign fails at once.
``make faults POWER_CUT_TRIALS=...`` runs more trials.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollkeeper.simulator import SimulatorThread
from tests.reliability.power_cut import (
    FSYNC_REMOVED_SHIM,
    PARTIAL_UNDER_FINAL_NAME,
    power_cut_campaign,
)
from tests.reliability.power_cut_disk import require_fuse

#: Trials in CI (two chains of three); ``make faults`` runs 300.
CI_TRIALS = 6
#: The removed fsync must be caught within this many trials.
BITE_TRIALS = 4


@pytest.mark.slow
def test_power_cuts_at_random_instants_lose_nothing_recorded(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Cut, remount with only the durable state, check, run again: every invariant holds."""
    require_fuse()
    tally, figures = power_cut_campaign(simulator, tmp_path, trials=CI_TRIALS, seed=21)
    assert tally.notes == []
    assert tally.failures == 0
    assert tally.trials == CI_TRIALS
    # Every cut found unsynced writes to take back, and most landed while files were copied:
    # the cuts bit into work in progress, not into an idle disk.
    assert figures.took_back == CI_TRIALS
    assert figures.mid_copy >= CI_TRIALS // 2
    assert tally.files_checked > 0


@pytest.mark.slow
def test_a_removed_fsync_of_finished_files_is_caught_within_a_few_trials(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Without the fsync of a finished partial, a cut leaves a final name holding the bytes of
    a file that were never durable: the campaign must say so."""
    require_fuse()
    tally, _ = power_cut_campaign(
        simulator,
        tmp_path,
        trials=BITE_TRIALS,
        seed=21,
        extra_environment={"PYTHONPATH": str(FSYNC_REMOVED_SHIM)},
    )
    assert tally.failures >= 1, "the campaign did not notice a removed fsync"
    assert any(PARTIAL_UNDER_FINAL_NAME in note for note in tally.notes)
