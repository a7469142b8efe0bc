"""The rules behind the words "backed up", "stale" and the exit codes of ``status --check``.

Pure domain code: no I/O, no clock (``now`` is always an argument). ``status``, ``--check``, the
periodic staleness job and the notifications all decide with these functions, so that a phone
is never "backed up" in one place and "pending" in another.

The rules, in one place:

* A run is **complete** only when nothing found on the phone is pending or failed
  (:func:`is_complete`). Excluded files (by a filter) do not count against it.
* A phone is **backed up** only when its last finished run was complete *and* nothing the phone
  showed at its last scan is pending or failed now (:func:`assess_phone`).
* A phone is **stale** when its last complete backup (or, never backed up, its first sighting)
  is at least ``stale_after`` old (:func:`staleness`). ``stale_after`` of zero or less turns
  staleness off, and a phone the config leaves out is never stale.
* A stale phone is announced once per stale period: again only after another ``stale_after``
  has passed, or at once when a new stretch starts (a complete backup in between)
  (:func:`stale_notice_due`).
* ``--check`` exit codes: 0 OK, 1 warning (stale, failed files, Trust denied), 2 critical (last
  run failed, phone in error, service down, config broken, state unreadable).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

from rollkeeper.domain.display import printable

#: Device states the service records (the ``devices.state`` column).
STATE_DISCONNECTED = "disconnected"
STATE_CONNECTED = "connected"
STATE_BACKING_UP = "backing_up"
#: The detail of ``backing_up`` while the scan still goes on (the totals are found so far).
SCANNING_DETAIL = "scanning"
STATE_UP_TO_DATE = "up_to_date"
STATE_WAITING_FOR_UNLOCK = "waiting_for_unlock"
STATE_WAITING_FOR_TRUST = "waiting_for_trust"
STATE_TRUST_DENIED = "trust_denied"
STATE_ERROR = "error"
#: Plugged in after an hour locked: no USB data until unlocked (USB Restricted Mode).
STATE_USB_RESTRICTED = "usb_restricted"
#: Restarted and not unlocked since: sessions refused until the passcode is entered once.
STATE_WAITING_FOR_FIRST_UNLOCK = "waiting_for_first_unlock"

#: What the user is told about a phone udev sees on USB that usbmuxd does not show (Linux
#: usbmuxd shows a phone only once its preflight is done with it): never backed up here, it is
#: most likely waiting for Trust; known, it most likely refuses USB data until unlocked.
UNSEEN_NEW_PHONE_HINT = "an iPhone is plugged in: unlock it and tap Trust"
UNSEEN_KNOWN_PHONE_HINT = (
    "your iPhone is plugged in but does not connect: unlock it (locked for over an hour, an "
    "iPhone takes no USB data until it is unlocked)"
)


def unseen_phone_state(backed_up_before: bool) -> tuple[str, str]:
    """(state, hint) for a phone on USB that usbmuxd does not show (see the hints above)."""
    if backed_up_before:
        return STATE_USB_RESTRICTED, UNSEEN_KNOWN_PHONE_HINT
    return STATE_WAITING_FOR_TRUST, UNSEEN_NEW_PHONE_HINT


#: Run outcomes (the ``runs.outcome`` column).
OUTCOME_RUNNING = "running"
OUTCOME_COMPLETE = "complete"
OUTCOME_INCOMPLETE = "incomplete"
OUTCOME_FAILED = "failed"
OUTCOME_INTERRUPTED = "interrupted"

#: Verdicts about a phone's backup, as ``status`` shows them.
VERDICT_BACKED_UP = "backed_up"
VERDICT_BACKING_UP = "backing_up"
VERDICT_NOT_BACKED_UP = "not_backed_up"
VERDICT_NEVER_BACKED_UP = "never_backed_up"
VERDICT_EXCLUDED = "excluded"


class CheckLevel(IntEnum):
    """Severity of ``status --check``; the value is the process exit code (Nagios style)."""

    OK = 0
    WARNING = 1
    CRITICAL = 2


@dataclass(frozen=True, slots=True)
class Staleness:
    """How long a phone has gone without a complete backup, and whether that is too long."""

    stale: bool
    #: The moment the clock started: the last complete backup, else the first sighting.
    since: datetime
    #: ``now - since`` (never negative).
    age: timedelta
    #: True when the phone has never had a complete backup.
    never_completed: bool


def staleness(
    last_complete_at: datetime | None,
    first_seen_at: datetime,
    now: datetime,
    stale_after: timedelta,
    *,
    excluded: bool = False,
) -> Staleness:
    """Whether a phone's backups have stopped for at least ``stale_after``: the one staleness
    rule, behind ``status`` (:func:`assess_phone`) and the service's stale notices alike.

    A phone that was never backed up completely counts from when rollkeeper first saw it:
    plugging a phone in once and never trusting the computer must end in a warning, not in
    silence. ``stale_after`` of zero or less disables staleness. A phone the config leaves out
    (``excluded``) is never stale: nobody asked for its backups. ``since`` and ``age`` are
    told all the same.
    """
    since = last_complete_at if last_complete_at is not None else first_seen_at
    age = max(now - since, timedelta(0))
    stale = not excluded and stale_after > timedelta(0) and age >= stale_after
    return Staleness(stale=stale, since=since, age=age, never_completed=last_complete_at is None)


def is_complete(files_pending: int, files_failed: int) -> bool:
    """A run (or a phone) is complete only when nothing found on the phone is pending or failed."""
    return files_pending == 0 and files_failed == 0


@dataclass(frozen=True, slots=True)
class StaleNotice:
    """The last stale notification sent for a phone: which stretch, and when."""

    since: datetime
    fired_at: datetime


def stale_notice_due(
    current: Staleness,
    last_notice: StaleNotice | None,
    now: datetime,
    stale_after: timedelta,
) -> bool:
    """Whether the "no backup since" notification should fire now (once per stale period).

    Due when the phone is stale and either nothing was sent for this stretch (a stretch is
    named by its ``since``; a complete backup starts a new one) or a whole further
    ``stale_after`` has passed since the last notice, so a forgotten phone is reminded of at
    the configured rhythm and never more often.
    """
    if not current.stale:
        return False
    if last_notice is None or last_notice.since != current.since:
        return True
    return now - last_notice.fired_at >= stale_after


@dataclass(frozen=True, slots=True)
class PhoneFacts:
    """What the state database says about one phone, already parsed (input to the rules)."""

    udid: str
    name: str
    state: str
    first_seen_at: datetime
    last_complete_at: datetime | None
    #: Outcome of the newest run that has finished (None when no run has finished yet).
    last_finished_outcome: str | None
    #: Present files (shown by the phone's last scan) in each manifest status.
    pending: int
    failed: int
    #: The config leaves this phone out (``[filters] include_devices``/``exclude_devices``).
    excluded: bool = False
    #: Originals the phone's library says are only in iCloud (so not in the archive), and
    #: whether that is a warning (``[library] warn_icloud_only``).
    icloud_only: int = 0
    warn_icloud_only: bool = True
    #: The last library read was refused as suspect (it would have dropped albums).
    library_suspect: bool = False
    #: The archive is unavailable, or holds files in question (open or lost findings):
    #: "backed up" is then never said (docs/archive-truth.md).
    archive_in_question: bool = False


@dataclass(frozen=True, slots=True)
class PhoneAssessment:
    """The verdict on one phone: the word status may use, the severity and why."""

    udid: str
    name: str
    verdict: str
    level: CheckLevel
    staleness: Staleness
    #: Short phrases for people ("3 files failed", "last run failed"), worst first.
    reasons: tuple[str, ...]
    #: Originals only in iCloud: "backed up" is then never said alone.
    icloud_only: int = 0


def format_day(moment: datetime) -> str:
    """A day as the messages name it (2024-05-01)."""
    return moment.strftime("%Y-%m-%d")


def assess_phone(facts: PhoneFacts, now: datetime, stale_after: timedelta) -> PhoneAssessment:
    """Apply the rules above to one phone."""
    stale = staleness(
        facts.last_complete_at, facts.first_seen_at, now, stale_after, excluded=facts.excluded
    )
    if facts.excluded:
        # Left out on purpose: nothing about it is a warning (and it is never stale).
        return PhoneAssessment(facts.udid, facts.name, VERDICT_EXCLUDED, CheckLevel.OK, stale, ())
    critical, warnings = _phone_problems(facts, printable(facts.name, 80) or facts.udid, stale)
    return PhoneAssessment(
        udid=facts.udid,
        name=facts.name,
        verdict=_phone_verdict(facts),
        level=_level(critical, warnings),
        staleness=stale,
        reasons=tuple(critical + warnings),
        icloud_only=facts.icloud_only,
    )


def _library_warnings(facts: PhoneFacts, label: str) -> list[str]:
    """What the phone's Photos library adds: originals only in iCloud, a refused read."""
    warnings: list[str] = []
    if facts.icloud_only and facts.warn_icloud_only:
        noun, verb = ("original", "is") if facts.icloud_only == 1 else ("originals", "are")
        warnings.append(f"{facts.icloud_only:,} {noun} of {label} {verb} only in iCloud")
    if facts.library_suspect:
        warnings.append(
            f"the last Photos library read of {label} would have removed albums or favourites "
            "from many sidecars and was not applied"
        )
    return warnings


def _phone_problems(facts: PhoneFacts, label: str, stale: Staleness) -> tuple[list[str], list[str]]:
    """(critical, warnings) of one phone that is not left out, each a phrase naming it."""
    critical: list[str] = []
    warnings: list[str] = []
    if facts.last_finished_outcome == OUTCOME_FAILED:
        critical.append(f"last backup of {label} failed")
    if facts.state == STATE_ERROR:
        critical.append(f"{label} is in error")
    if facts.state == STATE_TRUST_DENIED:
        warnings.append(f"{label} refused to trust this computer")
    if facts.failed:
        noun = "file" if facts.failed == 1 else "files"
        warnings.append(f"{facts.failed} {noun} of {label} failed")
    warnings.extend(_library_warnings(facts, label))
    if stale.stale:
        if stale.never_completed:
            warnings.append(
                f"no complete backup of {label} since it was first seen "
                f"on {format_day(stale.since)}"
            )
        else:
            warnings.append(f"no complete backup of {label} since {format_day(stale.since)}")
    return critical, warnings


def _phone_verdict(facts: PhoneFacts) -> str:
    """The one-word verdict of a phone that is not left out."""
    if facts.state == STATE_BACKING_UP:
        return VERDICT_BACKING_UP
    if (
        facts.last_finished_outcome == OUTCOME_COMPLETE
        and facts.last_complete_at is not None
        and is_complete(facts.pending, facts.failed)
        and not facts.archive_in_question
    ):
        return VERDICT_BACKED_UP
    if facts.last_complete_at is None:
        return VERDICT_NEVER_BACKED_UP
    return VERDICT_NOT_BACKED_UP


def _level(critical: Sequence[str], warnings: Sequence[str]) -> CheckLevel:
    """The worst level the reasons found say."""
    if critical:
        return CheckLevel.CRITICAL
    if warnings:
        return CheckLevel.WARNING
    return CheckLevel.OK


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The overall verdict of ``status --check``: exit code and one line for monitoring."""

    level: CheckLevel
    summary: str

    @property
    def exit_code(self) -> int:
        """The process exit code (0 OK, 1 warning, 2 critical)."""
        return int(self.level)


def overall_check(
    *,
    service_running: bool,
    config_problems: Sequence[str],
    state_problem: str | None,
    phones: Sequence[PhoneAssessment],
    archive_critical: Sequence[str] = (),
    archive_warnings: Sequence[str] = (),
    offsite_warnings: Sequence[str] = (),
) -> CheckResult:
    """Combine the service, config, state database and per-phone verdicts into one line.

    The line starts with ``OK``, ``WARNING`` or ``CRITICAL`` and lists every reason, worst
    first, so a monitoring system shows the real cause without a second command.
    ``archive_critical`` and ``archive_warnings`` are findings about the archive itself (damaged
    files found by the scheduled check, an archive that was unreachable); ``offsite_warnings``
    about the offsite copy (:func:`offsite_findings`).
    """
    critical = _service_problems(service_running, config_problems, state_problem)
    warnings: list[str] = []
    critical.extend(archive_critical)
    warnings.extend(archive_warnings)
    warnings.extend(offsite_warnings)
    for phone in phones:
        if phone.level is CheckLevel.CRITICAL:
            critical.extend(phone.reasons)
        elif phone.level is CheckLevel.WARNING:
            warnings.extend(phone.reasons)

    if critical:
        return CheckResult(CheckLevel.CRITICAL, "CRITICAL: " + "; ".join(critical + warnings))
    if warnings:
        return CheckResult(CheckLevel.WARNING, "WARNING: " + "; ".join(warnings))
    return CheckResult(CheckLevel.OK, "OK: " + _all_is_well_summary(phones))


def _service_problems(
    service_running: bool, config_problems: Sequence[str], state_problem: str | None
) -> list[str]:
    """The critical reasons about the service itself: not running, broken config, bad state."""
    critical: list[str] = []
    if not service_running:
        critical.append("rollkeeper service is not running")
    if config_problems:
        first = config_problems[0]
        more = len(config_problems) - 1
        suffix = f" (and {more} more)" if more else ""
        critical.append(f"config is broken: {first}{suffix}")
    if state_problem:
        critical.append(f"state database unreadable: {state_problem}")
    return critical


def _all_is_well_summary(phones: Sequence[PhoneAssessment]) -> str:
    """The words after ``OK: `` when no reason was found: how many phones are backed up."""
    if not phones:
        return "service running; no phone seen yet"
    included = [phone for phone in phones if phone.verdict != VERDICT_EXCLUDED]
    if not included:
        return f"service running; no phone to back up ({len(phones)} left out by the config)"
    backed_up = sum(1 for phone in included if phone.verdict == VERDICT_BACKED_UP)
    backing_up = sum(1 for phone in included if phone.verdict == VERDICT_BACKING_UP)
    parts = [f"{backed_up} of {len(included)} phone{'s' if len(included) != 1 else ''} backed up"]
    if backing_up:
        parts.append(f"{backing_up} backing up now")
    in_icloud = sum(phone.icloud_only for phone in included)
    if in_icloud:
        parts.append(f"{in_icloud:,} originals only in iCloud")
    return "; ".join(parts)


def offsite_findings(
    *,
    last_copy_at: datetime | None,
    last_attempt_outcome: str | None,
    last_attempt_error: str,
    first_attempt_at: datetime | None,
    now: datetime,
    stale_after: timedelta,
) -> tuple[Staleness, list[str]]:
    """How old the last offsite copy is, and the warnings about it (offsite copies configured).

    The same staleness rule as a phone's (:func:`staleness`): the clock runs from the last
    complete copy, else from the first attempt, else from now (configured, never run: warned
    at once, since nothing is offsite yet). A last attempt that failed or was skipped is a
    warning of its own. Offsite trouble is never critical: the archive itself is fine.
    """
    since = first_attempt_at if first_attempt_at is not None else now
    stale = staleness(last_copy_at, since, now, stale_after)
    warnings: list[str] = []
    if last_attempt_outcome is None:
        warnings.append("no offsite copy has been made yet (`rollkeeper offsite run`)")
    elif last_attempt_outcome in (OUTCOME_FAILED, "skipped"):
        reason = printable(last_attempt_error, 160) or last_attempt_outcome
        warnings.append(f"the last offsite copy {last_attempt_outcome}: {reason}")
    if stale.stale:
        if stale.never_completed:
            warnings.append(f"no offsite copy since the first attempt on {format_day(since)}")
        else:
            warnings.append(f"no offsite copy since {format_day(stale.since)}")
    return stale, warnings


def estimate_remaining(bytes_done: int, bytes_total: int, elapsed: timedelta) -> timedelta | None:
    """Time left for a transfer at the average rate so far, or None when it cannot be told.

    None before any byte moved or any time passed (no rate yet) and when the totals make no
    sense (device-supplied sizes are untrusted: ``done > total`` means the estimate is void).
    """
    if bytes_total <= 0 or bytes_done <= 0 or bytes_done > bytes_total:
        return None
    seconds = elapsed.total_seconds()
    if seconds <= 0:
        return None
    rate = bytes_done / seconds
    return timedelta(seconds=(bytes_total - bytes_done) / rate)
