"""``make faults``: the reliability campaigns at full size, with their figures.

Runs the crash (kill -9 of a real service), unplug (random byte offsets) and disk-full (a tmpfs
too small, then grown) campaigns with the given trial counts against one in-process simulator,
prints a Markdown table of trials, failures, files and bytes checked, and with ``--write-docs``
puts that table into docs/reliability.md between its ``faults:begin``/``faults:end`` markers.
Exit code 1 when any trial failed (each failure is printed with its seed and what was wrong).

    python -m tests.reliability.run_faults --crash-trials 300 --unplug-trials 500
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import structlog

from rollkeeper.simulator import SimulatorThread, short_socket_folder
from tests.reliability.crash import crash_campaign
from tests.reliability.disk_full import disk_full_campaign, mount, unmount
from tests.reliability.harness import Tally
from tests.reliability.unplug import unplug_campaign

BEGIN = "<!-- faults:begin -->"
END = "<!-- faults:end -->"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_faults",
        description="Repeat rollkeeper's fault campaigns many times and report the figures.",
    )
    parser.add_argument("--crash-trials", type=int, default=300, help="kill -9 trials")
    parser.add_argument("--unplug-trials", type=int, default=500, help="unplug trials")
    parser.add_argument("--disk-full-trials", type=int, default=50, help="disk-full trials")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument(
        "--write-docs", type=Path, metavar="FILE", help="put the table into FILE (its markers)"
    )
    return parser


def _row(case: str, tally: Tally, seconds: float) -> str:
    return (
        f"| {case} | {tally.trials} | {tally.failures} | {tally.files_checked:,} | "
        f"{tally.bytes_checked:,} | {seconds:.0f} s |"
    )


def _can_mount(folder: Path) -> str:
    """Empty when a tmpfs can be mounted on ``folder``, else why not."""
    if shutil.which("mount") is None:
        return "no mount command"
    probe = mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder))
    if probe.returncode != 0:
        return probe.stderr.strip() or f"mount exited {probe.returncode}"
    unmount(folder)
    return ""


def run(arguments: argparse.Namespace) -> int:
    """Run the campaigns; print the table; return the exit code."""
    work = Path(tempfile.mkdtemp(prefix="rollkeeper-faults-"))
    sockets = short_socket_folder()
    rows: list[str] = []
    failures: list[str] = []
    notes: list[str] = []
    try:
        with SimulatorThread(socket_path=sockets / "usbmuxd") as simulator:
            # pymobiledevice3's save_pair_record ignores usbmux_address: export it.
            os.environ["USBMUXD_SOCKET_ADDRESS"] = simulator.address
            if arguments.crash_trials:
                started = time.monotonic()
                crash = crash_campaign(
                    simulator, work / "crash", arguments.crash_trials, arguments.seed
                )
                rows.append(_row("kill -9 of `rollkeeper run`", crash, time.monotonic() - started))
                notes.append(crash.notes[0])
                failures.extend(crash.notes[1:])
            if arguments.unplug_trials:
                started = time.monotonic()
                unplug = asyncio.run(
                    unplug_campaign(
                        simulator, work / "unplug", arguments.unplug_trials, arguments.seed
                    )
                )
                rows.append(_row("unplug at a random byte", unplug, time.monotonic() - started))
                failures.extend(unplug.notes)
            if arguments.disk_full_trials:
                mount_point = work / "disk"
                mount_point.mkdir(parents=True)
                refused = _can_mount(mount_point)
                if refused:
                    notes.append(f"disk-full trials skipped: cannot mount a tmpfs ({refused})")
                else:
                    started = time.monotonic()
                    full = asyncio.run(
                        disk_full_campaign(
                            simulator,
                            work / "disk-full",
                            mount_point,
                            arguments.disk_full_trials,
                            arguments.seed,
                        )
                    )
                    rows.append(_row("disk full (tmpfs)", full, time.monotonic() - started))
                    failures.extend(full.notes)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
        subprocess.run(["umount", str(work / "disk")], capture_output=True, check=False)
        if failures:
            print(f"work folder kept for the post-mortem: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = "\n".join(
        [
            f"Last run: {stamp}, seed {arguments.seed}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()} (`make faults CRASH_TRIALS="
            f"{arguments.crash_trials} UNPLUG_TRIALS={arguments.unplug_trials} "
            f"DISK_FULL_TRIALS={arguments.disk_full_trials} SEED={arguments.seed}`).",
            "",
            "| case | trials | failures | files checked | bytes checked | time |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            *[f"- {note}" for note in notes],
        ]
    )
    print(table)
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    if arguments.write_docs is not None:
        text = arguments.write_docs.read_text()
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        arguments.write_docs.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    return 1 if failures else 0


def main() -> int:
    """Entry point of ``python -m tests.reliability.run_faults``."""
    # The simulator's and the in-process backups' log lines would bury the table; the service
    # processes' logs are read by the campaign, not printed. A dropped connection leaves
    # pymobiledevice3 futures that asyncio reports at exit: expected here, not news.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    return run(_parser().parse_args())


if __name__ == "__main__":
    sys.exit(main())
