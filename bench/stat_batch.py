"""The rotating check's slice alone: N GET_FILE_INFO one request at a time vs in one batch.

Issue 15's target is a slice of ``max(64, files ÷ 50)`` stats (2,000 at 100,000 files) in
≤ 100 ms. In one client process, on one AFC connection to a simulator in another process,
alternating per round:

* ``one_by_one``: what the scan did before ``PhoneFiles.stat_many``: 64 workers, each sending
  ``PhoneFiles.stat`` (pymobiledevice3's request path, one deadline per request) and checking
  the reply;
* ``batch``: :meth:`rollkeeper.device.scan.PhoneStats.stat_many` (windows of requests written
  in one ``sendall``, one deadline per window), replies checked the same way.

Both stat the same N files of a phone tree of N files (folders of 1,000), so the simulator's
work is the same; the figure is milliseconds per slice and the median of per-round ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from bench import common, roll
from rollkeeper.device.scan import PhoneStats, StatOutcome, check_stat
from rollkeeper.device.session import SessionSettings, open_session
from rollkeeper.ports import PhoneFiles

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"stats": 500, "rounds": 5},
    "full": {"stats": 2_000, "rounds": 15},
}


#: The workers of the one-by-one side (as many as the scan kept in flight before the batch).
WORKERS = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stats", type=int, help="stats per slice (2000)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (median reported)")


async def _one_by_one(files: PhoneFiles, paths: list[tuple[str, str]]) -> list[StatOutcome]:
    outcomes: list[StatOutcome] = [StatOutcome("")] * len(paths)
    turns = iter(range(len(paths)))

    async def worker() -> None:
        for index in turns:
            folder, name = paths[index]
            outcomes[index] = check_stat(name, await files.stat(f"{folder}/{name}"))

    await asyncio.gather(*(worker() for _ in range(min(WORKERS, len(paths)))))
    return outcomes


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    size = {**SIZES[args.size], **{k: v for k, v in vars(args).items() if v is not None}}
    count = size["stats"]
    root = work / f"phone-{count}"
    roll.many_small_files(root, files=count, file_bytes=1000)
    paths = sorted(
        (f"/{path.parent.relative_to(root).as_posix()}", path.name)
        for path in root.glob("DCIM/*/*")
        if path.is_file()
    )
    assert len(paths) == count, (len(paths), count)
    loop = asyncio.new_event_loop()
    with common.SimulatorProcess(root) as simulator:
        settings = SessionSettings(usbmux_address=simulator.address, pairing_dir=work / "pairing")
        session_context = open_session(common.UDID, settings)
        session = loop.run_until_complete(session_context.__aenter__())
        try:
            files = session.files

            def side(batched: bool) -> common.Side:
                def timed(_: int) -> dict[str, Any]:
                    started = time.perf_counter()
                    cpu_started = time.process_time()
                    if batched:
                        outcomes = loop.run_until_complete(PhoneStats(files).stat_many(paths))
                    else:
                        outcomes = loop.run_until_complete(_one_by_one(files, paths))
                    seconds = time.perf_counter() - started
                    cpu_seconds = time.process_time() - cpu_started
                    assert not any(outcome.rejection for outcome in outcomes)
                    return {"seconds": round(seconds, 5), "cpu_seconds": round(cpu_seconds, 5)}

                return timed

            runs = common.paired_rounds(
                size["rounds"], {"one_by_one": side(False), "batch": side(True)}
            )
        finally:
            loop.run_until_complete(session_context.__aexit__(None, None, None))
            loop.close()

    def milliseconds(key: str) -> dict[str, float]:
        return {
            name: round(1000 * common.median([item[key] for item in items]), 1)
            for name, items in runs.items()
        }

    wall, cpu = milliseconds("seconds"), milliseconds("cpu_seconds")
    ratio = common.ratio_of_medians(runs, "seconds", "batch", "one_by_one")
    cpu_ratio = common.ratio_of_medians(runs, "cpu_seconds", "batch", "one_by_one")
    common.print_table(
        f"the rotating slice: {count} stats (median of {size['rounds']}; target <= 100 ms)",
        ["stats", "one by one ms", "batch ms", "batch / one by one", "client CPU ms", "CPU ratio"],
        [
            [
                count,
                wall["one_by_one"],
                wall["batch"],
                ratio,
                f"{cpu['one_by_one']} / {cpu['batch']}",
                cpu_ratio,
            ]
        ],
    )
    return {
        "stats": count,
        "milliseconds": wall,
        "client_cpu_milliseconds": cpu,
        "batch_over_one_by_one": ratio,
        "cpu_batch_over_one_by_one": cpu_ratio,
        "runs": runs,
    }


if __name__ == "__main__":
    raise SystemExit(common.main_for("stat_batch", __doc__, SIZES, add_arguments, run))
