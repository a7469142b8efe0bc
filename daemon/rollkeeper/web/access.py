"""Who may see the page: the token, the session cookie, the Host check, the response headers.

The rules (docs/web.md):

* A path with a ``.`` or ``..`` segment, written plainly or percent-encoded, is 404 before any
  route sees it: nothing is ever looked up by a path from the URL, and this says so at the door.
* On a loopback bind, the ``Host`` header must name the loopback address the page is bound to
  (``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT``): a web site that re-binds its own DNS
  name to 127.0.0.1 (DNS rebinding) gets 403, not the phone's status.
* With a token configured (required off loopback, see :mod:`rollkeeper.config.web_settings`),
  every request but ``/login`` needs the session cookie that ``/login?token=...`` sets, or an
  ``Authorization: Bearer`` header, else 401. Every comparison is constant-time. The cookie
  holds an HMAC of the token, not the token; changing the token signs everyone out.
* Every response forbids framing and referrers, and nothing is cached (thumbnails included).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import unquote

from rollkeeper.config.web_settings import ListenAddress

#: Headers on every response. The page's own script and style only; no frames; no referrer
#: (the login link's token never leaves in a Referer); no caching of photos or status.
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: How long a login lasts in the browser (the cookie's Max-Age), in seconds: 30 days.
SESSION_SECONDS = 30 * 86400

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_SESSION_LABEL = b"rollkeeper web session 1"


def has_dot_segment(raw_path: str) -> bool:
    """Whether a request path (query excluded) has a ``.`` or ``..`` segment, a backslash or
    a NUL, as written or after percent-decoding (twice, for double encoding)."""
    path = raw_path.split("?", 1)[0]
    for _ in range(3):
        if "\\" in path or "\x00" in path:
            return True
        if any(segment in (".", "..") for segment in path.split("/")):
            return True
        decoded = unquote(path)
        if decoded == path:
            return False
        path = decoded
    return True  # still encoded after three rounds: nothing legitimate looks like that


class AccessPolicy:
    """The checks of one running page: its bound address, port and token."""

    def __init__(self, address: ListenAddress, port: int, token: str) -> None:
        self.address = address
        self.port = port
        self._token = token

    @property
    def token_required(self) -> bool:
        """Whether requests must show the token (always, once one is configured)."""
        return bool(self._token)

    @property
    def cookie_name(self) -> str:
        """The session cookie's name; cookies are not kept apart by port, so it carries it."""
        return f"rollkeeper_session_{self.port}"

    def replace_token(self, token: str) -> bool:
        """Use a new token (from a config reload). An empty one is refused off loopback, where
        the page must never become open; returns whether the token was taken."""
        if not token and not self.address.loopback:
            return False
        self._token = token
        return True

    def session_value(self) -> str:
        """The cookie value that proves a login: an HMAC of the token."""
        return hmac.new(self._token.encode(), _SESSION_LABEL, hashlib.sha256).hexdigest()

    def token_matches(self, candidate: str) -> bool:
        """Whether ``candidate`` is the token (constant-time; False when there is none)."""
        if not self._token:
            return False
        return hmac.compare_digest(candidate.encode(), self._token.encode())

    def authorised(self, cookie: str | None, authorization: str | None) -> bool:
        """Whether a request may see the page: no token configured (loopback only), the
        session cookie, or ``Authorization: Bearer <token>``."""
        if not self._token:
            return True
        if cookie is not None and hmac.compare_digest(
            cookie.encode(), self.session_value().encode()
        ):
            return True
        scheme, _, credentials = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(credentials.strip())

    def host_allowed(self, host: str | None) -> bool:
        """The DNS-rebinding check: on a loopback bind the Host header must name a loopback
        address with this port. Off loopback the token is the guard (a rebound name carries no
        cookie of ours), so any Host passes."""
        if not self.address.loopback:
            return True
        if not host:
            return False
        wanted = {f"{name}:{self.port}" for name in (*_LOOPBACK_HOSTS, self.address.url_host)}
        if self.port == 80:
            wanted.update((*_LOOPBACK_HOSTS, self.address.url_host))
        return host.lower() in wanted
