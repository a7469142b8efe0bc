"""1. Throughput against the peers: ``rollkeeper backup-now`` vs ``pymobiledevice3 afc pull`` vs
``dcimport`` on the same camera roll from the same simulator (``rollkeeper simulate`` in its own
process).

Each side starts from an empty destination (rollkeeper: empty archive and no state) and copies
the whole roll; the time is the client process's wall time (start to exit, start-up included
for all three), CPU seconds and peak RSS come from wait4. ``sync`` runs (untimed) before every
run so one side's dirty pages are not written back during the other's. rollkeeper also hashes
(BLAKE3), fsyncs every file and folder and records every file in SQLite; pull does none of
that; dcimport records in SQLite but neither hashes nor fsyncs.

``--before DIR`` adds a side running an older tree's ``backup-now`` (``git archive REV | tar -x
-C DIR``) on the same roll, so a change is measured against the code before it in the same run;
``--dd`` adds a side writing the roll's bytes with ``dd bs=4M conv=fsync``: the disk's durable
write rate in the same run, the ceiling for any tool that waits for the disk.
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
    "smoke": {"photos": 40, "videos": 2, "video_mb": (5, 20), "rounds": 1},
    "full": {"photos": 1000, "videos": 20, "video_mb": (50, 500), "rounds": 3},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--photos", type=int, help="photos of 2-5 MB (30%% Live Photos)")
    parser.add_argument("--photo-mb", type=float, nargs=2, help="photo size range in MB (2 5)")
    parser.add_argument("--live-share", type=float, help="share of Live Photos (0.3)")
    parser.add_argument("--tree-name", default="roll", help="the phone tree's folder: phone-NAME")
    parser.add_argument("--before", type=Path, help="an older tree: a rollkeeper_before side")
    parser.add_argument("--dd", action="store_true", help="a dd conv=fsync side (durable rate)")
    parser.add_argument("--videos", type=int, help="videos")
    parser.add_argument("--video-mb", type=int, nargs=2, help="video size range in MB")
    parser.add_argument("--rounds", type=int, help="alternating rounds (median reported)")
    parser.add_argument(
        "--peers", nargs="+", default=["pull", "dcimport"], help="peers to run (pull dcimport)"
    )


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    size = {**SIZES[args.size], **{k: v for k, v in vars(args).items() if v is not None}}
    video_mb = size["video_mb"]
    photo_mb = size.get("photo_mb") or (2, 5)
    tree = roll.realistic_roll(
        work / f"phone-{args.tree_name}",
        photos=size["photos"],
        photo_bytes=(int(photo_mb[0] * common.MB), int(photo_mb[1] * common.MB)),
        live_share=size.get("live_share", 0.3),
        videos=size["videos"],
        video_bytes=(video_mb[0] * common.MB, video_mb[1] * common.MB),
    )
    print(
        f"roll: {tree['files']} files, {tree['bytes'] / 1e9:.2f} GB in {tree['folders']} folder(s)",
        flush=True,
    )
    setup = common.RollkeeperSetup(work / "rollkeeper").write()
    destinations = {"pull": work / "pull", "dcimport": work / "dcimport"}
    dcimport = common.DCIMPORT_VENV / "bin" / "dcimport"
    peers = [p for p in args.peers if p != "dcimport" or dcimport.exists()]
    with common.SimulatorProcess(Path(tree["root"])) as simulator:
        environment = common.client_environment(simulator.address)

        def measured(name: str, command: list[str], copied: Path) -> dict[str, Any]:
            subprocess.run(["sync"], check=False)
            result = common.run_measured(command, environment)
            common.require_ok(result, name)
            files, _total = common.tree_bytes(copied)
            return _figures(result, tree["bytes"], files)

        def rollkeeper(_: int) -> dict[str, Any]:
            setup.wipe()
            command = common.rollkeeper_command(setup, "backup-now", "--json", "--no-progress")
            figures = measured("rollkeeper backup-now", command, setup.archive)
            setup.wipe()  # free the disk and the page cache for the next side
            outcome = _json_tail(figures.pop("_stdout"))
            figures["outcome"] = outcome["phones"][0]["outcome"] if outcome else "?"
            return figures

        def pull(_: int) -> dict[str, Any]:
            common.drop_tree(destinations["pull"])
            destinations["pull"].mkdir(parents=True)
            command = [str(common.VENV_BIN / "pymobiledevice3"), "afc", "pull", "/DCIM"]
            command.append(str(destinations["pull"]))
            figures = measured("pymobiledevice3 afc pull", command, destinations["pull"])
            common.drop_tree(destinations["pull"])
            figures.pop("_stdout")
            return figures

        def dcimport_side(_: int) -> dict[str, Any]:
            common.drop_tree(destinations["dcimport"])
            command = [str(dcimport), str(destinations["dcimport"])]
            figures = measured("dcimport", command, destinations["dcimport"])
            common.drop_tree(destinations["dcimport"])
            figures.pop("_stdout")
            return figures

        sides: dict[str, common.Side] = {"rollkeeper": rollkeeper}
        sides.update(_extra_sides(args, work, setup, tree, environment))
        if "pull" in peers:
            sides["pull"] = pull
        if "dcimport" in peers:
            sides["dcimport"] = dcimport_side
        runs = common.paired_rounds(size["rounds"], sides)
    for path in destinations.values():
        common.drop_tree(path)
    setup.wipe()
    summary = _summary(tree, runs)
    _print_summary(summary, size["rounds"])
    return summary


def _extra_sides(
    args: argparse.Namespace,
    work: Path,
    setup: common.RollkeeperSetup,
    tree: dict[str, Any],
    environment: dict[str, str],
) -> dict[str, common.Side]:
    """The older tree's ``backup-now`` (``--before``) and ``dd conv=fsync`` (``--dd``) sides."""

    def before_side(_: int) -> dict[str, Any]:
        assert args.before is not None
        setup.wipe()
        code = args.before.resolve()
        command = [sys.executable, "-m", "rollkeeper", "--config", str(setup.config)]
        command += ["backup-now", "--json", "--no-progress"]
        subprocess.run(["sync"], check=False)
        paths = os.pathsep.join([str(code / "daemon"), str(code)])
        result = common.run_measured(command, {**environment, "PYTHONPATH": paths}, cwd=code)
        common.require_ok(result, "rollkeeper backup-now (before)")
        files, _total = common.tree_bytes(setup.archive)
        setup.wipe()
        figures = _figures(result, tree["bytes"], files)
        figures.pop("_stdout")
        return figures

    def dd_side(_: int) -> dict[str, Any]:
        target = work / "dd-durable.bin"
        blocks = -(-tree["bytes"] // (4 << 20))
        command = ["dd", "if=/dev/zero", f"of={target}", "bs=4M", f"count={blocks}"]
        subprocess.run(["sync"], check=False)
        result = common.run_measured([*command, "conv=fsync"], environment)
        target.unlink(missing_ok=True)
        common.require_ok(result, "dd conv=fsync")
        figures = _figures(result, tree["bytes"], 1)
        figures.pop("_stdout")
        return figures

    sides: dict[str, common.Side] = {}
    if args.before is not None:
        sides["rollkeeper_before"] = before_side
    if args.dd:
        sides["dd_fsync"] = dd_side
    return sides


#: The figures each side's median is reported for, in the table's column order.
MEDIAN_KEYS = ("seconds", "mb_per_second", "cpu_seconds", "cpu_seconds_per_gb", "peak_rss_mb")


def _summary(tree: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each side's medians, and rollkeeper's throughput as a ratio to each peer's and to the
    faster peer's."""
    summary: dict[str, Any] = {"tree": tree, "runs": runs, "medians": {}, "ratios": {}}
    for name, results in runs.items():
        summary["medians"][name] = {
            key: round(common.median([r[key] for r in results]), 3) for key in MEDIAN_KEYS
        }
    others = [name for name in runs if name != "rollkeeper"]
    peers = [name for name in others if name in ("pull", "dcimport")]
    for peer in others:
        summary["ratios"][f"rollkeeper_vs_{peer}"] = common.ratio_of_medians(
            runs, "mb_per_second", "rollkeeper", peer
        )
    if peers:
        fastest = max(peers, key=lambda p: summary["medians"][p]["mb_per_second"])
        summary["ratios"]["rollkeeper_vs_faster_peer"] = summary["ratios"][
            f"rollkeeper_vs_{fastest}"
        ]
        summary["faster_peer"] = fastest
    return summary


def _print_summary(summary: dict[str, Any], rounds: int) -> None:
    """The medians as a table, then the ratios."""
    tree = summary["tree"]
    rows = [[name, *medians.values()] for name, medians in summary["medians"].items()]
    common.print_table(
        f"1. throughput, {tree['files']} files / {tree['bytes'] / 1e9:.2f} GB (median of {rounds})",
        ["client", "seconds", "MB/s", "CPU s", "CPU s/GB", "peak RSS MB"],
        rows,
    )
    for key, value in summary["ratios"].items():
        print(f"  {key}: {value}x (target >= 1.0x the faster peer)")


def _figures(result: common.Measured, total_bytes: int, files: int) -> dict[str, Any]:
    gigabytes = total_bytes / 1e9
    return {
        "seconds": round(result.seconds, 3),
        "mb_per_second": round(total_bytes / result.seconds / 1e6, 1),
        "cpu_seconds": round(result.cpu_seconds, 2),
        "cpu_seconds_per_gb": round(result.cpu_seconds / gigabytes, 2),
        "peak_rss_mb": round(result.peak_rss_bytes / 1e6, 1),
        "files_written": files,
        "_stdout": result.stdout,
    }


def _json_tail(text: str) -> Any:
    import json

    start = text.find("{")
    return json.loads(text[start:]) if start >= 0 else None


def main() -> int:
    """Run this benchmark alone (``python -m bench.peers --help``)."""
    return common.main_for("peers", __doc__, SIZES, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
