"""The config a command runs with, and the one way a broken config is told.

Every command finds its config the same way (``--config``, else ``$ROLLKEEPER_CONFIG``, else
the platform's default path, else defaults) and says a broken one the same way: one line
naming the problem, then every problem with its file and line. :func:`load_command_config` is
that; :func:`load_config_leniently` is the same loading for the commands that must still show
the state when the config is broken (``status``, ``history``).
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from rollkeeper.config.errors import ConfigError
from rollkeeper.config.paths import default_state_dir, expand_path, resolve_config_path

if TYPE_CHECKING:
    from rollkeeper.config import Config

#: The first line every command prints for a config it cannot use.
CONFIG_UNUSABLE = "rollkeeper: the config cannot be used:"
#: The state database's name in the platform's state folder (the schema's default path).
DEFAULT_STATE_NAME = "state.sqlite3"


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A command's config as far as it could be loaded, and where the state database is."""

    #: The config file (None: no file, running on defaults).
    path: Path | None
    #: The config, or None when it is broken.
    config: Config | None
    #: Why it is broken (None when it loaded).
    error: ConfigError | None
    #: The config's state database; with a broken config, the one its file names as written,
    #: else the platform default, so the state can still be shown.
    state_path: Path

    @property
    def problems(self) -> tuple[str, ...]:
        """Every problem of a broken config, each with its file and line (empty when usable)."""
        if self.error is None:
            return ()
        return tuple(str(problem) for problem in self.error.problems)


def load_config_leniently(
    config_argument: str | None,
    environ: Mapping[str, str] | None = None,
    *,
    quick: bool = False,
) -> LoadedConfig:
    """Load the config, keeping its problems instead of failing (``status``, ``history``).

    A broken config must not hide the state: the state path is then read from the file's
    ``[state] path`` as written, else the platform default. An unset ``$VARIABLE`` in the
    config's own path still raises ``UnsetVariableError`` (the command line turns it into a
    usage error).

    ``quick``: for commands that only read settings (``status``, ``devices``), a config that
    passed validation before and has not changed comes from the validated-config cache
    (:mod:`rollkeeper.config.cache`) as a :class:`~rollkeeper.config.cache.ConfigView`,
    without importing pydantic. Every full validation that succeeds refreshes the cache.
    """
    from rollkeeper.config import cache

    environment = os.environ if environ is None else environ
    config_path = resolve_config_path(config_argument, environment)
    if quick:
        view = cache.recall(config_path, environment)
        if view is not None:
            # The view reads like a Config for the settings these commands read.
            return LoadedConfig(
                path=config_path,
                config=cast("Config", view),
                error=None,
                state_path=Path(view.state.path),
            )
    from rollkeeper.config.loader import load_config

    try:
        config = load_config(config_path, environment)
    except ConfigError as error:
        return LoadedConfig(
            path=config_path,
            config=None,
            error=error,
            state_path=_state_path_as_written(config_path, environment),
        )
    cache.remember(config_path, environment, config)
    return LoadedConfig(
        path=config_path, config=config, error=None, state_path=Path(config.state.path)
    )


def load_command_config(
    config_argument: str | None,
    environ: Mapping[str, str] | None = None,
    *,
    err: TextIO | None = None,
    quick: bool = False,
) -> Config | None:
    """The config a command runs with, or None after telling the user why it cannot be used
    (see :func:`config_or_say_why`); the caller returns its own exit status. ``quick``: see
    :func:`load_config_leniently`."""
    return config_or_say_why(load_config_leniently(config_argument, environ, quick=quick), err=err)


def config_or_say_why(loaded: LoadedConfig, *, err: TextIO | None = None) -> Config | None:
    """The loaded config, or None after printing :data:`CONFIG_UNUSABLE` and every problem
    (``file:line: key: message``) to ``err`` (standard error)."""
    if loaded.config is None:
        stream = sys.stderr if err is None else err
        print(f"{CONFIG_UNUSABLE}\n{loaded.error}", file=stream)
        return None
    return loaded.config


def command_logging(config: Config, stream: TextIO | None = None) -> None:
    """Logging for a command whose report is what a person reads: warnings and errors only
    (debug when the config asks for it), on standard error, so standard output stays clean
    for ``--json``."""
    from rollkeeper.host.logs import configure_logging

    level = "debug" if config.logging.level == "debug" else "warning"
    configure_logging(level, config.logging.format, stream=sys.stderr if stream is None else stream)


def _state_path_as_written(config_path: Path | None, environ: Mapping[str, str]) -> Path:
    if config_path is not None:
        try:
            document = tomllib.loads(config_path.read_text(encoding="utf-8"))
            written = document["state"]["path"]
            if isinstance(written, str) and written:
                expanded = expand_path(written, environ)
                if os.path.isabs(expanded):
                    return Path(expanded)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return default_state_dir(environ) / DEFAULT_STATE_NAME
