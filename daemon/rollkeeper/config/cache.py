"""The validated-config cache: a config checked once is not checked again until it changes.

Validating the config with pydantic costs more than everything else ``status``, ``devices``
and ``config check`` do (the library alone is most of it), and the file rarely changes. So
after a full validation the result is kept as plain JSON in
``$XDG_CACHE_HOME/rollkeeper/config/`` (0600 in a 0700 folder), under a key made of
everything the result depends on:

* the config file's bytes (and its path);
* the environment it was read with: every ``ROLLKEEPER_*`` and ``XDG_*`` variable, ``HOME``,
  ``USER``, ``LOGNAME``, ``USBMUXD_SOCKET_ADDRESS``, and every ``$VARIABLE`` the file names;
* the code that validates it: rollkeeper's version and the size and time of each module of the
  config package (an edited schema is a new key).

The one input the key cannot hold is the file system: whether the archive folder is writable
now. So a cached config is only used after its file-system checks (:mod:`.filesystem`) pass
again; any that fails, any key that differs, and any unreadable cache file sends the caller to
the full validation, which reports the problem with its file and line. A broken config is
never cached. Losing the cache costs one slow start.

:class:`ConfigView` is what a hit gives: the same ``config.section.key`` reading as
:class:`~rollkeeper.config.Config` for commands that only read settings, without pydantic.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rollkeeper
from rollkeeper.config.filesystem import CHECKS

if TYPE_CHECKING:
    from rollkeeper.config.schema import Config

#: Bumped when the cache file's shape changes.
CACHE_FORMAT = 1
#: Variables every config may depend on (besides ``ROLLKEEPER_*``, ``XDG_*`` and the file's own).
_ALWAYS = ("HOME", "USER", "LOGNAME", "USBMUXD_SOCKET_ADDRESS")
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_CONFIG_PACKAGE = Path(__file__).resolve().parent
#: Modules outside the config package whose rules the schema applies.
_RULES = ("domain/layout.py", "archive/crontab.py")


class _Section:
    """One section of a cached config: its keys as attributes (lists as tuples)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            setattr(self, key, tuple(value) if isinstance(value, list) else value)


class ConfigView:
    """A validated config read back from the cache: ``view.archive.path`` and so on, as text,
    numbers and tuples (the JSON of :meth:`Config.model_dump`). Paths are text: callers wrap
    them in ``Path`` as they do with a :class:`~rollkeeper.config.Config`."""

    def __init__(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        self.data = data
        for name, values in data.items():
            setattr(self, name, _Section(values))

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"the cached config has no section {name!r}")


def cache_folder(environ: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/rollkeeper/config`` (default ``~/.cache/rollkeeper/config``)."""
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = environ.get("HOME") or str(Path.home())
        base = os.path.join(home, ".cache")
    return Path(base) / "rollkeeper" / "config"


def _cache_file(config_path: Path | None, environ: Mapping[str, str]) -> Path:
    name = hashlib.sha256(str(config_path or "(defaults)").encode()).hexdigest()[:24]
    return cache_folder(environ) / f"{name}.json"


def _code_stamp() -> list[list[object]]:
    files = sorted(_CONFIG_PACKAGE.glob("*.py"))
    files += [_CONFIG_PACKAGE.parent / relative for relative in _RULES]
    stamp: list[list[object]] = []
    for path in files:
        try:
            info = path.stat()
        except OSError:
            continue
        stamp.append([path.name, info.st_size, info.st_mtime_ns])
    return stamp


def _key(config_path: Path | None, content: bytes | None, environ: Mapping[str, str]) -> str:
    text = (content or b"").decode("utf-8", "replace")
    names = set(_ALWAYS) | set(_VARIABLE.findall(text))
    names |= {name for name in environ if name.startswith(("ROLLKEEPER_", "XDG_"))}
    document = [
        CACHE_FORMAT,
        rollkeeper.__version__,
        _code_stamp(),
        str(config_path),
        hashlib.sha256(content).hexdigest() if content is not None else None,
        sorted((name, environ[name]) for name in names if name in environ),
    ]
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()


def _read(config_path: Path | None) -> bytes | None:
    if config_path is None:
        return None
    return Path(config_path).read_bytes()


def filesystem_checks(config: Config) -> list[list[str]]:
    """The file-system checks a cached ``config`` must pass again when used: (kind, path)."""
    checks = [
        ["archive", str(config.archive.path)],
        ["file", str(config.state.path)],
        ["folder", str(config.device.pairing_dir)],
    ]
    for secret in (config.offsite.password_file, config.offsite.environment_file):
        if secret:
            checks.append(["secret", secret])
    return checks


def remember(config_path: Path | None, environ: Mapping[str, str], config: Config) -> None:
    """Keep a config that just passed full validation. Best effort: a cache that cannot be
    written (a read-only home in the service's sandbox) only means slower starts."""
    try:
        content = _read(config_path)
        document = {
            "format": CACHE_FORMAT,
            "key": _key(config_path, content, environ),
            "config": config.model_dump(mode="json"),
            "checks": filesystem_checks(config),
        }
        target = _cache_file(config_path, environ)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
        os.replace(temporary, target)
    except (OSError, ValueError, TypeError):
        return


def recall(config_path: Path | None, environ: Mapping[str, str]) -> ConfigView | None:
    """The cached config for this file and environment, if it is still the same and its
    file-system checks pass now; None sends the caller to the full validation."""
    try:
        content = _read(config_path)
        document = json.loads(_cache_file(config_path, environ).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("format") != CACHE_FORMAT:
        return None
    if document.get("key") != _key(config_path, content, environ):
        return None
    for kind, path in document.get("checks", []):
        check = CHECKS.get(kind)
        if check is None or check(Path(path)) is not None:
            return None
    data = document.get("config")
    return ConfigView(data) if isinstance(data, dict) else None
