"""Put files into a test archive and record them the way the importer does (shared by the
verify, scrub and adopt tests)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

from rollkeeper.importer.hashing import HASH_ALGORITHM, hash_file
from rollkeeper.store import StateStore

_birth_times = itertools.count(1_600_000_000_000_000_000, 1_000_000_000)
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def archive_file(
    store: StateStore, root: Path, relative: str, content: bytes, now: datetime = LONG_AGO
) -> Path:
    """Write a file into the archive and record it the way the importer does."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    birth = next(_birth_times)
    entry = store.observe_file("UDID-1", "/DCIM/100APPLE", path.name, len(content), birth, birth)
    store.record_archived(
        entry.id,
        relative_path=relative,
        content_hash=hash_file(path),
        hash_algorithm=HASH_ALGORITHM,
        size=len(content),
        origin="backup",
        capture_time="2024-07-14T18:03:11+02:00",
        capture_source="exif",
        now=now,
    )
    return path
