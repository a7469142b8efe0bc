"""Where rollkeeper keeps its config and state on each platform, and how paths are expanded.

The service runs under systemd or launchd, whose working folder is not the user's, so every
path the user writes is expanded (``~`` and ``$VARS``) and must then be absolute.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

#: The variable that names the config file when ``--config`` is not given.
CONFIG_PATH_VARIABLE = "ROLLKEEPER_CONFIG"

APP_NAME = "rollkeeper"

_VARIABLE_PATTERN = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _home(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME")
    return Path(home) if home else Path.home()


def _is_macos(platform: str | None) -> bool:
    return (platform or sys.platform) == "darwin"


def default_config_path(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> Path:
    """The config file used when neither ``--config`` nor ``$ROLLKEEPER_CONFIG`` is given.

    Linux (and other Unixes): ``$XDG_CONFIG_HOME/rollkeeper/config.toml``, where an unset or
    relative ``XDG_CONFIG_HOME`` means ``~/.config`` (the XDG spec says relative values are
    to be ignored). macOS: ``~/Library/Application Support/rollkeeper/config.toml``.
    """
    env = _environ(environ)
    if _is_macos(platform):
        return _home(env) / "Library" / "Application Support" / APP_NAME / "config.toml"
    return _xdg_dir(env, "XDG_CONFIG_HOME", ".config") / APP_NAME / "config.toml"


def default_state_dir(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> Path:
    """The folder for the SQLite state and the pairing records when the config names none.

    Linux: ``$XDG_STATE_HOME/rollkeeper`` (``~/.local/state/rollkeeper`` when unset or
    relative). macOS: ``~/Library/Application Support/rollkeeper``.
    """
    env = _environ(environ)
    if _is_macos(platform):
        return _home(env) / "Library" / "Application Support" / APP_NAME
    return _xdg_dir(env, "XDG_STATE_HOME", ".local/state") / APP_NAME


def _xdg_dir(environ: Mapping[str, str], variable: str, fallback: str) -> Path:
    value = environ.get(variable, "")
    # The XDG Base Directory spec: relative values are invalid and must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return _home(environ) / fallback


def resolve_config_path(cli_value: str | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to load: ``--config``, else ``$ROLLKEEPER_CONFIG``, else the default path
    if that file exists, else ``None`` (run on defaults).

    An explicitly named file is returned even when it does not exist, so that loading it
    reports "no such file" instead of silently falling back to defaults. ``~`` and ``$VARS``
    in the name are expanded; an unset variable raises :class:`UnsetVariableError` (a
    ``ValueError``): callers turn it into a one-line message.
    """
    if cli_value:
        return Path(expand_path(cli_value, environ))
    from_environment = environ.get(CONFIG_PATH_VARIABLE, "")
    if from_environment:
        return Path(expand_path(from_environment, environ))
    default = default_config_path(environ)
    return default if default.is_file() else None


class UnsetVariableError(ValueError):
    """A ``$VAR`` in a path names a variable that is not set."""

    def __init__(self, name: str) -> None:
        super().__init__(f"${name} is not set")
        self.name = name


def expand_path(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Expand a leading ``~`` and every ``$VAR`` / ``${VAR}`` using ``environ``.

    Unlike :func:`os.path.expandvars`, an unset variable is an error: leaving ``$HOME`` in a
    path literally would create a folder called ``$HOME`` in the service's working folder.
    """
    env = _environ(environ)

    def substitute(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        if name not in env:
            raise UnsetVariableError(name)
        return env[name]

    return expand_home(_VARIABLE_PATTERN.sub(substitute, value), env)


def expand_home(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace a leading ``~`` (alone or followed by ``/``) with the home folder."""
    if value == "~" or value.startswith("~/"):
        return str(_home(_environ(environ))) + value[1:]
    return value
