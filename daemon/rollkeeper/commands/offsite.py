"""``rollkeeper offsite run | check | status | init``: the second copy of the archive, elsewhere.

The service makes the copies by itself (after each complete backup, at most every
``[offsite] min_interval_hours``); these commands run one now, check the offsite copy with the
engine's own verification, list the recorded runs, or create the restic repository once. They
work whether or not the service runs (restic locks its repository; the records go through a
writing store that may share the state database with the service).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from rollkeeper import bootstrap

DESCRIPTION = """\
rollkeeper hands the archive to an offsite engine -- restic (encrypted, deduplicated snapshots)
or rclone (a plain copy) -- configured in the config's [offsite] section (docs/offsite.md).

  rollkeeper offsite init      create the restic repository (once)
  rollkeeper offsite run       copy the archive offsite now
  rollkeeper offsite check     verify the offsite copy with the engine (restic check, rclone check)
  rollkeeper offsite status    the last copies and checks, as recorded

A copy never runs when the archive is not there (an unplugged disk is never an empty snapshot),
never includes rollkeeper's working folder (.rollkeeper), and never deletes anything offsite
unless [offsite] retention says which snapshots restic keeps.
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_CONFIGURED = 2


def register(subparsers: Any) -> None:
    """Add ``offsite`` and its actions to the ``rollkeeper`` parser."""
    parser = subparsers.add_parser(
        "offsite",
        help="copy the archive offsite with restic or rclone, check that copy, show its runs",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=lambda args: _usage(parser))
    actions = parser.add_subparsers(dest="offsite_action", metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="copy the archive offsite now",
        description=(
            "Copy the archive offsite now with the configured engine and record the run. Exit 0 "
            "when the copy was made, 1 when it failed or the archive is not there."
        ),
    )
    run.add_argument("--json", action="store_true", help="print the run's record as JSON")
    run.set_defaults(handler=_run)
    check = actions.add_parser(
        "check",
        help="verify the offsite copy with the engine's own check",
        description=(
            "restic check (the repository's structure and indexes), or rclone check --one-way "
            "(every archive file is on the remote with the same size and hash). --read-data "
            "reads every byte back (restic check --read-data, rclone check --download): slow and, "
            "on a cloud bucket, billed as downloads. Exit 0 when the check passed."
        ),
    )
    check.add_argument("--read-data", action="store_true", help="read every byte back")
    check.add_argument("--json", action="store_true", help="print the run's record as JSON")
    check.set_defaults(handler=_check)
    status = actions.add_parser(
        "status", help="the last offsite copies and checks", description="The recorded runs."
    )
    status.add_argument("--limit", type=int, default=10, help="how many runs (default 10)")
    status.add_argument("--json", action="store_true", help="print the runs as JSON")
    status.set_defaults(handler=_status)
    init = actions.add_parser(
        "init",
        help="create the restic repository (once)",
        description=(
            "Run `restic init` on [offsite] repository with the configured password. A copy "
            "never creates a repository itself: a mistyped repository must fail, not start a "
            "new, empty one."
        ),
    )
    init.set_defaults(handler=_init)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_NOT_CONFIGURED


def _job_and_store(args: argparse.Namespace) -> tuple[Any, Any] | None:
    config = bootstrap.load_command_config(args.config)
    if config is None:
        return None
    bootstrap.command_logging(config)
    store = bootstrap.open_state_for_writing(config)
    job = bootstrap.offsite_job(config, store, None)
    if job is None:
        store.close()
        print(
            "rollkeeper: offsite copies are off: set [offsite] engine and repository (restic) "
            "or remote (rclone) in the config (docs/offsite.md)",
            file=sys.stderr,
        )
        return None
    return job, store


def _say(record: Any, as_json: bool) -> int:
    if as_json:
        print(json.dumps(record.as_dict(), indent=2))
    else:
        print(describe_run(record))
    return EXIT_OK if record.outcome == "complete" else EXIT_FAILED


def _run(args: argparse.Namespace) -> int:
    found = _job_and_store(args)
    if found is None:
        return EXIT_NOT_CONFIGURED
    job, store = found
    try:
        record = asyncio.run(job.copy("command"))
    finally:
        store.close()
    return _say(record, args.json)


def _check(args: argparse.Namespace) -> int:
    found = _job_and_store(args)
    if found is None:
        return EXIT_NOT_CONFIGURED
    job, store = found
    try:
        record = asyncio.run(job.check("command", read_data=args.read_data))
    finally:
        store.close()
    return _say(record, args.json)


def _init(args: argparse.Namespace) -> int:
    found = _job_and_store(args)
    if found is None:
        return EXIT_NOT_CONFIGURED
    job, store = found
    try:
        result = asyncio.run(job.init())
    finally:
        store.close()
    if result.output:
        print(result.output)
    return EXIT_OK if result.exit_code == 0 else EXIT_FAILED


def _status(args: argparse.Namespace) -> int:
    config = bootstrap.load_command_config(args.config)
    if config is None:
        return EXIT_NOT_CONFIGURED
    try:
        store = bootstrap.open_state_read_only(config)
    except FileNotFoundError:
        runs: list[Any] = []
    else:
        try:
            runs = store.offsite_repository.runs(limit=args.limit)
        finally:
            store.close()
    if args.json:
        print(json.dumps([run.as_dict() for run in runs], indent=2))
        return EXIT_OK
    if not config.offsite.engine:
        print("Offsite copies are off ([offsite] engine is not set; see docs/offsite.md).")
    if not runs:
        print("No offsite run recorded yet.")
    for run in runs:
        print(describe_run(run))
    return EXIT_OK


def describe_run(run: Any) -> str:
    """One line per run: ``#3 copy complete 2024-05-01 10:00 UTC: snapshot 1a2b3c4d, +12 MB``."""
    from rollkeeper.domain.display import printable
    from rollkeeper.domain.units import format_bytes

    when = (run.finished_at or run.started_at)[:16].replace("T", " ")
    line = f"#{run.id} {run.kind} {run.outcome} {when} UTC ({run.engine} {run.destination})"
    details = []
    if run.snapshot_id:
        details.append(f"snapshot {run.snapshot_id}")
    if run.bytes_added is not None:
        details.append(f"+{format_bytes(run.bytes_added)}")
    if run.files_new is not None:
        details.append(f"{run.files_new} new files")
    if run.duration_seconds is not None:
        details.append(f"{run.duration_seconds:.1f} s")
    if run.error:
        details.append(printable(run.error, 300))
    return line + (": " + ", ".join(details) if details else "")
