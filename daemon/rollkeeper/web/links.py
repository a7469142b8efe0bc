"""The page's address as a person types or clicks it (no aiohttp here: ``web url`` stays fast)."""

from __future__ import annotations

import socket

from rollkeeper.config.web_settings import ListenAddress

#: Bind addresses that mean "every interface": no one types these into a browser.
_EVERY_INTERFACE = ("0.0.0.0", "::")


def page_url(address: ListenAddress, port: int, token: str, host: str | None = None) -> str:
    """The page's address; with a token, the ``/login`` link that carries it (the page then
    sets its cookie and sends the browser on to ``/``, so the token leaves the address bar).

    ``host`` names the machine as the other device knows it; by default the bound address,
    or this machine's host name for a bind to every interface.
    """
    shown = host or address.url_host
    if host is None and address.host in _EVERY_INTERFACE:
        shown = socket.gethostname()
    base = f"http://{shown}:{port}"
    return f"{base}/login?token={token}" if token else f"{base}/"
