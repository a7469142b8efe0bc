"""Phone media trees for the benchmarks, generated on disk (nothing is committed).

* :func:`realistic_roll`: a camera roll like a phone's — HEIC photos of 2-5 MB with real EXIF
  (pillow-heif) padded with a ``free`` box of pseudo-random bytes (a valid ISO-BMFF box, so the
  date parser reads the file as it would a real one), a share of them Live Photos (a 2-4 MB
  ``.MOV`` beside the HEIC), and videos of 50-500 MB built atom by atom with Apple's
  creationdate (tests/media.py). Content is pseudo-random and unique per file: nothing
  dedups or compresses.
* :func:`many_small_files`: N files in folders of ~1,000 (``100APPLE``, ``101APPLE``, ...),
  for scans and per-file overhead; small JPEGs with EXIF padded to the requested size, named
  as a phone numbers them (``IMG_0001`` ... ``IMG_9999``, then again from ``IMG_0001``) and
  taken two hours apart, so that they spread over the archive's month folders as a real
  library does (the same name many times in one month folder would cost collision checks
  that a real phone seldom causes).
* :func:`big_video`: one video of N bytes, real pseudo-random content (see bench/README.md for
  why not sparse).

Every generator is idempotent: a tree already built with the same parameters (recorded in
``<root>/.bench-tree.json``) is reused, since building 10 GB takes minutes.
"""

from __future__ import annotations

import json
import random
import shutil
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.media import (
    apple_date_text,
    make_heic,
    make_jpeg,
    make_video,
    pseudo_random_bytes,
    set_file_time,
)

_MARKER = ".bench-tree.json"
_PAD_CHUNK = 4 << 20


def _reuse(root: Path, parameters: dict[str, Any]) -> bool:
    marker = root / _MARKER
    if marker.exists() and json.loads(marker.read_text()) == parameters:
        return True
    if root.exists():
        shutil.rmtree(root)
    (root / "DCIM").mkdir(parents=True)
    return False


def _done(root: Path, parameters: dict[str, Any]) -> None:
    (root / _MARKER).write_text(json.dumps(parameters))


def _pad_box(path: Path, total_size: int, seed: str) -> None:
    """Grow an ISO-BMFF file (HEIC) to ``total_size`` with a trailing ``free`` box."""
    current = path.stat().st_size
    payload = max(0, total_size - current - 8)
    with path.open("ab") as handle:
        handle.write(struct.pack(">I4s", payload + 8, b"free"))
        _write_random(handle, seed, payload)


def _pad_tail(path: Path, total_size: int, seed: str) -> None:
    """Grow a JPEG to ``total_size``: bytes after the end-of-image marker are ignored."""
    with path.open("ab") as handle:
        _write_random(handle, seed, max(0, total_size - path.stat().st_size))


def _write_random(handle: Any, seed: str, size: int) -> None:
    done = 0
    while done < size:
        step = min(_PAD_CHUNK, size - done)
        handle.write(pseudo_random_bytes(seed, step, done))
        done += step


def realistic_roll(
    root: Path,
    *,
    photos: int = 1000,
    photo_bytes: tuple[int, int] = (2_000_000, 5_000_000),
    live_share: float = 0.3,
    live_video_bytes: tuple[int, int] = (2_000_000, 4_000_000),
    videos: int = 20,
    video_bytes: tuple[int, int] = (50_000_000, 500_000_000),
    per_folder: int = 1000,
) -> dict[str, Any]:
    """Build (or reuse) a camera roll; return its description (files, bytes, parameters)."""
    parameters: dict[str, Any] = {
        "kind": "realistic",
        "photos": photos,
        "photo_bytes": list(photo_bytes),
        "live_share": live_share,
        "live_video_bytes": list(live_video_bytes),
        "videos": videos,
        "video_bytes": list(video_bytes),
        "per_folder": per_folder,
    }
    if not _reuse(root, parameters):
        chooser = random.Random(20240309)
        start = datetime(2024, 3, 9, 10, 0, 0, tzinfo=UTC)
        zone = timedelta(hours=2)
        # Videos are spread through the roll as on a phone, not bunched at the end.
        video_slots = set(chooser.sample(range(photos + videos), videos))
        number = 0
        for slot in range(photos + videos):
            number += 1
            folder = root / "DCIM" / f"{100 + (slot // per_folder)}APPLE"
            taken = (start + timedelta(minutes=slot * 7)).replace(tzinfo=None)
            key = f"IMG_{number:04d}"
            when = start + timedelta(minutes=slot * 7)
            if slot in video_slots:
                path = make_video(
                    folder / f"{key}.MOV",
                    created_utc=(taken - zone).replace(tzinfo=UTC),
                    apple_creationdate=apple_date_text(taken, zone),
                    payload_bytes=chooser.randint(*video_bytes),
                    seed=f"video-{key}",
                )
                set_file_time(path, when)
                continue
            path = make_heic(folder / f"{key}.HEIC", taken, zone, seed=f"photo-{key}")
            _pad_box(path, chooser.randint(*photo_bytes), f"pad-{key}")
            set_file_time(path, when)
            if chooser.random() < live_share:
                path = make_video(
                    folder / f"{key}.MOV",
                    created_utc=(taken - zone).replace(tzinfo=UTC),
                    apple_creationdate=apple_date_text(taken, zone),
                    payload_bytes=chooser.randint(*live_video_bytes),
                    seed=f"live-{key}",
                )
                set_file_time(path, when)
        _done(root, parameters)
    return describe(root, parameters)


def many_small_files(
    root: Path, *, files: int, file_bytes: int, per_folder: int = 1000, variant: str = ""
) -> dict[str, Any]:
    """Build (or reuse) ``files`` JPEGs of ``file_bytes`` in folders of ``per_folder``."""
    parameters: dict[str, Any] = {
        "kind": "small",
        "layout": 2,
        "files": files,
        "file_bytes": file_bytes,
        "per_folder": per_folder,
        "variant": variant,
    }
    if not _reuse(root, parameters):
        start = datetime(2015, 1, 1, 10, 0, 0, tzinfo=UTC)
        template = root / "template.jpg"
        make_jpeg(template, start.replace(tzinfo=None), timedelta(hours=1), seed="template")
        head = template.read_bytes()
        template.unlink()
        template_date = start.strftime("%Y:%m:%d %H:%M:%S").encode()
        # At least a few unique bytes per file, whatever the size asked: no two files dedup.
        tail = max(64, file_bytes - len(head))
        for index in range(files):
            folder = root / "DCIM" / f"{100 + index // per_folder}APPLE"
            if index % per_folder == 0:
                folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"IMG_{index % 9999 + 1:04d}.JPG"
            taken = start + timedelta(hours=2 * index)
            # The template's EXIF dates rewritten in place (same length), then unique bytes.
            dated = head.replace(template_date, taken.strftime("%Y:%m:%d %H:%M:%S").encode())
            path.write_bytes(dated + pseudo_random_bytes(f"{variant}small-{index}", tail))
            set_file_time(path, taken)
        _done(root, parameters)
    return describe(root, parameters)


def big_video(root: Path, *, size: int) -> dict[str, Any]:
    """Build (or reuse) one video of ``size`` bytes at /DCIM/100APPLE/IMG_0001.MOV."""
    parameters: dict[str, Any] = {"kind": "big_video", "size": size}
    if not _reuse(root, parameters):
        taken = datetime(2024, 2, 29, 12, 0, 0)
        path = make_video(
            root / "DCIM" / "100APPLE" / "IMG_0001.MOV",
            created_utc=taken.replace(tzinfo=UTC),
            apple_creationdate=apple_date_text(taken, timedelta(0)),
            payload_bytes=size,
            seed="big-video",
        )
        set_file_time(path, taken.replace(tzinfo=UTC))
        _done(root, parameters)
    return describe(root, parameters)


def describe(root: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """Files, bytes and folders of a tree, with the parameters it was built from."""
    files = total = 0
    largest = 0
    folders = 0
    for folder in sorted((root / "DCIM").iterdir()):
        folders += 1
        for entry in folder.iterdir():
            size = entry.stat().st_size
            files += 1
            total += size
            largest = max(largest, size)
    return {
        "root": str(root),
        "files": files,
        "bytes": total,
        "folders": folders,
        "largest_bytes": largest,
        "parameters": parameters,
    }
