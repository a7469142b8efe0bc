"""The command line: its table of commands, lazy imports, version, completion and man page."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import rollkeeper
from rollkeeper.cli import COMMANDS, build_parser, chosen_command, main
from rollkeeper.commands.manual import render_manual

#: Libraries a command that does not need them must not import (each costs tens of ms or more).
HEAVY = ("pydantic", "pymobiledevice3", "apscheduler", "rich", "structlog", "watchdog")


def imported_after(*arguments: str, environment: dict[str, str] | None = None) -> list[str]:
    """The rollkeeper command modules and heavy libraries imported by running the command
    line with ``arguments`` in a fresh interpreter."""
    script = (
        "import sys\n"
        "from rollkeeper.cli import main\n"
        "try:\n"
        f"    main({list(arguments)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "names = sorted(n for n in sys.modules if n.startswith('rollkeeper.commands.') or "
        f"n.split('.')[0] in {HEAVY!r})\n"
        "print('MODULES', ' '.join(names))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment or dict(os.environ),
        check=True,
    )
    (line,) = [text for text in completed.stdout.splitlines() if text.startswith("MODULES")]
    return line.split()[1:]


class RecordingSubparsers:
    """What a command module's ``register`` asks of ``subparsers``: each name and help line."""

    def __init__(self) -> None:
        self.real = argparse.ArgumentParser().add_subparsers()
        self.added: dict[str, object] = {}

    def add_parser(self, name: str, **options: object) -> argparse.ArgumentParser:
        self.added[name] = options.get("help")
        parser: argparse.ArgumentParser = self.real.add_parser(name, **options)  # type: ignore[arg-type]
        return parser


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.name)
def test_each_module_registers_its_command_with_the_tables_help(command: object) -> None:
    """Every table entry's module registers a parser of that name with the same help line the
    table lists for --help (so the table cannot drift from the modules)."""
    assert isinstance(command, tuple)
    name, help_line, module_name = command
    subparsers = RecordingSubparsers()
    importlib.import_module(module_name).register(subparsers)
    assert subparsers.added == {name: help_line}


def test_help_and_version_import_no_command_and_no_heavy_library() -> None:
    """--help and --version list from the table: no command module, pydantic, pymobiledevice3,
    APScheduler, rich, structlog or watchdog is imported."""
    assert imported_after("--help") == []
    assert imported_after("--version") == []


def test_a_command_imports_only_its_own_module() -> None:
    """`rollkeeper devices --help` imports the devices module and no other command's."""
    commands = [name for name in imported_after("devices", "--help") if "commands" in name]
    assert commands == ["rollkeeper.commands.devices"]


def test_the_command_word_is_found_past_the_options() -> None:
    """The chosen command is the first word that is neither an option nor --config's value."""
    assert chosen_command(["--config", "status", "devices", "--json"]) == "devices"
    assert chosen_command(["--config=x.toml", "status"]) == "status"
    assert chosen_command(["--version"]) is None
    assert chosen_command([]) is None


def test_the_version_is_the_packages_one(capsys: pytest.CaptureFixture[str]) -> None:
    """`rollkeeper --version` says the version the installed package declares (pyproject
    takes it from rollkeeper.__version__: one place)."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"rollkeeper {rollkeeper.__version__}"
    assert version("rollkeeper") == rollkeeper.__version__
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert 'version = {attr = "rollkeeper.__version__"}' in pyproject


def test_the_man_page_has_every_command_and_option_and_formats_cleanly() -> None:
    """The man page is made from the whole parser: every command and sub-action with its
    options; groff formats it without a warning."""
    page = render_manual(build_parser())
    for command in COMMANDS:
        assert f".SS {command.name}\n" in page.replace("\\-", "-")
    for text in ("offsite run", "service install", "--older-than", "--read-data"):
        assert text in page.replace("\\-", "-")
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed")
    formatted = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww"],
        input=page,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert formatted.stderr == ""
    plain = re.sub(".\b", "", formatted.stdout)  # bold and underline are overstrikes
    assert "rollkeeper freeable [-h] [--older-than AGE]" in plain


def test_completion_scripts_are_printed_for_each_shell(capsys: pytest.CaptureFixture[str]) -> None:
    """`rollkeeper completion bash|zsh|fish` prints a script that calls rollkeeper back."""
    for shell, marker in (
        ("bash", "complete"),
        ("zsh", "#compdef rollkeeper"),
        ("fish", "complete --command rollkeeper"),
    ):
        assert main(["completion", shell]) == 0
        assert marker in capsys.readouterr().out


def complete(line: str, tmp_path: Path) -> list[str]:
    """What the shell would be offered for ``line`` (argcomplete's protocol, for real: the
    command runs with _ARGCOMPLETE set and writes the candidates to descriptor 8)."""
    output = tmp_path / "candidates"
    environment = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": "\n",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "COMP_TYPE": "9",
    }
    script = "import sys; from rollkeeper.cli import main; sys.exit(main())"
    subprocess.run(
        ["bash", "-c", f'exec 8>"{output}"; exec "$0" -c "$1"', sys.executable, script],
        env=environment,
        timeout=120,
        check=False,
    )
    return output.read_text().split("\n")


def test_completion_offers_commands_and_options(tmp_path: Path) -> None:
    """Tab after `rollkeeper off` offers offsite; after `rollkeeper offsite ` its actions; after
    `rollkeeper freeable --o` the --older-than option."""
    assert complete("rollkeeper off", tmp_path) == ["offsite "]
    actions = {word.strip() for word in complete("rollkeeper offsite ", tmp_path)}
    assert {"run", "check", "status", "init"} <= actions
    assert [word.strip() for word in complete("rollkeeper freeable --o", tmp_path)] == [
        "--older-than"
    ]


def test_status_json_still_reads_as_before_with_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command run through the lazy parser behaves as before: status --json on an empty
    state is one JSON document."""
    config = tmp_path / "config.toml"
    config.write_text(f'[archive]\npath = "{tmp_path}"\n[state]\npath = "{tmp_path / "s.db"}"\n')
    main(["--config", str(config), "status", "--json"])
    assert json.loads(capsys.readouterr().out)["state"]["exists"] is False


def test_status_devices_and_config_check_of_an_unchanged_config_skip_pydantic(
    tmp_path: Path,
) -> None:
    """Once a config has passed validation, status, devices and config check of it answer from
    the validated-config cache: none of them imports pydantic or another heavy library."""
    (tmp_path / "archive").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[archive]\npath = "{tmp_path / "archive"}"\n[state]\npath = "{tmp_path / "s.db"}"\n'
    )
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for command in (["status"], ["devices"], ["config", "check"]):
        imported_after("--config", str(config), *command, environment=environment)  # fills
        heavy = imported_after("--config", str(config), *command, environment=environment)
        assert [name for name in heavy if "commands" not in name] == [], command


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    """`rollkeeper status | head -1`: when the reader has gone, the command stops quietly with
    exit code 141 (a broken pipe, as the shell reports it), not with a BrokenPipeError
    traceback on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    environment = os.environ | {
        "HOME": str(tmp_path),
        "ROLLKEEPER_STATE__PATH": str(tmp_path / "state" / "state.sqlite3"),
        "ROLLKEEPER_ARCHIVE__PATH": str(tmp_path / "archive"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "rollkeeper", "status"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=environment,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in finished.stderr.decode()
    assert finished.returncode == 141
