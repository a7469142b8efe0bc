"""4. First scan: seconds from the connection until the plan is complete and until the first
byte is copied, on a first backup of N files in folders of ~1,000 (issue 18: first byte <= 1 s,
plan complete <= 8 s at 100,000 files).

Each round starts from an empty archive and no state, backs the phone up with a client of its
own process (:func:`client`, what :mod:`bench.client` runs, from the start of the connection),
and stops the run once the plan is complete and a first byte is copied (the rest of a first
backup of 100,000 files is the files/s benchmark's business, not this one's). The plan is
complete at the first progress report that no longer says ``scanning`` (code without the
field: the first report, made once the whole phone is planned).

With ``--before DIR`` (a checkout of the code before a change, e.g. ``git worktree add``), the
same client runs with ``DIR``'s rollkeeper in alternating rounds (``after``, ``before``,
``before``, ``after``...), against the same simulated phone, and the medians of both sides are
reported with the machine's load average at the start and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench import common, roll

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"files": 2000, "file_kb": 4, "per_folder": 100, "rounds": 2},
    "full": {"files": 100_000, "file_kb": 4, "per_folder": 1000, "rounds": 5},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", type=int, help="files on the phone (100000)")
    parser.add_argument("--file-kb", type=int, help="size of each file in KB")
    parser.add_argument("--per-folder", type=int, help="files per DCIM folder")
    parser.add_argument("--rounds", type=int, help="rounds per side (median reported)")
    parser.add_argument("--before", type=Path, help="a checkout of the code before the change")
    parser.add_argument(
        "--while-scanning",
        type=int,
        nargs="*",
        default=[],
        help="also measure these groups per folder copied while scanning (sides after-kN)",
    )


async def _first_backup(config_path: Path, while_scanning: int | None) -> dict[str, Any]:
    from rollkeeper import bootstrap
    from rollkeeper.config.loader import load_config
    from rollkeeper.device.session import open_session
    from rollkeeper.host.permissions import set_private_umask
    from rollkeeper.importer.job import BackupRun, Progress

    set_private_umask()
    config = load_config(config_path)
    store = bootstrap.open_state(config)  # before the clock: the figures are from connecting
    moments: dict[str, float] = {}
    run: BackupRun | None = None
    started = time.perf_counter()

    def on_progress(progress: Progress) -> None:
        now = time.perf_counter() - started
        if not getattr(progress, "scanning", False):
            moments.setdefault("plan_seconds", now)
        if progress.bytes_done > 0:
            moments.setdefault("first_byte_seconds", now)
        if run is not None and "plan_seconds" in moments and "first_byte_seconds" in moments:
            run.request_stop()  # the rest of the backup is not this benchmark's

    try:
        async with open_session(common.UDID, bootstrap.session_settings(config)) as session:
            moments["connected_seconds"] = time.perf_counter() - started
            run = BackupRun(
                store, bootstrap.backup_settings(config), session, on_progress=on_progress
            )
            if while_scanning is not None:
                run.groups_per_folder_while_scanning = while_scanning
            result = await run.run()
        seconds = time.perf_counter() - started
    finally:
        store.close()
    import rollkeeper

    return {
        "outcome": result.outcome,
        "seconds": round(seconds, 4),
        **{key: round(value, 4) for key, value in moments.items()},
        "files_found": result.counts.files_found,
        "files_copied": result.counts.files_copied,
        "rollkeeper_from": str(Path(rollkeeper.__file__).parent),
    }


def client(config: Path, while_scanning: int | None = None) -> int:
    """One first backup, stopped once planned and under way; prints its JSON."""
    import logging

    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    print(json.dumps(asyncio.run(_first_backup(config, while_scanning))))
    return 0


def _side(
    setup: common.RollkeeperSetup,
    environment: dict[str, str],
    code: Path | None,
    while_scanning: int | None = None,
) -> common.Side:
    """One side: the client with this checkout's rollkeeper, or ``code``'s (and, with
    ``while_scanning``, that many groups per folder copied while the scan goes on)."""
    side_environment = dict(environment)
    if code is not None:
        # bench from this checkout, rollkeeper from the other one (ahead of the venv's).
        side_environment["PYTHONPATH"] = os.pathsep.join([str(common.REPO), str(code / "daemon")])

    def measure(_: int) -> dict[str, Any]:
        setup.wipe()
        command = [sys.executable, "-m", "bench.first_scan", "--client", str(setup.config)]
        command += [] if while_scanning is None else [str(while_scanning)]
        result = common.run_measured(command, side_environment, cwd=common.REPO)
        common.require_ok(result, "bench.first_scan --client")
        figures: dict[str, Any] = result.json()
        figures["process_seconds"] = round(result.seconds, 4)
        return figures

    return measure


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    size = {**SIZES[args.size], **{k: v for k, v in vars(args).items() if v is not None}}
    tree = roll.many_small_files(
        work / f"phone-{size['files']}",
        files=size["files"],
        file_bytes=size["file_kb"] * 1000,
        per_folder=size["per_folder"],
    )
    setup = common.RollkeeperSetup(work / "rollkeeper").write()
    load_before = os.getloadavg()
    with common.SimulatorProcess(Path(tree["root"])) as simulator:
        environment = common.client_environment(simulator.address)
        sides = {"after": _side(setup, environment, None)}
        for groups in args.while_scanning:
            sides[f"after-k{groups}"] = _side(setup, environment, None, groups)
        if args.before is not None:
            sides["before"] = _side(setup, environment, args.before.resolve())
        runs = common.paired_rounds(size["rounds"], sides)
    load_after = os.getloadavg()
    keys = ("plan_seconds", "first_byte_seconds", "process_seconds")
    medians = {
        name: {key: common.median([r[key] for r in results if key in r]) for key in keys}
        for name, results in runs.items()
    }
    figures: dict[str, Any] = {
        "tree": tree,
        "runs": runs,
        "medians": medians,
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in load_after],
        "machine": common.machine(work),
    }
    common.print_table(
        f"4. first scan of {size['files']:,} files (median of {size['rounds']}; targets: "
        f"first byte <= 1 s, plan complete <= 8 s at 100,000); load average "
        f"{load_before[0]:.2f} -> {load_after[0]:.2f}",
        ["side", "plan complete s", "first byte s", "process s"],
        [[name, *(values[key] for key in keys)] for name, values in medians.items()],
    )
    return figures


def main() -> int:
    """Run this benchmark alone (``python -m bench.first_scan --help``)."""
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--client":
        return client(Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) == 4 else None)
    return common.main_for("first_scan", __doc__, SIZES, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
