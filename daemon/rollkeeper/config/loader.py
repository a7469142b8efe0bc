"""Loading the config: TOML file + environment overrides -> a validated :class:`Config`.

Every problem is collected (not just the first) and pinned to ``FILE:LINE`` with the
positions scanner, or to the environment variable the bad value came from.
"""

from __future__ import annotations

import datetime
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rollkeeper.config.errors import ConfigError, ConfigProblem
from rollkeeper.config.overrides import (  # importable from here, as before
    ENVIRONMENT_PREFIX,
    ENVIRONMENT_SEPARATOR,
    environment_overrides,
)
from rollkeeper.config.positions import KeyPath, duplicate_key_positions, key_positions, locate
from rollkeeper.config.schema import SECTIONS, Config, environment_defaults
from rollkeeper.config.suggest import closest, did_you_mean

__all__ = [
    "ENVIRONMENT_PREFIX",
    "ENVIRONMENT_SEPARATOR",
    "environment_overrides",
    "load_config",
    "parse_config_bytes",
    "parse_config_text",
]

#: The "file" of problems with values nobody wrote (defaults), when no file is loaded.
DEFAULTS_LABEL = "(defaults)"

_SYNTAX_POSITION = re.compile(
    r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$"
)
_SYNTAX_AT_END = re.compile(r"^(?P<message>.*) \(at end of document\)$")


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Load the config file at ``path`` (``None``: defaults only), apply environment overrides
    from ``environ`` (default ``os.environ``), validate, and return the frozen :class:`Config`.

    Raises :class:`ConfigError` listing every problem, each with file and line.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    if path is None:
        return parse_config_text("", None, env)
    label = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(label, None, None, "", "no such file")]) from None
    except IsADirectoryError:
        raise ConfigError(
            [ConfigProblem(label, None, None, "", "is a folder; name the config file in it")]
        ) from None
    except OSError as error:
        raise ConfigError(
            [ConfigProblem(label, None, None, "", f"cannot read it: {error.strerror}")]
        ) from None
    return parse_config_bytes(data, label, env)


def parse_config_bytes(data: bytes, label: str, environ: Mapping[str, str]) -> Config:
    """Like :func:`load_config` for content already read (the watcher compares bytes first)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(
            [ConfigProblem(label, line, None, "", "is not UTF-8 text (TOML files must be)")]
        ) from None
    return parse_config_text(text, label, environ)


def parse_config_text(text: str, label: str | None, environ: Mapping[str, str]) -> Config:
    """Parse and validate TOML ``text`` (``label`` names it in messages; ``None`` = no file)."""
    file_label = label if label is not None else DEFAULTS_LABEL
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([_syntax_problem(str(error), text, file_label)]) from None
    positions = key_positions(text) if text else {}
    origins: dict[KeyPath, str] = {}
    problems = _apply_environment(raw, environ, origins)
    _fill_environment_defaults(raw, environ)
    try:
        config = Config.model_validate(raw, context={"environ": environ, "check_filesystem": True})
    except ValidationError as error:
        problems.extend(_validation_problems(error, file_label, positions, origins))
    if problems:
        raise ConfigError(_sorted(problems))
    return config


# -- syntax errors ---------------------------------------------------------------------------


def _syntax_problem(message: str, text: str, file_label: str) -> ConfigProblem:
    line: int | None = None
    column: int | None = None
    detail = message
    if match := _SYNTAX_POSITION.match(message):
        detail = match["message"]
        line, column = int(match["line"]), int(match["column"])
    elif match := _SYNTAX_AT_END.match(message):
        detail = match["message"]
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    if detail.startswith(("Cannot overwrite a value", "Cannot declare")):
        # Python 3.11's tomllib places some duplicate keys "at end of document": find the
        # line that repeats the key, which is the one the user has to fix.
        duplicates = duplicate_key_positions(text)
        if duplicates:
            key_path, (line, column) = duplicates[0]
            shown = ".".join(str(part) for part in key_path)
            detail = f"'{shown}' is defined twice (TOML allows each key and table only once)"
    return ConfigProblem(file_label, line, column, "", f"TOML syntax error: {_lower_first(detail)}")


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


# -- environment overrides -------------------------------------------------------------------


def _apply_environment(
    raw: dict[str, Any], environ: Mapping[str, str], origins: dict[KeyPath, str]
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for variable, section, key, value in environment_overrides(environ):
        if not section or not key or ENVIRONMENT_SEPARATOR in key:
            problems.append(
                ConfigProblem(
                    variable,
                    None,
                    None,
                    "",
                    f"not an override: write {ENVIRONMENT_PREFIX}<SECTION>__<KEY>, "
                    f"e.g. {ENVIRONMENT_PREFIX}ARCHIVE__PATH",
                )
            )
            continue
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            continue  # the file's own error about this section is reported
        table[key] = _environment_value(section, key, value)
        origins[(section, key)] = variable
        if section not in SECTIONS:
            origins[(section,)] = variable
    return problems


def _environment_value(section: str, key: str, value: str) -> Any:
    """A variable's value as TOML when it parses as a TOML value (``3``, ``true``,
    ``["photo"]``, ``2024-01-01``), else the text itself. Text settings always get the text,
    so ``ROLLKEEPER_NOTIFICATIONS__ON_SUCCESS=true`` runs the command ``true``."""
    try:
        parsed = tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        return value
    if _is_text_setting(section, key) and not isinstance(parsed, str):
        return value
    return parsed


def _is_text_setting(section: str, key: str) -> bool:
    model = SECTIONS.get(section)
    if model is None or key not in model.model_fields:
        return False
    field = model.model_fields[key]
    default = field.get_default(call_default_factory=True)
    return isinstance(default, str | Path)


def _fill_environment_defaults(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    # Every section is validated with our context (environment, filesystem checks), even one
    # the file leaves out, so its defaults are expanded with `environ` and checked too.
    for section in SECTIONS:
        raw.setdefault(section, {})
    for section, values in environment_defaults(environ).items():
        table = raw.get(section)
        if isinstance(table, dict):
            for key, value in values.items():
                table.setdefault(key, value)


# -- validation errors -----------------------------------------------------------------------


def _key_path_text(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text


def _validation_problems(
    error: ValidationError,
    file_label: str,
    positions: dict[KeyPath, tuple[int, int]],
    origins: dict[KeyPath, str],
) -> list[ConfigProblem]:
    problems = []
    items = error.errors(include_url=False)
    for item in items:
        loc: KeyPath = tuple(item["loc"])
        if item["type"] == "too_short" and any(
            other is not item and tuple(other["loc"])[: len(loc)] == loc for other in items
        ):
            continue  # pydantic also counts the rejected items; the item errors say it all
        message = _message(item, loc)
        key_path = _key_path_text(loc)
        origin = next(
            (origins[loc[:length]] for length in range(len(loc), 0, -1) if loc[:length] in origins),
            None,
        )
        if origin is not None:
            problems.append(ConfigProblem(origin, None, None, key_path, message))
            continue
        setting = loc[:2]
        if setting not in positions:
            message += " (this is the default; set it in the config to choose another)"
            problems.append(ConfigProblem(file_label, None, None, key_path, message))
            continue
        position = locate(positions, loc)
        line, column = position if position is not None else (None, None)
        problems.append(ConfigProblem(file_label, line, column, key_path, message))
    return problems


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime.datetime):
        return "a date-time"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, datetime.time):
        return "a time"
    return type(value).__name__


def _shown(value: Any) -> str:
    """A value as the user wrote it in TOML (close enough for a message)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{...}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return repr(value)


#: Pydantic's error types for a value that should be a table (a section or a sub-table).
_TABLE_TYPES = frozenset({"model_type", "dict_type", "model_attributes_type"})
#: Pydantic's other type errors, as what the value must be (the message adds what it is).
_MUST_BE: dict[str, str] = {
    "float_type": "a number",
    "int_type": "a whole number",
    "bool_type": "true or false",
    "string_type": "a string in quotes",
    "tuple_type": 'an array such as ["a", "b"]',
    "list_type": 'an array such as ["a", "b"]',
}


def _message(item: Any, loc: KeyPath) -> str:
    """One pydantic error as the words of a config problem: an unknown key, a value of the
    wrong type, one not among the choices, or one out of range."""
    kind: str = item["type"]
    value = item.get("input")
    if kind == "extra_forbidden":
        return _unknown_key_message(loc, value)
    got = f"not {_toml_type(value)} ({_shown(value)})"
    if kind in _TABLE_TYPES:
        return f"must be a table ([{'.'.join(str(part) for part in loc)}]), {got}"
    if kind in _MUST_BE:
        return f"must be {_MUST_BE[kind]}, {got}"
    context = item.get("ctx") or {}
    if kind == "literal_error":
        return _choice_message(value, context, got)
    return _refused_value_message(item, kind, value, context)


def _choice_message(value: Any, context: Any, got: str) -> str:
    """A value that is not one of the choices, with the nearest choice when it is a string."""
    expected = re.findall(r"'([^']*)'", str(context.get("expected", "")))
    choices = ", ".join(f'"{choice}"' for choice in expected)
    if not isinstance(value, str):
        return f"must be one of {choices}, {got}"
    hint = did_you_mean(value, expected, quote='""')
    return f"unknown value {_shown(value)}; expected one of {choices}{hint}"


def _refused_value_message(item: Any, kind: str, value: Any, context: Any) -> str:
    """A value of the right type that is out of range or refused by a validator."""
    if kind == "greater_than":
        return f"must be greater than {_number(context.get('gt'))}, got {_shown(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {_number(context.get('ge'))}, got {_shown(value)}"
    if kind == "finite_number":
        return f"must be a finite number, got {_shown(value)}"
    if kind == "too_short":
        return "must list at least one value"
    if kind == "value_error":
        return str(context.get("error", item.get("msg", "")))
    return str(item.get("msg", kind))


def _unknown_key_message(loc: KeyPath, value: Any) -> str:
    name = str(loc[-1])
    if len(loc) == 1:
        if isinstance(value, dict):
            return f"unknown section [{name}]{did_you_mean(name, SECTIONS, quote='[]')}"
        owners = [section for section, model in SECTIONS.items() if name in model.model_fields]
        where = f"; did you mean '{name}' in [{owners[0]}]?" if owners else ""
        return f"unknown key '{name}' outside any [section]{where}"
    section = str(loc[0])
    model = SECTIONS.get(section)
    if model is None or len(loc) > 2:
        return f"unknown key '{name}'"
    hint = did_you_mean(name, model.model_fields)
    if not hint:
        # A key in the wrong section is a common slip: say where it belongs.
        owners = [other for other, candidate in SECTIONS.items() if name in candidate.model_fields]
        if owners:
            hint = f"; '{name}' belongs in [{owners[0]}]"
        elif match := closest(name, [key for m in SECTIONS.values() for key in m.model_fields]):
            owner = next(s for s, m in SECTIONS.items() if match in m.model_fields)
            hint = f"; did you mean '{match}' in [{owner}]?"
    return f"unknown key '{name}' in [{section}]{hint}"


def _sorted(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    """File problems in line order first, then environment variables, then defaults."""

    def order(problem: ConfigProblem) -> tuple[int, int, str, str]:
        if problem.line is not None:
            return (0, problem.line, problem.file, problem.key_path)
        return (1, 0, problem.file, problem.key_path)

    return sorted(problems, key=order)
