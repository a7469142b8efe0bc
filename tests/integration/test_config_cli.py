"""``rollkeeper config ...`` as a user runs it: a real process, real files, real exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rollkeeper.config.template import render_starter_config


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def environ(home: Path) -> dict[str, str]:
    """A clean environment: no XDG variables or overrides from the machine running the tests."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ROLLKEEPER_", "XDG_")) and name != "HOME"
    }
    return kept | {"HOME": str(home)}


def rollkeeper(*arguments: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rollkeeper", *arguments],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_init_then_check_round_trips(home: Path, environ: dict[str, str]) -> None:
    """config init writes the starter config at the default path, 0600 in 0700 folders with no
    temporary left, and config check then finds it ok."""
    written = home / ".config" / "rollkeeper" / "config.toml"

    init = rollkeeper("config", "init", environ=environ)
    assert (init.returncode, init.stdout) == (0, f"wrote {written}\n")
    assert written.read_text() == render_starter_config()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.parent.parent.stat().st_mode) == 0o700
    assert not [name for name in os.listdir(written.parent) if name != "config.toml"]

    check = rollkeeper("config", "check", environ=environ)
    assert (check.returncode, check.stdout) == (0, f"{written}: ok\n")


def test_init_never_overwrites_without_force(home: Path, environ: dict[str, str]) -> None:
    """config init refuses to replace an existing file, saying so, and replaces it only with
    --force."""
    target = home / "mine.toml"
    target.write_text('[logging]\nlevel = "debug"\n')

    refused = rollkeeper("config", "init", str(target), environ=environ)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"rollkeeper: {target} already exists; edit it, or pass --force to replace it\n"
    )
    assert target.read_text() == '[logging]\nlevel = "debug"\n'

    forced = rollkeeper("config", "init", "--force", str(target), environ=environ)
    assert forced.returncode == 0
    assert target.read_text() == render_starter_config()


def test_init_writes_where_config_points(home: Path, environ: dict[str, str]) -> None:
    """config init writes to the path given with --config."""
    target = home / "elsewhere" / "rk.toml"

    result = rollkeeper("--config", str(target), "config", "init", environ=environ)

    assert result.returncode == 0
    assert target.read_text() == render_starter_config()


def test_init_reports_a_file_in_the_way_in_one_line(home: Path, environ: dict[str, str]) -> None:
    """config init under a file that stands where a folder should be fails with one line naming the
    path."""
    (home / "blocker").write_text("a file, not a folder")
    target = home / "blocker" / "config.toml"

    result = rollkeeper("config", "init", str(target), environ=environ)

    assert result.returncode == 1
    assert result.stderr == f"rollkeeper: cannot write {target}: Not a directory\n"


def test_check_lists_every_problem_and_exits_1(home: Path, environ: dict[str, str]) -> None:
    """config check lists every problem, one a line, with their count, and exits 1."""
    config_file = home / "broken.toml"
    config_file.write_text('[archive]\npath = "photos"\n\n[logging]\nlevle = "debug"\n')

    result = rollkeeper("config", "check", str(config_file), environ=environ)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{config_file}:2: archive.path: 'photos' is a relative path; write an absolute one "
        "(or start it with ~): the service does not run in your working folder",
        f"{config_file}:5: logging.levle: unknown key 'levle' in [logging]; did you mean 'level'?",
        "2 problems",
    ]


def test_check_json(home: Path, environ: dict[str, str]) -> None:
    """config check --json gives each problem's file, line, column, key, message and text."""
    config_file = home / "broken.toml"
    config_file.write_text("[schedule]\nretry_initial_seconds = 0\n")

    result = rollkeeper("config", "check", "--json", str(config_file), environ=environ)

    assert result.returncode == 1
    assert json.loads(result.stdout) == {
        "ok": False,
        "problems": [
            {
                "file": str(config_file),
                "line": 2,
                "column": 1,
                "key": "schedule.retry_initial_seconds",
                "message": "must be greater than 0, got 0",
                "text": f"{config_file}:2: schedule.retry_initial_seconds: "
                "must be greater than 0, got 0",
            }
        ],
    }


def test_check_without_any_file_checks_the_defaults(home: Path, environ: dict[str, str]) -> None:
    """config check with no config file checks the defaults and says the file does not exist."""
    result = rollkeeper("config", "check", environ=environ)

    assert result.returncode == 0
    default = home / ".config" / "rollkeeper" / "config.toml"
    assert result.stdout == f"no config file ({default} does not exist): ok\n"


def test_check_of_a_missing_named_file_fails(home: Path, environ: dict[str, str]) -> None:
    """config check of a file named by $ROLLKEEPER_CONFIG that does not exist fails with exit code
    1."""
    environ["ROLLKEEPER_CONFIG"] = str(home / "typo.toml")

    result = rollkeeper("config", "check", environ=environ)

    assert result.returncode == 1
    assert result.stderr == f"{home / 'typo.toml'}: no such file\n1 problem\n"


def test_show_prints_the_effective_config_as_toml(home: Path, environ: dict[str, str]) -> None:
    """config show prints the effective config, the file and the environment overrides merged over
    the defaults, as TOML, and --json gives the same values."""
    config_file = home / "config.toml"
    config_file.write_text('[archive]\npath = "~/Backup"\n[schedule]\ndebounce_seconds = 1\n')
    environ |= {"ROLLKEEPER_CONFIG": str(config_file), "ROLLKEEPER_LOGGING__LEVEL": "debug"}

    result = rollkeeper("config", "show", environ=environ)

    assert result.returncode == 0
    shown = tomllib.loads(result.stdout)
    assert shown["archive"]["path"] == str(home / "Backup")
    assert shown["schedule"]["debounce_seconds"] == 1.0
    assert shown["logging"]["level"] == "debug"
    assert shown["state"]["path"] == str(home / ".local/state/rollkeeper/state.sqlite3")
    assert shown["filters"]["since"] == ""

    as_json = json.loads(rollkeeper("config", "show", "--json", environ=environ).stdout)
    assert as_json == shown


def test_show_of_a_broken_config_lists_problems(home: Path, environ: dict[str, str]) -> None:
    """config show of a broken config prints nothing on stdout, lists the problems on stderr and
    exits 1."""
    config_file = home / "config.toml"
    config_file.write_text('[logging]\nlevel = "loud"\n')

    result = rollkeeper("--config", str(config_file), "config", "show", environ=environ)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f'{config_file}:2: logging.level: unknown value "loud"; '
        'expected one of "debug", "info", "warning", "error"\n'
    )


def test_path_says_where_and_whether(home: Path, environ: dict[str, str]) -> None:
    """config path tells which config file is used, where the choice came from (default,
    $ROLLKEEPER_CONFIG or --config) and whether it exists."""
    default = home / ".config" / "rollkeeper" / "config.toml"

    first = rollkeeper("config", "path", "--json", environ=environ)
    assert json.loads(first.stdout) == {"path": str(default), "source": "default", "exists": False}

    environ["ROLLKEEPER_CONFIG"] = str(home / "env.toml")
    (home / "env.toml").write_text("")
    second = rollkeeper("config", "path", environ=environ)
    assert second.stdout == f"{home / 'env.toml'}\n"
    assert second.stderr == "  from $ROLLKEEPER_CONFIG; exists\n"

    third = rollkeeper("--config", "~/cli.toml", "config", "path", "--json", environ=environ)
    assert json.loads(third.stdout) == {
        "path": str(home / "cli.toml"),
        "source": "--config",
        "exists": False,
    }
