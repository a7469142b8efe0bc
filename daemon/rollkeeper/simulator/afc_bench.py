"""Measure AFC through the real client: read throughput and stat rate against a running phone.

Run a simulator (``rollkeeper simulate --root DIR --tcp 127.0.0.1:0``), export the
``USBMUXD_SOCKET_ADDRESS`` it prints, then::

    python -m rollkeeper.simulator.afc_bench --path /DCIM/100APPLE/BIG.MOV \
        --stat-path /DCIM/100APPLE

It reads the file through pymobiledevice3 in chunks (4 MiB, as rollkeeper does), hashing
nothing so the figure is the transport's, then stats every name of a folder with 1 and with 64
requests in flight. ``--pipeline N`` also reads the file with N READs in flight on the AFC
socket that pymobiledevice3 opened (raw requests, replies discarded): the server's ceiling
rather than the Python client's. It prints one JSON object. Works against a real phone too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

CHUNK_BYTES = 4 * 1024 * 1024
_HEADER = struct.Struct("<8sQQQQ")
_STATUS, _FILE_OPEN, _READ = 0x01, 0x0D, 0x0F


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
                if args.path and args.pipeline:
                    results["pipelined_read"] = await _pipelined_read(
                        afc, args.path, args.chunk, args.pipeline
                    )
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


def _packet(operation: int, number: int, payload: bytes) -> bytes:
    length = _HEADER.size + len(payload)
    return _HEADER.pack(b"CFA6LPAA", length, length, number, operation) + payload


async def _pipelined_read(afc: Any, path: str, chunk: int, in_flight: int) -> dict[str, Any]:
    """Read ``path`` with ``in_flight`` READs outstanding on a fresh AFC connection."""
    service = await afc.lockdown.start_lockdown_service(afc.service_name)
    try:
        reader, writer = service.reader, service.writer
        writer.write(_packet(_FILE_OPEN, 0, struct.pack("<Q", 1) + path.encode() + b"\0"))
        header = _HEADER.unpack(await reader.readexactly(_HEADER.size))
        (handle,) = struct.unpack("<Q", await reader.readexactly(header[1] - _HEADER.size))
        request = struct.pack("<QQ", handle, chunk)
        started = time.perf_counter()
        received = 0
        number = 1
        outstanding = in_flight
        for _ in range(in_flight):
            writer.write(_packet(_READ, number, request))
            number += 1
        while True:
            header = _HEADER.unpack(await reader.readexactly(_HEADER.size))
            length = header[1] - _HEADER.size
            if header[4] == _STATUS:
                status = struct.unpack("<Q", await reader.readexactly(length))[0]
                raise RuntimeError(f"READ failed with AFC status {status}")
            received += length
            while length:
                piece = await reader.read(min(length, 1 << 20))
                if not piece:
                    raise ConnectionError("the AFC connection closed mid-reply")
                length -= len(piece)
            if header[1] == _HEADER.size:
                # An empty reply is the end of the file: stop once every READ came back.
                outstanding -= 1
                if outstanding == 0:
                    break
                continue
            writer.write(_packet(_READ, number, request))
            number += 1
        seconds = time.perf_counter() - started
    finally:
        await service.close()
    return {
        "bytes": received,
        "seconds": round(seconds, 3),
        "mib_per_second": round(received / seconds / 2**20, 1),
        "in_flight": in_flight,
    }


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
    parser.add_argument(
        "--pipeline", type=int, default=0, metavar="N", help="also read with N READs in flight"
    )
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
