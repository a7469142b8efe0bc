"""The ``rollkeeper`` command line: parses arguments and hands over to one command module.

Commands live in :mod:`rollkeeper.commands`; this module only knows their names. Heavy imports
(pymobiledevice3, APScheduler) happen inside the command that needs them, so ``--help`` and
``status`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rollkeeper import __version__

#: Command modules, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    # one line per command module; add yours here
    "rollkeeper.commands.run",
    "rollkeeper.commands.backup_now",
    "rollkeeper.commands.devices",
    "rollkeeper.commands.status",
    "rollkeeper.commands.history",
    "rollkeeper.commands.audit",
    "rollkeeper.commands.config",
    "rollkeeper.commands.simulate",
    "rollkeeper.commands.verify",
    "rollkeeper.commands.adopt",
    "rollkeeper.commands.find",
    "rollkeeper.commands.service",
    "rollkeeper.commands.device_backup",
    "rollkeeper.commands.device_backups",
)

DESCRIPTION = """\
rollkeeper backs up the photos and videos of an iPhone to a folder you own, every time the
phone is plugged in. It is a backup, not a sync: nothing deleted on the phone is ever removed
from the archive, and nothing in the archive is ever overwritten.

Start with `rollkeeper run` (the service in the foreground) or `rollkeeper backup-now`.
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered sub-command."""
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
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rollkeeper`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
