"""What the event loop says about errors nobody awaited, in the service's own words.

pymobiledevice3 fails every request still in flight on a connection that terminates (the phone
was unplugged, or a device backup was cut short). A request whose caller had already moved on
leaves a future whose exception nobody retrieves, and asyncio's default handler then logs
"Future exception was never retrieved" with a traceback at ERROR level: in the journal it reads
like a crash, though the run that owned the request has already reported the unplug in its own
words. Those are logged here as one debug event; every other unhandled loop error still goes
to asyncio's default handler, loudly.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from pymobiledevice3.exceptions import ConnectionTerminatedError

log = structlog.get_logger("rollkeeper.loop")


def handle_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler: orphaned requests of a lost phone connection are a debug
    event (``orphaned_request_after_disconnect``); anything else is asyncio's default report."""
    error = context.get("exception")
    if isinstance(error, ConnectionTerminatedError) and "future" in context:
        log.debug("orphaned_request_after_disconnect", detail=str(context.get("message", "")))
        return
    loop.default_exception_handler(context)


def install_loop_error_handler(loop: asyncio.AbstractEventLoop) -> None:
    """Use :func:`handle_loop_error` on ``loop`` (the service's, and each command's)."""
    loop.set_exception_handler(handle_loop_error)
