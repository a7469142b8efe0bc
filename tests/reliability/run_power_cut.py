"""``make faults``, power-cut part: the campaign at full size, with its figures.

Runs :func:`power_cut_campaign` against one in-process simulator, prints a Markdown table
(trials, failures, files and bytes checked, time) and the notes on what the cuts hit, and with
``--write-docs`` puts them into docs/reliability.md between its ``power-cut:begin``/``end``
markers. Exit code 1 when any trial failed (each failure printed with its seed) or when this
machine cannot mount the power-cut filesystem (what it lacks is printed).

    python -m tests.reliability.run_power_cut --trials 300 --seed 1
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import structlog

from rollkeeper.simulator import SimulatorThread, short_socket_folder
from tests.reliability.power_cut import power_cut_campaign
from tests.reliability.power_cut_disk import missing_for_fuse

BEGIN = "<!-- power-cut:begin -->"
END = "<!-- power-cut:end -->"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_power_cut", description="Repeat rollkeeper's power-cut campaign many times."
    )
    parser.add_argument("--trials", type=int, default=300, help="power-cut trials")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument(
        "--write-docs", type=Path, metavar="FILE", help="put the table into FILE (its markers)"
    )
    return parser


def run(arguments: argparse.Namespace) -> int:
    """Run the campaign; print the table; return the exit code."""
    missing = missing_for_fuse()
    if missing:
        print(f"power-cut campaign cannot run: {missing}", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="rollkeeper-power-cut-"))
    sockets = short_socket_folder()
    started = time.monotonic()
    try:
        with SimulatorThread(socket_path=sockets / "usbmuxd") as simulator:
            # pymobiledevice3's save_pair_record ignores usbmux_address: export it.
            os.environ["USBMUXD_SOCKET_ADDRESS"] = simulator.address
            tally, figures = power_cut_campaign(simulator, work, arguments.trials, arguments.seed)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    seconds = time.monotonic() - started
    if tally.failures:
        print(f"work folder kept for the post-mortem: {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = "\n".join(
        [
            f"Last run: {stamp}, seed {arguments.seed}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()} (`python -m tests.reliability.run_power_cut "
            f"--trials {arguments.trials} --seed {arguments.seed}`, the power-cut part of "
            f"`make faults POWER_CUT_TRIALS={arguments.trials} SEED={arguments.seed}`).",
            "",
            "| case | trials | failures | files checked | bytes checked | time |",
            "|---|---:|---:|---:|---:|---:|",
            f"| power cut (unsynced writes dropped) | {tally.trials} | {tally.failures} | "
            f"{tally.files_checked:,} | {tally.bytes_checked:,} | {seconds:.0f} s |",
            "",
            *[f"- {note}" for note in figures.notes()],
        ]
    )
    print(table)
    for failure in tally.notes:
        print(f"FAILED: {failure}", file=sys.stderr)
    if arguments.write_docs is not None:
        text = arguments.write_docs.read_text()
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        arguments.write_docs.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    return 1 if tally.failures else 0


def main() -> int:
    """Entry point of ``python -m tests.reliability.run_power_cut``."""
    # The simulator's log lines would bury the table; the service processes' logs are read by
    # the campaign, not printed.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    return run(_parser().parse_args())


if __name__ == "__main__":
    sys.exit(main())
