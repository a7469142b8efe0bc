"""One phone's turn: open a session, decide whether to back it up, run the backup.

The one sequence behind the service's scheduled job (:mod:`.scheduler`), ``backup-now``
(:mod:`.backup_once`) and the in-process reliability tests. What differs between them is
passed in: who is backed up (``admit``), and what the caller does with the run before it
starts (``on_run_created``: the service keeps it to stop it at shutdown). Phone errors
(locked, untrusted, unplugged, usbmuxd gone) propagate: each caller has its own answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rollkeeper.device.recording import SessionRecorder
from rollkeeper.device.session import PhoneInfo, SessionSettings, open_session
from rollkeeper.importer.job import BackupRun, BackupSettings, Progress, RunResult
from rollkeeper.store import StateStore

#: ``admit(info)``: None to back the phone up, else why not (the caller's own word).
Admission = Callable[[PhoneInfo], str | None]


@dataclass(frozen=True, slots=True)
class PhoneBackup:
    """How one phone's turn ended: who the phone said it was, and its run or why none ran."""

    info: PhoneInfo
    #: The run's result; None when ``admit`` turned the phone away.
    result: RunResult | None = None
    #: Why no run happened (what ``admit`` said); empty when one ran.
    skipped: str = ""


def _everyone(info: PhoneInfo) -> str | None:
    return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def back_up_phone(
    udid: str,
    store: StateStore,
    session_settings: SessionSettings,
    backup_settings: BackupSettings,
    *,
    admit: Admission = _everyone,
    clock: Callable[[], datetime] = _utc_now,
    on_progress: Callable[[Progress], None] | None = None,
    full_rescan: bool = False,
    on_run_created: Callable[[BackupRun, PhoneInfo], None] | None = None,
    recorder: SessionRecorder | None = None,
) -> PhoneBackup:
    """Open a session with ``udid``, ask ``admit`` about it, and back it up into ``store``.

    ``admit`` sees the phone's own name before anything is written about the run (the
    service records the phone as seen and excluded there). The session is closed when this
    returns or raises. ``recorder`` records the session for replay (``backup-now --record``).
    """
    phone_recorder = recorder.for_phone(udid) if recorder is not None else None
    async with open_session(udid, session_settings, phone_recorder) as session:
        info = session.info
        reason = admit(info)
        if reason is not None:
            return PhoneBackup(info=info, skipped=reason)
        run = BackupRun(
            store,
            backup_settings,
            session,
            clock=clock,
            on_progress=on_progress,
            full_rescan=full_rescan,
            library=store,
            archive_truth=store.archive_truth,
        )
        if on_run_created is not None:
            on_run_created(run, info)
        return PhoneBackup(info=info, result=await run.run())
