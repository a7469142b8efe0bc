"""The presence check of issue 13: one ``lstat`` per archived file before "already archived".

An archive of ``--files`` files (100,000 at ``--size full``; 5,000 at smoke) laid out like a
real one (``YYYY/YYYY-MM/IMG_n.HEIC``, ~300 files a month folder, a few bytes each: an
``lstat`` does not read content), and a state database recording every file as archived from
one phone, with the stats recorded at placement. Measured, ``--rounds`` rounds:

* warm: ``check`` — what a run adds (the state query of the phone's archived files, then the
  ``lstat`` pass of :func:`~rollkeeper.archive.presence.check_presence`) alternating with
  ``query`` — the state query alone (the part any design pays); the figures are the medians
  and their ratio;
* cold: the same ``check`` after dropping the page cache (``echo 3 >
  /proc/sys/vm/drop_caches``: needs root; skipped, and said, otherwise), so every inode and
  folder is read from the disk again. Both run on the file system of ``--work`` (a tmpfs
  keeps its inodes in memory: the cold figure is then no colder than warm; the results
  record the file system).

The nothing-new re-plug of 100,000 files (bench/replug.py) pays the warm ``check`` on top of
its listing: no AFC request is added (the check never talks to the phone).

``python -m bench.presence --size full`` (results in bench/results/presence-*.json).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench import common
from rollkeeper.archive.presence import check_presence
from rollkeeper.store import StateStore

SIZES = {"smoke": 5_000, "full": 100_000}
UDID = "00008110-0000BE9C0000PRES"
PER_FOLDER = 300
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--files", type=int, default=None, help="archived files (by --size)")
    parser.add_argument("--rounds", type=int, default=7)


def _relative(number: int) -> str:
    month = number // PER_FOLDER
    year = 2010 + month // 12
    return f"{year}/{year}-{month % 12 + 1:02d}/IMG_{number:06d}.HEIC"


def build(work: Path, count: int) -> tuple[Path, Path]:
    """The archive folder and the state database of ``count`` archived files (kept between
    runs in ``work`` when their count matches)."""
    archive = work / f"archive-{count}"
    state = work / f"state-{count}.sqlite3"
    if (archive / ".built").exists() and state.exists():
        return archive, state
    stats: list[tuple[str, int, int]] = []
    for number in range(count):
        path = archive / _relative(number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(number.to_bytes(4, "big"))
        status = os.lstat(path)
        stats.append((_relative(number), status.st_mtime_ns, status.st_ctime_ns))
    store = StateStore.open(state)
    store.close()
    connection = sqlite3.connect(state)
    with connection:
        connection.executemany(
            "INSERT INTO archive_files (relative_path, content_hash, hash_algorithm, size,"
            " origin, stored_at, verified_at, placed_mtime_ns, placed_ctime_ns)"
            " VALUES (?, ?, 'blake3', 4, 'backup', '2026-01-01', '2026-01-01', ?, ?)",
            [
                (path, f"{index:064x}", mtime, ctime)
                for index, (path, mtime, ctime) in enumerate(stats)
            ],
        )
        connection.executemany(
            "INSERT INTO phone_files (udid, folder, name, size, birth_time_ns,"
            " modified_time_ns, status, present, archive_path, content_hash, first_seen_at,"
            " last_seen_at) VALUES (?, ?, ?, 4, ?, 0, 'archived', 1, ?, ?, '2026-01-01',"
            " '2026-01-01')",
            [
                (
                    UDID,
                    f"/DCIM/{100 + index // 1000}APPLE",
                    Path(path).name,
                    index,
                    path,
                    f"{index:064x}",
                )
                for index, (path, _mtime, _ctime) in enumerate(stats)
            ],
        )
    connection.close()
    (archive / ".built").write_text(str(count))
    return archive, state


def _measure(archive: Path, state: Path, with_lstat: bool) -> dict[str, Any]:
    store = StateStore.open(state, read_only=True)
    try:
        started = time.perf_counter()
        placed = store.archive_truth.placed_rows(UDID)
        queried = time.perf_counter()
        report = check_presence(archive, placed) if with_lstat else None
        finished = time.perf_counter()
    finally:
        store.close()
    if report is not None:
        assert report.checked == len(placed) and not report.problems and not report.suspects
    return {
        "seconds": round(finished - started, 4),
        "query_seconds": round(queried - started, 4),
        "lstat_seconds": round(finished - queried, 4),
        "files": len(placed),
    }


def _drop_caches() -> bool:
    try:
        os.sync()
        DROP_CACHES.write_text("3\n")
    except OSError:
        return False
    return True


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Build (or reuse) the archive and state, then measure warm and cold."""
    count = args.files or SIZES[args.size]
    archive, state = build(work, count)
    _measure(archive, state, True)  # warm the caches once
    runs = common.paired_rounds(
        args.rounds,
        {
            "check": lambda _round: _measure(archive, state, True),
            "query": lambda _round: _measure(archive, state, False),
        },
    )
    cold: list[dict[str, Any]] = []
    cold_note = ""
    for _round in range(args.rounds):
        if not _drop_caches():
            cold_note = f"cold not measured: writing {DROP_CACHES} needs root"
            break
        cold.append(_measure(archive, state, True))
    checks = runs["check"]
    figures: dict[str, Any] = {
        "files": count,
        "filesystem": common.machine(work).get("filesystem", ""),
        "warm_check_ms_median": round(1000 * common.median([r["seconds"] for r in checks]), 1),
        "warm_lstat_ms_median": round(
            1000 * common.median([r["lstat_seconds"] for r in checks]), 1
        ),
        "warm_query_ms_median": round(
            1000 * common.median([r["seconds"] for r in runs["query"]]), 1
        ),
        "check_vs_query": common.ratio_of_medians(runs, "seconds", "check", "query"),
        "cold_check_ms_median": (
            round(1000 * common.median([r["seconds"] for r in cold]), 1) if cold else None
        ),
        "cold_lstat_ms_median": (
            round(1000 * common.median([r["lstat_seconds"] for r in cold]), 1) if cold else None
        ),
        "cold_note": cold_note,
        "afc_requests_added": 0,
        "runs": {**runs, "cold": cold},
    }
    common.print_table(
        f"Presence check of {count:,} archived files",
        ["figure", "value"],
        [[key, value] for key, value in figures.items() if key != "runs"],
    )
    return figures


def main() -> int:
    """``python -m bench.presence``."""
    return common.main_for("presence", __doc__, SIZES, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
