"""Before/after: the same measurements with two versions of rollkeeper, alternating, same run.

``--before DIR`` is a tree of the older code (``git archive REV | tar -x -C DIR``, or HEAD with
some commits reversed); the after side is this repository. Each round runs both sides, in
alternating order, from the same phone tree and the same simulator process:

* small files: a first backup of N small files into an empty archive (:mod:`bench.client`,
  seconds from the start of the connection to the end of the run);
* nothing new: a re-plug of a phone of M archived files (the state is made once, by the after
  side's first backup, and shared: a nothing-new run changes nothing the next run reads).

The figure is the median of after ÷ before per round (below 1 is faster).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from bench import common, roll

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"small_files": 100, "small_kb": 100, "replug_files": 500, "rounds": 2},
    "full": {"small_files": 5000, "small_kb": 100, "replug_files": 20_000, "rounds": 5},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--before", type=Path, help="the older code's tree (required)")
    parser.add_argument("--small-files", type=int, help="files in the small-files backup")
    parser.add_argument("--small-kb", type=int, help="their size in KB")
    parser.add_argument("--replug-files", type=int, help="archived files for the re-plug")
    parser.add_argument("--rounds", type=int, help="alternating rounds (median reported)")


def code_environment(code: Path, environment: dict[str, str]) -> dict[str, str]:
    """The environment of a client of the tree ``code``: its package (under ``daemon/``) and
    its ``bench/`` first on the path, so that neither side imports the venv's installed one."""
    return {**environment, "PYTHONPATH": os.pathsep.join([str(code / "daemon"), str(code)])}


def _backup(
    code: Path, setup: common.RollkeeperSetup, environment: dict[str, str]
) -> dict[str, Any]:
    environment = code_environment(code, environment)
    command = [sys.executable, "-m", "bench.client", "backup", "--config", str(setup.config)]
    result = common.run_measured(command, environment, cwd=code)
    common.require_ok(result, f"bench.client backup ({code})")
    figures: dict[str, Any] = result.json()
    figures["cpu_seconds"] = round(result.cpu_seconds, 3)
    return figures


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    size = {**SIZES[args.size], **{k: v for k, v in vars(args).items() if v is not None}}
    codes = {"before": args.before.resolve(), "after": common.REPO}
    summary: dict[str, Any] = {"before_code": str(codes["before"])}
    small = roll.many_small_files(
        work / "phone-before-after-small",
        files=size["small_files"],
        file_bytes=size["small_kb"] * 1000,
    )
    setups = {
        name: common.RollkeeperSetup(work / f"rollkeeper-small-{name}").write() for name in codes
    }
    with common.SimulatorProcess(Path(small["root"])) as simulator:
        environment = common.client_environment(simulator.address)

        def small_side(name: str) -> Any:
            def side(_: int) -> dict[str, Any]:
                setups[name].wipe()
                figures = _backup(codes[name], setups[name], environment)
                assert figures["files_copied"] == small["files"], figures
                setups[name].wipe()
                return figures

            return side

        print(f"small files: {small['files']} x {size['small_kb']} KB", flush=True)
        runs = common.paired_rounds(size["rounds"], {n: small_side(n) for n in codes})
    summary["small_files"] = {
        "runs": runs,
        "files_per_second": {
            name: round(small["files"] / common.median([r["seconds"] for r in results]), 1)
            for name, results in runs.items()
        },
        "after_over_before_seconds": common.ratio_of_medians(runs, "seconds", "after", "before"),
    }
    phone = roll.many_small_files(
        work / f"phone-before-after-{size['replug_files']}",
        files=size["replug_files"],
        file_bytes=4000,
    )
    shared = common.RollkeeperSetup(work / f"rollkeeper-replug-{size['replug_files']}").write()
    with common.SimulatorProcess(Path(phone["root"]), counting=True) as simulator:
        environment = common.client_environment(simulator.address)
        first = _backup(codes["after"], shared, environment)
        assert first["outcome"] == "complete", first

        def replug_side(name: str) -> Any:
            def side(_: int) -> dict[str, Any]:
                simulator.reset()
                figures = _backup(codes[name], shared, environment)
                figures["afc_requests"] = sum(simulator.counts().values())
                assert figures["files_copied"] == 0, figures
                return figures

            return side

        print(f"nothing new: {phone['files']} files in {phone['folders']} folders", flush=True)
        runs = common.paired_rounds(size["rounds"], {n: replug_side(n) for n in codes})
    summary["nothing_new"] = {
        "runs": runs,
        "seconds": {n: common.median([r["seconds"] for r in rs]) for n, rs in runs.items()},
        "after_over_before_seconds": common.ratio_of_medians(runs, "seconds", "after", "before"),
    }
    common.print_table(
        f"before/after (median of {size['rounds']} alternating rounds)",
        ["measurement", "before", "after", "after/before (time)"],
        [
            [
                f"first backup, {small['files']} files of {size['small_kb']} KB: files/s",
                summary["small_files"]["files_per_second"]["before"],
                summary["small_files"]["files_per_second"]["after"],
                summary["small_files"]["after_over_before_seconds"],
            ],
            [
                f"nothing new, {phone['files']} files: seconds",
                summary["nothing_new"]["seconds"]["before"],
                summary["nothing_new"]["seconds"]["after"],
                summary["nothing_new"]["after_over_before_seconds"],
            ],
        ],
    )
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=list(SIZES), default="smoke")
    parser.add_argument("--work", type=Path, help="keep phone trees here between runs")
    add_arguments(parser)
    args = parser.parse_args()
    if args.before is None:
        parser.error("--before DIR is required (git archive REV | tar -x -C DIR)")
    with common.work_folder(args.work, "before_after") as work:
        common.write_results("before_after", work, vars(args), run(args, work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
