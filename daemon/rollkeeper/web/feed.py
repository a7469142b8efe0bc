"""The live status for the page: the ``status --json`` document, gathered while anyone watches.

One poller gathers the document (in a thread: it reads the config, the lock and the state
database, as ``status`` does) every :data:`POLL_SECONDS` while at least one browser listens, and
hands each new version to every listener; nothing is gathered when nobody looks. The progress
the service writes to the state (at most once a second, and after each file) is what makes the
progress bar move.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

import structlog

log = structlog.get_logger("rollkeeper.web.feed")

Document = dict[str, Any]

#: How often the state is read while someone watches.
POLL_SECONDS = 0.5
#: A comment line goes to each listener after this much quiet, so proxies keep the stream open.
HEARTBEAT_SECONDS = 15.0

_CLOSED: Document = {}


def _comparable(document: Document) -> Document:
    """The document without the moment it was made: a change of that alone is no news."""
    return {key: value for key, value in document.items() if key != "generated_at"}


class StatusFeed:
    """Fans the status document out to listeners; gathers only while there are some."""

    def __init__(
        self,
        gather: Callable[[], Document],
        *,
        poll_seconds: float = POLL_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._gather = gather
        self._poll_seconds = poll_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._listeners: set[asyncio.Queue[Document]] = set()
        self._latest: Document | None = None
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    async def current(self) -> Document:
        """The document as of now (gathered afresh)."""
        return await asyncio.to_thread(self._gather)

    async def updates(self) -> AsyncGenerator[Document | None, None]:
        """Each new version of the document (the latest first), or None as a heartbeat after
        :data:`HEARTBEAT_SECONDS` without news; ends when the feed closes."""
        queue: asyncio.Queue[Document] = asyncio.Queue(maxsize=1)
        self._listeners.add(queue)
        if self._latest is not None:
            queue.put_nowait(self._latest)
        self._ensure_polling()
        try:
            while not self._closed:
                try:
                    async with asyncio.timeout(self._heartbeat_seconds):
                        document = await queue.get()
                except TimeoutError:
                    yield None
                    continue
                if document is _CLOSED:
                    return
                yield document
        finally:
            self._listeners.discard(queue)

    async def close(self) -> None:
        """Stop polling and end every listener's stream (the server is stopping)."""
        self._closed = True
        for queue in list(self._listeners):
            _offer(queue, _CLOSED)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    def _ensure_polling(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="web-status-feed")

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        published_at = 0.0
        try:
            while self._listeners and not self._closed:
                try:
                    document = await asyncio.to_thread(self._gather)
                except Exception:
                    # gather_status never raises for a broken setup; anything else is a bug,
                    # and the page must not go dark over it: log it, try again next time.
                    log.exception("web_status_gather_failed")
                else:
                    # News, or the same again after a while, so the page can say "as of now".
                    stale = loop.time() - published_at >= self._heartbeat_seconds
                    if (
                        stale
                        or self._latest is None
                        or (_comparable(document) != _comparable(self._latest))
                    ):
                        self._latest = document
                        published_at = loop.time()
                        for queue in list(self._listeners):
                            _offer(queue, document)
                await asyncio.sleep(self._poll_seconds)
        finally:
            # Nobody listens: what was gathered goes stale from now on.
            self._latest = None


def _offer(queue: asyncio.Queue[Document], document: Document) -> None:
    """Put the newest document in a listener's one-slot queue, replacing one not yet taken."""
    with contextlib.suppress(asyncio.QueueEmpty):
        queue.get_nowait()
    queue.put_nowait(document)
