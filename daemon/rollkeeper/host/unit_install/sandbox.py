"""The systemd unit's optional namespace sandbox, and the probe that says if this machine has it.

``ProtectSystem=strict`` and friends need user namespaces for a *user* unit; kernel settings,
AppArmor profiles and the systemd version decide whether those exist, and a unit that cannot
set its sandbox up fails with 226/NAMESPACE before the program even runs. So install tries the
sandbox in a throw-away transient unit first, and leaves it out (with a warning) where it fails.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Literal

from rollkeeper.host.unit_install.manager_commands import Runner, run_command

#: The namespace-based sandbox (see the unit template for why it is optional).
NAMESPACE_SANDBOX_OPTIONS = (
    "PrivateUsers=yes",
    "PrivateTmp=yes",
    "ProtectSystem=strict",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectHostname=yes",
)

SandboxChoice = Literal["auto", "full", "basic"]


def namespace_sandbox_works(runner: Runner = run_command) -> tuple[bool, str]:
    """Try the namespace sandbox in a throw-away transient user unit: does it start?

    The only reliable test: kernel settings, AppArmor profiles and the systemd version all
    decide, and a unit that cannot set its sandbox up fails with 226/NAMESPACE before the
    program even runs.
    """
    true_path = shutil.which("true") or "/bin/true"
    argv = [
        "systemd-run",
        "--user",
        "--wait",
        "--quiet",
        "--collect",
        *(f"--property={option}" for option in NAMESPACE_SANDBOX_OPTIONS),
        true_path,
    ]
    try:
        completed = runner(argv)
    except FileNotFoundError:
        return False, "systemd-run not found"
    except subprocess.TimeoutExpired:
        return False, "systemd-run did not finish"
    output = (completed.stderr or completed.stdout or "").strip()
    return completed.returncode == 0, output
