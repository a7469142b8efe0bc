"""Structured logging for rollkeeper: one set-up for the service and every command.

Every log line is an *event* (a snake_case name such as ``file_archived``) with key/value
fields (``udid``, ``run_id``, ``path`` ...). On a terminal the lines are rendered for people;
anywhere else (systemd's journal, launchd's log file, a pipe) they are JSON lines, one object a
line, so that tests, ``jq`` and log shippers read them as data.

A backup tool holds pairing records whose private keys let anyone who copies them talk to the
phone, so a processor redacts every field whose name looks like a secret (``*key*``,
``*certificate*``, ``pair_record``, ``HostPrivateKey`` ...) and any PEM block inside a value,
before any renderer sees it. Standard-library loggers (pymobiledevice3, APScheduler) go through
the same processors and renderer.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

#: What a redacted value is replaced with.
REDACTED = "[redacted]"

#: Level names accepted by :func:`configure_logging` (the config's ``[logging] level``).
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

#: Formats accepted by :func:`configure_logging` (the config's ``[logging] format``).
FORMATS: frozenset[str] = frozenset({"auto", "console", "json"})

# Words that make a field name secret once the name is split into words ("HostPrivateKey" ->
# host, private, key). Whole words, so that "monkey" or "keyboard" would not match while
# "pair_record", "host_key" and "RootCertificate" do.
_SECRET_WORDS: frozenset[str] = frozenset(
    {
        "key",
        "keys",
        "certificate",
        "certificates",
        "cert",
        "private",
        "secret",
        "password",
        "passcode",
        "token",
        "escrow",
        "keybag",
        "pem",
    }
)
# Field names that contain a secret word but name no secret.
_SAFE_FIELDS: frozenset[str] = frozenset({"key_path", "config_key", "event", "level"})
_PAIR_RECORD_PATTERN = re.compile(r"pair_?record", re.IGNORECASE)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)", re.DOTALL)


def is_secret_field(name: str) -> bool:
    """Whether a field called ``name`` probably holds key material and must not be logged."""
    if name in _SAFE_FIELDS:
        return False
    if _PAIR_RECORD_PATTERN.search(name):
        return True
    words = _WORD_SPLIT.split(_CAMEL_BOUNDARY.sub("_", name).lower())
    return any(word in _SECRET_WORDS for word in words)


def _redact_value(value: Any, depth: int = 0) -> Any:
    # Depth-limited: a log field is never a deep structure, and a cycle must not hang logging.
    if depth > 6:
        return value
    if isinstance(value, str):
        return _PEM_BLOCK.sub(REDACTED, value) if "-----BEGIN" in value else value
    if isinstance(value, bytes | bytearray):
        return REDACTED if b"-----BEGIN" in value else value
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and is_secret_field(key)
            else _redact_value(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(item, depth + 1) for item in value)
    return value


def redact_secrets(_logger: WrappedLogger, _method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: replace secret-looking fields and PEM blocks with ``[redacted]``."""
    for name in list(event_dict):
        if is_secret_field(name):
            event_dict[name] = REDACTED
        else:
            event_dict[name] = _redact_value(event_dict[name])
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        redact_secrets,
    ]


def _drop_logger_name_if_ours(
    _logger: WrappedLogger, _method_name: str, event_dict: EventDict
) -> EventDict:
    # structlog's own loggers have no stdlib name; keep "logger" only for library records.
    if event_dict.get("logger") in (None, "", "root"):
        event_dict.pop("logger", None)
    return event_dict


def _wants_console(format: str, stream: TextIO) -> bool:
    if format == "console":
        return True
    if format == "json":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def configure_logging(
    level: str = "info", format: str = "auto", stream: TextIO | None = None
) -> None:
    """Set up structlog and the standard library's logging for this process.

    ``level`` is one of :data:`LEVELS`; ``format`` is ``auto`` (console on a terminal, JSON
    lines otherwise), ``console`` or ``json``. ``stream`` defaults to standard error: journald
    and the launchd agent capture it, and a command's own output on standard output (``status
    --json``) stays clean for scripts. Calling it again replaces the previous set-up (the
    config's ``[logging]`` section can change live).
    """
    level_number = LEVELS.get(level.lower())
    if level_number is None:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    if format not in FORMATS:
        raise ValueError(f"unknown log format {format!r}; use one of {', '.join(sorted(FORMATS))}")
    output = stream if stream is not None else sys.stderr
    console = _wants_console(format, output)

    final_processors: list[Processor]
    if console:
        final_processors = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_logger_name_if_ours,
            structlog.dev.ConsoleRenderer(colors=False),
        ]
    else:
        final_processors = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_logger_name_if_ours,
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(sort_keys=False, default=str),
        ]

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=final_processors,
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(formatter)
    handler.set_name("rollkeeper")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "rollkeeper":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level_number)
    # Libraries chatter at INFO (every usbmux packet, every job run); ours is what users need.
    library_level = logging.DEBUG if level_number <= logging.DEBUG else logging.WARNING
    for library in ("pymobiledevice3", "apscheduler", "asyncio", "watchdog", "urllib3"):
        logging.getLogger(library).setLevel(library_level)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **initial_values: Any) -> Any:
    """A structlog logger; ``name`` is the module (``__name__``), fields bind to every event."""
    logger = structlog.get_logger(name) if name else structlog.get_logger()
    return logger.bind(**initial_values) if initial_values else logger


def bind_context(**values: Any) -> None:
    """Bind fields (``udid``, ``run_id``) to every event logged by this task from now on."""
    structlog.contextvars.bind_contextvars(**values)


def unbind_context(*names: str) -> None:
    """Remove fields bound by :func:`bind_context`."""
    structlog.contextvars.unbind_contextvars(*names)


def scrub(values: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Redact secrets in a mapping the same way log events are (for ``--json`` dumps)."""
    return redact_secrets(None, "", values)
