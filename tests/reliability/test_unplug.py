"""Unplug at random byte offsets: every file completes with its hash, little is read twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollkeeper.simulator import SimulatorThread
from tests.reliability.unplug import FILE_SIZES, unplug_campaign

#: Trials in CI; ``make faults UNPLUG_TRIALS=...`` runs more.
CI_TRIALS = 50


@pytest.mark.slow
async def test_unplug_at_random_offsets_loses_nothing_and_rereads_at_most_a_chunk(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Unplugs at random byte offsets lose no file (each completes with its hash) and make the phone
    send again at most the chunk in flight."""
    tally = await unplug_campaign(simulator, tmp_path, trials=CI_TRIALS, seed=7)
    assert tally.notes == []
    assert tally.failures == 0
    assert tally.trials == CI_TRIALS
    assert tally.files_checked == CI_TRIALS * len(FILE_SIZES)
