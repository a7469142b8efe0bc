"""Where a simulator listens: ``HOST:PORT`` as people write it, and short folders for sockets.

UNIX socket paths are limited to about 107 bytes, so tests and ``rollkeeper simulate`` put
their sockets in a short fresh folder rather than in a deep temporary path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def parse_tcp_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:PORT"`` -> ``("127.0.0.1", PORT)``.

    :raises ValueError: not HOST:PORT with a port in 0..65535.
    """
    host, separator, port_text = text.rpartition(":")
    if not separator or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:27015, got {text!r}")
    return host, int(port_text)


def short_socket_folder() -> Path:
    """A fresh 0700 folder under the system temp dir for UNIX sockets.

    UNIX socket paths are limited to ~107 bytes, which pytest's tmp_path can exceed.
    """
    return Path(tempfile.mkdtemp(prefix="rk-sim-", dir=os.environ.get("TMPDIR", "/tmp")))
