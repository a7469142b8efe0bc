"""Where usbmuxd listens, whether it answers, and what to tell a user who has none running.

The address follows pymobiledevice3 (``host:port`` is TCP, anything else a UNIX socket path;
libimobiledevice's ``UNIX:/path`` is accepted too); ``None`` means ``$USBMUXD_SOCKET_ADDRESS``,
else ``/var/run/usbmuxd``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

#: Where usbmuxd listens when nothing else is said (the same default as pymobiledevice3's).
DEFAULT_USBMUXD_SOCKET = "/var/run/usbmuxd"
USBMUXD_ADDRESS_VARIABLE = "USBMUXD_SOCKET_ADDRESS"


def usbmuxd_reachable(address: str | None, timeout: float) -> bool:
    """True when something accepts a connection at usbmuxd's address within ``timeout`` seconds.

    ``address`` follows pymobiledevice3: ``host:port`` is TCP, anything else a UNIX socket
    path; libimobiledevice's ``UNIX:/path`` spelling is accepted too. ``None`` means
    ``$USBMUXD_SOCKET_ADDRESS``, else ``/var/run/usbmuxd``.
    """
    family, target = parse_usbmuxd_address(resolve_usbmuxd_address(address))
    connection = socket.socket(family, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        connection.connect(target)
    except OSError:
        return False
    finally:
        connection.close()
    return True


def resolve_usbmuxd_address(address: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The address actually used: the given one, else the environment's, else the default."""
    if address:
        return address
    env = os.environ if environ is None else environ
    return env.get(USBMUXD_ADDRESS_VARIABLE) or DEFAULT_USBMUXD_SOCKET


def parse_usbmuxd_address(address: str) -> tuple[socket.AddressFamily, str | tuple[str, int]]:
    """``(family, target)`` for ``socket.connect``; see :func:`usbmuxd_reachable`."""
    if address.startswith("UNIX:"):
        return socket.AF_UNIX, address[len("UNIX:") :]
    if ":" in address:
        host, _, port = address.rpartition(":")
        return socket.AF_INET, (host.strip("[]"), int(port))
    return socket.AF_UNIX, address


def usbmuxd_fix_text(address: str) -> tuple[str, str]:
    """The notification's (title, body): what is wrong and the exact commands that fix it."""
    title = "iPhone plugged in, but usbmuxd is not running"
    body = (
        f"rollkeeper cannot reach usbmuxd at {address}, so it cannot see the phone. "
        "Install and start it: Debian/Ubuntu `sudo apt install usbmuxd`, "
        "Fedora `sudo dnf install usbmuxd`, Arch `sudo pacman -S usbmuxd`; "
        "then unplug and plug the phone in again (its udev rule starts usbmuxd), "
        "or run `sudo systemctl start usbmuxd`. If usbmuxd listens elsewhere, set "
        "[device] usbmux_address in the config."
    )
    return title, body
