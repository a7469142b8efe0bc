"""The validated-config cache: used only while the file, the environment, the code and the
file-system checks are what they were when the config last passed full validation."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rollkeeper.bootstrap import load_config_leniently
from rollkeeper.config import SECTIONS, load_config
from rollkeeper.config import cache as config_cache
from rollkeeper.config.cache import ConfigView, cache_folder, filesystem_checks, recall, remember


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    (tmp_path / "archive").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(
        f'[archive]\npath = "{tmp_path / "archive"}"\n\n[state]\npath = "$STATE_DIR/s.db"\n\n'
        '[filters]\ninclude_devices = ["Ana"]\n'
    )
    return path


def validated(config_file: Path, environment: dict[str, str]) -> None:
    remember(config_file, environment, load_config(config_file, environment))


def test_a_validated_config_is_recalled_with_the_same_values(
    config_file: Path, environment: dict[str, str], tmp_path: Path
) -> None:
    """After a full validation the same file and environment are recalled from the cache, with
    the values of the validated config (lists as tuples), from a private file."""
    environment["STATE_DIR"] = str(tmp_path / "state")
    assert recall(config_file, environment) is None  # nothing cached yet
    validated(config_file, environment)
    view = recall(config_file, environment)
    assert isinstance(view, ConfigView)
    assert view.state.path == str(tmp_path / "state" / "s.db")
    assert view.filters.include_devices == ("Ana",)
    assert view.schedule.stale_after_days == 7.0
    assert set(view.data) == set(SECTIONS)
    (cached,) = cache_folder(environment).iterdir()
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE(cached.parent.stat().st_mode) == 0o700


def test_an_edit_a_variable_or_a_new_schema_is_a_miss(
    config_file: Path, environment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changing the file, a variable the file names, an override, or the validating code makes
    the cached config unusable."""
    environment["STATE_DIR"] = str(tmp_path / "state")
    validated(config_file, environment)
    assert recall(config_file, {**environment, "STATE_DIR": str(tmp_path / "other")}) is None
    assert (
        recall(config_file, {**environment, "ROLLKEEPER_SCHEDULE__STALE_AFTER_DAYS": "3"}) is None
    )
    assert recall(config_file, environment) is not None
    monkeypatch.setattr(config_cache, "_code_stamp", lambda: [["schema.py", 1, 2]])
    assert recall(config_file, environment) is None
    monkeypatch.undo()
    config_file.write_text(config_file.read_text() + '\n[logging]\nlevel = "debug"\n')
    assert recall(config_file, environment) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_folder_that_is_no_longer_writable_sends_back_to_full_validation(
    config_file: Path, environment: dict[str, str], tmp_path: Path
) -> None:
    """The file-system checks run again on every recall: an archive folder made read-only
    since is a miss, and the full validation then reports it."""
    environment["STATE_DIR"] = str(tmp_path / "state")
    validated(config_file, environment)
    (tmp_path / "archive").chmod(0o500)
    try:
        assert recall(config_file, environment) is None
        loaded = load_config_leniently(str(config_file), environment, quick=True)
        assert loaded.config is None and "not writable" in loaded.problems[0]
    finally:
        (tmp_path / "archive").chmod(0o700)


def test_a_file_where_the_archive_folder_was_is_a_miss(
    config_file: Path, environment: dict[str, str], tmp_path: Path
) -> None:
    """Even as root: the archive folder replaced by a file fails the re-run check."""
    environment["STATE_DIR"] = str(tmp_path / "state")
    validated(config_file, environment)
    (tmp_path / "archive").rmdir()
    (tmp_path / "archive").write_text("not a folder")
    assert recall(config_file, environment) is None


def test_a_broken_config_is_never_cached_and_the_quick_load_fills_the_cache(
    config_file: Path, environment: dict[str, str], tmp_path: Path
) -> None:
    """A broken config leaves no cache entry (every use re-validates and reports it); a good
    one loaded quickly is validated in full once, then recalled."""
    broken = tmp_path / "broken.toml"
    broken.write_text('[schedule]\nstale_after_days = "soon"\n')
    loaded = load_config_leniently(str(broken), environment, quick=True)
    assert loaded.config is None and recall(broken, environment) is None
    environment["STATE_DIR"] = str(tmp_path / "state")
    first = load_config_leniently(str(config_file), environment, quick=True)
    assert first.config is not None and not isinstance(first.config, ConfigView)
    second = load_config_leniently(str(config_file), environment, quick=True)
    assert isinstance(second.config, ConfigView)
    assert second.state_path == first.state_path


def test_every_checked_path_of_the_schema_is_checked_again() -> None:
    """Each field the loader checks against the file system (writable folders and files, secret
    files) is in the list of checks a recalled config must pass again."""
    from rollkeeper.config.field_types import _archive_folder, _writable_file, _writable_folder
    from rollkeeper.config.offsite_settings import _secret_file

    checked = {_archive_folder, _writable_file, _writable_folder, _secret_file}
    fields = {
        (section, key)
        for section, model in SECTIONS.items()
        for key, field in model.model_fields.items()
        if any(getattr(item, "func", None) in checked for item in field.metadata)
    }
    config = load_config(None, {"HOME": "/home/ana"})
    values = {str(getattr(getattr(config, section), key)) for section, key in fields}
    values.discard("")
    assert fields >= {("archive", "path"), ("state", "path"), ("offsite", "password_file")}
    assert values <= {path for _, path in filesystem_checks(config)}
