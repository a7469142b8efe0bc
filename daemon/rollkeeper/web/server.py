"""The status page as one part of the running service, on the service's own asyncio loop.

aiohttp's ``AppRunner`` + ``SockSite`` serve on an existing loop without taking it over: no
signal handlers of their own (the service's SIGTERM/SIGINT/SIGHUP stay the service's), no
thread. The socket is bound here first, so the port (0 = any free one) is known before the
first request and a port already taken is one clear log event, not a dead service: the backups
go on without the page. Stopping ends the live streams first, then closes the listener.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from rollkeeper.config.web_settings import ListenAddress, WebSettings
from rollkeeper.store.records import ArchiveEntry
from rollkeeper.web.access import AccessPolicy
from rollkeeper.web.app import PageContext, build_application
from rollkeeper.web.feed import StatusFeed
from rollkeeper.web.links import page_url
from rollkeeper.web.thumbnails import ThumbnailMaker

log = structlog.get_logger("rollkeeper.web")

#: How long stopping waits for requests in flight (thumbnails) before closing them.
STOP_GRACE_SECONDS = 2.0


def bind_socket(address: ListenAddress) -> socket.socket:
    """A listening TCP socket on ``address`` (``OSError`` when it cannot be had)."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    return socket.create_server((address.host, address.port), family=family, backlog=64)


class WebServer:
    """The read-only status page: :meth:`start` on the service's loop, :meth:`stop` at the end."""

    def __init__(
        self,
        settings: WebSettings,
        *,
        status_document: Callable[[], dict[str, Any]],
        page_document: Callable[[], dict[str, Any]],
        find_entry: Callable[[str], ArchiveEntry | None],
        thumbnails: ThumbnailMaker,
        archive_root: Path,
    ) -> None:
        self._settings = settings
        self._address = settings.address
        self._feed = StatusFeed(status_document)
        self._context = PageContext(
            policy=AccessPolicy(self._address, self._address.port, settings.token),
            feed=self._feed,
            page_document=page_document,
            find_entry=find_entry,
            thumbnails=thumbnails,
            archive_root=archive_root,
        )
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str | None:
        """The page's address once it listens (without the token)."""
        if self.port is None:
            return None
        return page_url(self._address, self.port, "")

    async def start(self) -> bool:
        """Listen; returns False (and logs ``web_unavailable``) when the address cannot be had."""
        try:
            listener = bind_socket(self._address)
        except OSError as error:
            log.error(
                "web_unavailable",
                listen=self._settings.listen,
                error=error.strerror or str(error),
                action="backing up without the status page",
            )
            return False
        self.port = int(listener.getsockname()[1])
        self._context.policy = AccessPolicy(self._address, self.port, self._settings.token)
        runner = web.AppRunner(
            build_application(self._context),
            # The access log would write /login?token=... into the journal: events only.
            access_log=None,
            handle_signals=False,
            shutdown_timeout=STOP_GRACE_SECONDS,
        )
        await runner.setup()
        await web.SockSite(runner, listener).start()
        self._runner = runner
        log.info(
            "web_listening",
            url=self.url,
            port=self.port,
            login_required=self._context.policy.token_required,
        )
        return True

    def apply_settings(self, settings: WebSettings, archive_root: Path) -> None:
        """A reloaded config: a new archive folder and token apply at once; a new address or
        ``enabled`` needs a restart (logged)."""
        self._context.archive_root = archive_root
        if settings.listen != self._settings.listen or settings.enabled != self._settings.enabled:
            log.warning("restart_needed", key="web.listen / web.enabled")
        if settings.token != self._settings.token and not self._context.policy.replace_token(
            settings.token
        ):
            log.warning("web_token_kept", reason="the page listens off loopback: a token stays")
        self._settings = settings

    async def stop(self) -> None:
        """End the live streams, then stop listening (requests in flight get a short grace)."""
        await self._feed.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            log.info("web_stopped")
