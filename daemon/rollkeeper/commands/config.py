"""``rollkeeper config``: write a starter config, check one, show the effective one, find it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollkeeper.config.errors import ConfigError, ConfigProblem
from rollkeeper.config.overrides import environment_overrides
from rollkeeper.config.paths import (
    CONFIG_PATH_VARIABLE,
    UnsetVariableError,
    default_config_path,
    expand_path,
    resolve_config_path,
)

if TYPE_CHECKING:
    from rollkeeper.config import Config

# The schema (pydantic) and the template are imported where they are used: `config check` of
# an unchanged config answers from the validated-config cache without them.

CONFIG_HELP = """\
rollkeeper reads one TOML file. Which one: --config PATH, else $ROLLKEEPER_CONFIG, else
the default path below if that file exists, else none (the defaults serve):
  {default}
Any key can also be set from the environment as ROLLKEEPER_<SECTION>__<KEY>
(ROLLKEEPER_ARCHIVE__PATH=/mnt/photos overrides [archive] path).

  rollkeeper config init      write a commented starter config (every key, with its default)
  rollkeeper config check     validate it: every problem as FILE:LINE: key: message
  rollkeeper config show      the settings in effect (defaults + file + environment)
  rollkeeper config path      which file that is, and whether it exists

The running service reloads the file when you save it; a broken edit is reported and the
previous settings stay in use.
"""


def register(subparsers: Any) -> None:
    """Add ``config`` and its sub-commands to the ``rollkeeper`` parser."""
    parser = subparsers.add_parser(
        "config",
        help="write, check and show the TOML config",
        description=CONFIG_HELP.format(default=default_config_path()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION")
    parser.set_defaults(handler=lambda args: _usage(parser))

    init = actions.add_parser(
        "init",
        help="write a commented starter config",
        description=(
            "Write a starter config listing every key with its default and what it means. "
            "Without PATH it goes where rollkeeper looks for it (--config, $ROLLKEEPER_CONFIG, "
            f"else {default_config_path()}). The file is private (0600) and a folder created "
            "for it is 0700. An existing file is never overwritten unless you pass --force."
        ),
    )
    init.add_argument("path", nargs="?", metavar="PATH", help="where to write the config")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.set_defaults(handler=run_init)

    check = actions.add_parser(
        "check",
        help="validate the config; exit 0 if usable, 1 listing every problem",
        description=(
            "Validate a config file (default: the one rollkeeper would use) together with the "
            "ROLLKEEPER_<SECTION>__<KEY> environment overrides. Every problem is listed as "
            "FILE:LINE: key.path: message. Exit status 0 when the config is usable, 1 if not."
        ),
    )
    check.add_argument("path", nargs="?", metavar="PATH", help="the config file to check")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(handler=run_check)

    show = actions.add_parser(
        "show",
        help="print the settings in effect as TOML",
        description=(
            "Print the effective config -- defaults, overridden by the file, overridden by "
            "ROLLKEEPER_<SECTION>__<KEY> variables -- with paths expanded. The output is a "
            "valid config file."
        ),
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    show.set_defaults(handler=run_show)

    path = actions.add_parser(
        "path",
        help="print which config file is used and whether it exists",
        description=(
            "Print the config file rollkeeper uses: --config, else $ROLLKEEPER_CONFIG, else "
            f"{default_config_path()}. Says where the choice came from and whether it exists."
        ),
    )
    path.add_argument("--json", action="store_true", help="print the answer as JSON")
    path.set_defaults(handler=run_path)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _print_problems(problems: list[ConfigProblem]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)


def _problem_data(problem: ConfigProblem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "key": problem.key_path,
        "message": problem.message,
        "text": str(problem),
    }


# -- path ------------------------------------------------------------------------------------


def _chosen_path(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[Path, str]:
    """The config file rollkeeper would use, even if it does not exist, and why that one."""
    if args.config:
        return Path(expand_path(args.config, environ)), "--config"
    if environ.get(CONFIG_PATH_VARIABLE):
        return Path(expand_path(environ[CONFIG_PATH_VARIABLE], environ)), CONFIG_PATH_VARIABLE
    return default_config_path(environ), "default"


def run_path(args: argparse.Namespace) -> int:
    """``config path``: where the config is and whether it exists."""
    path, source = _chosen_path(args, os.environ)
    exists = path.is_file()
    if args.json:
        print(json.dumps({"path": str(path), "source": source, "exists": exists}))
        return 0
    where = {"--config": "from --config", "default": "the default location"}.get(
        source, f"from ${source}"
    )
    state = "exists" if exists else "does not exist (the defaults are in use)"
    print(path)
    print(f"  {where}; {state}", file=sys.stderr)
    return 0


# -- init ------------------------------------------------------------------------------------


def run_init(args: argparse.Namespace) -> int:
    """``config init``: write the commented starter config, privately, never overwriting."""
    if args.path:
        target = Path(expand_path(args.path, os.environ))
    else:
        target, _ = _chosen_path(args, os.environ)
    target = Path(os.path.abspath(target))
    if os.path.lexists(target) and not args.force:
        print(
            f"rollkeeper: {target} already exists; edit it, or pass --force to replace it",
            file=sys.stderr,
        )
        return 1
    try:
        write_starter_config(target, replace=args.force)
    except FileExistsError:
        print(f"rollkeeper: {target} already exists; pass --force to replace it", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"rollkeeper: cannot write {target}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"wrote {target}")
    print("  edit it, then run: rollkeeper config check", file=sys.stderr)
    print(
        "  the archive folder is made by the first backup only under your home folder; on a"
        " removable disk, mount it and run: rollkeeper archive init",
        file=sys.stderr,
    )
    return 0


def write_starter_config(target: Path, *, replace: bool) -> None:
    """Write the starter config to ``target`` as 0600; create missing folders as 0700.

    The text goes to a temporary file first; without ``replace`` it is linked into place,
    which fails if the name was taken meanwhile, so an existing config is never clobbered.
    """
    from rollkeeper.config.template import render_starter_config

    _make_private_folders(target.parent)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)  # the umask does not apply to fchmod
            handle.write(render_starter_config())
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def _make_private_folders(folder: Path) -> None:
    missing = []
    current = folder
    while not os.path.lexists(current) and current.parent != current:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700)
        path.chmod(0o700)  # mkdir's mode is filtered by the umask


# -- check and show --------------------------------------------------------------------------


def _config_path(args: argparse.Namespace, path_argument: str | None) -> Path | None:
    try:
        if path_argument:
            return Path(expand_path(path_argument, os.environ))
        return resolve_config_path(args.config, os.environ)
    except UnsetVariableError as error:
        named = path_argument or args.config or os.environ.get(CONFIG_PATH_VARIABLE, "")
        raise ConfigError([ConfigProblem(named, None, None, "", str(error))]) from None


def _load(args: argparse.Namespace, path_argument: str | None) -> tuple[Path | None, Config]:
    from rollkeeper.config import cache
    from rollkeeper.config.loader import load_config

    path = _config_path(args, path_argument)
    config = load_config(path, os.environ)
    cache.remember(path, os.environ, config)
    return path, config


def run_check(args: argparse.Namespace) -> int:
    """``config check``: exit 0 when the config is usable, 1 listing every problem.

    A config that passed before, unchanged, with the same environment, whose folders are
    still writable, is answered from the validated-config cache (the same words)."""
    from rollkeeper.config import cache

    path: Path | None = None
    try:
        path = _config_path(args, args.path)
        if cache.recall(path, os.environ) is None:
            path, _ = _load(args, args.path)
    except ConfigError as error:
        if args.json:
            problems = [_problem_data(problem) for problem in error.problems]
            print(json.dumps({"ok": False, "problems": problems}, indent=2))
        else:
            _print_problems(error.problems)
            count = len(error.problems)
            print(f"{count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    overrides = [variable for variable, *_ in environment_overrides(os.environ)]
    if args.json:
        print(
            json.dumps(
                {"ok": True, "path": str(path) if path else None, "overrides": overrides},
                indent=2,
            )
        )
        return 0
    source = str(path) if path else f"no config file ({default_config_path()} does not exist)"
    print(f"{source}: ok")
    if overrides:
        print(f"  with environment overrides: {', '.join(overrides)}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """``config show``: the effective config as TOML (or JSON)."""
    from rollkeeper.config.template import config_as_toml, config_as_toml_data

    try:
        _, config = _load(args, None)
    except ConfigError as error:
        _print_problems(error.problems)
        return 1
    if args.json:
        print(json.dumps(config_as_toml_data(config), indent=2, default=str))
    else:
        sys.stdout.write(config_as_toml(config))
    return 0
