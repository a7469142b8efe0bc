"""Run every benchmark (``make bench``) and print the figures against the issue's targets.

``python -m bench.run_all`` runs the small smoke sizes (a minute or two); ``--size full`` the
issue's sizes (about an hour on 2 cores, ~25 GB of disk at peak under --work). ``--only`` picks
benchmarks. Each writes bench/results/<name>-<time>.json; the summary goes to
bench/results/summary-<time>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import common, link, memory, peers, replug, small_files

BENCHMARKS: dict[str, ModuleType] = {
    "peers": peers,
    "link": link,
    "replug": replug,
    "memory": memory,
    "small_files": small_files,
}


def _arguments(module: ModuleType, size: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    args = parser.parse_args([])
    args.size = size
    return args


class TargetRows:
    """The summary's (figure, measured, target, met) rows, in the order they are added."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []

    def add(self, name: str, value: Any, target: str, met: bool | None) -> None:
        """One figure; ``met`` is None where the figure has no target (or none at this size)."""
        self.rows.append([name, value, target, "yes" if met else ("no" if met is False else "-")])


def _peers_targets(figures: dict[str, Any], rows: TargetRows) -> None:
    ratios = figures["ratios"]
    if "rollkeeper_vs_faster_peer" in ratios:
        value = ratios["rollkeeper_vs_faster_peer"]
        rows.add(
            f"1. throughput vs faster peer ({figures.get('faster_peer')})",
            value,
            ">= 1.0x",
            value >= 1.0,
        )
    cpu = figures["medians"]["rollkeeper"]["cpu_seconds_per_gb"]
    rows.add("6. CPU s per GB copied (backup-now, roll)", cpu, "-", None)


def _link_targets(figures: dict[str, Any], rows: TargetRows) -> None:
    for speed, link_figures in figures["links"].items():
        target = link_figures["target"]
        rows.add(
            f"2. achieved/link at {float(speed):g} MB/s",
            link_figures["efficiency"],
            f">= {target}" if target else "-",
            link_figures["efficiency"] >= target if target else None,
        )


def _replug_targets(figures: dict[str, Any], rows: TargetRows) -> None:
    for count, phone_figures in figures["phones"].items():
        _replug_targets_of_one_size(count, phone_figures, rows)


def _replug_targets_of_one_size(count: Any, figures: dict[str, Any], rows: TargetRows) -> None:
    # The absolute targets hold at 100,000 files; smaller sizes only report.
    at_full_size = int(count) >= 100_000
    rk = figures["medians"]["rollkeeper"]
    folders = figures["tree"]["folders"]
    rows.add(
        f"3. nothing new, {count} files: AFC requests",
        rk["afc_requests"],
        f"folders ({folders}) + const",
        figures["requests_over_folders"] <= 3,
    )
    rows.add(
        f"3. nothing new, {count} files: vs bare listing",
        figures["ratio_to_bare_listing"],
        "<= 1.5x",
        figures["ratio_to_bare_listing"] <= 1.5,
    )
    rows.add(
        f"3. nothing new, {count} files: seconds",
        rk["seconds"],
        "<= 2 s at 100,000",
        rk["seconds"] <= 2 if at_full_size else None,
    )
    first = figures["first_backup"]
    for key, label in (("plan_seconds", "plan"), ("first_byte_seconds", "first byte")):
        if key in first:
            rows.add(
                f"4. first scan, {count} files: {label} s",
                first[key],
                "<= 10 s at 100,000",
                first[key] <= 10 if at_full_size else None,
            )
    rows.add(
        f"6. CPU s per 1,000 files scanned ({count})",
        figures["cpu_seconds_per_1000_scanned"],
        "-",
        None,
    )
    rows.add(
        f"   first backup of {count} small files: files/s",
        figures["first_backup_files_per_second"],
        "-",
        None,
    )


def _memory_targets(figures: dict[str, Any], rows: TargetRows) -> None:
    rows.add(
        f"5. peak RSS MB ({figures['video_bytes'] / 1e9:.1f} GB video, "
        f"{figures['manifest_files']} files)",
        figures["peak_rss_mb"],
        "<= 150 MB",
        figures["peak_rss_mb"] <= 150,
    )
    rows.add(
        "6. CPU s per GB copied (service, one video)", figures["cpu_seconds_per_gb"], "-", None
    )


def _small_files_targets(figures: dict[str, Any], rows: TargetRows) -> None:
    rk = figures["medians"]["rollkeeper"]
    rows.add("7. small files: rollkeeper files/s", rk["files_per_second"], "-", None)
    for key, value in figures["ratios"].items():
        rows.add(f"7. small files: {key} (files/s)", value, "-", None)


#: Each benchmark's rows of the summary, in the summary's order.
TARGETS: dict[str, Callable[[dict[str, Any], TargetRows], None]] = {
    "peers": _peers_targets,
    "link": _link_targets,
    "replug": _replug_targets,
    "memory": _memory_targets,
    "small_files": _small_files_targets,
}


def targets(results: dict[str, Any]) -> list[list[Any]]:
    """(figure, measured, target, met) rows from whatever benchmarks ran."""
    rows = TargetRows()
    for name, add_rows in TARGETS.items():
        if name in results:
            add_rows(results[name], rows)
    return rows.rows


def main() -> int:
    """Run the chosen benchmarks at one size and print the summary against the targets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=("smoke", "full"), default="smoke")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="these benchmarks")
    parser.add_argument(
        "--work",
        type=Path,
        help="keep the generated phone trees here (reused by later runs; default: temporary)",
    )
    args = parser.parse_args()
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in args.only or list(BENCHMARKS):
        module = BENCHMARKS[name]
        print(f"\n=== {name} ({args.size}) ===", flush=True)
        started = time.perf_counter()
        with common.work_folder(args.work, name) as work:
            bench_args = _arguments(module, args.size)
            results[name] = module.run(bench_args, work)
            common.write_results(name, work, vars(bench_args), results[name])
        seconds[name] = round(time.perf_counter() - started, 1)
    rows = targets(results)
    common.print_table(
        f"Summary ({args.size} sizes; full figures in bench/results/)",
        ["figure", "measured", "target", "met"],
        rows,
    )
    common.write_results(
        f"summary-{args.size}",
        args.work or common.REPO,
        {"size": args.size, "only": args.only, "bench_seconds": seconds},
        {"targets": rows},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
