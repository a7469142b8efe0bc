"""Test-only: rollkeeper's fsync of a finished ``.partial`` file becomes a no-op.

The power-cut campaign must catch exactly this mistake. Put this folder on ``PYTHONPATH`` of a
``rollkeeper run`` subprocess (Python imports ``sitecustomize`` at start-up) and that process
skips every ``os.fsync`` of a file whose name ends in ``.partial``: its bytes are then never
made durable before the file is linked under its final name. Every other fsync (folders, the
state database, which SQLite syncs in C) is untouched. It patches ``os.fsync`` rather than a
rollkeeper function so that it keeps working however the importer's modules are arranged.
Nothing in the product refers to this folder.
"""

from __future__ import annotations

import os
from typing import Any

_real_fsync = os.fsync


def _fsync_except_partials(fd: Any) -> None:
    """``os.fsync``, except for a ``.partial`` file (by its path in /proc/self/fd)."""
    number = fd if isinstance(fd, int) else fd.fileno()
    try:
        target = os.readlink(f"/proc/self/fd/{number}")
    except OSError:
        target = ""
    if target.endswith(".partial"):
        return
    _real_fsync(number)


os.fsync = _fsync_except_partials
