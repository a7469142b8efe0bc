"""The snapshot list behind ``rollkeeper device-backups``: plain data, then text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rollkeeper.device_backup.manifest import inspect_backup
from rollkeeper.device_backup.snapshots import SnapshotFolder
from rollkeeper.domain.units import format_bytes


def list_snapshots(root: Path) -> list[dict[str, Any]]:
    """Per phone: its snapshots (oldest first) and a working copy a stopped backup left."""
    folder = SnapshotFolder(root)
    phones: list[dict[str, Any]] = []
    for udid in folder.phones():
        snapshots = []
        for snapshot in folder.snapshots(udid):
            summary = snapshot.summary
            if summary is None:
                contents = inspect_backup(snapshot.backup_folder)
                snapshots.append(
                    {
                        "snapshot": snapshot.snapshot_id,
                        "finished_at": None,
                        "files": contents.stored_files,
                        "bytes": contents.stored_bytes,
                        "added_bytes": None,
                        "encrypted": contents.encrypted,
                        "complete": not contents.problems,
                        "path": str(snapshot.folder),
                    }
                )
                continue
            snapshots.append(
                {
                    "snapshot": snapshot.snapshot_id,
                    "finished_at": summary.finished_at,
                    "files": summary.files,
                    "bytes": summary.bytes,
                    "added_bytes": summary.added_bytes,
                    "encrypted": summary.encrypted,
                    "complete": True,
                    "path": str(snapshot.folder),
                }
            )
        working = folder.working_folder(udid)
        phones.append(
            {
                "udid": udid,
                "snapshots": snapshots,
                "incomplete_working_copy": str(working) if working.exists() else None,
            }
        )
    return phones


def render_listing(root: Path, phones: list[dict[str, Any]]) -> str:
    """The listing as text, one line per snapshot."""
    if not phones:
        return f"No device backups in {root}.\n"
    lines = [f"Device backups in {root}"]
    for phone in phones:
        lines.append(f"\n{phone['udid']}")
        for item in phone["snapshots"]:
            lock = "encrypted" if item["encrypted"] else "not encrypted"
            state = "complete" if item["complete"] else "INCOMPLETE"
            added = (
                ""
                if item["added_bytes"] is None
                else f", +{format_bytes(item['added_bytes'])} on disk"
            )
            lines.append(
                f"  {item['snapshot']}  {item['files']:,} files, {format_bytes(item['bytes'])}"
                f"{added}, {lock}, {state}"
            )
        if phone["incomplete_working_copy"]:
            lines.append("  (a stopped backup left a working copy; the next backup discards it)")
    return "\n".join(lines) + "\n"
