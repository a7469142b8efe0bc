"""The config watcher against real files and a real watchdog Observer (inotify on Linux).

Each test edits the file the way an editor does and waits on the callback (a queue with a
ceiling), never on a sleep.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollkeeper.config import Config, ConfigError
from rollkeeper.config.watch import FILE_REMOVED_MESSAGE, ConfigWatcher

CEILING_SECONDS = 10.0


class Recorder:
    """Collects callbacks in arrival order: ("change", Config) or ("error", ConfigError)."""

    def __init__(self) -> None:
        self.calls: queue.Queue[tuple[str, Config | ConfigError]] = queue.Queue()

    def on_change(self, config: Config) -> None:
        self.calls.put(("change", config))

    def on_error(self, error: ConfigError) -> None:
        self.calls.put(("error", error))

    def next(self) -> tuple[str, Config | ConfigError]:
        return self.calls.get(timeout=CEILING_SECONDS)

    def next_config(self) -> Config:
        kind, value = self.next()
        assert kind == "change", f"expected a new config, got {value}"
        assert isinstance(value, Config)
        return value

    def next_error(self) -> ConfigError:
        kind, value = self.next()
        assert kind == "error", f"expected an error, got {value}"
        assert isinstance(value, ConfigError)
        return value


def debounce_config(seconds: float) -> str:
    return f"[schedule]\ndebounce_seconds = {seconds}\n"


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home)}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    path = folder / "config.toml"
    path.write_text(debounce_config(1.0))
    return path


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def watcher(
    config_file: Path, recorder: Recorder, environ: dict[str, str]
) -> Iterator[ConfigWatcher]:
    watcher = ConfigWatcher(
        config_file,
        recorder.on_change,
        recorder.on_error,
        environ=environ,
        debounce_seconds=0.05,
    )
    watcher.start()
    yield watcher
    watcher.stop()


def test_an_edit_in_place_delivers_the_new_config(
    watcher: ConfigWatcher, config_file: Path, recorder: Recorder
) -> None:
    """An edit in place delivers the new config to the change callback."""
    config_file.write_text(debounce_config(3.0))

    assert recorder.next_config().schedule.debounce_seconds == 3.0


def test_a_save_by_renaming_a_temporary_file_over_the_config_is_seen(
    watcher: ConfigWatcher, config_file: Path, recorder: Recorder
) -> None:
    """A save that renames a temporary file over the config is seen, and so is the next one: the
    watch survives the rename."""
    temporary = config_file.with_name(".config.toml.swp")
    temporary.write_text(debounce_config(4.0))
    os.replace(temporary, config_file)

    assert recorder.next_config().schedule.debounce_seconds == 4.0
    # The watch survives the rename: the next save is seen too.
    temporary.write_text(debounce_config(5.0))
    os.replace(temporary, config_file)
    assert recorder.next_config().schedule.debounce_seconds == 5.0


def test_a_vim_style_save_moving_the_original_aside_is_seen(
    watcher: ConfigWatcher, config_file: Path, recorder: Recorder
) -> None:
    """A vim-style save (the original moved aside, a new file written) ends with the new config
    applied."""
    backup = config_file.with_name("config.toml~")
    os.rename(config_file, backup)
    config_file.write_text(debounce_config(4.5))
    backup.unlink()

    kind, value = recorder.next()
    # On a slow machine the watcher may look between the move and the write and report the
    # file as gone; what matters is that the new file is then applied.
    if isinstance(value, ConfigError):
        assert [problem.message for problem in value.problems] == [FILE_REMOVED_MESSAGE]
        kind, value = recorder.next()
    assert kind == "change"
    assert isinstance(value, Config)
    assert value.schedule.debounce_seconds == 4.5


def test_delete_then_recreate_reports_the_gap_then_applies_the_new_file(
    watcher: ConfigWatcher, config_file: Path, recorder: Recorder
) -> None:
    """Deleting the config is reported as the file gone, and recreating it applies the new file."""
    config_file.unlink()
    error = recorder.next_error()
    assert [problem.message for problem in error.problems] == [FILE_REMOVED_MESSAGE]

    config_file.write_text(debounce_config(6.0))
    assert recorder.next_config().schedule.debounce_seconds == 6.0


def test_a_broken_edit_is_reported_with_its_line_and_a_fix_applies(
    watcher: ConfigWatcher, config_file: Path, recorder: Recorder
) -> None:
    """A broken edit is reported with FILE:LINE, and the fix that follows is applied."""
    config_file.write_text("[schedule]\n\ndebounce_seconds = -1\n")
    error = recorder.next_error()
    assert str(error) == (f"{config_file}:3: schedule.debounce_seconds: must be at least 0, got -1")

    config_file.write_text(debounce_config(7.0))
    assert recorder.next_config().schedule.debounce_seconds == 7.0


def test_saving_the_same_content_calls_nobody_back(
    watcher: ConfigWatcher, config_file: Path, recorder: Recorder
) -> None:
    """Saving the same content again calls neither callback."""
    config_file.write_text(debounce_config(1.0))  # what it already holds
    os.utime(config_file)

    assert watcher.wait_for_checks(1, CEILING_SECONDS)
    assert recorder.calls.empty()


def test_an_emptied_file_waits_for_the_rest_of_the_save(
    watcher: ConfigWatcher, config_file: Path, recorder: Recorder
) -> None:
    """An emptied file is taken for a save in progress: nothing is called until the content arrives,
    which is then applied."""
    config_file.write_bytes(b"")  # what an in-place save looks like before its write

    assert watcher.wait_for_checks(1, CEILING_SECONDS)
    assert recorder.calls.empty()
    config_file.write_text(debounce_config(2.5))
    assert recorder.next_config().schedule.debounce_seconds == 2.5


def test_an_emptied_file_applies_the_defaults_on_request(
    watcher: ConfigWatcher, config_file: Path, recorder: Recorder
) -> None:
    """A reload requested while the file is empty applies the defaults."""
    config_file.write_bytes(b"")
    assert watcher.wait_for_checks(1, CEILING_SECONDS)

    watcher.request_reload()

    assert recorder.next_config().schedule.debounce_seconds == 2.0  # the default


def test_a_burst_of_writes_is_loaded_once_with_the_final_content(
    config_file: Path, recorder: Recorder, environ: dict[str, str]
) -> None:
    """A burst of writes within the debounce is loaded once, with the final content."""
    watcher = ConfigWatcher(
        config_file, recorder.on_change, recorder.on_error, environ=environ, debounce_seconds=1.0
    )
    watcher.start()
    try:
        for seconds in (2.0, 3.0, 4.0):
            config_file.write_text(debounce_config(seconds))
        assert recorder.next_config().schedule.debounce_seconds == 4.0
        assert watcher.checks_completed == 1
    finally:
        watcher.stop()
    assert recorder.calls.empty()


def test_request_reload_loads_again_without_a_change(
    watcher: ConfigWatcher, recorder: Recorder
) -> None:
    """request_reload loads the file again without any change to it."""
    watcher.request_reload()

    assert recorder.next_config().schedule.debounce_seconds == 1.0


def test_a_symlinked_config_is_reloaded_when_its_target_changes(
    tmp_path: Path, recorder: Recorder, environ: dict[str, str]
) -> None:
    """A config that is a symlink is reloaded when its target changes."""
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "rollkeeper.toml"
    target.write_text(debounce_config(1.0))
    link_folder = tmp_path / "xdg"
    link_folder.mkdir()
    link = link_folder / "config.toml"
    link.symlink_to(target)
    watcher = ConfigWatcher(
        link, recorder.on_change, recorder.on_error, environ=environ, debounce_seconds=0.05
    )
    watcher.start()
    try:
        target.write_text(debounce_config(8.0))
        assert recorder.next_config().schedule.debounce_seconds == 8.0
    finally:
        watcher.stop()


def test_a_failing_callback_does_not_stop_the_watcher(
    config_file: Path, recorder: Recorder, environ: dict[str, str]
) -> None:
    """A change callback that raises does not stop the watcher: the next edit is still delivered."""
    seen: queue.Queue[Config] = queue.Queue()

    def explode_once(config: Config) -> None:
        seen.put(config)
        if seen.qsize() == 1:
            raise RuntimeError("bug in the service's handler")

    watcher = ConfigWatcher(
        config_file, explode_once, recorder.on_error, environ=environ, debounce_seconds=0.05
    )
    watcher.start()
    try:
        config_file.write_text(debounce_config(2.0))
        assert seen.get(timeout=CEILING_SECONDS).schedule.debounce_seconds == 2.0
        config_file.write_text(debounce_config(3.0))
        assert seen.get(timeout=CEILING_SECONDS).schedule.debounce_seconds == 3.0
    finally:
        watcher.stop()


def test_stop_ends_the_threads_and_later_edits_are_ignored(
    config_file: Path, recorder: Recorder, environ: dict[str, str]
) -> None:
    """stop ends the watcher's thread and may be called twice, and an edit made after it is not
    loaded."""

    def watch_threads() -> list[threading.Thread]:
        return [
            thread
            for thread in threading.enumerate()
            if thread.name == "rollkeeper-config-watch" and thread.is_alive()
        ]

    watcher = ConfigWatcher(
        config_file, recorder.on_change, recorder.on_error, environ=environ, debounce_seconds=0.05
    )
    before = set(watch_threads())
    watcher.start()
    assert len(set(watch_threads()) - before) == 1  # the thread looked for below is its own
    watcher.stop()
    watcher.stop()  # idempotent

    assert watch_threads() == []
    # A second, running watcher sees the edit: once it has loaded it, the stopped one would
    # have too, had it still been watching.
    witness = Recorder()
    running = ConfigWatcher(
        config_file, witness.on_change, witness.on_error, environ=environ, debounce_seconds=0.05
    )
    running.start()
    try:
        config_file.write_text(debounce_config(9.0))
        assert witness.next_config().schedule.debounce_seconds == 9.0
    finally:
        running.stop()
    assert watcher.checks_completed == 0
    assert recorder.calls.empty()
