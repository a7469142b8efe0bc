"""Loading valid configs: defaults, files, environment overrides, paths, and the example file."""

from __future__ import annotations

import datetime
import re
import tomllib
from pathlib import Path

import pydantic
import pytest

from rollkeeper.config import (
    Config,
    ConfigProblem,
    default_config_path,
    default_state_dir,
    load_config,
    resolve_config_path,
)
from rollkeeper.config.template import config_as_toml, render_starter_config

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def environ(home: Path) -> dict[str, str]:
    return {"HOME": str(home)}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_follow_the_schema(home: Path, environ: dict[str, str]) -> None:
    """With no file and no overrides every setting takes its schema default, with the paths under
    HOME."""
    config = load_config(None, environ)

    assert config.archive.path == home / "Pictures" / "rollkeeper"
    assert config.archive.layout == "{year}/{year}-{month}/{name}"
    assert config.archive.collision == "suffix"
    assert config.state.path == home / ".local/state/rollkeeper/state.sqlite3"
    assert config.device.pairing_dir == home / ".local/state/rollkeeper/pairing"
    assert config.device.usbmux_address == ""
    assert config.device.connection_types == ("USB",)
    assert config.schedule.scrub_cron == "0 4 * * sun"
    assert config.schedule.scrub_bytes_per_run == 20_000_000_000
    assert config.filters.media_kinds == ("photo", "video", "sidecar")
    assert config.filters.since is None
    assert config.logging.level == "info"


def test_a_file_overrides_defaults_and_keeps_the_rest(
    tmp_path: Path, home: Path, environ: dict[str, str]
) -> None:
    """A config file sets the keys it names (~ expanded, whole numbers read as floats where floats
    are due) and every other key keeps its default."""
    path = write(
        tmp_path,
        '[archive]\npath = "~/Backups/phone"\nlayout = "{year}/{device_name}/{stem}.{extension}"\n'
        "[schedule]\nretry_max_seconds = 600\n"
        '[filters]\nsince = 2024-03-01\nmedia_kinds = ["photo"]\n'
        '[device]\nconnection_types = ["USB", "Network"]\nusbmux_address = "127.0.0.1:27015"\n',
    )

    config = load_config(path, environ)

    assert config.archive.path == home / "Backups" / "phone"
    assert config.archive.layout == "{year}/{device_name}/{stem}.{extension}"
    assert config.schedule.retry_max_seconds == 600.0
    assert isinstance(config.schedule.retry_max_seconds, float)
    assert config.schedule.retry_initial_seconds == 5.0
    assert config.filters.since == datetime.date(2024, 3, 1)
    assert config.filters.media_kinds == ("photo",)
    assert config.device.connection_types == ("USB", "Network")
    assert config.device.usbmux_address == "127.0.0.1:27015"


def test_since_accepts_a_string_date_and_empty(tmp_path: Path, environ: dict[str, str]) -> None:
    """filters.since takes a date written as a string, and an empty string for no limit."""
    assert load_config(
        write(tmp_path, '[filters]\nsince = "2023-12-24"\n'), environ
    ).filters.since == datetime.date(2023, 12, 24)
    assert load_config(write(tmp_path, '[filters]\nsince = ""\n'), environ).filters.since is None


def test_paths_expand_variables_from_the_given_environment(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    """$VAR and ${VAR} in paths expand from the environment given to load_config."""
    environ |= {"PHOTO_DISK": str(tmp_path / "disk")}
    path = write(
        tmp_path,
        '[archive]\npath = "${PHOTO_DISK}/iphone"\n[state]\npath = "$PHOTO_DISK/state.db"\n'
        '[device]\nusbmux_address = "$PHOTO_DISK/usbmuxd"\n',
    )

    config = load_config(path, environ)

    assert config.archive.path == tmp_path / "disk" / "iphone"
    assert config.state.path == tmp_path / "disk" / "state.db"
    assert config.device.usbmux_address == str(tmp_path / "disk" / "usbmuxd")


def test_xdg_state_home_moves_the_state_defaults(tmp_path: Path, environ: dict[str, str]) -> None:
    """XDG_STATE_HOME moves the default state database and pairing folder."""
    environ |= {"XDG_STATE_HOME": str(tmp_path / "xdg-state")}

    config = load_config(None, environ)

    assert config.state.path == tmp_path / "xdg-state" / "rollkeeper" / "state.sqlite3"
    assert config.device.pairing_dir == tmp_path / "xdg-state" / "rollkeeper" / "pairing"


def test_environment_overrides_win_over_the_file(
    tmp_path: Path, home: Path, environ: dict[str, str]
) -> None:
    """ROLLKEEPER_SECTION__KEY overrides win over the file and are read as TOML values, except text
    settings, which take the text as written."""
    path = write(tmp_path, '[schedule]\ndebounce_seconds = 1.0\n[logging]\nlevel = "info"\n')
    environ |= {
        "ROLLKEEPER_SCHEDULE__DEBOUNCE_SECONDS": "4",
        "ROLLKEEPER_LOGGING__LEVEL": "debug",
        "ROLLKEEPER_ARCHIVE__PATH": "~/elsewhere",
        "ROLLKEEPER_FILTERS__MEDIA_KINDS": '["video"]',
        "ROLLKEEPER_FILTERS__SINCE": "2020-01-01",
        "ROLLKEEPER_FILTERS__SCREENSHOTS": "false",
        "ROLLKEEPER_NOTIFICATIONS__ON_SUCCESS": "true",
        "ROLLKEEPER_NOTIFICATIONS__ON_FAILURE": '"quoted text"',
        "ROLLKEEPER_CONFIG": "/not/an/override",
    }

    config = load_config(path, environ)

    assert config.schedule.debounce_seconds == 4.0
    assert config.logging.level == "debug"
    assert config.archive.path == home / "elsewhere"
    assert config.filters.media_kinds == ("video",)
    assert config.filters.since == datetime.date(2020, 1, 1)
    assert config.filters.screenshots is False
    # A text setting takes the text, even when it would parse as another TOML value.
    assert config.notifications.on_success == "true"
    assert config.notifications.on_failure == "quoted text"


def test_the_config_is_frozen(environ: dict[str, str]) -> None:
    """A loaded config cannot be changed: assigning a setting raises."""
    config = load_config(None, environ)

    with pytest.raises(pydantic.ValidationError):
        config.archive.layout = "{name}"


def test_a_config_can_be_built_in_code_without_touching_files() -> None:
    """A Config built in code validates without reading or creating any file."""
    config = Config.model_validate({"archive": {"path": "/nonexistent/archive"}})

    assert config.archive.path == Path("/nonexistent/archive")


def test_the_example_file_is_what_the_schema_generates() -> None:
    """config.example.toml is exactly what the schema renders, so it cannot drift from it."""
    example = (REPO_ROOT / "config.example.toml").read_text()

    assert example == render_starter_config(), (
        "config.example.toml drifted from the schema: regenerate it with `make config-example`"
    )


def test_the_example_file_loads_to_the_defaults(environ: dict[str, str]) -> None:
    """config.example.toml loads to the same config as no file at all."""
    assert load_config(REPO_ROOT / "config.example.toml", environ) == load_config(None, environ)


def test_the_example_file_lists_every_key() -> None:
    """config.example.toml lists every key of every section, the platform defaults as comments."""
    text = (REPO_ROOT / "config.example.toml").read_text()
    # Keys shown commented out (platform defaults) count as listed.
    uncommented = "\n".join(
        line[2:] if re.match(r"# [a-z_]+ = ", line) else line for line in text.splitlines()
    )
    data = tomllib.loads(uncommented)

    for section, model in Config.model_fields.items():
        assert model.annotation is not None
        fields = model.annotation.model_fields
        assert set(data[section]) == set(fields), section


def test_the_docs_describe_every_key() -> None:
    """docs/config.md has a heading for every config section and a row for every key."""
    docs = (REPO_ROOT / "docs" / "config.md").read_text()

    for section_name, section in Config.model_fields.items():
        assert f"### [{section_name}]" in docs
        assert section.annotation is not None
        for name in section.annotation.model_fields:
            assert f"| `{name}` |" in docs, f"{section_name}.{name} is missing from docs/config.md"


def test_every_setting_has_a_description() -> None:
    """Every setting in the schema has a description longer than 20 characters."""
    for section in Config.model_fields.values():
        assert section.annotation is not None
        for name, field in section.annotation.model_fields.items():
            assert field.description and len(field.description) > 20, name


def test_show_output_loads_back_to_the_same_config(tmp_path: Path, environ: dict[str, str]) -> None:
    """The TOML that `config show` prints loads back to the same config."""
    source = write(
        tmp_path,
        '[filters]\nsince = 2024-05-01\ninclude_devices = ["Anna\'s iPhone"]\n'
        '[notifications]\non_failure = "notify-send \\"backup failed\\""\n',
    )
    config = load_config(source, environ)

    shown = tmp_path / "shown.toml"
    shown.write_text(config_as_toml(config))

    assert load_config(shown, environ) == config


def test_default_paths_on_linux(tmp_path: Path) -> None:
    """On Linux the config and state default to XDG folders under HOME, follow absolute XDG
    variables and ignore relative ones."""
    environ = {"HOME": "/home/anna"}

    assert default_config_path(environ, "linux") == Path(
        "/home/anna/.config/rollkeeper/config.toml"
    )
    assert default_state_dir(environ, "linux") == Path("/home/anna/.local/state/rollkeeper")
    environ |= {"XDG_CONFIG_HOME": "/cfg", "XDG_STATE_HOME": "/st"}
    assert default_config_path(environ, "linux") == Path("/cfg/rollkeeper/config.toml")
    assert default_state_dir(environ, "linux") == Path("/st/rollkeeper")
    # The XDG spec: relative values are ignored.
    environ |= {"XDG_CONFIG_HOME": "relative", "XDG_STATE_HOME": "relative"}
    assert default_config_path(environ, "linux") == Path(
        "/home/anna/.config/rollkeeper/config.toml"
    )
    assert default_state_dir(environ, "linux") == Path("/home/anna/.local/state/rollkeeper")


def test_default_paths_on_macos() -> None:
    """On macOS the config and state live in Application Support, whatever the XDG variables say."""
    environ = {"HOME": "/Users/anna", "XDG_CONFIG_HOME": "/ignored"}
    support = Path("/Users/anna/Library/Application Support/rollkeeper")

    assert default_config_path(environ, "darwin") == support / "config.toml"
    assert default_state_dir(environ, "darwin") == support


def test_resolve_config_path_order(tmp_path: Path) -> None:
    """The config path is the command line's, else $ROLLKEEPER_CONFIG, else the default file if it
    exists, else none."""
    environ = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    default = tmp_path / "cfg" / "rollkeeper" / "config.toml"

    assert resolve_config_path(None, environ) is None  # no file at the default path
    default.parent.mkdir(parents=True)
    default.write_text("")
    assert resolve_config_path(None, environ) == default
    environ["ROLLKEEPER_CONFIG"] = "~/from-env.toml"
    assert resolve_config_path(None, environ) == tmp_path / "from-env.toml"
    assert resolve_config_path("$HOME/cli.toml", environ) == tmp_path / "cli.toml"


def test_a_dollar_in_the_home_folder_is_not_taken_for_a_variable(tmp_path: Path) -> None:
    """A $ in the HOME folder's name is kept in the default paths, not expanded as a variable."""
    home = tmp_path / "pay$roll"
    home.mkdir()

    config = load_config(None, {"HOME": str(home)})

    assert config.archive.path == home / "Pictures" / "rollkeeper"
    assert config.state.path == home / ".local/state/rollkeeper/state.sqlite3"


def test_problem_text_without_a_line_or_a_key() -> None:
    """A problem's text leaves out the line and key it lacks, and shows the column only for TOML
    syntax errors."""
    assert str(ConfigProblem("c.toml", None, None, "", "no such file")) == "c.toml: no such file"
    assert str(ConfigProblem("c.toml", 3, 7, "a.b", "bad")) == "c.toml:3: a.b: bad"
    assert str(ConfigProblem("c.toml", 3, 7, "", "TOML syntax error: x")) == (
        "c.toml:3:7: TOML syntax error: x"
    )
    assert str(ConfigProblem("ROLLKEEPER_A__B", None, None, "a.b", "bad")) == (
        "ROLLKEEPER_A__B: a.b: bad"
    )
