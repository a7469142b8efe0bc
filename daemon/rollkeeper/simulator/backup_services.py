"""The small services a backup client opens beside mobilebackup2, answered just enough.

Both pymobiledevice3's ``Mobilebackup2Service.backup`` and libimobiledevice's
``idevicebackup2`` open the notification proxy (to post the sync notifications and observe
"cancel" requests), installation_proxy (to list user apps for Info.plist) and, for app icons,
springboardservices. The simulated phone has no apps: Browse answers an empty list. Each is a
property-list service: 4-byte big-endian length + XML plist, one request at a time.
"""

from __future__ import annotations

import asyncio
import plistlib
import struct
from typing import Any

import structlog

from rollkeeper.simulator.runtime import EventLog

log = structlog.get_logger(__name__)

NOTIFICATION_PROXY = "com.apple.mobile.notification_proxy"
INSTALLATION_PROXY = "com.apple.mobile.installation_proxy"
SPRINGBOARD_SERVICES = "com.apple.springboardservices"
HELPER_SERVICES = frozenset({NOTIFICATION_PROXY, INSTALLATION_PROXY, SPRINGBOARD_SERVICES})
_LENGTH = struct.Struct(">I")
_MAX_REQUEST = 1024 * 1024


async def serve_helper_service(
    service: str,
    udid: str,
    events: EventLog,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """Answer one connection to a helper service until the client hangs up."""
    try:
        while True:
            request = await _read(reader)
            if request is None:
                return
            replies, done = _answer(service, udid, events, request)
            for reply in replies:
                body = plistlib.dumps(reply)
                writer.write(_LENGTH.pack(len(body)) + body)
            await writer.drain()
            if done:
                return
    except (ConnectionError, asyncio.IncompleteReadError, plistlib.InvalidFileException):
        return
    finally:
        writer.close()


async def _read(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    try:
        (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    except asyncio.IncompleteReadError:
        return None
    if length > _MAX_REQUEST:
        return None
    request = plistlib.loads(await reader.readexactly(length))
    return request if isinstance(request, dict) else {}


def _answer(
    service: str, udid: str, events: EventLog, request: dict[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    """The replies to one request, and whether the connection ends after them."""
    command = str(request.get("Command", ""))
    if service == NOTIFICATION_PROXY:
        if command == "PostNotification":
            events.record("notification_posted", udid, name=str(request.get("Name", "")))
        if command == "Shutdown":
            return [{"Command": "ProxyDeath"}], True
        # ObserveNotification and PostNotification have no reply.
        return [], False
    if service == INSTALLATION_PROXY:
        if command == "Browse":
            return [{"Status": "Complete", "CurrentList": [], "CurrentAmount": 0}], False
        return [{"Error": "UnknownCommand"}], False
    # springboardservices: no apps, so no icons; answer the icon request with empty data.
    if str(request.get("command", "")) == "getIconPNGData":
        return [{"pngData": b""}], False
    return [{"Error": "UnknownCommand"}], False
