"""`rollkeeper status`, `--json` and `--check` against real state files and a real lock holder."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rollkeeper.archive.identity import record, write_marker
from rollkeeper.cli import build_parser
from rollkeeper.commands.status import run_status
from rollkeeper.domain.health import SCANNING_DETAIL
from rollkeeper.store import RunCounts, StateStore

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
UDID = "00008110-000A1B2C3D4E5F60"
NAME = "Ann's iPhone"


class Setup:
    """A config file, a state path and an environment in a temporary home."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_path = root / "state" / "state.sqlite3"
        self.config_path = root / "config.toml"
        self.environ = {
            "HOME": str(root),
            "PATH": os.environ.get("PATH", os.defpath),
            "XDG_CONFIG_HOME": str(root / "xdg-config"),
            "XDG_STATE_HOME": str(root / "xdg-state"),
        }
        self.write_config("")

    def write_config(self, extra: str, *, stale_after_days: float = 7) -> None:
        self.config_path.write_text(
            f'[archive]\npath = "{self.root / "archive"}"\n'
            f'[state]\npath = "{self.state_path}"\n'
            f'[device]\npairing_dir = "{self.root / "pairing"}"\n'
            f"[schedule]\nstale_after_days = {stale_after_days}\n" + extra
        )

    def status(self, *flags: str, now: datetime = NOW) -> tuple[int, str]:
        args = build_parser().parse_args(["--config", str(self.config_path), "status", *flags])
        out = io.StringIO()
        code = run_status(args, environ=self.environ, now=now, out=out)
        return code, out.getvalue()

    def status_json(self, now: datetime = NOW) -> dict[str, Any]:
        code, text = self.status("--json", now=now)
        assert code == 0
        document: dict[str, Any] = json.loads(text)
        return document

    def check(self, now: datetime = NOW) -> tuple[int, str]:
        code, text = self.status("--check", now=now)
        assert text.count("\n") == 1, "--check prints exactly one line"
        return code, text.strip()

    def store(self) -> StateStore:
        """The state, naming the archive folder (made, with its marker) as its archive, as a
        first run does: the archive is there unless a test takes it away."""
        store = StateStore.open(self.state_path)
        archive = self.root / "archive"
        if store.archive_truth.recorded_identity() is None:
            archive.mkdir(exist_ok=True)
            record(store.archive_truth, archive, write_marker(archive))
        return store


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


class LockHolder:
    """A real process holding the service's instance lock, like a running service."""

    def __init__(self, lock_path: Path) -> None:
        code = (
            "import sys; from pathlib import Path\n"
            "from rollkeeper.host.single_instance import InstanceLock\n"
            f"lock = InstanceLock(Path({str(lock_path)!r})); lock.acquire()\n"
            "print('ready', flush=True); sys.stdin.read()\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        # Blocks until the child has the lock: an event, not a sleep.
        assert self.process.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def service(setup: Setup) -> Iterator[LockHolder]:
    setup.state_path.parent.mkdir(parents=True, exist_ok=True)
    holder = LockHolder(setup.state_path.with_name(setup.state_path.name + ".lock"))
    try:
        yield holder
    finally:
        holder.stop()


def _seen(store: StateStore, at: datetime) -> None:
    store.record_device_seen(
        UDID, name=NAME, product_type="iPhone14,2", product_version="17.5", now=at
    )


def _archive(store: StateStore, name: str, size: int, at: datetime) -> None:
    entry = store.observe_file(UDID, "/DCIM/100APPLE", name, size, 1_000 + size, 1_000, now=at)
    store.record_archived(
        entry.id,
        relative_path=f"2026/2026-11/{name}",
        content_hash=f"hash-{name}",
        hash_algorithm="blake3",
        size=size,
        origin="backup",
        capture_time=None,
        capture_source=None,
        now=at,
    )


def _complete_backup(store: StateStore, at: datetime, files: int = 3) -> int:
    _seen(store, at)
    run_id = store.start_run(UDID, now=at - timedelta(minutes=5))
    for number in range(files):
        _archive(store, f"IMG_{number:04}.HEIC", 1_000_000 * (number + 1), at)
    counts = RunCounts(files_found=files, files_copied=files, bytes_copied=6_000_000)
    store.finish_run(run_id, "complete", counts, now=at)
    store.set_device_state(UDID, "disconnected", now=at)
    return run_id


# -- before any backup -------------------------------------------------------------------------


def test_before_any_backup_with_the_service_down(setup: Setup) -> None:
    """Before any backup with the service down, status says so, --check is critical, and no state
    database is created: status only reads."""
    code, text = setup.status()
    assert code == 0
    assert "Service:   NOT running" in text
    assert "No backup yet" in text
    assert "backed up" not in text
    assert setup.check() == (2, "CRITICAL: rollkeeper service is not running")
    document = setup.status_json()
    assert document["service"] == {
        "running": False,
        "pid": None,
        "lock_path": str(setup.state_path) + ".lock",
    }
    assert document["state"] == {"path": str(setup.state_path), "exists": False, "error": None}
    assert document["config"] == {"path": str(setup.config_path), "ok": True, "problems": []}
    assert document["devices"] == []
    assert document["check"]["exit_code"] == 2
    # status reads only: it must not create the state database.
    assert not setup.state_path.exists()


def test_before_any_backup_with_the_service_running(setup: Setup, service: LockHolder) -> None:
    """Before any backup with the service running, status shows the service's pid and --check is OK
    with no phone seen yet."""
    assert setup.check() == (0, "OK: service running; no phone seen yet")
    document = setup.status_json()
    assert document["service"]["running"] is True
    assert document["service"]["pid"] == service.process.pid
    _, text = setup.status()
    assert f"Service:   running (pid {service.process.pid})" in text


def test_the_service_stopping_is_seen_at_once(setup: Setup) -> None:
    """The service stopping turns --check critical at once."""
    setup.state_path.parent.mkdir(parents=True)
    holder = LockHolder(setup.state_path.with_name(setup.state_path.name + ".lock"))
    assert setup.check()[0] == 0
    holder.stop()
    assert setup.check() == (2, "CRITICAL: rollkeeper service is not running")


# -- during a backup ---------------------------------------------------------------------------


def _mid_backup(setup: Setup, detail: str = "") -> None:
    store = setup.store()
    _complete_backup(store, NOW - timedelta(days=1))
    _seen(store, NOW - timedelta(minutes=10))
    store.start_run(UDID, now=NOW - timedelta(minutes=10))
    store.observe_file(UDID, "/DCIM/101APPLE", "IMG_0100.MOV", 4_000, 1, 1, now=NOW)
    store.set_device_state(UDID, "backing_up", detail, now=NOW - timedelta(minutes=9))
    store.set_device_progress(UDID, 120, 450, 1_200_000_000, 4_000_000_000)
    store.close()


def test_mid_backup_shows_progress_and_eta(setup: Setup, service: LockHolder) -> None:
    """During a backup status shows the files and bytes done and an ETA from the run's speed so far,
    and --check counts the phone as backing up."""
    _mid_backup(setup)
    document = setup.status_json()
    [device] = document["devices"]
    assert device["verdict"] == "backing_up"
    assert device["backed_up"] is False
    assert device["state"]["name"] == "backing_up"
    # 1.2 GB in the 600 s since the run started: 2.8 GB left at 2 MB/s is 1400 s.
    assert device["state"]["progress"] == {
        "files_done": 120,
        "files_total": 450,
        "bytes_done": 1_200_000_000,
        "bytes_total": 4_000_000_000,
        "eta_seconds": 1400,
        "scanning": False,
    }
    assert device["current_run"]["outcome"] == "running"
    assert device["last_run"]["outcome"] == "complete"
    assert device["files"]["pending"] == 1
    _, text = setup.status()
    assert "backing up: 120 of 450 files, 1.2 GB of 4.0 GB, about 23 min left" in text
    assert "Backup:          backing up now" in text
    assert setup.check() == (0, "OK: 0 of 1 phone backed up; 1 backing up now")


def test_while_the_scan_goes_on_status_says_found_so_far_and_gives_no_eta(
    setup: Setup, service: LockHolder
) -> None:
    """A first backup copies while the scan goes on: until the scan is done the totals are
    what was found so far, so status says so and gives no ETA (it would be wrong)."""
    _mid_backup(setup, detail=SCANNING_DETAIL)
    [device] = setup.status_json()["devices"]
    assert device["state"]["progress"]["scanning"] is True
    assert device["state"]["progress"]["eta_seconds"] is None
    _, text = setup.status()
    assert "backing up: 120 of 450 files found so far (still scanning), 1.2 GB of 4.0 GB" in text
    assert "left" not in text


def test_a_recorded_state_is_not_believed_without_the_service(setup: Setup) -> None:
    """A recorded backing-up state is not believed without the service: the phone shows as not
    connected, without progress, and not backed up."""
    _mid_backup(setup)
    [device] = setup.status_json()["devices"]
    assert device["state"]["name"] == "disconnected"
    assert device["state"]["recorded"] == "backing_up"
    assert device["state"]["progress"] is None
    assert device["current_run"] is None
    assert device["verdict"] == "not_backed_up"
    _, text = setup.status()
    assert "not connected (the service is not running)" in text
    assert setup.check()[0] == 2


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ("waiting_for_unlock", "waiting for you to unlock the phone"),
        ("waiting_for_trust", 'waiting for you to tap "Trust" on the phone'),
        ("trust_denied", "the phone refused to trust this computer"),
    ],
)
def test_waiting_states_are_told_to_the_user(
    setup: Setup, service: LockHolder, state: str, words: str
) -> None:
    """Waiting for an unlock, waiting for Trust, and a refused Trust are told to the user in
    words."""
    store = setup.store()
    _seen(store, NOW)
    store.set_device_state(UDID, state, now=NOW)
    store.close()
    _, text = setup.status()
    assert f"Now:             {words}" in text
    assert setup.status_json()["devices"][0]["state"]["name"] == state


# -- after runs --------------------------------------------------------------------------------


def test_after_a_complete_backup(setup: Setup, service: LockHolder) -> None:
    """After a complete backup status shows the phone as backed up with its model, file counts,
    sizes and last run, and --check is OK."""
    store = setup.store()
    run_id = _complete_backup(store, NOW - timedelta(hours=2))
    store.close()
    document = setup.status_json()
    [device] = document["devices"]
    assert device["verdict"] == "backed_up"
    assert device["backed_up"] is True
    assert device["level"] == "ok"
    assert device["name"] == NAME
    assert device["model"] == "iPhone14,2"
    assert device["ios_version"] == "17.5"
    assert device["last_complete_backup_at"] == "2026-11-26T10:00:00.000+00:00"
    assert device["files"] == {
        "on_phone": 3,
        "archived": 3,
        "pending": 0,
        "failed": 0,
        "excluded": 0,
    }
    assert device["archived"] == {"files": 3, "bytes": 6_000_000}
    assert device["last_run"]["id"] == run_id
    assert device["last_run"]["duration_seconds"] == 300.0
    assert device["stale"]["stale"] is False
    assert document["archive"]["files"] == 3
    assert document["archive"]["bytes"] == 6_000_000
    _, text = setup.status()
    assert "Backup:          backed up\n" in text
    assert "3 files at the last scan: 3 archived, 0 pending, 0 failed, 0 excluded" in text
    assert setup.check() == (0, "OK: 1 of 1 phone backed up")


def test_new_files_seen_after_the_backup_mean_not_backed_up(
    setup: Setup, service: LockHolder
) -> None:
    """Files seen after the backup and not copied yet make the phone not backed up, and files
    deleted from the phone are counted as kept in the archive."""
    store = setup.store()
    _complete_backup(store, NOW - timedelta(hours=2))
    # Scanned but not copied yet (unplugged in between): pending, so not "backed up".
    store.observe_file(UDID, "/DCIM/100APPLE", "IMG_0009.HEIC", 10, 10, 10, now=NOW)
    excluded = store.observe_file(UDID, "/DCIM/100APPLE", "IMG_0010.PNG", 10, 11, 11, now=NOW)
    store.set_file_status(excluded.id, "excluded")
    # Deleted on the phone after its backup: kept in the archive, no longer on the phone.
    store.mark_absent(UDID, "/DCIM/100APPLE", ["IMG_0000.HEIC"], now=NOW)
    store.close()
    [device] = setup.status_json()["devices"]
    assert device["verdict"] == "not_backed_up"
    assert device["backed_up"] is False
    assert device["files"] == {
        "on_phone": 4,
        "archived": 2,
        "pending": 1,
        "failed": 0,
        "excluded": 1,
    }
    assert device["archived_not_on_phone"] == 1
    assert device["archived"] == {"files": 3, "bytes": 6_000_000}
    _, text = setup.status()
    assert "NOT fully backed up" in text
    assert "Gone from phone: 1 file kept in the archive" in text
    assert "Backup:          backed up" not in text


def test_after_a_failed_run(setup: Setup, service: LockHolder) -> None:
    """After a failed run --check is critical, naming the run and the failed files, and status shows
    the error and where to look."""
    store = setup.store()
    _complete_backup(store, NOW - timedelta(days=1))
    run_id = store.start_run(UDID, now=NOW - timedelta(minutes=3))
    broken = store.observe_file(UDID, "/DCIM/100APPLE", "IMG_0050.HEIC", 77, 5, 5, now=NOW)
    store.set_file_status(broken.id, "failed", "read_error")
    store.add_run_failure(run_id, broken.phone_path, "read_error", "AFC status 4")
    counts = RunCounts(files_found=4, files_already_archived=3, files_failed=1)
    store.finish_run(run_id, "failed", counts, error="archive disk is full", now=NOW)
    store.close()
    code, line = setup.check()
    assert code == 2
    assert line == ("CRITICAL: last backup of Ann's iPhone failed; 1 file of Ann's iPhone failed")
    [device] = setup.status_json()["devices"]
    assert device["level"] == "critical"
    assert device["verdict"] == "not_backed_up"
    assert device["last_run"]["outcome"] == "failed"
    assert device["last_run"]["error"] == "archive disk is full"
    assert device["files"]["failed"] == 1
    _, text = setup.status()
    assert "#2 failed" in text
    assert "archive disk is full" in text
    assert "rollkeeper history --failed" in text


def test_failed_files_alone_are_a_warning(setup: Setup, service: LockHolder) -> None:
    """Failed files in an incomplete run are only a warning."""
    store = setup.store()
    _complete_backup(store, NOW - timedelta(hours=1))
    run_id = store.start_run(UDID, now=NOW)
    broken = store.observe_file(UDID, "/DCIM/100APPLE", "IMG_0051.HEIC", 7, 5, 5, now=NOW)
    store.set_file_status(broken.id, "failed", "name_rejected")
    store.finish_run(run_id, "incomplete", RunCounts(files_failed=1), now=NOW)
    store.close()
    assert setup.check() == (1, "WARNING: 1 file of Ann's iPhone failed")


# -- config and state problems -----------------------------------------------------------------


def test_a_broken_config_is_critical_and_shows_where(setup: Setup, service: LockHolder) -> None:
    """A broken config is critical and shown with FILE:LINE, and the phones are still shown from the
    state path it names."""
    store = setup.store()
    _complete_backup(store, NOW - timedelta(hours=1))
    store.close()
    setup.write_config("[notifications]\nmin_interval_minute = 5\n")
    code, line = setup.check()
    assert code == 2
    assert line.startswith(f"CRITICAL: config is broken: {setup.config_path}:10: ")
    document = setup.status_json()
    assert document["config"]["ok"] is False
    [problem] = document["config"]["problems"]
    assert problem.startswith(f"{setup.config_path}:10: notifications.min_interval_minute: ")
    # The phones are still shown, from the state path written in the broken file.
    assert [device["verdict"] for device in document["devices"]] == ["backed_up"]
    _, text = setup.status()
    assert "BROKEN" in text
    assert problem in text


def test_a_missing_config_file_named_explicitly_is_broken(setup: Setup) -> None:
    """A config file named explicitly that does not exist makes the config broken."""
    setup.config_path.unlink()
    document = setup.status_json()
    assert document["config"]["ok"] is False
    assert document["config"]["problems"] == [f"{setup.config_path}: no such file"]


def test_a_damaged_state_database_is_critical(setup: Setup, service: LockHolder) -> None:
    """A damaged state database is critical, and the JSON report carries the error."""
    setup.state_path.write_bytes(b"this is not a database" * 100)
    code, line = setup.check()
    assert code == 2
    assert line.startswith("CRITICAL: state database unreadable: ")
    assert setup.status_json()["state"]["error"]


# -- staleness -----------------------------------------------------------------------------------


def test_stale_after_the_configured_days(setup: Setup, service: LockHolder) -> None:
    """A phone goes stale exactly after the configured days: still backed up, but warned about with
    the date of its last complete backup."""
    setup.write_config("", stale_after_days=3)
    store = setup.store()
    _complete_backup(store, NOW - timedelta(days=3))
    store.close()
    assert setup.check(now=NOW - timedelta(minutes=1)) == (0, "OK: 1 of 1 phone backed up")
    assert setup.check(now=NOW) == (
        1,
        "WARNING: no complete backup of Ann's iPhone since 2026-11-23",
    )
    [device] = setup.status_json()["devices"]
    assert device["stale"] == {
        "stale": True,
        "since": "2026-11-23T12:00:00+00:00",
        "age_days": 3.0,
        "never_completed": False,
    }
    # The last backup was complete: the phone is backed up, only not recently.
    assert device["verdict"] == "backed_up"
    assert device["level"] == "warning"
    _, text = setup.status()
    assert "(3 days ago: too long)" in text


def test_a_phone_never_backed_up_goes_stale_from_its_first_sighting(
    setup: Setup, service: LockHolder
) -> None:
    """A phone never backed up goes stale counting from when it was first seen, and its refused
    Trust is warned about too."""
    store = setup.store()
    _seen(store, NOW - timedelta(days=8))
    store.set_device_state(UDID, "trust_denied", now=NOW - timedelta(days=8))
    store.close()
    code, line = setup.check()
    assert code == 1
    assert line == (
        "WARNING: Ann's iPhone refused to trust this computer; "
        "no complete backup of Ann's iPhone since it was first seen on 2026-11-18"
    )
    assert setup.status_json()["devices"][0]["verdict"] == "never_backed_up"


# -- the real command --------------------------------------------------------------------------


def test_the_installed_command_exits_with_the_check_level(
    setup: Setup, service: LockHolder
) -> None:
    """The installed command's --check exits with the check level and prints one line on stdout and
    nothing on stderr; --json exits 0 with the level inside."""
    store = setup.store()
    real_now = datetime.now(UTC)
    _complete_backup(store, real_now - timedelta(days=10))
    store.close()
    environ = dict(setup.environ, ROLLKEEPER_CONFIG=str(setup.config_path))
    command = [sys.executable, "-m", "rollkeeper", "status", "--check"]
    result = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    day = (real_now - timedelta(days=10)).strftime("%Y-%m-%d")
    assert result.stdout == f"WARNING: no complete backup of Ann's iPhone since {day}\n"
    assert result.stderr == ""
    as_json = subprocess.run(
        [sys.executable, "-m", "rollkeeper", "status", "--json"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["check"]["level"] == "warning"


def test_untrusted_names_cannot_drive_the_terminal(setup: Setup, service: LockHolder) -> None:
    """Names and errors from the phone are shown without their control characters in text, and kept
    as sent in JSON."""
    store = setup.store()
    store.record_device_seen(UDID, name="Evil\x1b[2J\x1b]0;owned\x07Phone\n", now=NOW)
    run_id = store.start_run(UDID, now=NOW)
    store.finish_run(run_id, "failed", RunCounts(), error="phone said \x1b[31mno", now=NOW)
    store.close()
    _, text = setup.status()
    code, line = setup.check()
    assert code == 2
    assert "\x1b" not in text + line
    assert "\x07" not in text + line
    assert "Evil [2J ]0;owned Phone" in text
    assert line == "CRITICAL: last backup of Evil [2J ]0;owned Phone failed"
    # JSON keeps the name as the phone sent it (escaped by JSON itself).
    assert setup.status_json()["devices"][0]["name"] == "Evil\x1b[2J\x1b]0;owned\x07Phone\n"


def _scrub_report(setup: Setup, **fields: Any) -> None:
    document = {
        "started_at": (NOW - timedelta(hours=1, minutes=5)).isoformat(),
        "finished_at": (NOW - timedelta(hours=1)).isoformat(),
        "files_checked": 3,
        "archive_unreachable": False,
        "missing": [],
        "changed": [],
        "unreadable": [],
    }
    document.update(fields)
    path = setup.state_path.with_name(setup.state_path.name + ".scrub.json")
    path.write_text(json.dumps(document))


def test_damage_found_by_the_archive_check_is_critical_until_verified(
    setup: Setup, service: LockHolder
) -> None:
    """Damage found by the archive check is critical until verify finds each file fine again."""
    store = setup.store()
    _complete_backup(store, NOW - timedelta(days=1))
    store.close()
    _scrub_report(
        setup,
        missing=["2026/2026-11/IMG_0000.HEIC"],
        changed=["2026/2026-11/IMG_0001.HEIC"],
    )
    assert setup.check() == (
        2,
        "CRITICAL: archive check on 2026-11-26 found 2 damaged or missing files; "
        "run `rollkeeper verify`",
    )
    document = setup.status_json()
    assert document["archive_check"]["unresolved_count"] == 2
    assert document["archive_check"]["checked_at"] == "2026-11-26T11:00:00+00:00"
    _, text = setup.status()
    assert "2 files damaged or missing" in text
    assert "2026/2026-11/IMG_0001.HEIC" in text
    # `rollkeeper verify` found one of them fine again after the check: one is left.
    store = setup.store()
    store.mark_verified("2026/2026-11/IMG_0001.HEIC", now=NOW - timedelta(minutes=5))
    store.close()
    assert setup.status_json()["archive_check"]["unresolved"] == ["2026/2026-11/IMG_0000.HEIC"]
    assert setup.check()[1].startswith("CRITICAL: archive check on 2026-11-26 found 1 damaged")


def test_an_unreachable_archive_is_a_warning_until_a_backup_reaches_it(
    setup: Setup, service: LockHolder
) -> None:
    """An archive unreachable at the archive check is a warning until a complete backup reaches
    it."""
    store = setup.store()
    _complete_backup(store, NOW - timedelta(days=1))
    store.close()
    _scrub_report(setup, archive_unreachable=True)
    assert setup.check() == (
        1,
        "WARNING: the archive folder was unreachable at the archive check on 2026-11-26",
    )
    store = setup.store()
    _complete_backup(store, NOW - timedelta(minutes=1), files=4)
    store.close()
    assert setup.check() == (0, "OK: 1 of 1 phone backed up")
    assert setup.status_json()["archive_check"]["archive_unreachable"] is True


def test_a_damaged_archive_check_report_does_not_break_status(
    setup: Setup, service: LockHolder
) -> None:
    """A damaged archive check report does not break status; the JSON report carries its error."""
    store = setup.store()
    _complete_backup(store, NOW - timedelta(days=1))
    store.close()
    setup.state_path.with_name(setup.state_path.name + ".scrub.json").write_text("[1, 2")
    assert setup.check() == (0, "OK: 1 of 1 phone backed up")
    assert setup.status_json()["archive_check"]["error"]


def test_a_phone_left_out_by_the_config_is_never_a_warning(
    setup: Setup, service: LockHolder
) -> None:
    """A phone left out by the config is never warned about nor stale, and status says why it is not
    backed up."""
    setup.write_config(f'[filters]\nexclude_devices = ["{UDID}"]\n')
    store = setup.store()
    _seen(store, NOW - timedelta(days=30))
    store.close()
    assert setup.check() == (
        0,
        "OK: service running; no phone to back up (1 left out by the config)",
    )
    [device] = setup.status_json()["devices"]
    assert device["verdict"] == "excluded"
    assert device["level"] == "ok"
    assert device["stale"]["stale"] is False
    _, text = setup.status()
    assert "not backed up: left out by the config's filters" in text


def test_archive_free_space_is_the_archive_disks_and_unknown_without_the_folder(
    setup: Setup,
) -> None:
    """status --json gives the archive folder and the free space of its file system (what the
    text shows too); with the folder missing (an unmounted disk) the free space is null and the
    text says nothing about it, rather than report the mount point's disk."""
    archive = setup.root / "archive"
    archive.mkdir()
    document = setup.status_json()
    assert document["archive"]["path"] == str(archive)
    free = document["archive"]["free_bytes"]
    assert isinstance(free, int)
    assert abs(free - shutil.disk_usage(archive).free) < 512 * 1024 * 1024
    _, text = setup.status()
    assert "free on its disk" in text
    archive.rmdir()
    document = setup.status_json()
    assert document["archive"]["free_bytes"] is None
    _, text = setup.status()
    assert "free on its disk" not in text
