"""What every config section is built from: the base model, strict scalars and checked paths.

Validation is pydantic v2 with ``extra="forbid"`` (an unknown key is an error, not a silently
ignored typo) and strict scalars (TOML is typed: ``"5"`` is not a number of seconds). Paths
expand ``~`` and ``$VARIABLES`` from the loader's environment and must end up absolute; the
writable ones are checked against the file system only when the loader asks for it.

The loader validates with context ``{"environ": ..., "check_filesystem": True}``. Building a
Config directly in code (tests, tools) uses ``os.environ`` and touches no files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Strict, ValidationInfo

from rollkeeper.config.filesystem import archive_folder_problem, file_problem, folder_problem
from rollkeeper.config.paths import UnsetVariableError, expand_home, expand_path

__all__ = ["folder_problem"]  # moved to .filesystem; importable from here as before

# -- validation context ----------------------------------------------------------------------


def context_environ(info: ValidationInfo) -> Mapping[str, str]:
    """The environment to expand variables from: the loader's, else ``os.environ``."""
    context = info.context if isinstance(info.context, dict) else {}
    environ = context.get("environ")
    return environ if environ is not None else os.environ


def check_filesystem(info: ValidationInfo) -> bool:
    """Whether this validation may look at the file system (only when the loader says so)."""
    context = info.context if isinstance(info.context, dict) else {}
    return bool(context.get("check_filesystem", False))


# -- paths -----------------------------------------------------------------------------------


def expand_path_value(value: Any, info: ValidationInfo) -> Any:
    """Expand ``~`` and ``$VARS`` (from the loader's environment), then insist on absolute.

    A ``Path`` comes from code (a default, or a platform folder built from ``HOME``): only its
    leading ``~`` is expanded, so a ``$`` in someone's home folder name is not mistaken for a
    variable.
    """
    if isinstance(value, Path):
        from_code = Path(expand_home(str(value), context_environ(info)))
        if not from_code.is_absolute():
            raise ValueError(f"'{value}' is a relative path; write an absolute one")
        return Path(os.path.normpath(from_code))
    if not isinstance(value, str):
        return value  # pydantic reports the wrong type
    if not value:
        raise ValueError("must not be empty; write an absolute path such as ~/Pictures/rollkeeper")
    try:
        expanded = expand_path(value, context_environ(info))
    except UnsetVariableError as error:
        raise ValueError(f"{error} (needed to expand {value!r})") from None
    if not os.path.isabs(expanded):
        raise ValueError(
            f"{value!r} is a relative path; write an absolute one (or start it with ~): "
            "the service does not run in your working folder"
        )
    return Path(os.path.normpath(expanded))


def _writable_folder(value: Path, info: ValidationInfo) -> Path:
    if check_filesystem(info):
        problem = folder_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


def _archive_folder(value: Path, info: ValidationInfo) -> Path:
    if check_filesystem(info):
        problem = archive_folder_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


def _writable_file(value: Path, info: ValidationInfo) -> Path:
    if check_filesystem(info):
        problem = file_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


AbsolutePath = Annotated[Path, BeforeValidator(expand_path_value)]
WritableFolder = Annotated[AbsolutePath, AfterValidator(_writable_folder)]
WritableFile = Annotated[AbsolutePath, AfterValidator(_writable_file)]
#: The archive folder: only a file in its way is a config error (see archive_folder_problem).
ArchiveFolder = Annotated[AbsolutePath, AfterValidator(_archive_folder)]

StrictText = Annotated[str, Strict()]
StrictFlag = Annotated[bool, Strict()]
StrictWhole = Annotated[int, Strict()]
# Strict floats still accept TOML integers (``retry_max_seconds = 300``), as they should.
StrictNumber = Annotated[float, Strict()]


# -- sections --------------------------------------------------------------------------------


class Section(BaseModel):
    """Common settings of every config section: immutable, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    #: The comment written above the ``[section]`` header of the starter config.
    section_help: ClassVar[str] = ""
    #: Fields whose default depends on the platform: the starter config shows them commented
    #: out, with the Linux default, so one file is right on every machine.
    platform_defaults: ClassVar[dict[str, str]] = {}
