"""Running the service manager's commands: ``systemctl``, ``launchctl``, ``systemd-run``.

Everything that talks to the service manager takes a :data:`Runner`, so tests answer its
commands with a recorder (a real systemctl cannot run in a test) and the real one is
:func:`run_command`, whose output is kept for the messages shown when a command fails.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run a service-manager command, capturing its output (shown only when it fails)."""
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)
