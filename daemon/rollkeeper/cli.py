"""The ``rollkeeper`` command line: parses arguments and hands over to one command module.

Commands live in :mod:`rollkeeper.commands`, one module each; this module only knows their
names and one-line help (:data:`COMMANDS`). Only the module of the command being run is
imported: ``--help`` lists the commands from the table, ``--version`` imports nothing, and each
command imports its own libraries (pymobiledevice3, APScheduler, pydantic) where it needs them,
so a command starts in a fraction of a second (figures: docs/benchmarks.md, "Start-up").
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

from rollkeeper import __version__


class Command(NamedTuple):
    """One sub-command: its name, the help line ``--help`` lists, and the module that has it."""

    name: str
    help: str
    module: str


#: Every command, in the order ``--help`` lists them. A module's ``register`` must use the same
#: name and help (a test holds them equal); add yours here.
COMMANDS: tuple[Command, ...] = (
    Command(
        "run",
        "run the backup service in the foreground (what the systemd unit / launchd agent starts)",
        "rollkeeper.commands.run",
    ),
    Command(
        "backup-now",
        "back up the iPhones attached now, once, with a progress bar",
        "rollkeeper.commands.backup_now",
    ),
    Command(
        "devices",
        "list known iPhones: name, model, iOS, last backup and state now",
        "rollkeeper.commands.devices",
    ),
    Command(
        "status",
        "is everything backed up? (works with or without the service running)",
        "rollkeeper.commands.status",
    ),
    Command(
        "history",
        "what each backup run did, and which files failed and why",
        "rollkeeper.commands.history",
    ),
    Command(
        "audit",
        "with the phone attached: what of it is backed up, pending, failed, excluded",
        "rollkeeper.commands.audit",
    ),
    Command("config", "write, check and show the TOML config", "rollkeeper.commands.config"),
    Command(
        "simulate",
        "run a simulated iPhone (usbmuxd + lockdownd + AFC) for trying and testing",
        "rollkeeper.commands.simulate",
    ),
    Command(
        "verify",
        "re-hash archived files; report missing, changed and untracked ones",
        "rollkeeper.commands.verify",
    ),
    Command(
        "adopt",
        "index a folder of photos copied earlier (never moves anything)",
        "rollkeeper.commands.adopt",
    ),
    Command(
        "archive",
        "set up the archive folder on purpose (archive init)",
        "rollkeeper.commands.archive",
    ),
    Command(
        "forget",
        "a file was deleted from the archive on purpose: never restore it",
        "rollkeeper.commands.forget",
    ),
    Command(
        "find",
        "print archive paths of phone files by name (IMG_1234) or capture date",
        "rollkeeper.commands.find",
    ),
    Command(
        "freeable",
        "list phone photos that are safely archived and could be deleted on the phone",
        "rollkeeper.commands.freeable",
    ),
    Command(
        "offsite",
        "copy the archive offsite with restic or rclone, check that copy, show its runs",
        "rollkeeper.commands.offsite",
    ),
    Command(
        "service",
        "install, remove or inspect the background service (systemd / launchd)",
        "rollkeeper.commands.service",
    ),
    Command(
        "device-backup",
        "make a full device backup (a point-in-time snapshot) now, with a progress bar",
        "rollkeeper.commands.device_backup",
    ),
    Command(
        "device-backups",
        "list the device backup snapshots per phone (when, size, files, encrypted, complete)",
        "rollkeeper.commands.device_backups",
    ),
    Command(
        "completion",
        "print the shell completion script for bash, zsh or fish",
        "rollkeeper.commands.completion",
    ),
    Command("man", "print the rollkeeper(1) manual page (roff)", "rollkeeper.commands.manual"),
    Command(
        "web",
        "the status page: print its address (and login link), or a new token",
        "rollkeeper.commands.web",
    ),
)

#: The command modules, in the order ``--help`` lists them (kept for callers of old).
COMMAND_MODULES: tuple[str, ...] = tuple(command.module for command in COMMANDS)

DESCRIPTION = """\
rollkeeper backs up the photos and videos of an iPhone to a folder you own, every time the
phone is plugged in. It is a backup, not a sync: nothing deleted on the phone is ever removed
from the archive, and nothing in the archive is ever overwritten.

Start with `rollkeeper run` (the service in the foreground) or `rollkeeper backup-now`.
"""

#: Options of the top-level parser that take a value (the word after them is not a command).
_OPTIONS_WITH_VALUE = ("--config",)


def chosen_command(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line (the first word that is not an option or an
    option's value), or None when there is none."""
    words = iter(argv)
    for word in words:
        if word == "--":
            return next(words, None)
        if word in _OPTIONS_WITH_VALUE:
            next(words, None)
            continue
        if word.startswith("-"):
            continue
        return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser. With ``argv``, only the command it names is imported and fully
    registered (the others are listed by name and help); without, every command is (the man
    page, shell completion and tests see the whole tree)."""
    parser = argparse.ArgumentParser(
        prog="rollkeeper",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rollkeeper {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=None,
        help="the TOML config file (default: $ROLLKEEPER_CONFIG, else the platform's config path)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = None if argv is None else chosen_command(argv)
    for command in COMMANDS:
        if argv is None or command.name == chosen:
            importlib.import_module(command.module).register(subparsers)
        else:
            subparsers.add_parser(command.name, help=command.help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rollkeeper`` command; returns the exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if "_ARGCOMPLETE" in os.environ:
        # Shell completion (`rollkeeper completion`): the whole tree, then argcomplete answers
        # and exits. Only then is argcomplete imported.
        from rollkeeper.commands.completion import complete

        complete(build_parser)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    from rollkeeper.config.paths import UnsetVariableError

    try:
        exit_code: int = handler(args)
    except UnsetVariableError as error:
        # A $VARIABLE in --config or $ROLLKEEPER_CONFIG that is not set: a usage error.
        print(f"rollkeeper: the config path uses {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `rollkeeper status | head`: the reader left; no traceback, and none at exit either
        # (stdout's buffer is pointed at /dev/null so the final flush cannot fail again).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
