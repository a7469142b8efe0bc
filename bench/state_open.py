"""Opening the service's state: ``PRAGMA quick_check`` (every open) vs ``integrity_check``
(weekly), on a state of N archived files (issue 18).

The state is built once through the real store (``observe_files`` and ``record_archived``, one
folder of 1,000 files at a time), then each round times both checks on a freshly opened store,
alternating which goes first; the figures are the medians and the median of the per-round
ratios. The page cache is warm for both (the service opens a state it just wrote or read).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench import common
from rollkeeper.store import StateStore

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"files": 5_000, "rounds": 3},
    "full": {"files": 100_000, "rounds": 7},
}

UDID = "00008110-BENCH00000000001"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", type=int, help="archived files in the state (100000)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (median reported)")


def _build(path: Path, files: int) -> None:
    store = StateStore.open(path)
    try:
        for start in range(0, files, 1000):
            folder = f"/DCIM/{100 + start // 1000}APPLE"
            names = [
                (f"IMG_{n:05d}.JPG", 100_000, n, n) for n in range(start, min(files, start + 1000))
            ]
            store.observe_files(UDID, folder, names)
            present = store.present_files(UDID, folder)
            with store.transaction():
                for name, entry in present.items():
                    store.record_archived(
                        entry.id,
                        relative_path=f"2024/2024-01/{folder[6:]}-{name}",
                        content_hash=f"{entry.id:064x}",
                        hash_algorithm="blake3",
                        size=entry.size,
                        origin="backup",
                        capture_time=None,
                        capture_source=None,
                    )
    finally:
        store.close()


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    size = {**SIZES[args.size], **{k: v for k, v in vars(args).items() if v is not None}}
    path = work / f"state-{size['files']}.sqlite3"
    if not path.exists():
        _build(path, size["files"])

    def side(quick: bool) -> common.Side:
        def timed(_: int) -> dict[str, Any]:
            store = StateStore.open(path)
            try:
                started = time.perf_counter()
                verdict = store.integrity_check(quick=quick)
                seconds = time.perf_counter() - started
            finally:
                store.close()
            assert verdict == "ok", verdict
            return {"seconds": round(seconds, 4)}

        return timed

    runs = common.paired_rounds(
        size["rounds"], {"quick_check": side(True), "integrity_check": side(False)}
    )
    medians = {
        name: common.median([r["seconds"] for r in results]) for name, results in runs.items()
    }
    ratio = common.ratio_of_medians(runs, "seconds", "quick_check", "integrity_check")
    common.print_table(
        f"state open checks, {size['files']} archived files (median of {size['rounds']})",
        ["check", "seconds"],
        [[name, value] for name, value in medians.items()],
    )
    print(f"  quick_check / integrity_check: {ratio}x")
    return {"files": size["files"], "runs": runs, "medians": medians, "quick_over_full": ratio}


def main() -> int:
    """Run this benchmark alone (``python -m bench.state_open --help``)."""
    return common.main_for("state_open", __doc__, SIZES, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
