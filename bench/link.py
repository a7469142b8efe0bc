"""2. Link efficiency: rollkeeper's throughput ÷ the link's, with the simulator's AFC reads
throttled to 35 MB/s (USB 2 as phones deliver it) and 300 MB/s (USB 3).

The time is measured inside the client from the start of the connection to the end of the run
(:mod:`bench.client`): the link is busy from the first READ, and Python's start-up is not the
link's time. ``pymobiledevice3 afc pull`` on the same tree, alternating, shows what the plain
client reaches on the same link (its time is its process's wall time, start-up included).
``--before DIR`` adds a side running an older tree's ``bench.client backup`` (``git archive REV |
tar -x -C DIR``) in the same rounds. Each side also reports the CPU seconds per GB of its own
process and of the simulator's process during its run (``/proc``; absent elsewhere): both share
the machine's cores, which a real phone's serving does not.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from bench import common, roll

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"photos": 12, "videos": 1, "video_mb": (20, 20), "rounds": 1, "links": [35, 300]},
    "full": {"photos": 150, "videos": 3, "video_mb": (100, 300), "rounds": 3, "links": [35, 300]},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--photos", type=int, help="photos of 2-5 MB")
    parser.add_argument("--videos", type=int, help="videos")
    parser.add_argument("--video-mb", type=int, nargs=2, help="video size range in MB")
    parser.add_argument("--rounds", type=int, help="alternating rounds (median reported)")
    parser.add_argument("--links", type=float, nargs="+", help="throttles in MB/s (35 300)")
    parser.add_argument("--before", type=Path, help="an older tree: a rollkeeper_before side")


def _process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process so far (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _with_cpu(
    side: common.Side, simulator: common.SimulatorProcess, gigabytes: float
) -> common.Side:
    """``side`` with the simulator's CPU seconds per GB during each of its runs added."""

    def measured(round_number: int) -> dict[str, Any]:
        pid = simulator.process.pid if simulator.process is not None else 0
        before = _process_cpu_seconds(pid)
        figures = side(round_number)
        after = _process_cpu_seconds(pid)
        if before is not None and after is not None:
            figures["simulator_cpu_seconds_per_gb"] = round((after - before) / gigabytes, 2)
        return figures

    return measured


TARGETS = {35.0: 0.95, 300.0: 0.85}


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    size = {**SIZES[args.size], **{k: v for k, v in vars(args).items() if v is not None}}
    video_mb = size["video_mb"]
    tree = roll.realistic_roll(
        work / "phone-link",
        photos=size["photos"],
        videos=size["videos"],
        video_bytes=(video_mb[0] * common.MB, video_mb[1] * common.MB),
    )
    print(f"roll: {tree['files']} files, {tree['bytes'] / 1e9:.2f} GB", flush=True)
    setup = common.RollkeeperSetup(work / "rollkeeper").write()
    pulled = work / "pull"
    gigabytes = tree["bytes"] / 1e9
    before_code = args.before.resolve() if args.before is not None else None
    summary: dict[str, Any] = {"tree": tree, "links": {}}
    rows = []
    for link in size["links"]:
        with common.SimulatorProcess(Path(tree["root"]), throttle_mbps=link) as simulator:
            environment = common.client_environment(simulator.address)

            def rollkeeper(
                _: int, environment: dict[str, str] = environment, code: Path = common.REPO
            ) -> dict[str, Any]:
                setup.wipe()
                command = [sys.executable, "-m", "bench.client", "backup"]
                if code != common.REPO:
                    paths = os.pathsep.join([str(code / "daemon"), str(code)])
                    environment = {**environment, "PYTHONPATH": paths}
                result = common.run_measured(
                    [*command, "--config", str(setup.config)], environment, cwd=code
                )
                common.require_ok(result, "bench.client backup")
                figures = result.json()
                seconds = figures["seconds"]
                return {
                    "seconds": seconds,
                    "mb_per_second": round(figures["bytes_copied"] / seconds / 1e6, 2),
                    "cpu_seconds_per_gb": round(result.cpu_seconds / gigabytes, 2),
                    "outcome": figures["outcome"],
                }

            def pull(_: int, environment: dict[str, str] = environment) -> dict[str, Any]:
                common.drop_tree(pulled)
                pulled.mkdir(parents=True)
                command = [str(common.VENV_BIN / "pymobiledevice3"), "afc", "pull", "/DCIM"]
                result = common.run_measured([*command, str(pulled)], environment)
                common.require_ok(result, "pymobiledevice3 afc pull")
                return {
                    "seconds": round(result.seconds, 3),
                    "mb_per_second": round(tree["bytes"] / result.seconds / 1e6, 2),
                    "cpu_seconds_per_gb": round(result.cpu_seconds / gigabytes, 2),
                }

            sides: dict[str, common.Side] = {"rollkeeper": rollkeeper, "pull": pull}
            if before_code is not None:

                def before(_: int, code: Path = before_code) -> dict[str, Any]:
                    return rollkeeper(_, code=code)

                sides["rollkeeper_before"] = before
            sides = {name: _with_cpu(side, simulator, gigabytes) for name, side in sides.items()}
            print(f"link {link:g} MB/s", flush=True)
            runs = common.paired_rounds(size["rounds"], sides)
        achieved = common.median([r["mb_per_second"] for r in runs["rollkeeper"]])
        pull_rate = common.median([r["mb_per_second"] for r in runs["pull"]])
        efficiency = round(achieved / link, 3)
        target = TARGETS.get(float(link))
        before_rate = (
            common.median([r["mb_per_second"] for r in runs["rollkeeper_before"]])
            if "rollkeeper_before" in runs
            else None
        )
        summary["links"][str(link)] = {
            "runs": runs,
            "rollkeeper_before_mb_per_second": before_rate,
            "ratio_to_pull": common.ratio_of_medians(runs, "mb_per_second", "rollkeeper", "pull"),
            "ratio_to_before": (
                common.ratio_of_medians(runs, "mb_per_second", "rollkeeper", "rollkeeper_before")
                if before_rate is not None
                else None
            ),
            "rollkeeper_mb_per_second": achieved,
            "pull_mb_per_second": pull_rate,
            "efficiency": efficiency,
            "pull_efficiency": round(pull_rate / link, 3),
            "target": target,
        }
        rows.append(
            [f"{link:g}", achieved, efficiency, target or "-", pull_rate, before_rate or "-"]
        )
    common.drop_tree(pulled)
    setup.wipe()
    common.print_table(
        f"2. link efficiency, {tree['bytes'] / 1e9:.2f} GB (median of {size['rounds']})",
        ["link MB/s", "rollkeeper MB/s", "achieved/link", "target", "pull MB/s (wall)", "before"],
        rows,
    )
    return summary


def main() -> int:
    """Run this benchmark alone (``python -m bench.link --help``)."""
    return common.main_for("link", __doc__, SIZES, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
