"""One offsite copy or check: ask whether the archive is there, run the engine, keep the record.

A copy, in order: the archive check (an unmounted disk is a ``skipped`` run with its reason,
never an empty snapshot); a row in ``offsite_runs``; the engine's copy; on success and only
with a ``retention`` policy, restic's ``forget --prune``; the row closed with the snapshot id,
bytes added, exit code and error; on failure, the alert. A check runs the engine's own
verification and is recorded the same way (kind ``check``). Every failure is said, none raised:
the service's backups must never stop because the offsite copy could not be made.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rollkeeper.host.logs import get_logger
from rollkeeper.offsite.archive_check import ArchiveCheck, archive_availability
from rollkeeper.offsite.engines import (
    CopyFigures,
    EnvironmentFileError,
    OffsitePlan,
    check_command,
    copy_command,
    copy_figures,
    engine_environment,
    error_text,
    forget_command,
    init_command,
    parse_environment_file,
)
from rollkeeper.offsite.process import EngineExit, run_engine
from rollkeeper.store.offsite_runs import (
    CHECK,
    COMPLETE,
    COPY,
    FAILED,
    INTERRUPTED,
    SKIPPED,
    OffsiteRunRecord,
)
from rollkeeper.store.state import StateStore

log = get_logger(__name__)

#: Called with the record of a run that failed (the notifier's ``offsite_failed``).
FailureAlert = Callable[[OffsiteRunRecord], Awaitable[None]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class InitResult:
    """What ``offsite init`` did: the engine's exit code and its words."""

    exit_code: int | None
    output: str


class OffsiteJob:
    """Copies (and checks) the archive with the configured engine, recording every run.

    ``sources`` are copied besides the archive (device-backup snapshots, once that feature
    exists, pass theirs here). ``archive_check`` is asked before every copy (see
    :mod:`.archive_check`). ``environ`` is what the engine inherits.
    """

    def __init__(
        self,
        plan: OffsitePlan,
        store: StateStore,
        archive_root: Path,
        *,
        sources: Sequence[Path] = (),
        archive_check: ArchiveCheck = archive_availability,
        on_failure: FailureAlert | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.plan = plan
        self._store = store
        self._archive_root = archive_root
        self._sources = tuple(sources)
        self._archive_check = archive_check
        self._on_failure = on_failure
        self._environ = os.environ if environ is None else environ
        self._clock = clock

    # -- the runs ------------------------------------------------------------------------

    async def copy(self, trigger: str) -> OffsiteRunRecord:
        """One copy of the archive offsite; returns its record (never raises for a failure)."""
        plan = self.plan
        repository = self._store.offsite_repository
        availability = self._archive_check(self._archive_root)
        if not availability.available:
            run_id = repository.start(
                COPY, plan.engine, plan.shown_destination, trigger, self._clock()
            )
            repository.finish(
                run_id,
                SKIPPED,
                error=f"archive unavailable: {availability.reason}",
                now=self._clock(),
            )
            log.warning("offsite_copy_skipped", run_id=run_id, reason=availability.reason)
            return self._record(run_id)
        run_id = repository.start(COPY, plan.engine, plan.shown_destination, trigger, self._clock())
        log.info("offsite_copy_started", run_id=run_id, engine=plan.engine, trigger=trigger)
        try:
            environment = self._environment()
            finished = await run_engine(
                copy_command(plan, (self._archive_root, *self._sources)), environment
            )
            figures = copy_figures(plan, finished.stdout, finished.stderr)
            error = "" if finished.exit_code == 0 else _failure_text(finished)
            if finished.exit_code == 0:
                error = await self._apply_retention(environment)
        except EnvironmentFileError as error_in_file:
            return await self._failed(run_id, None, str(error_in_file))
        except OSError as error_in_file:
            return await self._failed(run_id, None, f"environment_file: {error_in_file}")
        except asyncio.CancelledError:
            repository.finish(
                run_id, INTERRUPTED, error="stopped with the service", now=self._clock()
            )
            raise
        if finished.exit_code != 0:
            return await self._failed(run_id, finished.exit_code, error, figures)
        repository.finish(
            run_id,
            COMPLETE,
            exit_code=0,
            snapshot_id=figures.snapshot_id,
            bytes_added=figures.bytes_added,
            files_new=figures.files_new,
            error=error,
            now=self._clock(),
        )
        record = self._record(run_id)
        log.info(
            "offsite_copy_finished",
            run_id=run_id,
            snapshot_id=figures.snapshot_id or None,
            bytes_added=figures.bytes_added,
            files_new=figures.files_new,
            duration_seconds=record.duration_seconds,
        )
        if error:  # the copy is made, but the retention the user asked for failed
            await self._alert(record)
        return record

    async def check(self, trigger: str, *, read_data: bool = False) -> OffsiteRunRecord:
        """The engine's own verification of the offsite copy (``restic check``, ``rclone
        check``); recorded as a run of kind ``check``."""
        plan = self.plan
        repository = self._store.offsite_repository
        run_id = repository.start(
            CHECK, plan.engine, plan.shown_destination, trigger, self._clock()
        )
        try:
            finished = await run_engine(
                check_command(plan, self._archive_root, read_data), self._environment()
            )
        except (EnvironmentFileError, OSError) as error:
            return await self._failed(run_id, None, str(error))
        except asyncio.CancelledError:
            repository.finish(run_id, INTERRUPTED, error="stopped", now=self._clock())
            raise
        if finished.exit_code != 0:
            return await self._failed(run_id, finished.exit_code, _failure_text(finished))
        repository.finish(run_id, COMPLETE, exit_code=0, now=self._clock())
        log.info("offsite_check_passed", run_id=run_id, read_data=read_data)
        return self._record(run_id)

    async def init(self) -> InitResult:
        """Create the restic repository (``restic init``); rclone needs nothing."""
        argv = init_command(self.plan)
        if argv is None:
            return InitResult(0, "rclone copies into the remote as it is: nothing to create")
        finished = await run_engine(argv, self._environment())
        if finished.exit_code is None:
            return InitResult(None, finished.start_error)
        output = (finished.stdout + finished.stderr).strip()
        return InitResult(finished.exit_code, output)

    # -- parts ---------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        file_values: dict[str, str] = {}
        if self.plan.environment_file:
            text = Path(self.plan.environment_file).read_text(encoding="utf-8")
            file_values = parse_environment_file(text, self.plan.environment_file)
        return engine_environment(self.plan, self._environ, file_values)

    async def _apply_retention(self, environment: Mapping[str, str]) -> str:
        """restic forget --prune with the user's keep policy; "" or why it failed."""
        argv = forget_command(self.plan)
        if argv is None:
            return ""
        finished = await run_engine(argv, environment)
        if finished.exit_code == 0:
            log.info("offsite_retention_applied", policy=list(self.plan.retention))
            return ""
        return f"retention (restic forget) failed: {_failure_text(finished)}"

    async def _failed(
        self,
        run_id: int,
        exit_code: int | None,
        error: str,
        figures: CopyFigures | None = None,
    ) -> OffsiteRunRecord:
        figures = figures or CopyFigures()
        self._store.offsite_repository.finish(
            run_id,
            FAILED,
            exit_code=exit_code,
            snapshot_id=figures.snapshot_id,
            bytes_added=figures.bytes_added,
            files_new=figures.files_new,
            error=error,
            now=self._clock(),
        )
        record = self._record(run_id)
        log.error(
            "offsite_run_failed", run_id=run_id, kind=record.kind, exit_code=exit_code, error=error
        )
        await self._alert(record)
        return record

    async def _alert(self, record: OffsiteRunRecord) -> None:
        if self._on_failure is None:
            return
        # An alert that fails must not turn a recorded failure into a crash.
        with contextlib.suppress(Exception):
            await self._on_failure(record)

    def _record(self, run_id: int) -> OffsiteRunRecord:
        record = self._store.offsite_repository.run(run_id)
        if record is None:
            raise LookupError(f"offsite run {run_id} is not recorded")
        return record


def _failure_text(finished: EngineExit) -> str:
    if finished.exit_code is None:
        return finished.start_error
    words = error_text(finished.stdout, finished.stderr)
    return f"exit {finished.exit_code}: {words}" if words else f"exit {finished.exit_code}"
