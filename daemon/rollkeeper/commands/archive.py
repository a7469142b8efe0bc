"""``rollkeeper archive init``: make a folder the archive, on purpose."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rollkeeper import bootstrap

DESCRIPTION = """\
Make the configured archive folder (or PATH) the archive: create it if needed and write its
identity marker (.rollkeeper/archive.json), and record the archive's id in the state.

rollkeeper never creates an archive folder by itself on a removable disk: an empty folder
under /media, /mnt, /run/media or /Volumes is an unmounted disk's mount point, and backing up
into it would fill the system disk. Run this once with the disk mounted. Run it again after
moving the archive to another disk on purpose (the new file system is recorded).
"""


def register(subparsers: Any) -> None:
    """Add ``archive`` to the ``rollkeeper`` parser."""
    parser = subparsers.add_parser(
        "archive",
        help="set up the archive folder on purpose (archive init)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="archive_action", metavar="ACTION", required=True)
    init = actions.add_parser(
        "init",
        help="create the archive folder and its identity marker, and record it",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument(
        "path", nargs="?", metavar="PATH", help="the folder (default: [archive] path)"
    )
    init.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Handler of ``rollkeeper archive init``."""
    from rollkeeper.archive.setup import initialise_archive
    from rollkeeper.store import StateDamagedError

    config = bootstrap.load_command_config(args.config)
    if config is None:
        return 2
    bootstrap.command_logging(config)
    root = Path(args.path).expanduser().absolute() if args.path else Path(config.archive.path)
    if args.path and root != Path(config.archive.path):
        print(f"note: the config's [archive] path is {config.archive.path}, not {root}")
    try:
        store = bootstrap.open_state_for_writing(config)
    except StateDamagedError as error:
        print(f"rollkeeper: {error}")
        return 1
    try:
        outcome = initialise_archive(root, store.archive_truth)
    except OSError as error:
        print(f"rollkeeper: cannot set up {root}: {error.strerror or error}")
        return 1
    finally:
        store.close()
    print(outcome.message if not outcome.refused else f"rollkeeper: {outcome.message}")
    return 1 if outcome.refused else 0
