"""Reading a large Photos library: rollkeeper's reader against SQLite fetching the same rows.

A library of ``--assets`` assets (100,000 at ``--size full``; 2,000 at smoke), ~200 albums,
every asset in 0-2 of them, 10 % of the originals only in iCloud, every row only in the
``-wal``, made by the test generator (tests/photos_library.py). Measured:

* ``seal``: what a fresh copy costs once (``quick_check``, the WAL folded in), one run;
* ``reader`` vs ``baseline``, alternating, ``--rounds`` rounds: rollkeeper's
  :class:`~rollkeeper.library.reader.LibraryReader` (schema discovery, four queries, every
  value checked, assets built) against a plain ``sqlite3`` fetch of the same columns of the
  same four tables (the floor of any reader); the figure is the median ratio;
* ``sidecars``: the facts and the XMP bytes of one sidecar per asset (no disk), one run.

``python -m bench.library_read --size full`` (results in bench/results/library_read-*.json).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import common
from rollkeeper.domain.library import sidecar_facts
from rollkeeper.library.database_file import seal
from rollkeeper.library.reader import LibraryReader
from rollkeeper.library.wal import summarize
from rollkeeper.library.xmp import sidecar_bytes
from tests.photos_library import Asset, write_library

SIZES = {"smoke": 2_000, "full": 100_000}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--assets", type=int, default=None, help="assets (default by --size)")
    parser.add_argument("--rounds", type=int, default=5)


def _assets(count: int) -> list[Asset]:
    start = datetime(2015, 1, 1, tzinfo=UTC)
    made = []
    for number in range(count):
        cpl = number % 3 == 0
        uuid = f"{number:08X}-0000-4000-8000-000000000000"
        made.append(
            Asset(
                uuid,
                f"CPLAssets/group{number % 500}" if cpl else f"DCIM/{100 + number // 1000}APPLE",
                f"{uuid}.HEIC" if cpl else f"IMG_{number % 10000:04d}.HEIC",
                f"IMG_{number % 10000:04d}.HEIC",
                start + timedelta(minutes=37 * number),
                3600 * ((number % 24) - 11),
                favorite=number % 17 == 0,
                hidden=number % 101 == 0,
                trashed=number % 211 == 0,
                kind_subtype=2 if number % 4 == 0 else 0,
                local=number % 10 != 0,
                albums=[f"Album {number % 200}"] * (number % 3 != 2)
                + [f"Trip {number % 7}"] * (number % 5 == 0),
            )
        )
    return made


def _baseline(database: Path) -> int:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = 0
        for query in (
            "SELECT Z_PK, ZUUID, ZDIRECTORY, ZFILENAME, ZDATECREATED, ZFAVORITE, ZHIDDEN,"
            " ZTRASHEDSTATE, ZKIND, ZKINDSUBTYPE, ZHASADJUSTMENTS FROM ZASSET",
            "SELECT ZASSET, ZORIGINALFILENAME, ZORIGINALFILESIZE, ZTIMEZONEOFFSET,"
            " ZTIMEZONENAME FROM ZADDITIONALASSETATTRIBUTES",
            "SELECT ZASSET, min(ZLOCALAVAILABILITY), max(ZLOCALAVAILABILITY)"
            " FROM ZINTERNALRESOURCE WHERE ZDATASTORESUBTYPE IN (1, 3) GROUP BY ZASSET",
            "SELECT j.Z_3ASSETS, a.ZTITLE FROM Z_28ASSETS j JOIN ZGENERICALBUM a"
            " ON a.Z_PK = j.Z_28ALBUMS WHERE a.ZKIND = 2",
        ):
            rows += len(connection.execute(query).fetchall())
        return rows
    finally:
        connection.close()


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Build the library, seal a copy, then time the reader against the baseline."""
    count = args.assets or SIZES[args.size]
    phone = work / "phone"
    shutil.rmtree(phone, ignore_errors=True)
    started = time.perf_counter()
    library = write_library(phone, _assets(count))
    generated = time.perf_counter() - started
    copy = work / "copy" / "Photos.sqlite"
    shutil.rmtree(copy.parent, ignore_errors=True)
    copy.parent.mkdir(parents=True)
    for suffix in ("", "-wal", "-shm"):
        shutil.copyfile(str(library.database) + suffix, str(copy) + suffix)
    wal_bytes = Path(str(copy) + "-wal").stat().st_size
    started = time.perf_counter()
    sealed = seal(copy, summarize(Path(str(copy) + "-wal")).committed_frames)
    seal_seconds = time.perf_counter() - started

    def reader(_: int) -> dict[str, Any]:
        begun = time.perf_counter()
        read = LibraryReader(copy).read()
        return {"seconds": round(time.perf_counter() - begun, 4), "assets": len(read.assets)}

    def baseline(_: int) -> dict[str, Any]:
        begun = time.perf_counter()
        rows = _baseline(copy)
        return {"seconds": round(time.perf_counter() - begun, 4), "rows": rows}

    runs = common.paired_rounds(args.rounds, {"reader": reader, "baseline": baseline})
    read = LibraryReader(copy).read()
    started = time.perf_counter()
    written = sum(len(sidecar_bytes(sidecar_facts([asset]))) for asset in read.assets)
    sidecar_seconds = time.perf_counter() - started
    figures = {
        "assets": count,
        "database_bytes": copy.stat().st_size,
        "wal_bytes_before_seal": wal_bytes,
        "wal_frames_used": sealed.wal_frames_used,
        "generate_seconds": round(generated, 2),
        "seal_seconds": round(seal_seconds, 3),
        "reader_seconds_median": round(common.median([r["seconds"] for r in runs["reader"]]), 4),
        "baseline_seconds_median": round(
            common.median([r["seconds"] for r in runs["baseline"]]), 4
        ),
        "reader_vs_baseline": common.ratio_of_medians(runs, "seconds", "reader", "baseline"),
        "sidecar_facts_and_bytes_seconds": round(sidecar_seconds, 3),
        "sidecar_bytes_total": written,
        "runs": runs,
    }
    common.print_table(
        f"Photos library of {count:,} assets",
        ["figure", "value"],
        [[key, value] for key, value in figures.items() if key != "runs"],
    )
    return figures


def main() -> int:
    """``python -m bench.library_read``."""
    return common.main_for("library_read", __doc__, SIZES, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
