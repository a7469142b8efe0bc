"""The attended rule for device backups, the status notes, and the folder's place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollkeeper.config.device_backup_settings import DeviceBackupSettings, device_backup_root
from rollkeeper.domain.device_backup_health import DeviceBackupFacts as HealthFacts
from rollkeeper.domain.device_backup_health import assess_device_backup
from rollkeeper.domain.device_backup_policy import (
    COMMAND,
    PLUG_IN,
    DeviceBackupFacts,
    asks_for_passcode,
    refusal,
)

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def facts(**changes: object) -> DeviceBackupFacts:
    """A plug-in after a complete import, due, not tried yet; ``changes`` override."""
    values: dict[str, object] = {
        "enabled": True,
        "trigger": PLUG_IN,
        "now": NOW,
        "every_hours": 24.0,
        "last_completed_at": NOW - timedelta(hours=25),
        "tried_since_plug_in": False,
        "import_complete": True,
    }
    values.update(changes)
    return DeviceBackupFacts(**values)  # type: ignore[arg-type]


def test_a_due_plug_in_after_a_complete_import_starts_one() -> None:
    """Enabled, due, import complete, first try of this plug-in: go."""
    assert refusal(facts()) is None
    assert refusal(facts(last_completed_at=None)) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"enabled": False}, "disabled"),
        ({"import_complete": False}, "photo_import_not_complete"),
        ({"tried_since_plug_in": True}, "already_tried_since_plug_in"),
        ({"last_completed_at": NOW - timedelta(hours=23)}, "not_due"),
    ],
)
def test_a_plug_in_is_refused_for_each_reason(change: dict[str, object], reason: str) -> None:
    """Off, an incomplete import, a second try of one plug-in (no prompt loop) and a backup
    younger than every_hours each keep a plug-in from starting one."""
    assert refusal(facts(**change)) == reason


def test_a_command_always_runs() -> None:
    """The user asked: neither every_hours nor enabled nor an earlier try stops it."""
    assert (
        refusal(
            facts(trigger=COMMAND, enabled=False, tried_since_plug_in=True, last_completed_at=NOW)
        )
        is None
    )


@pytest.mark.parametrize(
    ("version", "asks"),
    [
        ("16.1", True),
        ("16.1.1", True),
        ("17.5.1", True),
        ("26.5", True),
        ("16.0.3", False),
        ("15.7", False),
        ("", False),
    ],
)
def test_passcode_prompt_from_ios_16_1(version: str, asks: bool) -> None:
    """iOS 16.1 and later ask for the passcode before each backup."""
    assert asks_for_passcode(version) is asks


def test_status_notes_say_overdue_encryption_and_icloud_photos() -> None:
    """Overdue after twice every_hours; encrypted/not encrypted and iCloud Photos notes; the
    passcode timeout is explained."""
    old = assess_device_backup(
        HealthFacts(True, 24.0, "passcode_timeout", NOW - timedelta(hours=49), False, 0), NOW
    )
    assert old.overdue
    text = " ".join(old.notes)
    assert "passcode" in text and "not encrypted" in text and "iCloud Photos" in text
    fresh = assess_device_backup(
        HealthFacts(True, 24.0, "completed", NOW - timedelta(hours=1), True, 5), NOW
    )
    assert not fresh.overdue
    assert any("backup password" in note for note in fresh.notes)


def test_the_folder_defaults_beside_the_archive_and_may_not_be_inside_it(tmp_path: Path) -> None:
    """ "" means rollkeeper-device-backups next to the archive; a path inside it is refused."""
    archive = tmp_path / "Pictures" / "rollkeeper"
    assert (
        device_backup_root(DeviceBackupSettings(), archive)
        == tmp_path / "Pictures" / "rollkeeper-device-backups"
    )
    with pytest.raises(ValueError, match="inside the archive"):
        device_backup_root(DeviceBackupSettings(path=str(archive / "device")), archive)
