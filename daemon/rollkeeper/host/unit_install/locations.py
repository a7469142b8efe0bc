"""What the service manager runs and where its files go, for each platform.

A service manager does not run in your shell: no ``PATH``, no working folder, no ``~``. So the
command is an absolute path to this very rollkeeper, the unit or agent goes where the user's
own manager reads it, and the few variables that move rollkeeper's default folders are carried
into the unit explicitly.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal

Platform = Literal["linux", "macos"]
PLATFORMS: tuple[Platform, ...] = ("linux", "macos")

UNIT_NAME = "rollkeeper.service"
LAUNCHD_LABEL = "org.rollkeeper.agent"

#: Variables that change where rollkeeper looks for its defaults. A user manager does not read
#: your shell profile, so values set there are written into the unit/agent explicitly.
CARRIED_VARIABLES = ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")


def host_platform() -> Platform:
    """The platform this process runs on, in the command's spelling."""
    return "macos" if sys.platform == "darwin" else "linux"


# -- what to run --------------------------------------------------------------------------------


def rollkeeper_command(
    argv0: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str]:
    """The absolute command that starts this very rollkeeper.

    The script that is running now (``sys.argv[0]`` when it is called ``rollkeeper``), else
    ``rollkeeper`` on ``PATH``, else ``python -m rollkeeper`` with this interpreter. Symbolic links
    are kept, not resolved: pipx and similar tools repoint them on upgrade.
    """
    first = sys.argv[0] if argv0 is None else argv0
    if Path(first).name == "rollkeeper":
        found = first if os.sep in first else which(first)
        if found:
            return [os.path.abspath(found)]
    found = which("rollkeeper")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "rollkeeper"]


# -- where things go ----------------------------------------------------------------------------


def home_dir(environ: Mapping[str, str]) -> Path:
    """``$HOME`` from ``environ``, else the account's home folder."""
    home = environ.get("HOME")
    return Path(home) if home else Path.home()


def unit_file_path(platform: Platform, environ: Mapping[str, str]) -> Path:
    """Where the rendered unit or agent goes (a place the user's service manager reads)."""
    home = home_dir(environ)
    if platform == "macos":
        return home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
    config_home = environ.get("XDG_CONFIG_HOME", "")
    base = Path(config_home) if os.path.isabs(config_home) else home / ".config"
    return base / "systemd" / "user" / UNIT_NAME


def macos_log_dir(environ: Mapping[str, str]) -> Path:
    """The folder the launchd agent writes its standard output and error to."""
    return home_dir(environ) / "Library" / "Logs" / "rollkeeper"


def carried_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The :data:`CARRIED_VARIABLES` that are set (to an absolute path) when installing."""
    return {
        name: environ[name]
        for name in CARRIED_VARIABLES
        if environ.get(name) and os.path.isabs(environ[name])
    }


def writable_roots(paths: Iterable[Path]) -> list[Path]:
    """The folders to make writable, without duplicates and without folders inside others."""
    unique = sorted({Path(os.path.normpath(path)) for path in paths}, key=lambda p: len(p.parts))
    roots: list[Path] = []
    for path in unique:
        if not any(path == root or root in path.parents for root in roots):
            roots.append(path)
    return sorted(roots)


# -- removable disks ----------------------------------------------------------------------------

#: Where desktops and people mount removable disks, most specific first. ``{user}`` is the
#: user the service runs as: udisks2 mounts under /media/USER (Debian, Ubuntu) or
#: /run/media/USER (Fedora, Arch).
MOUNT_ROOTS = ("/run/media/{user}", "/media/{user}", "/media", "/mnt")


def mount_root(path: Path, user: str) -> Path | None:
    """The removable-disk mount root ``path`` lies under (``/media/ana`` for
    ``/media/ana/Photos/archive``), or None when it is elsewhere."""
    normal = Path(os.path.normpath(path))
    for pattern in MOUNT_ROOTS:
        if "{user}" in pattern and not user:
            continue
        root = Path(pattern.format(user=user))
        if root in normal.parents:
            return root
    return None


def writable_for_service(path: Path, user: str) -> Path:
    """What the sandbox must make writable for the service to write ``path``: the path itself,
    or, on a removable disk, the whole mount root. A disk plugged in after the service started
    is mounted under the mount root; only a writable mount root lets the service write to it
    (a ``ReadWritePaths=`` of a path missing at start is left out of the sandbox)."""
    root = mount_root(path, user)
    return root if root is not None else path


def offsite_writable_paths(engine: str, destination: str, environ: Mapping[str, str]) -> list[Path]:
    """What an offsite engine writes besides the archive: restic's cache, rclone's config (it
    refreshes tokens there) and cache, and a repository or remote that is a local folder."""
    if not engine:
        return []
    home = home_dir(environ)
    cache_home = environ.get("XDG_CACHE_HOME", "")
    cache = Path(cache_home) if os.path.isabs(cache_home) else home / ".cache"
    config_home = environ.get("XDG_CONFIG_HOME", "")
    config = Path(config_home) if os.path.isabs(config_home) else home / ".config"
    paths = [cache / engine]
    if engine == "rclone":
        paths.append(config / "rclone")
    local = destination.removeprefix("local:") if engine == "restic" else destination
    if os.path.isabs(local):
        paths.append(Path(local))
    return paths
