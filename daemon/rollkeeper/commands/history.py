"""``rollkeeper history [--device UDID] [--failed] [--json]``: what each backup run did.

Reads the state database read-only, like ``status``, so it works with or without the service.
Each run shows its outcome, counts, bytes, duration and error; ``--failed`` keeps the runs
where something failed and lists each failed file with its reason. The JSON shape is in
docs/status.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TextIO

from rollkeeper import bootstrap
from rollkeeper.commands import positive_whole_number
from rollkeeper.domain.display import printable
from rollkeeper.domain.units import format_bytes, format_duration
from rollkeeper.status.text import local_time
from rollkeeper.store.reports import Reports, run_as_dict
from rollkeeper.store.state import DeviceRecord, StateDamagedError

#: Version of the ``--json`` document.
JSON_VERSION = 1

DESCRIPTION = """\
List backup runs, newest first: when each ran, for how long, what it copied and what went
wrong. A run is "complete" only when nothing found on the phone was left pending or failed;
"incomplete" runs resume where they stopped the next time the phone is plugged in.

--failed keeps only runs in which something failed and lists every failed file with the
reason, then the files failing now (on the phone at its last scan and still not backed up), so
you know what is not backed up and why.
"""


class HistoryError(Exception):
    """A user error (unknown phone, unreadable state): one line, exit code 1."""


def _find_device(devices: list[DeviceRecord], wanted: str) -> DeviceRecord:
    for device in devices:
        if device.udid == wanted:
            return device
    by_name = [device for device in devices if device.name == wanted]
    if len(by_name) == 1:
        return by_name[0]
    known = (
        ", ".join(f"{d.udid} ({d.name})" for d in sorted(devices, key=lambda d: d.udid))
        or "none yet"
    )
    if by_name:
        raise HistoryError(f"several phones are named {wanted!r}; use a UDID: {known}")
    raise HistoryError(f"no phone {wanted!r} in the state database; known phones: {known}")


def gather_history(
    config_cli_value: str | None,
    environ: Mapping[str, str],
    *,
    device: str | None,
    failed_only: bool,
    limit: int,
) -> dict[str, Any]:
    """The ``history --json`` document; raises :class:`HistoryError` for user errors."""
    state_path = bootstrap.load_config_leniently(config_cli_value, environ).state_path
    document: dict[str, Any] = {
        "version": JSON_VERSION,
        "state_path": str(state_path),
        "runs": [],
        "failing_now": [],
    }
    if not state_path.exists():
        return document
    try:
        store = bootstrap.open_state_read_only(state_path)
    except StateDamagedError as error:
        raise HistoryError(str(error)) from None
    except OSError as error:
        raise HistoryError(f"{state_path}: {error.strerror or error}") from None
    try:
        devices = store.devices()
        names = {record.udid: record.name for record in devices}
        udid = None if device is None else _find_device(devices, device).udid
        reports = Reports.for_store(store)
        runs = reports.runs(udid, with_failures_only=failed_only, limit=limit)
        failures = reports.run_failures(run.id for run in runs)
        failing_now = [
            {
                "udid": record.udid,
                "device_name": record.name,
                "phone_path": failed.phone_path,
                "size": failed.size,
                "reason": failed.reason,
            }
            for record in devices
            if udid is None or record.udid == udid
            for failed in reports.failed_files(record.udid)
        ]
    except sqlite3.Error as error:
        raise HistoryError(f"{state_path}: cannot read the state database: {error}") from None
    finally:
        store.close()
    by_run: dict[int, list[dict[str, str]]] = {}
    for failure in failures:
        by_run.setdefault(failure.run_id, []).append(
            {"phone_path": failure.phone_path, "reason": failure.reason, "detail": failure.detail}
        )
    document["runs"] = [
        {
            **run_as_dict(run),
            "device_name": names.get(run.udid, ""),
            "failures": by_run.get(run.id, []),
        }
        for run in runs
    ]
    document["failing_now"] = failing_now
    return document


def _render_run(run: dict[str, Any], out: TextIO, show_failures: bool) -> None:
    duration = run["duration_seconds"]
    took = "running" if duration is None else format_duration_seconds(float(duration))
    name = printable(run["device_name"], 80) or run["udid"]
    out.write(
        f"#{run['id']}  {local_time(run['started_at'])}  {name}  {run['outcome']}  {took}\n"
        f"     found {run['files_found']:,}, copied {run['files_copied']:,} "
        f"({format_bytes(int(run['bytes_copied']))}), already archived "
        f"{run['files_already_archived']:,}, failed {run['files_failed']:,}, pending "
        f"{run['files_pending']:,}, excluded {run['files_excluded']:,}"
    )
    if run["files_not_on_phone"]:
        out.write(f", originals not on the phone {run['files_not_on_phone']:,}")
    if run["items_rejected"]:
        out.write(f", rejected {run['items_rejected']:,}")
    out.write("\n")
    if run["error"]:
        out.write(f"     error: {printable(run['error'], 300)}\n")
    if show_failures:
        for failure in run["failures"]:
            detail = f" ({printable(failure['detail'], 300)})" if failure["detail"] else ""
            path = printable(failure["phone_path"], 300, escape=True)
            out.write(f"     FAILED {path}: {printable(failure['reason'])}{detail}\n")


def format_duration_seconds(seconds: float) -> str:
    """A run's duration for people."""
    return format_duration(timedelta(seconds=seconds))


def run_history(args: argparse.Namespace, *, environ: Mapping[str, str], out: TextIO) -> int:
    """The command with its environment and output injected (for tests)."""
    try:
        document = gather_history(
            getattr(args, "config", None),
            environ,
            device=args.device,
            failed_only=args.failed,
            limit=args.limit,
        )
    except HistoryError as error:
        sys.stderr.write(f"rollkeeper history: {error}\n")
        return 1
    if args.json:
        json.dump(document, out, indent=2)
        out.write("\n")
        return 0
    if not document["runs"]:
        out.write("No runs with failures.\n" if args.failed else "No backup has run yet.\n")
    for run in document["runs"]:
        _render_run(run, out, show_failures=args.failed)
    if args.failed and document["failing_now"]:
        out.write("\nFailing now (on the phone at its last scan, not backed up):\n")
        for failed in document["failing_now"]:
            name = printable(failed["device_name"], 80) or failed["udid"]
            path = printable(failed["phone_path"], 300, escape=True)
            out.write(f"  {name}: {path}: {printable(failed['reason']) or 'failed'}\n")
    return 0


def handle(args: argparse.Namespace) -> int:
    """Entry point from the command line."""
    return run_history(args, environ=os.environ, out=sys.stdout)


def register(subparsers: Any) -> None:
    """Add ``history`` to the ``rollkeeper`` command line."""
    parser = subparsers.add_parser(
        "history",
        help="what each backup run did, and which files failed and why",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--device",
        metavar="UDID",
        default=None,
        help="only this phone (its UDID, or its name if no other phone has it)",
    )
    parser.add_argument(
        "--failed",
        action="store_true",
        help="only runs in which something failed, listing each failed file and the reason",
    )
    parser.add_argument(
        "--limit",
        type=positive_whole_number,
        default=20,
        metavar="N",
        help="show at most N runs (default 20)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=handle)
