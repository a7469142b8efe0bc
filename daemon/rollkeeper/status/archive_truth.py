"""What ``status`` says of the archive itself: is it there, and what is in question in it.

The availability check is the run's own (:mod:`rollkeeper.archive.identity`), asked read-only:
``status`` never writes a marker or makes a folder. The findings are the presence check's
(:mod:`rollkeeper.importer.restore`): open ones (to be restored at the next plug-in), lost ones
(missing, and no phone holds them), and the counts of those restored, followed and forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rollkeeper.archive.identity import ArchiveGuard, may_create_implicitly
from rollkeeper.domain.archive_state import ArchiveProblem, ArchiveState
from rollkeeper.store import StateStore
from rollkeeper.store.archive_truth import LOST, OPEN

#: How many paths of each kind the report lists (the counts are always whole).
LISTED_PATHS = 100


@dataclass(frozen=True, slots=True)
class ArchiveTruthStatus:
    """The archive's availability and findings, as ``status`` reports them."""

    state: ArchiveState | None
    #: Finding state -> count (open, restored, followed, lost, forgotten).
    findings: dict[str, int] = field(default_factory=dict)
    open_paths: list[str] = field(default_factory=list)
    lost_paths: list[str] = field(default_factory=list)

    @property
    def available(self) -> bool:
        """Whether the archive may be called there (a not-yet-made archive that the first
        run may make counts as there: there is nothing in it to be missing)."""
        return self.state is None or self.state.available

    @property
    def in_question(self) -> bool:
        """Whether "backed up" must not be said of any phone."""
        return not self.available or bool(self.findings.get(OPEN) or self.findings.get(LOST))


def archive_truth_status(root: Path | None, store: StateStore) -> ArchiveTruthStatus:
    """Check the archive at ``root`` (None: the config is broken) against the state."""
    truth = store.archive_truth
    state = None
    if root is not None:
        state = ArchiveGuard(root).check(truth)
        if state.problem is ArchiveProblem.UPGRADE or (
            state.problem is ArchiveProblem.NEW and (state.marker_id or may_create_implicitly(root))
        ):
            # The next run makes or records the marker: not a problem to report.
            state = ArchiveState(state.root, archive_id=state.marker_id)
    open_findings = [finding.relative_path for finding in truth.findings([OPEN])]
    lost = [finding.relative_path for finding in truth.findings([LOST])]
    return ArchiveTruthStatus(
        state=state,
        findings=truth.finding_counts(),
        open_paths=open_findings[:LISTED_PATHS],
        lost_paths=lost[:LISTED_PATHS],
    )
