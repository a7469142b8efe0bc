"""``rollkeeper device-backups``: the device backup snapshots of every phone.

Reads the snapshot folder (each snapshot's ``rollkeeper-snapshot.json``) and lists, per phone,
when each snapshot was made, its size, its files, whether it is encrypted, and whether it is
complete (a working copy left by a stopped backup is listed as incomplete).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rollkeeper import bootstrap

HELP = "list the device backup snapshots per phone (when, size, files, encrypted, complete)"


def register(subparsers: Any) -> None:
    """Add the ``device-backups`` command."""
    parser = subparsers.add_parser("device-backups", help=HELP, description=HELP)
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """List the snapshots under the configured device-backup folder."""
    config = bootstrap.load_command_config(args.config)
    if config is None:
        return 1
    from rollkeeper.device_backup.listing import list_snapshots, render_listing

    try:
        root = bootstrap.device_backup_settings(config).root
    except ValueError as error:
        print(f"rollkeeper: {error}")
        return 1
    phones = list_snapshots(root)
    if args.json:
        print(json.dumps({"path": str(root), "phones": phones}, indent=2, sort_keys=True))
    else:
        print(render_listing(root, phones), end="")
    return 0
