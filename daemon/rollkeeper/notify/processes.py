"""Stopping a child process together with everything it started.

Hooks and the platform notifier are started in a new session (``start_new_session=True``), so
a child's pid is also its process group id: signalling the group reaches the children a shell
hook left behind, which signalling the pid alone would miss.
"""

from __future__ import annotations

import asyncio
import contextlib
import os


def kill_group(process: asyncio.subprocess.Process, signal_number: int) -> None:
    """Send ``signal_number`` to the process group led by ``process``; gone already is fine."""
    # The child runs in its own session, so its pid is its process group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal_number)
