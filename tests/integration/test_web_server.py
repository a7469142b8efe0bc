"""The status page's server on real sockets: the same document as ``status --json``, the token,
the cookie, the Host check, the headers, traversal, read-only routes and the live stream.

The server is built by the composition root (``bootstrap.web_server``) from a real config file,
over a real state database and an archive of real photos; requests go over TCP with the path
sent as written (tests/web_helpers.py).
"""

from __future__ import annotations

import asyncio
import hmac
import io
import json
import os
import socket
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from rollkeeper import bootstrap
from rollkeeper.cli import build_parser
from rollkeeper.commands.status import run_status
from rollkeeper.config import load_config
from rollkeeper.store import StateStore
from rollkeeper.web.page_data import page_document as build_page_document
from rollkeeper.web.server import WebServer
from tests.web_helpers import (
    TOKEN,
    UDID,
    ArchivedPhotos,
    bearer,
    make_archived_photos,
    request,
    write_web_config,
)

StartPage = Callable[..., Awaitable[WebServer]]


@pytest.fixture
def photos(tmp_path: Path) -> ArchivedPhotos:
    return make_archived_photos(tmp_path)


def _environ(root: Path) -> dict[str, str]:
    return {"HOME": str(root), "PATH": os.environ.get("PATH", os.defpath)}


@pytest.fixture
async def start_page(photos: ArchivedPhotos) -> AsyncIterator[StartPage]:
    """Start pages built by the composition root from a config with ``[web]`` as given."""
    started: list[WebServer] = []

    async def start(**web: Any) -> WebServer:
        config_path = write_web_config(photos.root, photos.archive, photos.state_path, **web)
        environ = _environ(photos.root)
        server = bootstrap.web_server(load_config(config_path, environ), config_path, environ)
        assert server is not None
        assert await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


async def get(server: WebServer, path: str, **options: Any) -> Any:
    """A request in a thread, so that the server's loop (this one) can answer it."""
    assert server.port is not None
    return await asyncio.to_thread(request, server.port, path, **options)


def _status_json(photos: ArchivedPhotos) -> dict[str, Any]:
    args = build_parser().parse_args(["--config", str(photos.root / "config.toml"), "status"])
    args.json = True
    out = io.StringIO()
    from datetime import UTC, datetime

    run_status(args, environ=_environ(photos.root), now=datetime.now(UTC), out=out)
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def _without_time(document: dict[str, Any]) -> dict[str, Any]:
    """The document without what changes between two gatherings: the moment it was made, and
    the free space of a disk other programs write to."""
    rest = {key: value for key, value in document.items() if key != "generated_at"}
    rest["archive"] = {key: value for key, value in rest["archive"].items() if key != "free_bytes"}
    return rest


async def test_the_page_serves_the_same_document_as_status_json(
    start_page: StartPage, photos: ArchivedPhotos
) -> None:
    """/api/status is the ``status --json`` document, made by the same code from the same config
    (only the moment it was made differs), and / is the page."""
    server = await start_page()
    reply = await get(server, "/api/status")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert _without_time(reply.json()) == _without_time(_status_json(photos))
    assert reply.json()["devices"][0]["udid"] == UDID
    page = await get(server, "/")
    assert page.status == 200
    assert b'<script src="/app.js"' in page.body
    for asset in ("/app.js", "/style.css", "/favicon.svg"):
        assert (await get(server, asset)).status == 200


async def test_every_response_forbids_framing_referrers_and_caching(
    start_page: StartPage, photos: ArchivedPhotos
) -> None:
    """Pages, JSON, thumbnails and errors alike carry X-Frame-Options DENY, CSP frame-ancestors
    'none', Referrer-Policy no-referrer, nosniff and Cache-Control no-store."""
    server = await start_page()
    thumbnail = f"/thumbnails/{photos.ids['IMG_0002.JPG']}"
    for path in ("/", "/api/status", "/api/page", thumbnail, "/no-such-page", "/../x"):
        reply = await get(server, path)
        assert reply.status in (200, 404), path
        headers = reply.headers
        assert headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["referrer-policy"] == "no-referrer", path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["cache-control"] == "no-store", path
    assert (await get(server, thumbnail)).headers["content-type"] == "image/jpeg"


async def test_a_host_header_of_another_site_is_refused_on_a_loopback_bind(
    start_page: StartPage,
) -> None:
    """DNS rebinding: a request naming another host (a site that re-bound its name to 127.0.0.1)
    is 403 on a loopback bind; the loopback names with the bound port pass."""
    server = await start_page()
    port = server.port
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1:1", "", "192.168.1.5:80"):
        assert (await get(server, "/api/status", host=host)).status == 403, host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        assert (await get(server, "/api/status", host=host)).status == 200, host


async def test_a_lan_bind_without_the_token_is_401_and_serves_no_photo_bytes(
    start_page: StartPage, photos: ArchivedPhotos
) -> None:
    """Bound to every interface with a token: without it every route is 401 (the page, the
    status, the live stream, a real photo's thumbnail), whatever the Host; with it, 200."""
    server = await start_page(listen="0.0.0.0:0", token=TOKEN)
    thumbnail = f"/thumbnails/{photos.ids['IMG_0001.HEIC']}"
    for path in ("/", "/api/status", "/api/events", "/api/page", thumbnail):
        reply = await get(server, path, host="nas.local:8765")
        assert reply.status == 401, path
        assert b"\xff\xd8" not in reply.body
        wrong = await get(server, path, headers=bearer("not-the-token-at-all-1234"))
        assert wrong.status == 401, path
    assert (await get(server, "/api/status", headers=bearer())).status == 200
    reply = await get(server, thumbnail, headers=bearer())
    assert reply.status == 200
    assert reply.body.startswith(b"\xff\xd8")


async def test_the_login_link_sets_a_strict_http_only_cookie_and_drops_the_token(
    start_page: StartPage,
) -> None:
    """/login?token=... answers 303 to / (no token in the new address) with an HttpOnly,
    SameSite=Strict cookie that is not the token itself; the cookie then opens the page. A
    wrong token gets 401 and no cookie."""
    server = await start_page(listen="0.0.0.0:0", token=TOKEN)
    wrong = await get(server, "/login?token=guess-guess-guess-guess")
    assert wrong.status == 401
    assert "set-cookie" not in wrong.headers
    login = await get(server, f"/login?token={TOKEN}")
    assert login.status == 303
    assert login.headers["location"] == "/"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert TOKEN not in cookie
    pair = cookie.split(";", 1)[0]
    page = await get(server, "/", headers={"Cookie": pair})
    assert page.status == 200
    status = await get(server, "/api/status", headers={"Cookie": pair})
    assert status.status == 200
    forged = pair.split("=", 1)[0] + "=" + "0" * 64
    assert (await get(server, "/", headers={"Cookie": forged})).status == 401


async def test_a_cross_site_navigation_without_the_cookie_is_loaded_again_same_site(
    start_page: StartPage,
) -> None:
    """A browser following another site's link gets no SameSite=Strict cookie sent, even right
    after /login set it: such a navigation gets a 401 page that reloads the page's own path
    from here (then same-site, with the cookie); the reload of a browser that really has no
    cookie gets the plain 401, so nothing loops and nothing leaks."""
    server = await start_page(listen="0.0.0.0:0", token=TOKEN)
    cross_site = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    reply = await get(server, "/", headers=cross_site)
    assert reply.status == 401
    assert b'http-equiv="refresh" content="0; url=/"' in reply.body
    assert b"devices" not in reply.body
    other = await get(server, "/api/status?x=1", headers=cross_site)
    assert b'url=/"' in other.body, "only the page's own routes are reloaded"
    same_site = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}
    plain = await get(server, "/", headers=same_site)
    assert plain.status == 401
    assert b"refresh" not in plain.body


async def test_the_token_is_compared_in_constant_time(
    start_page: StartPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every check of the token or the cookie goes through hmac.compare_digest (a == would
    leak by timing how much of a guess is right)."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(first: bytes, second: bytes) -> bool:
        calls.append((first, second))
        return real(first, second)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    server = await start_page(listen="0.0.0.0:0", token=TOKEN)
    await get(server, "/login?token=guess-guess-guess-guess")
    await get(server, "/api/status", headers=bearer("guess-guess-guess-guess"))
    assert (b"guess-guess-guess-guess", TOKEN.encode()) in calls
    assert len([call for call in calls if call[1] == TOKEN.encode()]) >= 2


async def test_a_thumbnail_of_an_id_not_in_the_archive_is_404(
    start_page: StartPage, photos: ArchivedPhotos
) -> None:
    """Thumbnails are asked for by archive id: an id the archive does not hold, a malformed id,
    a path instead of an id, or a video's id is 404; a file that is not an image is 415."""
    server = await start_page()
    for path in (
        "/thumbnails/" + "0" * 64,
        "/thumbnails/" + photos.ids["IMG_0001.HEIC"].upper(),
        "/thumbnails/IMG_0001.HEIC",
        "/thumbnails/2024%2F2024-01%2FIMG_0001.HEIC",
        "/thumbnails/" + photos.ids["IMG_0004.MOV"],
        "/thumbnails/",
    ):
        assert (await get(server, path)).status == 404, path
    assert (await get(server, "/thumbnails/" + photos.ids["IMG_0005.HEIC"])).status == 415
    for name in ("IMG_0001.HEIC", "IMG_0002.JPG", "IMG_0003.PNG"):
        reply = await get(server, "/thumbnails/" + photos.ids[name])
        assert reply.status == 200, name
        assert reply.body.startswith(b"\xff\xd8"), name


async def test_dot_segments_in_any_path_are_404_even_with_the_token(
    start_page: StartPage,
) -> None:
    """``../`` anywhere in a path, plain, percent-encoded or double-encoded (and backslashes),
    is 404 before any route runs, also for a signed-in request."""
    server = await start_page(listen="0.0.0.0:0", token=TOKEN)
    for path in (
        "/../etc/passwd",
        "/thumbnails/../api/status",
        "/api/../api/status",
        "/%2e%2e/api/status",
        "/%2E%2E%2Fapi%2Fstatus",
        "/thumbnails/..%2f..%2fstate.sqlite3",
        "/%252e%252e/api/status",
        "/./api/status",
        "/api/status/..",
        "/..\\api\\status",
        "/login/../api/status?token=x",
    ):
        assert (await get(server, path, headers=bearer())).status == 404, path


async def test_the_page_is_read_only(start_page: StartPage, photos: ArchivedPhotos) -> None:
    """Only GET and HEAD are answered: every other method is 405 on every route, and the state
    database and the archive are exactly as before."""
    server = await start_page()
    before = photos.state_path.read_bytes(), sorted(photos.archive.rglob("*"))
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/", "/api/status", "/login", "/thumbnails/" + photos.ids["IMG_0001.HEIC"]):
            assert (await get(server, path, method=method)).status == 405, (method, path)
    assert (await get(server, "/api/status", method="HEAD")).status == 200
    assert (photos.state_path.read_bytes(), sorted(photos.archive.rglob("*"))) == before


async def test_thumbnails_are_cached_privately_in_the_state_folder_not_the_archive(
    start_page: StartPage, photos: ArchivedPhotos
) -> None:
    """A thumbnail is kept beside the state database, 0600 in a 0700 folder, named by its
    archive id; the archive folder gains nothing, and the second request is served from the
    cache (the same bytes)."""
    server = await start_page()
    archive_before = sorted(photos.archive.rglob("*"))
    archive_id = photos.ids["IMG_0001.HEIC"]
    first = await get(server, f"/thumbnails/{archive_id}")
    cache = bootstrap.thumbnail_cache_path(photos.state_path)
    cached = cache / f"{archive_id}.jpg"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert cached.read_bytes() == first.body
    assert sorted(photos.archive.rglob("*")) == archive_before
    cached_at = cached.stat().st_mtime_ns
    second = await get(server, f"/thumbnails/{archive_id}")
    assert second.body == first.body
    assert cached.stat().st_mtime_ns == cached_at, "served from the cache, not made again"


async def test_the_page_document_has_the_newest_photos_months_and_failing_files(
    start_page: StartPage, photos: ArchivedPhotos
) -> None:
    """/api/page lists the newest photos newest first (videos left out), archived photos per
    month of capture with the months between filled and no library counts (not read), the
    files failing now with their reasons, and the words status uses."""
    server = await start_page()
    document = (await get(server, "/api/page")).json()
    names = [photo["name"] for photo in document["recent_photos"]]
    assert names == ["IMG_0005.HEIC", "IMG_0003.PNG", "IMG_0002.JPG", "IMG_0001.HEIC"]
    assert all(
        photo["thumbnail"] == f"/thumbnails/{photo['id']}" for photo in document["recent_photos"]
    )
    [device] = document["devices"]
    assert device["udid"] == UDID
    assert device["library_read"] is False
    assert device["months"] == [
        {"month": "2024-01", "archived": 1, "library": None},
        {"month": "2024-02", "archived": 0, "library": None},
        {"month": "2024-03", "archived": 3, "library": None},
    ]
    assert device["failing_now"] == [
        {"phone_path": "/DCIM/100APPLE/IMG_0006.MOV", "size": 99, "reason": "read_error"}
    ]
    assert document["words"]["verdicts"]["backed_up"] == "backed up"


def _asset(uuid: str, name: str, created_utc: str, offset: int, trashed: bool = False) -> Any:
    """A library asset of the test phone (only what the month chart reads matters)."""
    from rollkeeper.store.library import StoredAsset

    return StoredAsset(
        uuid=uuid,
        phone_folder="/DCIM/100APPLE",
        phone_name=name,
        original_filename=name,
        created_utc=created_utc,
        utc_offset_seconds=offset,
        favorite=False,
        hidden=False,
        trashed=trashed,
        original_local=True,
        albums=(),
    )


async def test_the_month_chart_sets_the_librarys_photos_beside_the_archives(
    start_page: StartPage, photos: ArchivedPhotos
) -> None:
    """Once the phone's library has been read, each month carries the library's photos of that
    month of capture (local time of capture: a photo taken on 1 March at 00:30 in UTC+2 is
    February's in UTC but March's where it was taken), videos and Recently Deleted left out;
    before any applied read the months say nothing of the library."""
    from rollkeeper.store.library import LibraryReadRecord

    store = StateStore.open(photos.state_path)
    try:
        library = store.library_repository
        library.replace_assets(
            UDID,
            [
                _asset("A", "IMG_0001.HEIC", "2024-01-09T11:00:00+00:00", 3600),
                _asset("B", "IMG_0010.JPG", "2024-02-29T22:30:00+00:00", 7200),
                _asset("C", "IMG_0011.HEIC", "2024-03-09T12:00:00+00:00", 0),
                _asset("D", "IMG_0012.MOV", "2024-03-09T12:00:00+00:00", 0),
                _asset("E", "IMG_0013.HEIC", "2024-03-10T12:00:00+00:00", 0, trashed=True),
            ],
        )
        document = build_page_document(photos.state_path)
        assert document["devices"][0]["library_read"] is False
        library.record_read(
            LibraryReadRecord(0, UDID, "", "copied", None, "applied", "", "", (), 5, 0, 0, 0, 0)
        )
    finally:
        store.close()
    server = await start_page()
    [device] = (await get(server, "/api/page")).json()["devices"]
    assert device["library_read"] is True
    assert device["months"] == [
        {"month": "2024-01", "archived": 1, "library": 1},
        {"month": "2024-02", "archived": 0, "library": 0},
        {"month": "2024-03", "archived": 3, "library": 2},
    ]


async def test_the_live_stream_sends_the_document_again_when_progress_moves(
    start_page: StartPage, photos: ArchivedPhotos
) -> None:
    """/api/events sends the status document at once, and again when the state changes (the
    progress the service records), without the client asking."""
    server = await start_page()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{server.port}/api/events") as response,
    ):
        assert response.headers["Content-Type"].startswith("text/event-stream")
        first = await _next_event(response.content)
        assert first["devices"][0]["udid"] == UDID
        store = StateStore.open(photos.state_path)
        try:
            store.set_device_state(UDID, "backing_up")
            store.set_device_progress(UDID, 3, 10, 3_000, 10_000)
        finally:
            store.close()
        # The service is not running here (no lock), so the state reads "disconnected"; what
        # changes is the recorded state, which the document carries as it is.
        second = await _next_event(response.content)
        assert second["devices"][0]["state"]["recorded"] == "backing_up"


async def _next_event(stream: aiohttp.StreamReader) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            line = await stream.readline()
            if line.startswith(b"data: "):
                document: dict[str, Any] = json.loads(line[len(b"data: ") :])
                return document


async def test_a_port_already_taken_leaves_the_page_off_and_says_so(
    photos: ArchivedPhotos,
) -> None:
    """When the address is taken the page does not start (start() is False, one
    ``web_unavailable`` event naming the address) and nothing raises: the service backs up
    without it."""
    with socket.create_server(("127.0.0.1", 0)) as taken, capture_logs() as events:
        port = taken.getsockname()[1]
        config_path = write_web_config(
            photos.root, photos.archive, photos.state_path, listen=f"127.0.0.1:{port}"
        )
        environ = _environ(photos.root)
        server = bootstrap.web_server(load_config(config_path, environ), config_path, environ)
        assert server is not None
        assert await server.start() is False
    [event] = [event for event in events if event["event"] == "web_unavailable"]
    assert event["listen"] == f"127.0.0.1:{port}"


async def test_a_reloaded_token_applies_at_once_but_never_opens_a_lan_page(
    start_page: StartPage, photos: ArchivedPhotos
) -> None:
    """A config reload with a new token signs the old one out at once; a reload that would
    leave a page bound off loopback without a token keeps the token it has."""
    server = await start_page(listen="0.0.0.0:0", token=TOKEN)
    environ = _environ(photos.root)
    new_token = "another-token-for-the-page-77"
    config_path = write_web_config(
        photos.root, photos.archive, photos.state_path, listen="0.0.0.0:0", token=new_token
    )
    config = load_config(config_path, environ)
    server.apply_settings(config.web, Path(config.archive.path))
    assert (await get(server, "/api/status", headers=bearer())).status == 401
    assert (await get(server, "/api/status", headers=bearer(new_token))).status == 200
    loopback = write_web_config(photos.root, photos.archive, photos.state_path)
    config = load_config(loopback, environ)
    server.apply_settings(config.web, Path(config.archive.path))
    assert (await get(server, "/api/status")).status == 401
    assert (await get(server, "/api/status", headers=bearer(new_token))).status == 200
