"""Device backups: ``rollkeeper device-backup`` vs ``pymobiledevice3 backup2 backup`` of the same
simulated phone, and the disk a second snapshot of an unchanged phone adds.

Both sides make a full backup (an empty destination each round) from the same ``rollkeeper
simulate`` process; the time is the client's wall time, start-up included. rollkeeper also
clones the previous snapshot (none here), writes every received file by rename, fsyncs what it
wrote, verifies the backup folder and records the snapshot in SQLite; pymobiledevice3 does
none of that. ``sync`` runs (untimed) before every run. The ratio is pymobiledevice3's median
time over rollkeeper's (throughput of rollkeeper relative to pymobiledevice3; target >= 0.95).

Then, with the phone unchanged, a second ``rollkeeper device-backup`` makes a second snapshot:
its extra disk is measured twice, as the filesystem's used bytes before and after (statvfs) and
as the blocks of inodes the first snapshot does not share (target < 1 % of the first).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common, roll

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"photos": 20, "videos": 1, "video_mb": (20, 30), "rounds": 1},
    "full": {"photos": 200, "videos": 4, "video_mb": (200, 300), "rounds": 3},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--photos", type=int, help="photos of 2-5 MB (30%% Live Photos)")
    parser.add_argument("--videos", type=int, help="videos")
    parser.add_argument("--video-mb", type=int, nargs=2, help="video size range in MB")
    parser.add_argument("--rounds", type=int, help="alternating rounds (median reported)")


def _used_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def _inode_blocks(folder: Path, seen: set[tuple[int, int]]) -> int:
    total = 0
    for current, _dirs, names in os.walk(folder):
        for name in names:
            info = os.lstat(os.path.join(current, name))
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    size = {**SIZES[args.size], **{k: v for k, v in vars(args).items() if v is not None}}
    video_mb = size["video_mb"]
    tree = roll.realistic_roll(
        work / "device-backup-roll",
        photos=size["photos"],
        videos=size["videos"],
        video_bytes=(video_mb[0] * common.MB, video_mb[1] * common.MB),
    )
    print(f"phone: {tree['files']} files, {tree['bytes'] / 1e9:.2f} GB", flush=True)
    snapshots = work / "rollkeeper-device-backups"
    setup = common.RollkeeperSetup(
        work / "rollkeeper-device", extra={"device_backup": {"path": str(snapshots)}}
    ).write()
    stock = work / "pymobiledevice3-backup"
    with common.SimulatorProcess(Path(tree["root"])) as simulator:
        environment = common.client_environment(simulator.address)

        def measured(name: str, command: list[str]) -> dict[str, Any]:
            subprocess.run(["sync"], check=False)
            result = common.run_measured(command, environment)
            common.require_ok(result, name)
            # Until the backup is on disk: rollkeeper fsyncs before it exits, pymobiledevice3
            # does not, so a timed sync after each run gives the durable comparison too.
            started = time.monotonic()
            subprocess.run(["sync"], check=False)
            to_disk = result.seconds + time.monotonic() - started
            return {
                "seconds_to_disk": round(to_disk, 3),
                "mb_per_second_to_disk": round(tree["bytes"] / common.MB / to_disk, 1),
                "seconds": round(result.seconds, 3),
                "mb_per_second": round(tree["bytes"] / common.MB / result.seconds, 1),
                "cpu_seconds": round(result.cpu_seconds, 2),
                "peak_rss_mb": round(result.peak_rss_bytes / common.MB, 1),
            }

        def rollkeeper(_: int) -> dict[str, Any]:
            common.drop_tree(snapshots)
            setup.wipe()
            command = common.rollkeeper_command(setup, "device-backup", "--json")
            return measured("rollkeeper device-backup", command)

        def pymobiledevice3(_: int) -> dict[str, Any]:
            common.drop_tree(stock)
            stock.mkdir(parents=True)
            command = [str(common.VENV_BIN / "pymobiledevice3"), "backup2", "backup", str(stock)]
            figures = measured("pymobiledevice3 backup2 backup", command)
            common.drop_tree(stock)
            return figures

        runs = common.paired_rounds(
            size["rounds"], {"rollkeeper": rollkeeper, "pymobiledevice3": pymobiledevice3}
        )
        # The second snapshot of an unchanged phone, after a fresh first one.
        common.drop_tree(snapshots)
        setup.wipe()
        first = common.run_measured(
            common.rollkeeper_command(setup, "device-backup", "--json"), environment
        )
        common.require_ok(first, "first snapshot")
        subprocess.run(["sync"], check=False)
        udid_folder = next(path for path in snapshots.iterdir() if path.is_dir())
        seen: set[tuple[int, int]] = set()
        first_bytes = _inode_blocks(udid_folder, seen)
        before = _used_bytes(snapshots)
        second = common.run_measured(
            common.rollkeeper_command(setup, "device-backup", "--json"), environment
        )
        common.require_ok(second, "second snapshot")
        subprocess.run(["sync"], check=False)
        after = _used_bytes(snapshots)
        added_inodes = _inode_blocks(udid_folder, seen)
    common.drop_tree(snapshots)
    setup.wipe()
    ratio = common.ratio_of_medians(runs, "mb_per_second", "rollkeeper", "pymobiledevice3")
    durable = common.ratio_of_medians(
        runs, "mb_per_second_to_disk", "rollkeeper", "pymobiledevice3"
    )
    medians = {
        name: {key: round(common.median([r[key] for r in results]), 3) for key in results[0]}
        for name, results in runs.items()
    }
    second_snapshot = {
        "first_snapshot_bytes": first_bytes,
        "added_bytes_statvfs": after - before,
        "added_bytes_inodes": added_inodes,
        "added_share_inodes": round(added_inodes / first_bytes, 5),
        "added_share_statvfs": round((after - before) / first_bytes, 5),
        "second_seconds": round(second.seconds, 2),
    }
    common.print_table(
        f"device backup, {tree['files']} files / {tree['bytes'] / 1e9:.2f} GB "
        f"(median of {size['rounds']})",
        ["client", "s to disk", "MB/s to disk", "seconds", "MB/s", "CPU s", "peak RSS MB"],
        [[name, *values.values()] for name, values in medians.items()],
    )
    print(f"  rollkeeper_vs_pymobiledevice3: {ratio}x (target >= 0.95x)")
    print(f"  rollkeeper_vs_pymobiledevice3, until on disk: {durable}x")
    print(
        f"  second snapshot of an unchanged phone: +{added_inodes / 1e6:.2f} MB of new inodes, "
        f"{(after - before) / 1e6:.2f} MB by statvfs, of {first_bytes / 1e9:.2f} GB "
        f"({100 * added_inodes / first_bytes:.3f} %; target < 1 %)"
    )
    return {
        "tree": tree,
        "runs": runs,
        "medians": medians,
        "ratios": {
            "rollkeeper_vs_pymobiledevice3": ratio,
            "rollkeeper_vs_pymobiledevice3_to_disk": durable,
        },
        "second_snapshot": second_snapshot,
    }


def main() -> int:
    """Run this benchmark alone (``python -m bench.device_backup --help``)."""
    return common.main_for("device_backup", __doc__, SIZES, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
