"""One staleness rule: ``status`` and the service's stale notices call the same phones stale,
from the same state database and the same config, excluded phones included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from rollkeeper import bootstrap
from rollkeeper.config import NotificationSettings
from rollkeeper.domain.filters import device_selected
from rollkeeper.domain.health import staleness
from rollkeeper.notify.notifier import Notifier
from rollkeeper.service.health import StaleNoticeLedger, check_staleness
from rollkeeper.status.gather import gather_status
from rollkeeper.store import RunCounts, StateStore

DAY0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
NOW = DAY0 + timedelta(days=10)


def test_an_excluded_phone_is_never_stale_but_keeps_its_clock() -> None:
    """A phone the config leaves out is not stale however long it waited, and its ``since``,
    ``age`` and "never completed" are still told."""
    result = staleness(None, NOW - timedelta(days=30), NOW, timedelta(days=7), excluded=True)
    assert result.stale is False
    assert result.age == timedelta(days=30)
    assert result.never_completed is True
    assert result.since == NOW - timedelta(days=30)


async def test_status_and_the_stale_notices_agree_on_who_is_stale(tmp_path: Path) -> None:
    """Two phones overdue (one completed long ago, one never), one fresh, one overdue but left
    out by the config: ``status`` and the staleness job both name exactly the two overdue ones."""
    state_path = tmp_path / "state" / "state.sqlite3"
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        f'[state]\npath = "{state_path}"\n\n[archive]\npath = "{tmp_path / "archive"}"\n\n'
        '[schedule]\nstale_after_days = 3\n\n[filters]\nexclude_devices = ["Work phone"]\n'
    )
    store = StateStore.open(state_path)
    try:
        for udid, name in (("U1", "Ann"), ("U2", "Bob"), ("U3", "Work phone"), ("U4", "Cy")):
            store.record_device_seen(udid, name=name, now=DAY0)
        for udid, finished in (("U1", DAY0), ("U4", NOW - timedelta(days=1))):
            run_id = store.start_run(udid, now=finished)
            store.finish_run(run_id, "complete", RunCounts(), now=finished)

        config = bootstrap.load_command_config(str(config_path), {})
        assert config is not None
        filters = config.filters
        findings = await check_staleness(
            store,
            Notifier(NotificationSettings(desktop=False), lambda: NOW, environ={}),
            config.schedule,
            NOW,
            ledger=StaleNoticeLedger(tmp_path / "ledger.json"),
            selected=lambda udid, name: device_selected(
                udid, name, filters.include_devices, filters.exclude_devices
            ),
        )
    finally:
        store.close()
    report = gather_status(str(config_path), {"HOME": str(tmp_path)}, NOW)

    noticed = {finding.udid for finding in findings}
    shown = {phone.device.udid for phone in report.phones if phone.assessment.staleness.stale}
    assert noticed == shown == {"U1", "U2"}
