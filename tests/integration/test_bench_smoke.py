"""The benchmark scripts run end to end at a tiny size (no figure is asserted against a target:
speed belongs to bench/, not to the test suite).

Each benchmark starts its own simulator process and its client processes, as ``make bench``
does; what is checked is that every side copied everything and that the counts the
benchmarks report are the ones the design promises (a re-plug with nothing new asks for the
folder listings, each folder's own stat and the rotating check's slice).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import before_after, link, memory, peers, replug, run_all, small_files

pytestmark = pytest.mark.slow


def _args(module: Any, **values: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    args = parser.parse_args([])
    args.size = "smoke"
    for key, value in values.items():
        setattr(args, key, value)
    return args


def test_peers_and_small_files_copy_everything(tmp_path: Path) -> None:
    """The peers and small-files benchmarks, at a tiny size, copy every file on every side and
    report at most five AFC requests per small file."""
    figures = peers.run(
        _args(peers, photos=3, videos=1, video_mb=[1, 2], rounds=1, peers=["pull"]), tmp_path
    )
    files = figures["tree"]["files"]
    assert figures["runs"]["rollkeeper"][0]["outcome"] == "complete"
    assert figures["runs"]["rollkeeper"][0]["files_written"] == files
    assert figures["runs"]["pull"][0]["files_written"] == files
    assert figures["ratios"]["rollkeeper_vs_pull"] > 0

    small = small_files.run(
        _args(small_files, files=12, file_kb=10, rounds=1, peers=["pull"]), tmp_path
    )
    rollkeeper = small["runs"]["rollkeeper"][0]
    # A stat, an open, two reads (data, then end of file) and a close per file, at most.
    assert 12 <= rollkeeper["afc_requests"] - 1 <= 12 * 5 + 3
    summary = run_all.targets({"peers": figures, "small_files": small})
    assert any(row[0].startswith("1. throughput") for row in summary)


def test_replug_counts_two_per_folder_and_the_slice(tmp_path: Path) -> None:
    """The replug benchmark's nothing-new run costs one listing of /DCIM, a listing and a stat
    per folder and the rotating check's slice (every file of a phone this small); without the
    slice, only the listings and the folder stats."""
    figures = replug.run(
        _args(replug, counts=[40], per_folder=10, file_kb=1, rounds=1, dcimport=[]), tmp_path
    )
    phone = figures["phones"]["40"]
    assert phone["first_backup"]["outcome"] == "complete"
    assert phone["first_backup"]["files_copied"] == 40
    nothing_new = phone["runs"]["rollkeeper"][0]
    assert nothing_new["outcome"] == "complete"
    assert nothing_new["files_copied"] == 0
    # /DCIM, each of the 4 folders listed and stat'ed, and the slice (min(64, 40 files)).
    assert nothing_new["afc_requests"] == 1 + 2 * 4 + 40
    assert nothing_new["rotating_checks"] == 40
    assert phone["runs"]["rollkeeper_without_slice"][0]["afc_requests"] == 1 + 2 * 4
    assert phone["requests_over_two_per_folder_and_slice"] == 1
    assert phone["runs"]["bare_listing"][0]["afc_requests"] == 1 + 4
    assert phone["full_rescan"]["afc_requests"] == 1 + 2 * 4 + 40


def test_link_and_memory_run(tmp_path: Path) -> None:
    """The link and memory benchmarks run to a complete backup and report a positive efficiency and
    a peak memory above the idle one."""
    figures = link.run(
        _args(link, photos=2, videos=1, video_mb=[2, 2], rounds=1, links=[300.0]), tmp_path
    )
    assert figures["links"]["300.0"]["efficiency"] > 0
    assert figures["links"]["300.0"]["runs"]["rollkeeper"][0]["outcome"] == "complete"

    used = memory.run(_args(memory, video_mb=3, manifest_files=25), tmp_path)
    assert used["outcome"] == "complete"
    assert used["files_copied"] == 1
    assert used["bytes_copied"] == used["video_bytes"]
    assert used["peak_rss_mb"] >= used["idle_peak_rss_mb"] > 0


def test_before_after_runs_both_sides(tmp_path: Path) -> None:
    """The before/after benchmark runs both sides, each copying every small file; when nothing
    is new, each lists /DCIM and its folder, stats the folder and the rotating slice (all 30
    files: fewer than its minimum of 64)."""
    from bench import before_after, common

    args = _args(
        before_after,
        before=common.REPO,
        small_files=6,
        small_kb=5,
        replug_files=30,
        rounds=1,
    )
    figures = before_after.run(args, tmp_path)
    for side in ("before", "after"):
        assert figures["small_files"]["runs"][side][0]["files_copied"] == 6
        assert figures["nothing_new"]["runs"][side][0]["afc_requests"] == 1 + 2 + 30


def test_the_startup_benchmark_measures_every_command_against_the_baseline(
    tmp_path: Path,
) -> None:
    """bench/startup.py, one round: every command ran against a real config and state, and
    each has a ratio to the bare-Python baseline of the same round (no target is asserted)."""
    from bench import startup

    figures = startup.run(_args(startup, rounds=1), tmp_path)
    assert set(figures["commands"]) == set(startup.TARGETS)
    assert figures["baseline_seconds"] > 0
    for measured in figures["commands"].values():
        assert measured["ratio"] > 0 and measured["seconds"] > 0


def test_the_before_side_runs_the_package_of_its_own_tree(tmp_path: Path) -> None:
    """before_after's clients import rollkeeper from the tree they are given (its daemon/),
    not the package installed in the venv, which is the after side's."""
    tree = tmp_path / "before"
    (tree / "daemon" / "rollkeeper").mkdir(parents=True)
    (tree / "daemon" / "rollkeeper" / "__init__.py").write_text("")
    result = subprocess.run(
        [sys.executable, "-c", "import rollkeeper; print(rollkeeper.__file__)"],
        env=before_after.code_environment(tree, dict(os.environ)),
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert Path(result.stdout.strip()) == tree / "daemon" / "rollkeeper" / "__init__.py"


def test_the_first_scan_benchmark_stops_each_round_once_planned_and_copying(
    tmp_path: Path,
) -> None:
    """The first-scan benchmark measures both moments on both sides (the code before as its
    own tree) and stops each first backup once the plan is complete and a byte is copied:
    fewer files are copied than the phone holds, and the plan never comes before the scan."""
    from bench import common, first_scan

    args = _args(first_scan, files=60, per_folder=10, file_kb=1, rounds=1, before=common.REPO)
    figures = first_scan.run(args, tmp_path)
    for side in ("after", "before"):
        [round_figures] = figures["runs"][side]
        assert round_figures["outcome"] == "interrupted"
        assert round_figures["files_found"] == 60
        assert 0 < round_figures["files_copied"] < 60
        assert round_figures["first_byte_seconds"] > 0
        assert round_figures["plan_seconds"] >= round_figures["connected_seconds"]
