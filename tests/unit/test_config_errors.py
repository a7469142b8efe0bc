"""Broken configs: every one is reported with the exact message and the line to fix.

Each case writes a real file, loads it with ``load_config`` and compares the full text of
every problem (``FILE:LINE: key.path: message``). ``{file}`` stands for the config file and
``{tmp}`` for the test's temporary folder, which holds a regular file ``afile`` used where a
folder is expected (permission bits would not stop root; a file in the way does).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollkeeper.config import ConfigError, ConfigProblem, load_config

BROKEN_CONFIGS = [
    pytest.param(
        "[archive]\npath = ~/photos\n",
        [
            "{file}:2:8: TOML syntax error: invalid value",
        ],
        id="syntax_bare_path",
    ),
    pytest.param(
        '[archive]\nlayout = "{year}/{name}\n',
        [
            "{file}:2:24: TOML syntax error: illegal character '\\n'",
        ],
        id="syntax_unclosed_string",
    ),
    pytest.param(
        '[archive]\npath = "/a"\n\npath = "/b"\n',
        [
            "{file}:4:1: TOML syntax error: 'archive.path' is defined twice (TOML "
            "allows each key and table only once)",
        ],
        id="syntax_duplicate_key",
    ),
    pytest.param(
        '[logging]\nlevel = "info"\n[logging]\nformat = "json"\n',
        [
            "{file}:3:2: TOML syntax error: 'logging' is defined twice (TOML allows "
            "each key and table only once)",
        ],
        id="syntax_duplicate_table",
    ),
    pytest.param(
        '[schedule]\ndebounce_seconds = "2"\n',
        [
            '{file}:2: schedule.debounce_seconds: must be a number, not a string ("2")',
        ],
        id="number_as_string",
    ),
    pytest.param(
        '[filters]\nscreenshots = "yes"\n',
        [
            '{file}:2: filters.screenshots: must be true or false, not a string ("yes")',
        ],
        id="bool_as_string",
    ),
    pytest.param(
        "[schedule]\nscrub_rotation_weeks = 1.5\n",
        [
            "{file}:2: schedule.scrub_rotation_weeks: must be a whole number, not a float (1.5)",
        ],
        id="float_for_whole",
    ),
    pytest.param(
        'archive = "/photos"\n',
        [
            '{file}:1: archive: must be a table ([archive]), not a string ("/photos")',
        ],
        id="section_not_table",
    ),
    pytest.param(
        '[archive]\nlayuot = "{year}/{name}"\n',
        [
            "{file}:2: archive.layuot: unknown key 'layuot' in [archive]; did you mean 'layout'?",
        ],
        id="unknown_key_hint",
    ),
    pytest.param(
        "[archive]\ndebounce_seconds = 1.0\n",
        [
            "{file}:2: archive.debounce_seconds: unknown key 'debounce_seconds' in "
            "[archive]; 'debounce_seconds' belongs in [schedule]",
        ],
        id="key_in_wrong_section",
    ),
    pytest.param(
        "[notification]\ndesktop = false\n",
        [
            "{file}:1: notification: unknown section [notification]; did you mean [notifications]?",
        ],
        id="misspelt_section",
    ),
    pytest.param(
        'level = "debug"\n',
        [
            "{file}:1: level: unknown key 'level' outside any [section]; did you mean "
            "'level' in [logging]?",
        ],
        id="top_level_key",
    ),
    pytest.param(
        '[archive]\nlayout = "{year}/{mnth}/{name}"\n',
        [
            "{file}:2: archive.layout: unknown placeholder {mnth}; did you mean "
            "{month}? (known: {day}, {device_name}, {extension}, {hour}, {minute}, "
            "{month}, {name}, {stem}, {udid}, {year})",
        ],
        id="layout_placeholder",
    ),
    pytest.param(
        '[archive]\nlayout = "{year}/{month}"\n',
        [
            "{file}:2: archive.layout: the last part of the layout must end with "
            "{name} (or {stem}...{extension}) so each file keeps its own name",
        ],
        id="layout_not_name",
    ),
    pytest.param(
        '[archive]\nlayout = "/srv/{name}"\n',
        [
            "{file}:2: archive.layout: the layout must be relative to the archive "
            "folder (remove the leading /)",
        ],
        id="layout_absolute",
    ),
    pytest.param(
        '[archive]\nlayout = "{year}/../{name}"\n',
        [
            "{file}:2: archive.layout: the layout may not use . or .. as a folder",
        ],
        id="layout_dotdot",
    ),
    pytest.param(
        '[archive]\npath = "photos/backup"\n',
        [
            "{file}:2: archive.path: 'photos/backup' is a relative path; write an "
            "absolute one (or start it with ~): the service does not run in your working folder",
        ],
        id="relative_archive",
    ),
    pytest.param(
        '[archive]\npath = "{tmp}/afile/photos"\n',
        [
            "{file}:2: archive.path: '{tmp}/afile' is a file, not a folder, so "
            "'{tmp}/afile/photos' cannot be created",
        ],
        id="archive_under_file",
    ),
    pytest.param(
        '[archive]\npath = "{tmp}/afile"\n',
        [
            "{file}:2: archive.path: '{tmp}/afile' is a file, not a folder",
        ],
        id="archive_is_file",
    ),
    pytest.param(
        '[archive]\npath = "$ROLLKEEPER_TEST_UNSET/photos"\n',
        [
            "{file}:2: archive.path: $ROLLKEEPER_TEST_UNSET is not set (needed to "
            "expand '$ROLLKEEPER_TEST_UNSET/photos')",
        ],
        id="unset_variable",
    ),
    pytest.param(
        "[schedule]\nretry_initial_seconds = 0\n",
        [
            "{file}:2: schedule.retry_initial_seconds: must be greater than 0, got 0",
        ],
        id="zero_retry",
    ),
    pytest.param(
        "[schedule]\nstale_after_days = -1\n",
        [
            "{file}:2: schedule.stale_after_days: must be greater than 0, got -1",
        ],
        id="negative_stale",
    ),
    pytest.param(
        "[schedule]\nretry_initial_seconds = 10\nretry_max_seconds = 5\n",
        [
            "{file}:3: schedule.retry_max_seconds: must be at least "
            "retry_initial_seconds (10), got 5",
        ],
        id="retry_max_below_initial",
    ),
    pytest.param(
        '[filters]\nmedia_kinds = ["photo", "vidoe"]\n',
        [
            '{file}:2: filters.media_kinds[1]: unknown value "vidoe"; expected one of '
            '"photo", "video", "sidecar"; did you mean "video"?',
        ],
        id="unknown_media_kind",
    ),
    pytest.param(
        "[filters]\nmedia_kinds = []\n",
        [
            "{file}:2: filters.media_kinds: must list at least one value",
        ],
        id="empty_media_kinds",
    ),
    pytest.param(
        '[schedule]\nscrub_cron = "0 25 * * sun"\n',
        [
            "{file}:2: schedule.scrub_cron: '0 25 * * sun' is not a crontab line "
            "(minute hour day-of-month month day-of-week): Error validating expression "
            "'25': the last value (25) is higher than the maximum value (23)",
        ],
        id="bad_cron",
    ),
    pytest.param(
        '[filters]\nsince = "2024-02-30"\n',
        [
            "{file}:2: filters.since: '2024-02-30' is not a date; write it as "
            'YYYY-MM-DD (or "" for no limit)',
        ],
        id="bad_since",
    ),
    pytest.param(
        "[filters]\nsince = 2024-02-01T10:00:00\n",
        [
            "{file}:2: filters.since: must be a date such as 2024-01-31, not a date and time",
        ],
        id="since_datetime",
    ),
    pytest.param(
        '[logging]\nlevel = "verbose"\n',
        [
            '{file}:2: logging.level: unknown value "verbose"; expected one of '
            '"debug", "info", "warning", "error"',
        ],
        id="unknown_level",
    ),
    pytest.param(
        '[logging]\nformat = "text"\n',
        [
            '{file}:2: logging.format: unknown value "text"; expected one of "auto", '
            '"console", "json"',
        ],
        id="unknown_format",
    ),
    pytest.param(
        '[device]\nconnection_types = ["USB", "wifi"]\n',
        [
            '{file}:2: device.connection_types[1]: unknown value "wifi"; expected one '
            'of "USB", "Network"',
        ],
        id="connection_type",
    ),
    pytest.param(
        '[notifications]\nhealthcheck_url = "hc-ping.com/abc"\n',
        [
            "{file}:2: notifications.healthcheck_url: 'hc-ping.com/abc' is not an "
            "http:// or https:// URL",
        ],
        id="healthcheck_url",
    ),
    pytest.param(
        '[device]\nusbmux_address = "localhost:usbmux"\n',
        [
            "{file}:2: device.usbmux_address: 'localhost:usbmux' is neither HOST:PORT "
            "nor an absolute socket path (/var/run/usbmuxd)",
        ],
        id="usbmux_port",
    ),
    pytest.param(
        "[notifications]\nhook_timeout_seconds = inf\n",
        [
            "{file}:2: notifications.hook_timeout_seconds: must be a finite number, got inf",
        ],
        id="infinite_timeout",
    ),
    pytest.param(
        "[device]\npair_timeout_seconds = 0\n",
        [
            "{file}:2: device.pair_timeout_seconds: must be greater than 0, got 0",
        ],
        id="pair_timeout_zero",
    ),
    pytest.param(
        '[state]\npath = "{tmp}"\n',
        [
            "{file}:2: state.path: '{tmp}' is a folder; name a file inside it",
        ],
        id="state_is_folder",
    ),
    pytest.param(
        '# dotted keys work outside a section\narchive.layout = "{year}"\n',
        [
            "{file}:2: archive.layout: the last part of the layout must end with "
            "{name} (or {stem}...{extension}) so each file keeps its own name",
        ],
        id="dotted_key",
    ),
    pytest.param(
        'archive = { path = "/photos", collision = "rename" }\n',
        [
            '{file}:1: archive.collision: unknown value "rename"; expected one of "suffix"',
        ],
        id="inline_table",
    ),
    pytest.param(
        '[filters]\ninclude_devices = [\n  "Anna\'s iPhone",\n  42,\n]\n',
        [
            "{file}:4: filters.include_devices[1]: must be a string in quotes, not an integer (42)",
        ],
        id="multi_line_array",
    ),
    pytest.param(
        '[archive]\npath = "rel"\n\n[schedule]\ndebounce_seconds = -2\n\n[logging]\nlevel = '
        '"loud"\n',
        [
            "{file}:2: archive.path: 'rel' is a relative path; write an absolute one "
            "(or start it with ~): the service does not run in your working folder",
            "{file}:5: schedule.debounce_seconds: must be at least 0, got -2",
            '{file}:8: logging.level: unknown value "loud"; expected one of "debug", '
            '"info", "warning", "error"',
        ],
        id="several_at_once",
    ),
]


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home)}


def problems_of(path: Path, environ: dict[str, str]) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ)
    return raised.value.problems


@pytest.mark.parametrize(("text", "expected"), BROKEN_CONFIGS)
def test_a_broken_config_is_reported_exactly(
    tmp_path: Path, environ: dict[str, str], text: str, expected: list[str]
) -> None:
    """Each broken config is reported with exactly the expected problems, each as FILE:LINE:
    key.path: message."""
    (tmp_path / "afile").write_text("not a folder")
    config_file = tmp_path / "config.toml"
    config_file.write_text(text.replace("{tmp}", str(tmp_path)))

    problems = problems_of(config_file, environ)

    def fill(line: str) -> str:
        return line.replace("{file}", str(config_file)).replace("{tmp}", str(tmp_path))

    assert [str(problem) for problem in problems] == [fill(line) for line in expected]


def test_the_error_text_is_one_line_per_problem_and_problems_carry_their_parts(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    """A ConfigError's text is one line per problem, and each problem carries its file, line, column
    and key path."""
    config_file = tmp_path / "config.toml"
    config_file.write_text('[archive]\n  layout = "{year}"\n[logging]\nlevel = "loud"\n')

    with pytest.raises(ConfigError) as raised:
        load_config(config_file, environ)

    first, second = raised.value.problems
    assert (first.file, first.line, first.column, first.key_path) == (
        str(config_file),
        2,
        3,
        "archive.layout",
    )
    assert (second.line, second.key_path) == (4, "logging.level")
    assert str(raised.value).splitlines() == [str(first), str(second)]


def test_a_missing_file_is_one_problem(tmp_path: Path, environ: dict[str, str]) -> None:
    """A config file that does not exist is one problem: no such file."""
    missing = tmp_path / "nope.toml"

    assert [str(problem) for problem in problems_of(missing, environ)] == [
        f"{missing}: no such file"
    ]


def test_a_folder_instead_of_a_file_is_one_problem(tmp_path: Path, environ: dict[str, str]) -> None:
    """A folder given as the config file is one problem, which says to name the file in it."""
    assert [str(problem) for problem in problems_of(tmp_path, environ)] == [
        f"{tmp_path}: is a folder; name the config file in it"
    ]


def test_text_that_is_not_utf8_names_its_line(tmp_path: Path, environ: dict[str, str]) -> None:
    """A config that is not UTF-8 is reported with the line of its first bad byte."""
    config_file = tmp_path / "config.toml"
    config_file.write_bytes(b'[archive]\npath = "/photos"\nlayout = "caf\xe9/{name}"\n')

    assert [str(problem) for problem in problems_of(config_file, environ)] == [
        f"{config_file}:3: is not UTF-8 text (TOML files must be)"
    ]


def test_an_unwritable_default_is_reported_as_the_default(tmp_path: Path) -> None:
    """A default that cannot work (the archive under a HOME that is a file) is reported as the
    default, with how to choose another."""
    # HOME is a regular file, so the default archive ~/Pictures/rollkeeper cannot exist.
    home = tmp_path / "home"
    home.write_text("not a folder")
    config_file = tmp_path / "config.toml"
    config_file.write_text('[state]\npath = "/tmp/rollkeeper-test-state.sqlite3"\n[device]\n')
    environ = {"HOME": str(home), "XDG_STATE_HOME": str(tmp_path / "state")}

    assert [str(problem) for problem in problems_of(config_file, environ)] == [
        f"{config_file}: archive.path: '{home}' is a file, not a folder, so "
        f"'{home}/Pictures/rollkeeper' cannot be created "
        "(this is the default; set it in the config to choose another)",
    ]


def test_environment_problems_name_the_variable(tmp_path: Path, environ: dict[str, str]) -> None:
    """Bad ROLLKEEPER_ overrides are reported under the variable's name, with hints; a variable
    without "__" is not an override and is ignored."""
    config_file = tmp_path / "config.toml"
    config_file.write_text('[schedule]\ndebounce_seconds = 1.0\n[logging]\nlevel = "info"\n')
    environ |= {
        "ROLLKEEPER_SCHEDULE__DEBOUNCE_SECONDS": "-1",
        "ROLLKEEPER_ARCHVE__PATH": "/photos",
        "ROLLKEEPER_LOGGING__LEVL": "debug",
        "ROLLKEEPER_FILTERS": "photo",  # no __: not an override, ignored
        "ROLLKEEPER___PATH": "/x",
    }

    assert [str(problem) for problem in problems_of(config_file, environ)] == [
        "ROLLKEEPER_ARCHVE__PATH: archve: unknown section [archve]; did you mean [archive]?",
        "ROLLKEEPER_LOGGING__LEVL: logging.levl: unknown key 'levl' in [logging]; "
        "did you mean 'level'?",
        "ROLLKEEPER_SCHEDULE__DEBOUNCE_SECONDS: schedule.debounce_seconds: "
        "must be at least 0, got -1",
        "ROLLKEEPER___PATH: not an override: write ROLLKEEPER_<SECTION>__<KEY>, "
        "e.g. ROLLKEEPER_ARCHIVE__PATH",
    ]


def test_without_a_file_problems_name_the_defaults(tmp_path: Path) -> None:
    """With no config file, a bad override is still reported under its variable's name."""
    environ = {"HOME": str(tmp_path), "ROLLKEEPER_ARCHIVE__LAYOUT": "{year}"}

    with pytest.raises(ConfigError) as raised:
        load_config(None, environ)

    assert [str(problem) for problem in raised.value.problems] == [
        "ROLLKEEPER_ARCHIVE__LAYOUT: archive.layout: the last part of the layout must end with "
        "{name} (or {stem}...{extension}) so each file keeps its own name"
    ]
