"""The periodic staleness check: "no complete backup of <phone> since <date>", once per period.

The rules are pure, in :mod:`rollkeeper.domain.health`: ``staleness`` says who is stale (the
same rule ``status`` shows) and ``stale_notice_due`` when to say it again. This module feeds
them from the state database and remembers, in a small JSON file next to it
(``<state db>.notices.json``), which stale stretch of which phone was announced when. A file
rather than a table keeps the state schema the backup's alone, and losing the file costs at
most one repeated notice.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from rollkeeper.domain.health import Staleness, StaleNotice, stale_notice_due, staleness
from rollkeeper.host.logs import get_logger
from rollkeeper.notify.notifier import Notifier
from rollkeeper.store.records import parse_required_timestamp, parse_timestamp
from rollkeeper.store.state import StateStore

log = get_logger(__name__)

#: Appended to the state database's file name to name the ledger of stale notices.
LEDGER_SUFFIX = ".notices.json"


class StaleSettingsLike(Protocol):
    """The config's ``[schedule]`` section, as far as the staleness check reads it."""

    @property
    def stale_after_days(self) -> float: ...


def ledger_path(state_path: Path) -> Path:
    """Where the ledger of stale notices for the state database at ``state_path`` lives."""
    return state_path.with_name(state_path.name + LEDGER_SUFFIX)


class StaleNoticeLedger:
    """Which stale stretch of each phone was announced, and when (a private JSON file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, StaleNotice]:
        """Every phone's last stale notice. A missing or damaged file reads as empty."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {
                str(udid): StaleNotice(
                    since=parse_required_timestamp(entry["since"]),
                    fired_at=parse_required_timestamp(entry["fired_at"]),
                )
                for udid, entry in raw.get("stale", {}).items()
            }
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            # Worst case a reminder repeats; refusing to check staleness would be worse.
            log.warning("stale_ledger_unreadable", path=str(self.path), error=str(error))
            return {}

    def save(self, notices: dict[str, StaleNotice]) -> None:
        """Write the ledger atomically (temporary file, fsync, rename), mode 0600."""
        document = {
            "version": 1,
            "stale": {
                udid: {"since": notice.since.isoformat(), "fired_at": notice.fired_at.isoformat()}
                for udid, notice in sorted(notices.items())
            },
        }
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


@dataclass(frozen=True, slots=True)
class StaleFinding:
    """One stale phone found by a check, and whether this check announced it."""

    udid: str
    name: str
    staleness: Staleness
    notified: bool


async def check_staleness(
    store: StateStore,
    notifier: Notifier,
    settings: StaleSettingsLike,
    now: datetime,
    ledger: StaleNoticeLedger | None = None,
    selected: Callable[[str, str], bool] | None = None,
) -> list[StaleFinding]:
    """The periodic job body: find stale phones and announce each once per stale period.

    ``now`` is injected (the scheduler passes the wall clock, tests a fixed instant). Returns
    every stale phone, notified now or not. The ledger defaults to the file next to ``store``.
    ``selected(udid, name)`` says whether the config backs a phone up at all (``[filters]
    include_devices``/``exclude_devices``); a phone left out on purpose is never "stale".
    """
    stale_after = timedelta(days=settings.stale_after_days)
    ledger = ledger or StaleNoticeLedger(ledger_path(store.path))
    notices = ledger.load()
    findings: list[StaleFinding] = []
    changed = False
    for device in store.devices():
        excluded = selected is not None and not selected(device.udid, device.name)
        last_complete = parse_timestamp(device.last_complete_at)
        current = staleness(
            last_complete,
            parse_required_timestamp(device.first_seen_at),
            now,
            stale_after,
            excluded=excluded,
        )
        if not current.stale:
            if not excluded and device.udid in notices:
                # A complete backup ended the stretch; the next one is announced afresh. (A
                # phone left out keeps its ledger entry: back in, it is not announced twice.)
                del notices[device.udid]
                changed = True
            continue
        due = stale_notice_due(current, notices.get(device.udid), now, stale_after)
        if due:
            log.warning(
                "backups_stale",
                udid=device.udid,
                since=current.since.isoformat(),
                never_completed=current.never_completed,
                age_days=round(current.age.total_seconds() / 86400, 1),
            )
            await notifier.backups_stale(device.udid, device.name, last_complete)
            notices[device.udid] = StaleNotice(since=current.since, fired_at=now)
            changed = True
        findings.append(
            StaleFinding(udid=device.udid, name=device.name, staleness=current, notified=due)
        )
    if changed:
        try:
            ledger.save(notices)
        except OSError as error:
            log.warning("stale_ledger_unwritable", path=str(ledger.path), error=str(error))
    return findings


#: The scheduler job id of the periodic staleness check.
STALENESS_JOB_ID = "staleness_check"
#: How often the service checks for stale phones. Hourly is plenty for a rule counted in days,
#: and cheap: one small query per phone.
STALENESS_CHECK_INTERVAL = timedelta(hours=1)
#: The first check after start-up waits this long, so start-up work (attached phones) goes first.
STALENESS_FIRST_CHECK_DELAY = timedelta(minutes=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def run_staleness_job(
    store: StateStore,
    notifier: Notifier,
    settings: Callable[[], StaleSettingsLike],
    clock: Callable[[], datetime] = _utc_now,
    selected: Callable[[str, str], bool] | None = None,
    ledger: StaleNoticeLedger | None = None,
) -> list[StaleFinding]:
    """One scheduled run: the current settings (the config may have been reloaded), the clock's
    now. A failure is logged, never raised: the next hour tries again."""
    try:
        return await check_staleness(
            store, notifier, settings(), clock(), ledger=ledger, selected=selected
        )
    except Exception:
        log.exception("staleness_check_failed")
        return []


def add_staleness_job(
    scheduler: Any,
    store: StateStore,
    notifier: Notifier,
    settings: Callable[[], StaleSettingsLike],
    *,
    clock: Callable[[], datetime] = _utc_now,
    interval: timedelta = STALENESS_CHECK_INTERVAL,
    first_check_delay: timedelta = STALENESS_FIRST_CHECK_DELAY,
    selected: Callable[[str, str], bool] | None = None,
    ledger: StaleNoticeLedger | None = None,
) -> None:
    """Schedule :func:`run_staleness_job` on an APScheduler 3 ``AsyncIOScheduler``.

    ``settings`` returns the config's ``[schedule]`` section in force; ``selected(udid, name)``
    (optional) whether the config in force backs that phone up; ``ledger`` where the notices
    are remembered (default: the file next to ``store``). One job, replaced if it exists,
    never two at once, missed runs coalesced: after a laptop sleeps a week, one check.
    """
    scheduler.add_job(
        run_staleness_job,
        "interval",
        seconds=interval.total_seconds(),
        args=(store, notifier, settings, clock, selected, ledger),
        id=STALENESS_JOB_ID,
        name="staleness check",
        next_run_time=clock() + first_check_delay,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        replace_existing=True,
    )
