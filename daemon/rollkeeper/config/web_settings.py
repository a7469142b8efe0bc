"""The ``[web]`` section: the read-only status page that ``rollkeeper run`` can serve.

The page is off by default. On a loopback address it may run without a token (the browser on
the same machine); on any other address it needs one, because anyone on the network could
otherwise see the photos: a config that binds off loopback without a token does not load, so
the service refuses to start with a ``FILE:LINE`` error rather than serve the photos openly.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo

from rollkeeper.config.field_types import Section, StrictFlag, StrictText

#: Characters a token may use: they travel in a URL (``/login?token=...``) without escaping.
_TOKEN_CHARACTERS = re.compile(r"^[A-Za-z0-9._~-]+$")

#: The shortest token accepted: ``rollkeeper web token`` makes 32 characters (192 bits).
MINIMUM_TOKEN_LENGTH = 16

#: Host names that mean this machine only (besides the loopback IP literals).
_LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where the page listens: a host (an IP literal or ``localhost``) and a port."""

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        """Whether only this machine can connect (127.0.0.0/8, ::1, ``localhost``)."""
        if self.host in _LOOPBACK_NAMES:
            return True
        return ipaddress.ip_address(self.host).is_loopback

    @property
    def url_host(self) -> str:
        """The host as written in a URL (an IPv6 literal in brackets)."""
        return f"[{self.host}]" if ":" in self.host else self.host


def parse_listen_address(text: str) -> ListenAddress:
    """``HOST:PORT`` (``127.0.0.1:8765``, ``[::1]:8765``, ``0.0.0.0:8765``) as an address;
    ValueError saying what is wrong otherwise. Port 0 picks a free port at start."""
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise ValueError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:8765)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, as [::1]:8765")
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    if host not in _LOOPBACK_NAMES:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"{text!r}: the host must be an IP address (127.0.0.1, 0.0.0.0, 192.168.1.20, "
                "[::1]) or localhost"
            ) from None
    return ListenAddress(host, int(port_text))


def _validate_token(value: str) -> str:
    if not value:
        return value
    if len(value) < MINIMUM_TOKEN_LENGTH or not _TOKEN_CHARACTERS.match(value):
        raise ValueError(
            f"must be at least {MINIMUM_TOKEN_LENGTH} characters of A-Z a-z 0-9 . _ ~ - "
            "(`rollkeeper web token` prints a new one)"
        )
    return value


def _validate_listen(value: str, info: ValidationInfo) -> str:
    address = parse_listen_address(value)
    if "token" not in info.data:
        return value  # the token itself is wrong: that error says enough
    enabled = bool(info.data.get("enabled", False))
    if enabled and not address.loopback and not info.data["token"]:
        # Checked here, on the key the user just wrote, so the error names its line.
        raise ValueError(
            f"{value!r} is not a loopback address: anyone on the network could see your "
            "photos, so [web] token must be set to serve the page there "
            "(`rollkeeper web token` prints a new one)"
        )
    return value


class WebSettings(Section):
    section_help = (
        "The read-only status page of `rollkeeper run` (docs/web.md): whether each phone is "
        "backed up, the transfer under way, the newest photos. `rollkeeper web url` prints "
        "its address."
    )

    enabled: StrictFlag = Field(
        default=False,
        description="Serve the status page while the service runs.",
    )
    token: Annotated[StrictText, AfterValidator(_validate_token)] = Field(
        default="",
        description=(
            "A secret that the page asks for (`rollkeeper web url` prints a link that carries "
            "it). Required when listen is not a loopback address; when set, it is asked for "
            'on loopback too. `rollkeeper web token` prints a new one ("" = none).'
        ),
    )
    listen: Annotated[StrictText, AfterValidator(_validate_listen)] = Field(
        default="127.0.0.1:8765",
        description=(
            "HOST:PORT to serve the page on. 127.0.0.1 is this computer only; 0.0.0.0 (every "
            "network) or a LAN address lets other devices at home open it, and needs a token."
        ),
    )

    @property
    def address(self) -> ListenAddress:
        """The parsed ``listen`` address."""
        return parse_listen_address(self.listen)
