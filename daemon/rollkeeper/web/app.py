"""The page's routes, all read-only (GET and HEAD; anything else is 405).

``/`` and its script, style and icon (fixed files of the package, never a path from the URL);
``/login?token=...``; ``/api/status`` (the ``status --json`` document, as ``status`` makes it);
``/api/events`` (the same document as server-sent events, whenever it changes);
``/api/page`` (photos, months, failing files: :mod:`rollkeeper.web.page_data`);
``/thumbnails/<archive id>`` (a JPEG thumbnail of the archive file with that content hash).
Every request passes :func:`guard` first (:mod:`rollkeeper.web.access` says the rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from rollkeeper.archive.locations import entry_location
from rollkeeper.domain.files import MediaKind, media_kind
from rollkeeper.store.records import ArchiveEntry
from rollkeeper.web.access import SECURITY_HEADERS, SESSION_SECONDS, AccessPolicy, has_dot_segment
from rollkeeper.web.feed import StatusFeed
from rollkeeper.web.thumbnails import ARCHIVE_ID, ThumbnailMaker

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The page's fixed files: URL path -> (file in ``static/``, content type).
ASSETS: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
}

_NOT_SIGNED_IN = (
    "401 Unauthorized: this page needs its token. Open the link that `rollkeeper web url` "
    "prints on the computer that runs rollkeeper.\n"
)


#: The answer to a cross-site navigation without the cookie: the same page again, same-site.
_SAME_SITE_RELOAD = (
    b'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=PATH">'
    b"<title>rollkeeper</title><p>Opening the page\xe2\x80\xa6 If it does not open, use the link "
    b"that <code>rollkeeper web url</code> prints.</p>\n"
)


def _cross_site_navigation(request: web.Request) -> bool:
    """Whether a browser loads this page at the top level from another site's link."""
    headers = request.headers
    return (
        request.method == "GET"
        and headers.get("Sec-Fetch-Site") == "cross-site"
        and headers.get("Sec-Fetch-Mode") == "navigate"
    )


def _reload_target(request: web.Request) -> bytes:
    """Where the reload goes: this route's own path, when it is one of the page's; else ``/``
    (never anything taken from the URL beyond a known route)."""
    return request.path.encode() if request.path in ASSETS else b"/"


@dataclass(slots=True)
class PageContext:
    """What the handlers read; the server swaps ``archive_root`` and the policy's token on a
    config reload."""

    policy: AccessPolicy
    feed: StatusFeed
    page_document: Callable[[], dict[str, Any]]
    find_entry: Callable[[str], ArchiveEntry | None]
    thumbnails: ThumbnailMaker
    archive_root: Path


def build_application(context: PageContext) -> web.Application:
    """The aiohttp application of the page (not yet serving)."""
    application = web.Application(middlewares=[_guard_for(context)], client_max_size=4096)
    application.on_response_prepare.append(_add_security_headers)
    handlers = _Handlers(context)
    for path, (name, content_type) in ASSETS.items():
        application.router.add_get(path, _asset_handler(name, content_type))
    application.router.add_get("/login", handlers.login)
    application.router.add_get("/api/status", handlers.status)
    application.router.add_get("/api/events", handlers.events)
    application.router.add_get("/api/page", handlers.page)
    application.router.add_get("/thumbnails/{archive_id}", handlers.thumbnail)
    return application


def _guard_for(context: PageContext) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Traversal (404), Host (403), then the token (401) before any route runs."""
        if has_dot_segment(request.raw_path):
            raise web.HTTPNotFound(text="404 Not Found\n")
        policy = context.policy
        if not policy.host_allowed(request.headers.get("Host")):
            raise web.HTTPForbidden(text="403 Forbidden: unexpected Host header\n")
        if request.path != "/login" and not policy.authorised(
            request.cookies.get(policy.cookie_name), request.headers.get("Authorization")
        ):
            if _cross_site_navigation(request):
                # A browser sends no SameSite=Strict cookie on a navigation that began on
                # another site, even after /login set it (a login link clicked in a web mail):
                # load the page once more from here, which is same-site and carries it.
                return web.Response(
                    status=401,
                    body=_SAME_SITE_RELOAD.replace(b"PATH", _reload_target(request)),
                    content_type="text/html",
                )
            raise web.HTTPUnauthorized(text=_NOT_SIGNED_IN)
        return await handler(request)

    return guard


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def _asset_handler(name: str, content_type: str) -> Handler:
    body = resources.files("rollkeeper.web").joinpath("static", name).read_bytes()

    async def serve_asset(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers={"Content-Type": content_type})

    return serve_asset


class _Handlers:
    """The dynamic routes, on one :class:`PageContext`."""

    def __init__(self, context: PageContext) -> None:
        self._context = context

    async def login(self, request: web.Request) -> web.StreamResponse:
        """``/login?token=...``: a right token sets the session cookie and redirects to ``/``
        (a URL without the token, so it stays out of the history); a wrong one is 401."""
        policy = self._context.policy
        response = web.Response(status=303, headers={"Location": "/"})
        if not policy.token_required:
            return response
        if not policy.token_matches(request.query.get("token", "")):
            raise web.HTTPUnauthorized(text=_NOT_SIGNED_IN)
        response.set_cookie(
            policy.cookie_name,
            policy.session_value(),
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="Strict",
        )
        return response

    async def status(self, request: web.Request) -> web.StreamResponse:
        """The ``status --json`` document."""
        return web.json_response(await self._context.feed.current())

    async def page(self, request: web.Request) -> web.StreamResponse:
        """Photos, months and failing files (docs/web.md)."""
        return web.json_response(await asyncio.to_thread(self._context.page_document))

    async def events(self, request: web.Request) -> web.StreamResponse:
        """The status document as server-sent events: each new version as ``event: status``,
        a comment line after a quiet while."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            async with contextlib.aclosing(self._context.feed.updates()) as updates:
                async for document in updates:
                    if document is None:
                        await response.write(b": still here\n\n")
                        continue
                    data = json.dumps(document, separators=(",", ":")).encode()
                    await response.write(b"event: status\ndata: " + data + b"\n\n")
        return response

    async def thumbnail(self, request: web.Request) -> web.StreamResponse:
        """The thumbnail of an archived photo, by archive id; 404 for an id the archive does
        not hold (or that is not a photo), 415 when no thumbnail can be made of the file."""
        archive_id = request.match_info["archive_id"]
        if not ARCHIVE_ID.match(archive_id):
            raise web.HTTPNotFound(text="404 Not Found\n")
        entry = await asyncio.to_thread(self._context.find_entry, archive_id)
        if entry is None or media_kind(Path(entry.relative_path).name) != MediaKind.PHOTO:
            raise web.HTTPNotFound(text="404 Not Found: no such photo in the archive\n")
        source = entry_location(self._context.archive_root, entry.relative_path)
        thumbnail = await self._context.thumbnails.thumbnail(archive_id, source)
        if thumbnail is None:
            raise web.HTTPUnsupportedMediaType(text="415: no thumbnail can be made of this file\n")
        return web.Response(body=thumbnail, headers={"Content-Type": "image/jpeg"})
