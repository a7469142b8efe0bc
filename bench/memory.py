"""5. Memory (and the copy half of 6. CPU): the service's peak RSS while it copies one 4 GB video
and holds a manifest of 100,000 archived files.

The phone: N small files in folders of ~1,000 (the manifest) plus one big video in its own
folder. The state is prepared through :class:`~rollkeeper.store.StateStore` (the N files
observed and recorded as archived, as a real first backup would leave them; populating through
real backups is what bench/replug.py measures), so the run scans N names and copies only the video.

The service is the real one, ``rollkeeper run``, in its own process; the run ends at its
``backup_finished`` log event and the peak RSS is the kernel's high-water mark (``VmHWM`` in
/proc/PID/status) read before the service is stopped. CPU seconds per GB come from the same
process (``/proc/PID/stat`` utime+stime), less the CPU of an idle start-up measured alike.

The video's content is real pseudo-random bytes, not a sparse file: the simulator reads it from
the page cache or the disk as a phone's flash would serve it, and the hash works on real data.
A sparse file would cost no disk but would make the simulator's reads of holes artificially
cheap.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common, roll

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"video_mb": 64, "manifest_files": 2000},
    "full": {"video_mb": 4000, "manifest_files": 100_000},
}
TARGET_MB = 150


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video-mb", type=int, help="size of the video in MB (4000)")
    parser.add_argument("--manifest-files", type=int, help="archived files on the phone (100000)")


def _prepare_state(setup: common.RollkeeperSetup, phone_root: Path) -> None:
    """Record every file of the phone except the video's folder as archived."""
    from rollkeeper.archive.identity import record, write_marker
    from rollkeeper.store import StateStore

    setup.wipe()
    setup.state.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    store = StateStore.open(setup.state)
    now = datetime.now(UTC)
    try:
        store.record_device_seen(
            common.UDID,
            name="Bench iPhone",
            product_type="iPhone15,2",
            product_version="17.4",
            now=now,
        )
        for folder in sorted((phone_root / "DCIM").iterdir()):
            if folder.name.startswith("9"):
                continue
            observed = []
            for entry in os.scandir(folder):
                info = entry.stat()
                observed.append((entry.name, info.st_size, info.st_mtime_ns, info.st_mtime_ns))
            store.observe_files(common.UDID, f"/DCIM/{folder.name}", observed, now)
            for name, item in store.present_files(common.UDID, f"/DCIM/{folder.name}").items():
                # The archived copy exists for real (a hard link, or a copy across file
                # systems): the run's presence check looks at every one of them.
                placed = setup.archive / "2024" / "03" / f"{folder.name}-{name}"
                placed.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(folder / name, placed)
                except OSError:
                    shutil.copyfile(folder / name, placed)
                store.record_archived(
                    item.id,
                    relative_path=f"2024/03/{folder.name}-{name}",
                    content_hash=f"{item.id:064x}",
                    hash_algorithm="blake3",
                    size=item.size,
                    origin="backup",
                    capture_time=None,
                    capture_source=None,
                    now=now,
                )
        record(store.archive_truth, setup.archive, write_marker(setup.archive))
    finally:
        store.close()


def _proc_figures(pid: int) -> tuple[int, float]:
    """(peak RSS in bytes, CPU seconds) of a live process."""
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return peak, (int(fields[11]) + int(fields[12])) / ticks


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from tests.service_process import ServiceProcess, service_environment

    size = {**SIZES[args.size], **{k: v for k, v in vars(args).items() if v is not None}}
    phone = roll.many_small_files(
        work / f"phone-manifest-{size['manifest_files']}",
        files=size["manifest_files"],
        file_bytes=4000,
    )
    video = roll.big_video(work / "phone-video", size=size["video_mb"] * common.MB)
    video_file = Path(video["root"]) / "DCIM" / "100APPLE" / "IMG_0001.MOV"
    linked = Path(phone["root"]) / "DCIM" / "999APPLE"
    shutil.rmtree(linked, ignore_errors=True)
    linked.mkdir()
    os.link(video_file, linked / "IMG_0001.MOV")
    setup = common.RollkeeperSetup(work / "rollkeeper", {"logging": {"level": "info"}}).write()
    figures: dict[str, Any] = {"manifest_files": phone["files"], "video_bytes": video["bytes"]}
    try:
        _prepare_state(setup, Path(phone["root"]))
        with common.SimulatorProcess(Path(phone["root"])) as simulator:
            environment = service_environment(simulator.address)
            environment["PYTHONPATH"] = str(common.REPO)
            service = ServiceProcess(["--config", str(setup.config), "run"], environment)
            try:
                service.wait_for("service_ready", timeout=60)
                idle_peak, idle_cpu = _proc_figures(service.process.pid)
                finished = service.wait_for("backup_finished", timeout=3600)[-1]
                peak, cpu = _proc_figures(service.process.pid)
            finally:
                service.terminate()
        started = [e for e in service.events if e.get("event") == "backup_started"]
        figures.update(
            {
                "outcome": finished.get("outcome"),
                "files_copied": finished.get("files_copied"),
                "bytes_copied": finished.get("bytes_copied"),
                "peak_rss_mb": round(peak / 1e6, 1),
                "idle_peak_rss_mb": round(idle_peak / 1e6, 1),
                "target_mb": TARGET_MB,
                "run_cpu_seconds": round(cpu - idle_cpu, 2),
                "cpu_seconds_per_gb": round((cpu - idle_cpu) / (video["bytes"] / 1e9), 2),
                "events_seen": len(service.events),
                "backup_started": bool(started),
            }
        )
    finally:
        shutil.rmtree(linked, ignore_errors=True)
        setup.wipe()
    common.print_table(
        f"5. memory: service copying {video['bytes'] / 1e9:.1f} GB with {phone['files']} "
        "archived files in the manifest",
        ["peak RSS MB", "idle RSS MB", "target MB", "CPU s/GB (incl. scan)", "outcome"],
        [
            [
                figures["peak_rss_mb"],
                figures["idle_peak_rss_mb"],
                TARGET_MB,
                figures["cpu_seconds_per_gb"],
                figures["outcome"],
            ]
        ],
    )
    return figures


def main() -> int:
    """Run this benchmark alone (``python -m bench.memory --help``)."""
    return common.main_for("memory", __doc__, SIZES, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
