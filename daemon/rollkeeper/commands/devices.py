"""``rollkeeper devices``: the phones rollkeeper knows and what each is doing now."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from rollkeeper import bootstrap

HELP = "list known iPhones: name, model, iOS, last backup and state now"

#: What each state means, in the words shown to the user.
STATE_TEXT = {
    "disconnected": "not connected",
    "connected": "connected, backup about to start",
    "backing_up": "backing up",
    "up_to_date": "connected, backed up",
    "waiting_for_unlock": "waiting: unlock your iPhone",
    "waiting_for_trust": "waiting: tap Trust on your iPhone",
    "usb_restricted": "waiting: unlock your iPhone (locked over an hour, it refuses USB data)",
    "waiting_for_first_unlock": "waiting: unlock your iPhone once (it restarted)",
    "trust_denied": "Don't Trust was tapped: unplug and plug in again to be asked again",
    "excluded": "excluded by the config",
    "error": "error",
}


def register(subparsers: Any) -> None:
    """Add the ``devices`` command."""
    parser = subparsers.add_parser(
        "devices",
        help=HELP,
        description=(
            "List the iPhones rollkeeper has seen, with their model, iOS version, last complete "
            "backup and what each is doing now (read from the state database; works whether or "
            "not the service runs)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Print the known phones."""
    config = bootstrap.load_command_config(args.config, quick=True)
    if config is None:
        return 1
    try:
        store = bootstrap.open_state_read_only(config)
    except FileNotFoundError:
        devices: list[Any] = []
    else:
        try:
            devices = store.devices()
        finally:
            store.close()
    if args.json:
        print(json.dumps([asdict(device) for device in devices], indent=2))
        return 0
    if not devices:
        print("No iPhone seen yet. Plug one in while `rollkeeper run` is running.")
        return 0
    for device in devices:
        state = STATE_TEXT.get(device.state, device.state)
        if device.state == "backing_up" and device.progress_files_total:
            state += f" {device.progress_files_done}/{device.progress_files_total} files"
        print(f"{device.name or '(unnamed)'}  [{device.udid}]")
        print(f"  model {device.product_type or '?'}, iOS {device.product_version or '?'}")
        print(f"  state: {state}" + (f" — {device.state_detail}" if device.state_detail else ""))
        print(f"  last seen {device.last_seen_at}")
        print(f"  last complete backup: {device.last_complete_at or 'never'}")
    return 0
