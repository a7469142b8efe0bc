"""3. Nothing new, 4. first scan, and the scan half of 6. CPU, for phones of N files in folders
of ~1,000.

For each N: the phone tree (small JPEGs: the file sizes do not matter to a scan, and 100,000
photos of 3 MB would not fit the disk) is backed up once for real (:mod:`bench.client`, from
an empty archive). That first backup gives figure 4 — seconds from the start of the
connection until the plan is complete and until the first byte is copied — and what populating
the archive costs. Then, alternating, with nothing new on the phone:

* rollkeeper's re-plug: the client from the start of the connection until the run is over
  (up to date; opening the state before it, with its integrity check, is left out) and the
  whole process, and the AFC requests the simulator counted;
* the same re-plug without the rotating check's slice (``--no-rotating-check``): the
  difference of the medians is what the slice costs;
* a bare client (:mod:`bench.client` ``list``): connect, READ_DIR /DCIM and each folder;
* ``dcimport``'s re-run (its process wall time), when it is installed and ``--dcimport`` asks.

Then a ``--full-rescan`` re-plug (a stat for every file, nothing copied): its CPU seconds less
the nothing-new re-plug's, per 1,000 files, is the CPU cost of scanning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench import common, roll

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"counts": [300, 1200], "file_kb": 4, "per_folder": 100, "rounds": 2},
    "full": {"counts": [20_000, 100_000], "file_kb": 4, "per_folder": 1000, "rounds": 5},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--counts", type=int, nargs="+", help="files on the phone (20000 100000)")
    parser.add_argument("--file-kb", type=int, help="size of each file in KB")
    parser.add_argument("--per-folder", type=int, help="files per DCIM folder")
    parser.add_argument("--rounds", type=int, help="alternating rounds (median reported)")
    parser.add_argument(
        "--dcimport",
        type=int,
        nargs="*",
        default=None,
        help="phone sizes at which dcimport is measured too (default: all, if installed)",
    )


def _client(
    setup: common.RollkeeperSetup, environment: dict[str, str], *extra: str
) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.client", "backup", "--config", str(setup.config)]
    result = common.run_measured([*command, *extra], environment, cwd=common.REPO)
    common.require_ok(result, "bench.client backup")
    figures: dict[str, Any] = result.json()
    figures["process_seconds"] = round(result.seconds, 4)
    figures["cpu_seconds"] = round(result.cpu_seconds, 3)
    figures["peak_rss_mb"] = round(result.peak_rss_bytes / 1e6, 1)
    return figures


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    size = {**SIZES[args.size], **{k: v for k, v in vars(args).items() if v is not None}}
    dcimport = common.DCIMPORT_VENV / "bin" / "dcimport"
    dcimport_at = size["counts"] if args.dcimport is None else args.dcimport
    summary: dict[str, Any] = {"phones": {}}
    rows = []
    scan_rows = []
    for count in size["counts"]:
        tree = roll.many_small_files(
            work / f"phone-{count}",
            files=count,
            file_bytes=size["file_kb"] * 1000,
            per_folder=size["per_folder"],
        )
        setup = common.RollkeeperSetup(work / f"rollkeeper-{count}").write()
        setup.wipe()
        figures: dict[str, Any] = {"tree": tree}
        with common.SimulatorProcess(Path(tree["root"]), counting=True) as simulator:
            environment = common.client_environment(simulator.address)
            print(f"{count} files: first backup", flush=True)
            simulator.reset()
            first = _client(setup, environment)
            first["afc_requests"] = sum(simulator.counts().values())
            figures["first_backup"] = first
            print(f"  {first}", flush=True)

            def rollkeeper(
                _: int,
                setup: common.RollkeeperSetup = setup,
                environment: dict[str, str] = environment,
            ) -> dict[str, Any]:
                simulator.reset()
                result = _client(setup, environment)
                counts = simulator.counts()
                result["afc_requests"] = sum(counts.values())
                result["afc_requests_by_operation"] = counts
                return result

            def rollkeeper_no_slice(
                _: int,
                setup: common.RollkeeperSetup = setup,
                environment: dict[str, str] = environment,
            ) -> dict[str, Any]:
                simulator.reset()
                result = _client(setup, environment, "--no-rotating-check")
                result["afc_requests"] = sum(simulator.counts().values())
                return result

            def bare(_: int, environment: dict[str, str] = environment) -> dict[str, Any]:
                simulator.reset()
                command = [sys.executable, "-m", "bench.client", "list"]
                result = common.run_measured(command, environment, cwd=common.REPO)
                common.require_ok(result, "bench.client list")
                listed: dict[str, Any] = result.json()
                listed["afc_requests"] = sum(simulator.counts().values())
                listed["process_seconds"] = round(result.seconds, 4)
                listed["cpu_seconds"] = round(result.cpu_seconds, 3)
                return listed

            sides: dict[str, common.Side] = {
                "rollkeeper": rollkeeper,
                "bare_listing": bare,
                "rollkeeper_without_slice": rollkeeper_no_slice,
            }
            dcimport_out = work / f"dcimport-{count}"
            if dcimport.exists() and count in dcimport_at:
                common.drop_tree(dcimport_out)
                print("  dcimport: first import", flush=True)
                result = common.run_measured([str(dcimport), str(dcimport_out)], environment)
                common.require_ok(result, "dcimport")
                figures["dcimport_first_import_seconds"] = round(result.seconds, 2)

                def dcimport_rerun(
                    _: int,
                    dcimport_out: Path = dcimport_out,
                    environment: dict[str, str] = environment,
                ) -> dict[str, Any]:
                    simulator.reset()
                    result = common.run_measured([str(dcimport), str(dcimport_out)], environment)
                    common.require_ok(result, "dcimport")
                    return {
                        "seconds": round(result.seconds, 3),
                        "afc_requests": sum(simulator.counts().values()),
                        "cpu_seconds": round(result.cpu_seconds, 3),
                    }

                sides["dcimport"] = dcimport_rerun
            runs = common.paired_rounds(size["rounds"], sides)
            simulator.reset()
            rescan = _client(setup, environment, "--full-rescan")
            rescan["afc_requests"] = sum(simulator.counts().values())
            figures["full_rescan"] = rescan
        common.drop_tree(dcimport_out)
        figures["runs"] = runs
        medians = {
            name: {
                key: common.median([r[key] for r in results])
                for key in ("seconds", "process_seconds", "afc_requests")
                if all(key in r for r in results)
            }
            for name, results in runs.items()
        }
        figures["medians"] = medians
        rk = medians["rollkeeper"]
        # Connection to "up to date" (the state's opening and integrity check excluded), and
        # the whole process (start-up and the state's opening included), each ÷ the bare client.
        figures["ratio_to_bare_listing"] = common.ratio_of_medians(
            runs, "seconds", "rollkeeper", "bare_listing"
        )
        figures["process_ratio_to_bare_listing"] = common.ratio_of_medians(
            runs, "process_seconds", "rollkeeper", "bare_listing"
        )
        slice_costs = [
            with_slice["seconds"] - without["seconds"]
            for with_slice, without in zip(
                runs["rollkeeper"], runs["rollkeeper_without_slice"], strict=False
            )
        ]
        figures["rotating_check_seconds"] = round(common.median(slice_costs), 4)
        figures["rotating_checks"] = runs["rollkeeper"][0].get("rotating_checks", 0)
        # The target: READ_DIR of /DCIM, and per folder one READ_DIR and one GET_FILE_INFO,
        # plus the slice.
        figures["requests_over_two_per_folder_and_slice"] = (
            rk["afc_requests"] - 2 * tree["folders"] - figures["rotating_checks"]
        )
        figures["requests_over_folders"] = rk["afc_requests"] - tree["folders"]
        nothing_new_cpu = common.median([r["cpu_seconds"] for r in runs["rollkeeper"]])
        figures["cpu_seconds_per_1000_scanned"] = round(
            max(0.0, rescan["cpu_seconds"] - nothing_new_cpu) / count * 1000, 4
        )
        figures["first_backup_files_per_second"] = round(count / first["seconds"], 1)
        summary["phones"][str(count)] = figures
        rows.append(
            [
                count,
                tree["folders"],
                rk["seconds"],
                rk["process_seconds"],
                rk["afc_requests"],
                figures["rotating_checks"],
                figures["rotating_check_seconds"],
                medians["bare_listing"]["seconds"],
                medians["bare_listing"]["process_seconds"],
                figures["ratio_to_bare_listing"],
                figures["process_ratio_to_bare_listing"],
                medians.get("dcimport", {}).get("seconds", "-"),
                medians.get("dcimport", {}).get("afc_requests", "-"),
            ]
        )
        scan_rows.append(
            [
                count,
                first["plan_seconds"],
                first.get("first_byte_seconds", "-"),
                first["seconds"],
                figures["first_backup_files_per_second"],
                rescan["seconds"],
                figures["cpu_seconds_per_1000_scanned"],
            ]
        )
    common.print_table(
        f"3. nothing new (median of {size['rounds']}; targets: requests <= 2 x folders + slice, "
        "<= 1.5x bare, <= 1 s at 100,000; slice <= 100 ms)",
        [
            "files",
            "folders",
            "rollkeeper s",
            "rk process s",
            "requests",
            "slice",
            "slice s",
            "bare s",
            "bare process s",
            "rk/bare",
            "process rk/bare",
            "dcimport s",
            "dcimport requests",
        ],
        rows,
    )
    common.print_table(
        "4. first backup (target: plan complete and first byte <= 10 s at 100,000) and 6. scan CPU",
        [
            "files",
            "plan s",
            "first byte s",
            "whole first backup s",
            "files/s",
            "full rescan s",
            "CPU s / 1,000 scanned",
        ],
        scan_rows,
    )
    return summary


def main() -> int:
    """Run this benchmark alone (``python -m bench.replug --help``)."""
    return common.main_for("replug", __doc__, SIZES, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
