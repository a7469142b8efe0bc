"""The simulated phone for benchmarks that count AFC requests, in its own process.

``rollkeeper simulate`` serves the phone but its control socket has no request counters; this
runs the same :class:`~rollkeeper.simulator.Simulator` with one phone and answers lines on stdin:
``counts`` prints the AFC requests by operation since the last ``reset`` as one JSON line.
The first stdout line is the same JSON object ``rollkeeper simulate --json`` prints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path

from rollkeeper.simulator import AfcFaults, Simulator

UDID = "00008120-001A2B3C4D5E6F70"


async def _serve(root: Path, socket_path: Path, throttle_mbps: float | None) -> None:
    faults = AfcFaults()
    if throttle_mbps:
        faults.throttle_bytes_per_second = throttle_mbps * 1e6
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with Simulator(socket_path=socket_path) as simulator:
        await simulator.add_phone(UDID, root, name="Bench iPhone", faults=faults)
        print(json.dumps({"usbmuxd_socket_address": simulator.address}), flush=True)
        while line := await reader.readline():
            command = line.decode().strip()
            if command == "counts":
                print(json.dumps(dict(simulator.afc_request_counts(UDID))), flush=True)
            elif command == "reset":
                simulator.reset_counts(UDID)
                print(json.dumps({"ok": True}), flush=True)
            else:
                print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)


def main() -> int:
    """Serve until stdin closes or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--throttle-mbps", type=float)
    args = parser.parse_args()
    import structlog

    # stdout carries the answers: logs go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.root.resolve(), args.socket, args.throttle_mbps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
