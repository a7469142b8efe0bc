"""Measure AFC through the real client: read throughput and stat rate against a running phone.

Run a simulator (``rollkeeper simulate --root DIR --tcp 127.0.0.1:0``), export the
``USBMUXD_SOCKET_ADDRESS`` it prints, then::

    python -m daemon.simulator.afc_bench --path /DCIM/100APPLE/BIG.MOV --stat-path /DCIM/100APPLE

It reads the file through pymobiledevice3 in chunks (4 MiB, as rollkeeper does), hashing
nothing so the figure is the transport's, then stats every name of a folder with 1 and with 64
requests in flight. It prints one JSON object. Works against a real phone too (same client).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

CHUNK_BYTES = 4 * 1024 * 1024


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    from pymobiledevice3.lockdown import create_using_usbmux
    from pymobiledevice3.services.afc import AfcService

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="afc-bench-") as records:
        lockdown = await create_using_usbmux(
            args.udid, autopair=False, pairing_records_cache_folder=Path(records)
        )
        try:
            async with AfcService(lockdown) as afc:
                if args.path:
                    handle = await afc.fopen(args.path)
                    started = time.perf_counter()
                    received = 0
                    while piece := await afc.fread(handle, args.chunk):
                        received += len(piece)
                    seconds = time.perf_counter() - started
                    await afc.fclose(handle)
                    results["read"] = {
                        "path": args.path,
                        "bytes": received,
                        "seconds": round(seconds, 3),
                        "mib_per_second": round(received / seconds / 2**20, 1),
                        "chunk_bytes": args.chunk,
                    }
                if args.stat_path:
                    names = [
                        f"{args.stat_path}/{name}" for name in await afc.listdir(args.stat_path)
                    ]
                    paths = (names * (args.stats // max(1, len(names)) + 1))[: args.stats]
                    for in_flight in args.in_flight:
                        results[f"stats_per_second_{in_flight}_in_flight"] = round(
                            await _stat_rate(afc, paths, in_flight)
                        )
        finally:
            await lockdown.close()
    return results


async def _stat_rate(afc: Any, paths: list[str], in_flight: int) -> float:
    limit = asyncio.Semaphore(in_flight)

    async def one(path: str) -> None:
        async with limit:
            await afc.stat(path)

    started = time.perf_counter()
    await asyncio.gather(*(one(path) for path in paths))
    return len(paths) / (time.perf_counter() - started)


def main() -> int:
    """Parse arguments, measure, print JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--udid", default=None, help="the phone (default: the first one)")
    parser.add_argument("--path", help="a file to read whole, e.g. /DCIM/100APPLE/BIG.MOV")
    parser.add_argument("--chunk", type=int, default=CHUNK_BYTES, help="bytes per READ (4 MiB)")
    parser.add_argument("--stat-path", help="a folder whose entries are stat'ed")
    parser.add_argument("--stats", type=int, default=20_000, help="how many stats per run")
    parser.add_argument(
        "--in-flight", type=int, nargs="+", default=[1, 64], help="concurrent stats (1 64)"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_measure(args))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
