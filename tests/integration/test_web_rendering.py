"""The page in a real headless browser against documents it does not fully know: keys added by
newer versions show under "More" instead of breaking the page, missing optional keys are left
out, and a phone's name is shown as text, never run as HTML.

The server is the real one (aiohttp on its own loop in a thread) over a real state database;
only the status document is the real ``status --json`` document with keys added or removed,
as a newer or older rollkeeper would write it.
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rollkeeper import bootstrap
from rollkeeper.config import load_config
from rollkeeper.status.document import status_as_dict
from rollkeeper.status.gather import gather_status
from rollkeeper.store import StateStore
from rollkeeper.web.page_data import page_document
from rollkeeper.web.server import WebServer
from rollkeeper.web.thumbnails import ThumbnailMaker
from tests.browser import attribute_of, headless_chromium, script, text_of, wait_until
from tests.web_helpers import UDID, ArchivedPhotos, make_archived_photos, write_web_config

HOSTILE_NAME = '<img src=x onerror="window.pwned = true">Ann'

Change = Callable[[dict[str, Any]], None]


class PageThread:
    """A WebServer on an event loop of its own thread, for a synchronous browser test."""

    def __init__(self, photos: ArchivedPhotos, change: Change) -> None:
        config_path = write_web_config(photos.root, photos.archive, photos.state_path)
        environ = {"HOME": str(photos.root), "PATH": os.environ.get("PATH", os.defpath)}
        config = load_config(config_path, environ)

        def status_document() -> dict[str, Any]:
            document = status_as_dict(gather_status(str(config_path), environ, datetime.now(UTC)))
            changed = copy.deepcopy(document)
            change(changed)
            return changed

        self.server = WebServer(
            config.web,
            status_document=status_document,
            page_document=lambda: page_document(photos.state_path),
            find_entry=lambda archive_id: None,
            thumbnails=ThumbnailMaker(bootstrap.thumbnail_cache_path(photos.state_path)),
            archive_root=photos.archive,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        started = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop)
        assert started.result(timeout=30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture
def photos(tmp_path: Path) -> ArchivedPhotos:
    photos = make_archived_photos(tmp_path)
    store = StateStore.open(photos.state_path)
    try:
        store.record_device_seen(UDID, name=HOSTILE_NAME)
    finally:
        store.close()
    return photos


@pytest.fixture
def serve(photos: ArchivedPhotos) -> Iterator[Callable[[Change], PageThread]]:
    started: list[PageThread] = []

    def start(change: Change) -> PageThread:
        page = PageThread(photos, change)
        started.append(page)
        return page

    yield start
    for page in started:
        page.stop()


def _newer_document(document: dict[str, Any]) -> None:
    """What a newer rollkeeper might add: new sections, a new key per phone and per archive;
    and what an older one might lack: the archive's free space."""
    document["offsite"] = {"engine": "restic", "last_copy_at": "2026-11-25T03:00:00+00:00"}
    document["devices"][0]["device_backups"] = {"snapshots": 3, "last_at": None}
    document["archive"]["available"] = False
    del document["archive"]["free_bytes"]


def test_unknown_keys_show_under_more_and_missing_ones_are_left_out(
    serve: Callable[[Change], PageThread], tmp_path: Path
) -> None:
    """Keys the page does not know appear under "More" with their values (top level, per
    phone, in the archive), the known parts still render, and a missing free space is simply
    not shown."""
    page = serve(_newer_document)
    with headless_chromium(tmp_path / "profile") as driver:
        driver.get(f"http://127.0.0.1:{page.server.port}/")
        card = f'article.phone[data-udid="{UDID}"]'
        wait_until(driver, lambda found: text_of(found, f"{card} .verdict"), "the phone's card")
        assert attribute_of(driver, "#more", "hidden") is None
        more = text_of(driver, "#more-body") or ""
        assert "offsite" in more
        assert "restic" in more
        assert "device_backups" in (text_of(driver, f"{card} details.more") or "")
        archive = text_of(driver, "#archive-facts") or ""
        assert "available" in archive
        assert "Free space" not in archive
        assert "5 files" in archive
        assert text_of(driver, "#summary")


def test_a_phone_name_is_text_never_html(
    serve: Callable[[Change], PageThread], tmp_path: Path
) -> None:
    """A phone named like an HTML element with a script handler shows that text literally; no
    element is made of it and nothing of it runs."""
    page = serve(lambda document: None)
    with headless_chromium(tmp_path / "profile") as driver:
        driver.get(f"http://127.0.0.1:{page.server.port}/")
        heading = f'article.phone[data-udid="{UDID}"] h2'
        wait_until(driver, lambda found: text_of(found, heading), "the phone's name")
        assert HOSTILE_NAME in (text_of(driver, heading) or "")
        assert script(driver, f"return document.querySelectorAll('{heading} img').length") == 0
        assert script(driver, "return window.pwned === undefined") is True
