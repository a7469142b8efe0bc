"""The composition root: the one way commands load their config and say it is broken, the
lenient loading ``status`` needs, and the service's parts built from one config."""

from __future__ import annotations

import asyncio
import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rollkeeper import bootstrap
from rollkeeper.bootstrap import state as state_module
from rollkeeper.cli import main
from rollkeeper.config import Config, ConfigError
from rollkeeper.importer.job import RunResult
from rollkeeper.service.health import ledger_path
from tests.archive_helpers import LONG_AGO, archive_file

BROKEN = (
    '[archive]\npath = "relative/folder"\n\n'
    '[schedule]\ndebounce_seconds = "soon"\n\n'
    '[state]\npath = "{state}"\n'
)


@pytest.fixture
def broken_config(tmp_path: Path) -> Path:
    """A config with two problems (lines 2 and 5) that still names its state database."""
    path = tmp_path / "config.toml"
    path.write_text(BROKEN.format(state=tmp_path / "state" / "state.sqlite3"))
    return path


def test_a_broken_config_is_told_once_with_every_problem_at_its_line(
    broken_config: Path,
) -> None:
    """``load_command_config`` returns None and prints one header line, then every problem
    with its file and line, nothing else."""
    err = io.StringIO()
    assert bootstrap.load_command_config(str(broken_config), {}, err=err) is None
    lines = err.getvalue().splitlines()
    assert lines[0] == bootstrap.CONFIG_UNUSABLE == "rollkeeper: the config cannot be used:"
    assert len(lines) == 3
    assert lines[1].startswith(f"{broken_config}:2: archive.path: ")
    assert lines[2].startswith(f"{broken_config}:5: schedule.debounce_seconds: ")


def test_leniently_a_broken_config_keeps_its_problems_and_its_state_path(
    broken_config: Path, tmp_path: Path
) -> None:
    """For ``status``: a broken config gives no config, every problem as text, and the state
    database its file names as written, so the state can still be shown."""
    loaded = bootstrap.load_config_leniently(str(broken_config), {"HOME": str(tmp_path)})
    assert loaded.config is None
    assert loaded.path == broken_config
    assert loaded.state_path == tmp_path / "state" / "state.sqlite3"
    assert [problem.split(": ")[1] for problem in loaded.problems] == [
        "archive.path",
        "schedule.debounce_seconds",
    ]


def test_leniently_a_good_config_loads_with_no_problems(tmp_path: Path) -> None:
    """A usable config loads as it is: the config, no problems, its own state path."""
    path = tmp_path / "config.toml"
    path.write_text(f'[state]\npath = "{tmp_path / "s.sqlite3"}"\n')
    loaded = bootstrap.load_config_leniently(str(path), {"HOME": str(tmp_path)})
    assert isinstance(loaded.config, Config)
    assert loaded.problems == () and loaded.error is None
    assert loaded.state_path == tmp_path / "s.sqlite3"


@pytest.mark.parametrize(
    ("arguments", "exit_code"),
    [
        (["run"], 1),
        (["backup-now"], 1),
        (["devices"], 1),
        (["audit"], 2),
        (["verify"], 2),
        (["adopt", "{folder}"], 2),
        (["find", "IMG_0001"], 2),
    ],
)
def test_every_command_that_needs_its_config_says_a_broken_one_the_same_way(
    broken_config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    exit_code: int,
) -> None:
    """Each command stops with its own exit status and the same words on stderr (the header,
    then every problem); stdout stays empty."""
    words = [argument.format(folder=tmp_path) for argument in arguments]
    assert main(["--config", str(broken_config), *words]) == exit_code
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0] == bootstrap.CONFIG_UNUSABLE
    assert [line.split(": ")[1] for line in lines[1:]] == [
        "archive.path",
        "schedule.debounce_seconds",
    ]


async def test_the_service_parts_are_built_wired_and_not_started(tmp_path: Path) -> None:
    """``build_service_parts`` hands over every part built from the config and started none;
    the backup service has the config's settings, the config watcher exists only with a file,
    the stale notices are kept beside the state, and the scrubber's worker writes through its
    own store on the same database."""
    archive = tmp_path / "archive"
    archive.mkdir()
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        f'[archive]\npath = "{archive}"\n\n[state]\npath = "{tmp_path / "state.sqlite3"}"\n\n'
        "[notifications]\ndesktop = false\n"
    )
    config = bootstrap.load_command_config(str(config_path), dict(os.environ))
    assert config is not None
    store = bootstrap.open_state(config)

    async def run_finished(result: RunResult) -> None:
        raise AssertionError("no run in this test")

    def config_changed(config: Config) -> None:
        raise AssertionError("no reload in this test")

    def config_broken(error: ConfigError) -> None:
        raise AssertionError("no reload in this test")

    hooks = bootstrap.ServiceHooks(
        on_status=lambda text: None,
        on_run_finished=run_finished,
        on_config_changed=config_changed,
        on_config_broken=config_broken,
    )
    loop = asyncio.get_running_loop()
    try:
        archive_file(store, archive, "2024/2024-07/IMG_0001.JPG", os.urandom(4_000))
        parts = bootstrap.build_service_parts(
            config, store, loop, hooks, config_path=config_path, environ=dict(os.environ)
        )
        without_file = bootstrap.build_service_parts(config, store, loop, hooks, config_path=None)
        assert parts.store is store
        assert parts.scheduler.running is False and parts.scheduler.get_jobs() == []
        assert parts.backups.settings == bootstrap.service_settings(config)
        assert parts.phone_events.listening.is_set() is False
        assert parts.config_watcher is not None and without_file.config_watcher is None
        assert parts.scrubber.archive_root == archive
        assert parts.stale_notices.path == ledger_path(store.path)

        report = await parts.scrubber.run_in_worker(datetime.now(UTC))
        assert report.files_checked == 1 and report.verified_paths == ["2024/2024-07/IMG_0001.JPG"]
        # The worker's stamp is visible through the service's own connection.
        (entry,) = store.archive_entries()
        assert entry.verified_at is not None
        assert datetime.fromisoformat(entry.verified_at) > LONG_AGO
        await parts.alerts.aclose()
        await without_file.alerts.aclose()
    finally:
        store.close()


def test_read_only_and_writing_stores_open_the_same_database(tmp_path: Path) -> None:
    """What a writer beside the service records, a read-only store sees; a read-only store of
    a database that does not exist yet is "not found", never a new empty one."""
    state = tmp_path / "state" / "state.sqlite3"
    with pytest.raises(FileNotFoundError):
        bootstrap.open_state_read_only(state)
    assert not state.exists()
    writer = bootstrap.open_state_for_writing(state)
    try:
        writer.record_device_seen("U1", name="Ann")
    finally:
        writer.close()
    reader = bootstrap.open_state_read_only(state)
    try:
        assert [device.name for device in reader.devices()] == ["Ann"]
        assert reader.read_only is True
    finally:
        reader.close()


def _damage_an_index_quietly(path: Path) -> None:
    """Give a table an index whose entries no longer match its rows: the page structure stays
    sound (``quick_check`` passes), only ``integrity_check`` compares index and table."""
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        connection.execute("CREATE TABLE scratch (number INTEGER, text TEXT)")
        connection.execute("CREATE INDEX scratch_number ON scratch (number)")
        connection.executemany(
            "INSERT INTO scratch VALUES (?, ?)", [(n, str(n)) for n in range(50)]
        )
        connection.commit()
        connection.execute("PRAGMA writable_schema = ON")
        connection.execute(
            "UPDATE sqlite_master SET sql = 'CREATE INDEX scratch_number ON scratch (text)' "
            "WHERE name = 'scratch_number'"
        )
        connection.commit()
    finally:
        connection.close()


def test_opening_the_state_runs_the_quick_check_and_the_full_one_weekly(tmp_path: Path) -> None:
    """Every open of the service's state runs ``quick_check``; the full ``integrity_check``
    (index against table) runs when the last passing one is a week old: a damage only the full
    check sees is left alone by an open the day after a full check, and moved aside (a new
    state started) by the open after the week."""
    state = tmp_path / "state" / "state.sqlite3"
    (tmp_path / "archive").mkdir()
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        f'[archive]\npath = "{tmp_path / "archive"}"\n\n[state]\npath = "{state}"\n'
    )
    config = bootstrap.load_command_config(str(config_path), dict(os.environ))
    assert config is not None
    bootstrap.open_state(config).close()
    stamp = state.with_name(state.name + state_module.FULL_CHECK_SUFFIX)
    assert stamp.exists() and stamp.stat().st_mode & 0o777 == 0o600
    _damage_an_index_quietly(state)
    store = bootstrap.open_state(config)  # within the week: the quick check only
    store.close()
    assert not list(state.parent.glob("*.damaged-*"))
    week_ago = datetime.now(UTC).timestamp() - state_module.FULL_CHECK_INTERVAL_SECONDS - 60
    os.utime(stamp, (week_ago, week_ago))
    bootstrap.open_state(config).close()
    moved = sorted(path.name for path in state.parent.glob("state.sqlite3.damaged-*"))
    assert len(moved) >= 1 and moved[0].endswith("Z"), moved
