"""Bench clients run as their own processes: rollkeeper's backup with phase times, and a bare
client that only lists the folders.

``python -m bench.client backup --config C`` runs what ``rollkeeper backup-now`` runs for one
phone (:func:`rollkeeper.device.session.open_session` + :class:`rollkeeper.importer.job.BackupRun`)
and prints one JSON object with the moments that matter, measured from the start of the
connection (what an attach triggers; imports are done before the clock starts):
``plan_seconds`` (scan and plan complete: the first progress report that no longer says
``scanning``), ``first_byte_seconds``,
``seconds`` (the run is over: "up to date" when ``outcome`` is ``complete``).

``python -m bench.client list`` connects the same way with plain pymobiledevice3 and lists
``/DCIM`` and each folder in it, one READ_DIR after another: the least any client can do to
learn that nothing is new.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

UDID = "00008120-001A2B3C4D5E6F70"


def _without_rotating_check() -> None:
    """Make the rotating check's slice empty (``--no-rotating-check``): only to measure what
    the slice costs, as the difference to a re-plug with it, in the same run."""
    from rollkeeper.importer import folder_summaries

    def no_slice(store: Any, udid: str, settled_files: int) -> folder_summaries.RotatingCheck:
        return folder_summaries.RotatingCheck()

    folder_summaries.RotatingCheck.pick = staticmethod(no_slice)  # type: ignore[method-assign]


async def _backup(config_path: Path, full_rescan: bool) -> dict[str, Any]:
    from rollkeeper import bootstrap
    from rollkeeper.config.loader import load_config
    from rollkeeper.device.session import open_session
    from rollkeeper.host.permissions import set_private_umask
    from rollkeeper.importer.job import BackupRun, Progress

    set_private_umask()
    config = load_config(config_path)
    # Opening the state (with its integrity check) is before the clock starts: the figures
    # are from the start of the connection.
    store = bootstrap.open_state(config)
    moments: dict[str, float] = {}
    started = time.perf_counter()

    def on_progress(progress: Progress) -> None:
        now = time.perf_counter() - started
        if not getattr(progress, "scanning", False):  # copying starts while scanning
            moments.setdefault("plan_seconds", now)
        if progress.bytes_done > 0:
            moments.setdefault("first_byte_seconds", now)

    try:
        async with open_session(UDID, bootstrap.session_settings(config)) as session:
            moments["connected_seconds"] = time.perf_counter() - started
            run = BackupRun(
                store,
                bootstrap.backup_settings(config),
                session,
                on_progress=on_progress,
                full_rescan=full_rescan,
            )
            result = await run.run()
        seconds = time.perf_counter() - started
    finally:
        store.close()
    counts = result.counts
    return {
        "outcome": result.outcome,
        "seconds": round(seconds, 4),
        **{key: round(value, 4) for key, value in moments.items()},
        "files_found": counts.files_found,
        "files_copied": counts.files_copied,
        "bytes_copied": counts.bytes_copied,
        "files_already_archived": counts.files_already_archived,
        "rotating_checks": run.scan_figures.get("rotating_checks", 0),
        "unchanged_folders": run.scan_figures.get("unchanged_folders", 0),
    }


async def _list_only() -> dict[str, Any]:
    from pymobiledevice3.lockdown import create_using_usbmux
    from pymobiledevice3.services.afc import AfcService

    with tempfile.TemporaryDirectory(prefix="bench-list-") as records:
        started = time.perf_counter()
        lockdown = await create_using_usbmux(
            UDID, autopair=False, pairing_records_cache_folder=Path(records)
        )
        try:
            async with AfcService(lockdown) as afc:
                names = 0
                folders = await afc.listdir("/DCIM")
                for folder in folders:
                    names += len(await afc.listdir(f"/DCIM/{folder}"))
        finally:
            await lockdown.close()
        seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 4), "folders": len(folders), "names": names}


def main() -> int:
    """Run one client and print its JSON (with this process's CPU seconds and peak RSS)."""
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    backup = sub.add_parser("backup")
    backup.add_argument("--config", type=Path, required=True)
    backup.add_argument("--full-rescan", action="store_true")
    backup.add_argument("--no-rotating-check", action="store_true")
    sub.add_parser("list")
    args = parser.parse_args()
    if args.mode == "backup":
        import logging

        import structlog

        # Warnings and worse, to stderr, as the bench configs ask of backup-now.
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        )
        if args.no_rotating_check:
            _without_rotating_check()
        figures = asyncio.run(_backup(args.config, args.full_rescan))
    else:
        figures = asyncio.run(_list_only())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures["process_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)
    figures["process_peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
