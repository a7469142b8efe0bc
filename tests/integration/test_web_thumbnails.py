"""Thumbnails are made in a worker process with memory, CPU and wall-clock limits, from files
opened by the parent, and cached privately; hostile files and hostile workers cost nothing but
a refusal.

Real worker processes (``python -I -m rollkeeper.web.thumbnail_worker``) decode real files
made by Pillow and pillow-heif; the hostile workers are small shell commands standing in for a
decoder gone wrong (one that never answers, one that floods its output).
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import sys
import zlib
from collections.abc import MutableMapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from structlog.testing import capture_logs

from rollkeeper.web.thumbnails import ThumbnailMaker, WorkerLimits, worker_command
from tests import media

ARCHIVE_ID = "ab" * 32


def _png(path: Path, width: int, height: int, *, rows: int | None = None) -> Path:
    """A PNG of ``width`` x ``height`` black RGB pixels, written row by row through zlib (the
    file is small however large the image); ``rows`` writes only that many rows of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (width * 3)
    data = b"".join(compressor.compress(row) for _ in range(height if rows is None else rows))
    data += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def _jpeg_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return image.size


def _refusals(events: list[MutableMapping[str, Any]]) -> list[str]:
    """The reasons the worker gave, from the ``thumbnail_refused`` events."""
    return [str(event["reason"]) for event in events if event["event"] == "thumbnail_refused"]


@pytest.fixture
def maker(tmp_path: Path) -> ThumbnailMaker:
    return ThumbnailMaker(tmp_path / "state" / "state.sqlite3.thumbnails")


@pytest.mark.parametrize("kind", ["heic", "jpeg", "png", "dng"])
async def test_a_photo_becomes_a_small_jpeg(
    kind: str, maker: ThumbnailMaker, tmp_path: Path
) -> None:
    """HEIC (pillow-heif), JPEG, PNG and TIFF-structured DNG become JPEGs of at most 320 px."""
    taken = datetime(2024, 3, 9, 12, 0)
    path = tmp_path / f"photo.{kind}"
    if kind == "heic":
        media.make_heic(path, taken)
    elif kind == "jpeg":
        media.make_jpeg(path, taken, size=(1600, 1200))
    elif kind == "png":
        media.make_png_screenshot(path, taken)
    else:
        media.make_dng(path, taken)
    thumbnail = await maker.thumbnail(ARCHIVE_ID, path)
    assert thumbnail is not None
    width, height = _jpeg_size(thumbnail)
    assert max(width, height) <= 320
    if kind == "jpeg":
        assert (width, height) == (320, 240)


async def test_a_sideways_photo_is_turned_upright(maker: ThumbnailMaker, tmp_path: Path) -> None:
    """EXIF orientation 6 (the phone held upright, the sensor sideways) gives a portrait
    thumbnail of a landscape-stored JPEG."""
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (800, 600), (200, 30, 30)).save(path, format="JPEG", exif=exif.tobytes())
    thumbnail = await maker.thumbnail(ARCHIVE_ID, path)
    assert thumbnail is not None
    assert _jpeg_size(thumbnail) == (240, 320)


async def test_the_cache_is_private_and_a_cached_thumbnail_needs_no_worker(
    tmp_path: Path,
) -> None:
    """The thumbnail is kept 0600 in a 0700 folder under its archive id; asked again it comes
    from the cache even when no worker could run any more."""
    cache = tmp_path / "cache"
    path = media.make_jpeg(tmp_path / "a.jpg", None, size=(100, 80))
    first = await ThumbnailMaker(cache).thumbnail(ARCHIVE_ID, path)
    assert first is not None
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache / f"{ARCHIVE_ID}.jpg").stat().st_mode) == 0o600
    broken_worker = ThumbnailMaker(cache, command=["/nonexistent/worker"])
    assert await broken_worker.thumbnail(ARCHIVE_ID, path) == first


async def test_a_file_that_is_not_an_image_is_refused_once(tmp_path: Path) -> None:
    """Random bytes named .HEIC: no thumbnail, and the refusal is remembered, so asking again
    starts no second worker."""
    counter = tmp_path / "workers"
    command = ["sh", "-c", f'echo started >> "{counter}"; exec "$0" "$@"', *worker_command()]
    maker = ThumbnailMaker(tmp_path / "cache", command=command)
    path = media.make_blob(tmp_path / "IMG_0001.HEIC", 5000)
    assert await maker.thumbnail(ARCHIVE_ID, path) is None
    assert await maker.thumbnail(ARCHIVE_ID, path) is None
    assert counter.read_text().count("started") == 1
    assert not (tmp_path / "cache" / f"{ARCHIVE_ID}.jpg").exists()


async def test_a_decompression_bomb_is_refused_before_it_is_decoded(
    maker: ThumbnailMaker, tmp_path: Path
) -> None:
    """A 50,000 x 50,000 PNG of a few hundred bytes (7.5 GB once decoded) is refused by the
    worker's pixel limit (its ``too_large`` answer), not decoded."""
    path = _png(tmp_path / "bomb.png", 50_000, 50_000, rows=1)
    assert path.stat().st_size < 2000
    with capture_logs() as events:
        assert await maker.thumbnail(ARCHIVE_ID, path) is None
    assert _refusals(events) == ["too_large"]


@pytest.mark.slow
async def test_a_photo_that_needs_more_memory_than_the_limit_fails_cleanly(
    tmp_path: Path,
) -> None:
    """A 10,000 x 10,000 PNG (300 MB decoded, under the pixel limit) fails in a worker held to
    256 MiB of address space and succeeds under the default limit: the limit is real, and a
    failing worker leaves the caller with None, not an exception."""
    path = _png(tmp_path / "large.png", 10_000, 10_000)
    small = ThumbnailMaker(tmp_path / "small", limits=WorkerLimits(memory_bytes=256 << 20))
    with capture_logs() as events:
        assert await small.thumbnail(ARCHIVE_ID, path) is None
    assert _refusals(events) == ["out_of_memory"]
    roomy = ThumbnailMaker(tmp_path / "roomy")
    thumbnail = await roomy.thumbnail(ARCHIVE_ID, path)
    assert thumbnail is not None
    assert _jpeg_size(thumbnail) == (320, 320)


async def test_a_worker_that_never_answers_is_killed_at_the_time_limit(tmp_path: Path) -> None:
    """A worker stuck forever is killed when the wall-clock limit passes; the caller gets None
    and the process is gone."""
    pid_file = tmp_path / "pid"
    stuck = ["sh", "-c", f'echo $$ > "{pid_file}"; exec tail -f /dev/null', "worker"]
    maker = ThumbnailMaker(tmp_path / "cache", command=stuck, limits=WorkerLimits(wall_seconds=1.0))
    path = media.make_jpeg(tmp_path / "a.jpg", None)
    assert await maker.thumbnail(ARCHIVE_ID, path) is None
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_worker_flooding_its_output_is_stopped(tmp_path: Path) -> None:
    """A worker writing more than a thumbnail can be (here, endless zeros) is killed once it
    passes the cap; nothing is cached."""
    flood = ["sh", "-c", "exec cat /dev/zero", "worker"]
    maker = ThumbnailMaker(tmp_path / "cache", command=flood)
    path = media.make_jpeg(tmp_path / "a.jpg", None)
    assert await maker.thumbnail(ARCHIVE_ID, path) is None
    assert not (tmp_path / "cache").exists()


async def test_a_symbolic_link_in_place_of_a_photo_is_not_followed(
    maker: ThumbnailMaker, tmp_path: Path
) -> None:
    """An archive entry that is a symbolic link (to a real photo elsewhere) gets no thumbnail:
    the file is opened with O_NOFOLLOW, so a link cannot point the page at other files."""
    real = media.make_jpeg(tmp_path / "elsewhere.jpg", None)
    link = tmp_path / "archive" / "IMG_0001.JPG"
    link.parent.mkdir()
    link.symlink_to(real)
    assert await maker.thumbnail(ARCHIVE_ID, link) is None


async def test_the_worker_gets_no_path_and_no_environment(tmp_path: Path) -> None:
    """The worker's command line names no file and its environment carries nothing of the
    service's (no secrets in variables): it reads the photo from standard input."""
    seen = tmp_path / "seen"
    spy = [
        sys.executable,
        "-c",
        "import json, os, sys; "
        f"open({str(seen)!r}, 'w').write(json.dumps([sys.argv, sorted(os.environ)])); "
        "sys.stdout.buffer.write(b'\\xff\\xd8' + sys.stdin.buffer.read(4))",
    ]
    os.environ["ROLLKEEPER_TEST_SECRET"] = "do-not-pass"
    try:
        maker = ThumbnailMaker(tmp_path / "cache", command=spy)
        path = media.make_jpeg(tmp_path / "a.jpg", None)
        assert await maker.thumbnail(ARCHIVE_ID, path) == b"\xff\xd8" + path.read_bytes()[:4]
    finally:
        del os.environ["ROLLKEEPER_TEST_SECRET"]
    arguments, variables = json.loads(seen.read_text())
    assert str(path) not in " ".join(arguments)
    assert "ROLLKEEPER_TEST_SECRET" not in variables
    assert set(variables) <= {"PATH", "LC_ALL", "MALLOC_ARENA_MAX", "LC_CTYPE"}


async def test_the_cache_keeps_at_most_its_size(tmp_path: Path) -> None:
    """With room for two thumbnails, making a third drops the oldest."""
    cache = tmp_path / "cache"
    maker = ThumbnailMaker(cache, max_cached=2)
    ids = ["a1" * 32, "b2" * 32, "c3" * 32]
    for number, archive_id in enumerate(ids):
        path = media.make_jpeg(tmp_path / f"{number}.jpg", None)
        assert await maker.thumbnail(archive_id, path) is not None
        os.utime(cache / f"{archive_id}.jpg", ns=(number * 10**9, number * 10**9))
    assert sorted(path.name for path in cache.iterdir()) == [f"{ids[1]}.jpg", f"{ids[2]}.jpg"]


def test_an_id_that_is_not_a_content_hash_never_names_a_file(tmp_path: Path) -> None:
    """The cache file is named by the id only after the id is checked to be lower-case hex, so
    no id can name a path outside the cache."""
    maker = ThumbnailMaker(tmp_path / "cache")
    for bad in ("../state.sqlite3", "AB" * 32, "ab/cd" * 8, "", "ab" * 100):
        with pytest.raises(ValueError):
            maker.cached_path(bad)
    assert maker.cached_path(ARCHIVE_ID).parent == tmp_path / "cache"
