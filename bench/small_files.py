"""7. Per-file overhead: many small files (5,000 of 100 KB), where round trips, fsyncs and SQLite
commits, not bytes, decide the time.

Sides, alternating, each from an empty destination: ``rollkeeper backup-now``, ``pymobiledevice3
afc pull`` and ``dcimport`` (when installed). The simulator is bench.sim_server in its own
process (the same Simulator as ``rollkeeper simulate``) so the AFC requests per file can be
counted. Time is the client process's wall time, start-up included. ``--before DIR`` adds an
older tree's ``backup-now`` (``git archive REV | tar -x -C DIR``) as a side of the same run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import common, roll

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"files": 200, "file_kb": 100, "rounds": 1},
    "full": {"files": 5000, "file_kb": 100, "rounds": 3},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", type=int, help="files on the phone (5000)")
    parser.add_argument("--file-kb", type=int, help="size of each in KB (100)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (median reported)")
    parser.add_argument("--before", type=Path, help="an older tree: a rollkeeper_before side")
    parser.add_argument(
        "--peers", nargs="+", default=["pull", "dcimport"], help="peers to run (pull dcimport)"
    )


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    size = {**SIZES[args.size], **{k: v for k, v in vars(args).items() if v is not None}}
    tree = roll.many_small_files(
        work / "phone-small", files=size["files"], file_bytes=size["file_kb"] * 1000
    )
    count = tree["files"]
    setup = common.RollkeeperSetup(work / "rollkeeper").write()
    pulled, imported = work / "pull", work / "dcimport"
    dcimport = common.DCIMPORT_VENV / "bin" / "dcimport"
    with common.SimulatorProcess(Path(tree["root"]), counting=True) as simulator:
        environment = common.client_environment(simulator.address)

        def measured(
            name: str, command: list[str], extra: dict[str, str] | None = None
        ) -> dict[str, Any]:
            subprocess.run(["sync"], check=False)
            simulator.reset()
            result = common.run_measured(command, {**environment, **(extra or {})})
            common.require_ok(result, name)
            requests = sum(simulator.counts().values())
            return {
                "seconds": round(result.seconds, 3),
                "files_per_second": round(count / result.seconds, 1),
                "ms_per_file": round(result.seconds / count * 1000, 3),
                "cpu_ms_per_file": round(result.cpu_seconds / count * 1000, 3),
                "afc_requests": requests,
                "requests_per_file": round(requests / count, 2),
            }

        def rollkeeper(_: int) -> dict[str, Any]:
            setup.wipe()
            command = common.rollkeeper_command(setup, "backup-now", "--json", "--no-progress")
            return measured("rollkeeper backup-now", command)

        def before_side(_: int) -> dict[str, Any]:
            assert args.before is not None
            setup.wipe()
            code = args.before.resolve()
            command = [sys.executable, "-m", "rollkeeper", "--config", str(setup.config)]
            paths = os.pathsep.join([str(code / "daemon"), str(code)])
            return measured(
                "rollkeeper backup-now (before)",
                [*command, "backup-now", "--json", "--no-progress"],
                {"PYTHONPATH": paths},
            )

        def pull(_: int) -> dict[str, Any]:
            common.drop_tree(pulled)
            pulled.mkdir(parents=True)
            command = [str(common.VENV_BIN / "pymobiledevice3"), "afc", "pull", "/DCIM"]
            return measured("pymobiledevice3 afc pull", [*command, str(pulled)])

        def dcimport_side(_: int) -> dict[str, Any]:
            common.drop_tree(imported)
            return measured("dcimport", [str(dcimport), str(imported)])

        sides: dict[str, common.Side] = {"rollkeeper": rollkeeper}
        if args.before is not None:
            sides["rollkeeper_before"] = before_side
        if "pull" in args.peers:
            sides["pull"] = pull
        if "dcimport" in args.peers and dcimport.exists():
            sides["dcimport"] = dcimport_side
        runs = common.paired_rounds(size["rounds"], sides)
    common.drop_tree(pulled)
    common.drop_tree(imported)
    setup.wipe()
    keys = ("seconds", "files_per_second", "ms_per_file", "cpu_ms_per_file", "requests_per_file")
    medians = {
        name: {key: common.median([r[key] for r in results]) for key in keys}
        for name, results in runs.items()
    }
    ratios = {
        f"rollkeeper_vs_{peer}": common.ratio_of_medians(
            runs, "files_per_second", "rollkeeper", peer
        )
        for peer in runs
        if peer != "rollkeeper"
    }
    common.print_table(
        f"7. per-file overhead, {count} files of {size['file_kb']} KB (median of {size['rounds']})",
        ["client", "seconds", "files/s", "ms/file", "CPU ms/file", "AFC requests/file"],
        [[name, *values.values()] for name, values in medians.items()],
    )
    for key, value in ratios.items():
        print(f"  {key}: {value}x files/s")
    return {"tree": tree, "runs": runs, "medians": medians, "ratios": ratios}


def main() -> int:
    """Run this benchmark alone (``python -m bench.small_files --help``)."""
    return common.main_for("small_files", __doc__, SIZES, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
