"""What the status page's tests share: an archive of real photos recorded in a real state
database, a config that serves the page, and plain HTTP requests that send paths as written.

``http.client`` is used on purpose: it sends the request line exactly as given (``/../x``,
``%2e%2e``), where browsers and most HTTP libraries would tidy the path first.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tomli_w

from rollkeeper.importer.hashing import hash_file
from rollkeeper.store import RunCounts, StateStore
from tests import media

UDID = "00008110-000A1B2C3D4E5F60"
NAME = "Ann's iPhone"
TOKEN = "correct-horse-battery-staple-42"
AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@dataclass
class ArchivedPhotos:
    """A state database and an archive folder holding real files the database vouches for."""

    root: Path
    archive: Path
    state_path: Path
    #: File name -> content hash (the archive id).
    ids: dict[str, str] = field(default_factory=dict)


def make_archived_photos(root: Path) -> ArchivedPhotos:
    """An archive with a HEIC, a JPEG, a PNG, a video and a file named .HEIC that is not an
    image, each recorded as archived from one phone (capture months 2024-01 and 2024-03), and
    one file of the phone that failed."""
    archive = root / "archive"
    state_path = root / "state" / "state.sqlite3"
    photos = ArchivedPhotos(root=root, archive=archive, state_path=state_path)
    taken = datetime(2024, 3, 9, 12, 0)
    files: dict[str, Callable[[Path], Path]] = {
        "IMG_0001.HEIC": lambda path: media.make_heic(path, taken, timedelta(hours=1)),
        "IMG_0002.JPG": lambda path: media.make_jpeg(path, taken, size=(640, 480)),
        "IMG_0003.PNG": lambda path: media.make_png_screenshot(path, taken),
        "IMG_0004.MOV": lambda path: media.make_video(path, created_utc=AT, payload_bytes=2000),
        "IMG_0005.HEIC": lambda path: media.make_blob(path, 5000),
    }
    store = StateStore.open(state_path)
    try:
        store.record_device_seen(UDID, name=NAME, product_type="iPhone14,2", now=AT)
        run_id = store.start_run(UDID, now=AT)
        for number, (name, make) in enumerate(files.items()):
            month = "2024-01" if number == 0 else "2024-03"
            relative = f"2024/{month}/{name}"
            path = archive / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            make(path)
            content_hash = hash_file(path)
            photos.ids[name] = content_hash
            entry = store.observe_file(UDID, "/DCIM/100APPLE", name, path.stat().st_size, number, 0)
            store.record_archived(
                entry.id,
                relative_path=relative,
                content_hash=content_hash,
                hash_algorithm="blake3",
                size=path.stat().st_size,
                origin="backup",
                capture_time=f"{month}-09T12:00:00",
                capture_source="exif",
                now=AT + timedelta(minutes=number),
            )
        failed = store.observe_file(UDID, "/DCIM/100APPLE", "IMG_0006.MOV", 99, 6, 0)
        store.set_file_status(failed.id, "failed", "read_error")
        store.finish_run(run_id, "incomplete", RunCounts(files_found=6, files_failed=1), now=AT)
    finally:
        store.close()
    return photos


def write_web_config(root: Path, archive: Path, state_path: Path, **web: Any) -> Path:
    """A config with the page on (loopback, port 0 unless ``web`` says otherwise)."""
    path = root / "config.toml"
    config = {
        "archive": {"path": str(archive)},
        "state": {"path": str(state_path)},
        "device": {"pairing_dir": str(root / "pairing")},
        "logging": {"format": "json"},
        "web": {"enabled": True, "listen": "127.0.0.1:0", **web},
    }
    archive.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(config))
    return path


@dataclass(frozen=True)
class Reply:
    """One HTTP response, read whole."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    host: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """``METHOD path`` to 127.0.0.1:port with the path sent exactly as written."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return Reply(
            status=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=response.read(),
        )
    finally:
        connection.close()


def bearer(token: str = TOKEN) -> dict[str, str]:
    """The header that shows the token to the page (what scripts use instead of the cookie)."""
    return {"Authorization": f"Bearer {token}"}
