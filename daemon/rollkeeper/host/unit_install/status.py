"""What ``rollkeeper service status`` reports, and the service manager's own word on the service.

The manager is asked, never assumed: ``systemctl --user is-active`` on Linux, ``launchctl
print`` on macOS. A manager that cannot be asked (not installed, timed out) gives an
``unknown (...)`` state rather than an error, because status must always answer.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from rollkeeper.host.unit_install.locations import LAUNCHD_LABEL, UNIT_NAME, Platform
from rollkeeper.host.unit_install.manager_commands import Runner, run_command


@dataclass(frozen=True)
class ServiceStatus:
    """What ``service status`` reports; ``as_dict`` is the ``--json`` shape."""

    platform: Platform
    unit_path: Path
    installed: bool
    up_to_date: bool | None
    manager_state: str
    running_pid: int | None
    lock_path: Path
    problems: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """The ``--json`` form: plain types only."""
        return {
            "platform": self.platform,
            "unit_path": str(self.unit_path),
            "installed": self.installed,
            "up_to_date": self.up_to_date,
            "manager_state": self.manager_state,
            "running": self.running_pid is not None,
            "running_pid": self.running_pid,
            "lock_path": str(self.lock_path),
            "problems": list(self.problems),
        }


def manager_state(platform: Platform, uid: int, runner: Runner = run_command) -> str:
    """The service manager's word on the service: active, inactive, failed, ... or unknown."""
    if platform == "linux":
        argv: list[str] = ["systemctl", "--user", "is-active", UNIT_NAME]
    else:
        argv = ["launchctl", "print", f"gui/{uid}/{LAUNCHD_LABEL}"]
    try:
        completed = runner(argv)
    except (FileNotFoundError, subprocess.TimeoutExpired) as error:
        return f"unknown ({argv[0]}: {type(error).__name__})"
    if platform == "linux":
        state = completed.stdout.strip()
        if state:
            return state
        return "unknown (" + (completed.stderr.strip() or f"exit {completed.returncode}") + ")"
    return "loaded" if completed.returncode == 0 else "not loaded"
