"""Health-check pings, healthchecks.io style: the heartbeat that makes silence noticed elsewhere.

``healthcheck_url`` is pinged (HTTP POST) after a successful run and ``<url>/fail`` after a
failed one. The request runs in a worker thread so the event loop never waits on the network,
and network trouble is a warning, never an error for the run. The URL's path is its secret:
only the host is ever logged.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from rollkeeper.host.logs import get_logger
from rollkeeper.notify.notices import EVENT_SUCCESS, RunNotice, clean_text

log = get_logger(__name__)

#: How long a health-check ping may take before it is given up.
PING_TIMEOUT_SECONDS = 10.0


def ping_target(url: str, kind: str) -> str:
    """The URL to ping for an event: the URL itself for a success, ``<url>/fail`` otherwise."""
    return url if kind == EVENT_SUCCESS else url.rstrip("/") + "/fail"


def ping_body(kind: str, report: RunNotice) -> str:
    """The one-line text sent with a ping (shown in the health-check service's log)."""
    body = (
        f"rollkeeper {kind}: udid={report.udid} run_id={report.run_id} "
        f"outcome={report.outcome} copied={report.files_copied} "
        f"failed={report.files_failed} pending={report.files_pending}"
    )
    if report.error:
        body += f" error={clean_text(report.error, 300)}"
    return body


def url_host(url: str) -> str:
    """The host of a URL: what may be logged of it."""
    # The path of a healthchecks.io URL is its secret: log the host only.
    return urlsplit(url).netloc


async def send_ping(kind: str, url: str, body: str, udid: str, run_id: int | None) -> None:
    """POST ``body`` to ``url`` from a worker thread; log the answer or the failure."""
    try:
        status = await asyncio.to_thread(post, url, body)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        log.warning(
            "healthcheck_ping_failed",
            kind=kind,
            host=url_host(url),
            udid=udid,
            run_id=run_id,
            error=str(reason),
        )
        return
    log.info(
        "healthcheck_pinged",
        kind=kind,
        host=url_host(url),
        status=status,
        udid=udid,
        run_id=run_id,
    )


def post(url: str, body: str) -> int:
    """One blocking HTTP POST of ``body``; returns the status code (run it in a thread)."""
    request = urllib.request.Request(
        url,
        data=body.encode("utf-8"),
        method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": "rollkeeper"},
    )
    with urllib.request.urlopen(request, timeout=PING_TIMEOUT_SECONDS) as response:
        status: int = response.status
        return status
