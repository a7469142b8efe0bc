"""The config schema: every setting, its type, its default and the words a user reads about it.

The ``description`` of each field is the comment written above it in the starter config
(``rollkeeper config init``) and in ``config.example.toml``, so the words live in one place.
Validation is pydantic v2 with ``extra="forbid"`` (an unknown key is an error, not a silently
ignored typo) and strict scalars (TOML is typed: ``"5"`` is not a number of seconds).
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
)

from rollkeeper.config.paths import (
    UnsetVariableError,
    default_state_dir,
    expand_home,
    expand_path,
)
from rollkeeper.config.suggest import did_you_mean
from rollkeeper.domain.layout import LAYOUT_PLACEHOLDERS
from rollkeeper.domain.layout import validate_layout as layout_problems

# -- validation context ----------------------------------------------------------------------
# The loader validates with context {"environ": ..., "check_filesystem": True}. Building a
# Config directly in code (tests, tools) uses os.environ and touches no files.


def _context_environ(info: ValidationInfo) -> Mapping[str, str]:
    context = info.context if isinstance(info.context, dict) else {}
    environ = context.get("environ")
    return environ if environ is not None else os.environ


def _check_filesystem(info: ValidationInfo) -> bool:
    context = info.context if isinstance(info.context, dict) else {}
    return bool(context.get("check_filesystem", False))


# -- paths -----------------------------------------------------------------------------------


def _expand_path_value(value: Any, info: ValidationInfo) -> Any:
    """Expand ``~`` and ``$VARS`` (from the loader's environment), then insist on absolute.

    A ``Path`` comes from code (a default, or a platform folder built from ``HOME``): only its
    leading ``~`` is expanded, so a ``$`` in someone's home folder name is not mistaken for a
    variable.
    """
    if isinstance(value, Path):
        from_code = Path(expand_home(str(value), _context_environ(info)))
        if not from_code.is_absolute():
            raise ValueError(f"'{value}' is a relative path; write an absolute one")
        return Path(os.path.normpath(from_code))
    if not isinstance(value, str):
        return value  # pydantic reports the wrong type
    if not value:
        raise ValueError("must not be empty; write an absolute path such as ~/Pictures/rollkeeper")
    try:
        expanded = expand_path(value, _context_environ(info))
    except UnsetVariableError as error:
        raise ValueError(f"{error} (needed to expand {value!r})") from None
    if not os.path.isabs(expanded):
        raise ValueError(
            f"{value!r} is a relative path; write an absolute one (or start it with ~): "
            "the service does not run in your working folder"
        )
    return Path(os.path.normpath(expanded))


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be used (or created) for writing by this user, or ``None``.

    Walks up to the nearest part of the path that exists: it must be a folder we may write
    in. A regular file where a folder is expected is caught here (this also works as root,
    where permission bits do not stop anything).
    """
    existing = folder
    while not os.path.lexists(existing):
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        if existing == folder:
            return f"'{folder}' is a file, not a folder"
        return f"'{existing}' is a file, not a folder, so '{folder}' cannot be created"
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == folder:
            return f"'{folder}' is not writable by this user"
        return f"'{existing}' is not writable by this user, so '{folder}' cannot be created"
    return None


def _writable_folder(value: Path, info: ValidationInfo) -> Path:
    if _check_filesystem(info):
        problem = folder_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


def _writable_file(value: Path, info: ValidationInfo) -> Path:
    if _check_filesystem(info):
        if value.is_dir():
            raise ValueError(f"'{value}' is a folder; name a file inside it")
        problem = folder_problem(value.parent)
        if problem is not None:
            raise ValueError(problem)
    return value


AbsolutePath = Annotated[Path, BeforeValidator(_expand_path_value)]
WritableFolder = Annotated[AbsolutePath, AfterValidator(_writable_folder)]
WritableFile = Annotated[AbsolutePath, AfterValidator(_writable_file)]

StrictText = Annotated[str, Strict()]
StrictFlag = Annotated[bool, Strict()]
StrictWhole = Annotated[int, Strict()]
# Strict floats still accept TOML integers (``retry_max_seconds = 300``), as they should.
StrictNumber = Annotated[float, Strict()]


# -- layout ----------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def validate_layout(layout: str) -> str:
    """Check an ``archive.layout`` template; raise ValueError listing what is wrong.

    The rules are the domain's (:func:`rollkeeper.domain.layout.validate_layout`, which the
    archive uses when it renders paths), so the config never accepts a layout the archive
    would refuse. Here we only add "did you mean" hints for misspelt placeholders.
    """
    problems = layout_problems(layout)
    if not problems:
        return layout
    message = "; ".join(problems)
    for name in _PLACEHOLDER.findall(layout):
        if name in LAYOUT_PLACEHOLDERS:
            continue
        hint = did_you_mean(name, LAYOUT_PLACEHOLDERS, quote="{}")
        if hint:
            written = "{" + name + "}"
            message = message.replace(
                f"unknown placeholder {written}", f"unknown placeholder {written}{hint}", 1
            )
    raise ValueError(message)


# -- other value checks ----------------------------------------------------------------------


def _validate_cron(value: str) -> str:
    # The same parser as the scheduler, so the check and the schedule agree on day numbers
    # (crontab's Sunday = 0; APScheduler's own from_crontab counts Monday as 0).
    from rollkeeper.archive.crontab import crontab_trigger

    try:
        crontab_trigger(value, timezone="UTC")
    except ValueError as error:
        detail = str(error).removeprefix(f"{value!r}: ")
        raise ValueError(
            f"{value!r} is not a crontab line"
            f" (minute hour day-of-month month day-of-week): {detail}"
        ) from None
    return value


def _parse_since(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        raise ValueError("must be a date such as 2024-01-31, not a date and time")
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f'{value!r} is not a date; write it as YYYY-MM-DD (or "" for no limit)'
            ) from None
    raise ValueError(f'must be a date such as 2024-01-31 or "", not {type(value).__name__}')


def _validate_usbmux_address(value: str, info: ValidationInfo) -> str:
    if not value:
        return value
    if ":" in value:
        host, _, port = value.rpartition(":")
        if not host or ":" in host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"{value!r} is neither HOST:PORT nor an absolute socket path (/var/run/usbmuxd)"
            )
        return value
    path = _expand_path_value(value, info)
    return str(path)


def _validate_url(value: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


# -- sections --------------------------------------------------------------------------------


class Section(BaseModel):
    """Common settings of every config section: immutable, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    #: The comment written above the ``[section]`` header of the starter config.
    section_help: ClassVar[str] = ""
    #: Fields whose default depends on the platform: the starter config shows them commented
    #: out, with the Linux default, so one file is right on every machine.
    platform_defaults: ClassVar[dict[str, str]] = {}


class ArchiveSettings(Section):
    section_help = "Where the backup goes and how files are filed in it."

    path: WritableFolder = Field(
        default=Path("~/Pictures/rollkeeper"),
        description=(
            "The archive folder: every photo and video is copied under it. ~ and $VARIABLES "
            "are expanded; a relative path is an error (the service does not run in your "
            "working folder). It is created if missing; it must be writable."
        ),
    )
    layout: Annotated[StrictText, AfterValidator(validate_layout)] = Field(
        default="{year}/{year}-{month}/{name}",
        description=(
            "Where a file goes inside the archive, by its capture date in the local time of "
            "capture. Placeholders: {year} {month} {day} {hour} {minute} {name} (IMG_1234.HEIC) "
            "{stem} (IMG_1234) {extension} (HEIC, no dot) {device_name} {udid}. It must end in "
            "{name} or in {stem}...{extension} (e.g. {stem}.{extension}), so files keep their "
            "own names. A new layout applies to "
            "files copied from then on; files already archived are not moved."
        ),
    )
    collision: Literal["suffix"] = Field(
        default="suffix",
        description=(
            "What to do when a different file already has the target name. The archive never "
            'overwrites: "suffix" (the only rule for now) adds ~2, ~3, ... before the '
            "extension (IMG_1234~2.HEIC), and every member of a Live Photo pair or edit group "
            "gets the same suffix. The same content is never stored twice."
        ),
    )


class StateSettings(Section):
    section_help = "rollkeeper's own records: which files are archived, runs, known phones."
    platform_defaults = {"path": "~/.local/state/rollkeeper/state.sqlite3"}

    path: WritableFile = Field(
        default_factory=lambda: default_state_dir() / "state.sqlite3",
        description=(
            "The SQLite state file. Default: state.sqlite3 in $XDG_STATE_HOME/rollkeeper "
            "(~/.local/state/rollkeeper) on Linux, ~/Library/Application Support/rollkeeper "
            "on macOS. Keep it off the archive disk if that disk is sometimes unplugged."
        ),
    )


class DeviceSettings(Section):
    section_help = "How rollkeeper reaches phones."
    platform_defaults = {"pairing_dir": "~/.local/state/rollkeeper/pairing"}

    usbmux_address: Annotated[StrictText, AfterValidator(_validate_usbmux_address)] = Field(
        default="",
        description=(
            "The usbmuxd socket: an absolute path or HOST:PORT. Empty means "
            "$USBMUXD_SOCKET_ADDRESS, else the system's usbmuxd (/var/run/usbmuxd)."
        ),
    )
    pairing_dir: WritableFolder = Field(
        default_factory=lambda: default_state_dir() / "pairing",
        description=(
            "Where the pairing records made when you tap Trust are kept (folder 0700, files "
            "0600). Default: pairing in the state folder (see [state] path)."
        ),
    )
    connection_types: tuple[Literal["USB", "Network"], ...] = Field(
        default=("USB",),
        min_length=1,
        description=('Which connections to back up over: "USB", "Network" (Wi-Fi sync), or both.'),
    )
    pair_timeout_seconds: StrictNumber = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "How long one pairing attempt waits for you to tap Trust on the phone before "
            "it is retried."
        ),
    )


class ScheduleSettings(Section):
    section_help = "When backups, retries and archive checks run."

    debounce_seconds: StrictNumber = Field(
        default=2.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Wait this long after a phone appears before starting (tapping Trust unplugs and "
            "re-plugs the phone in software)."
        ),
    )
    retry_initial_seconds: StrictNumber = Field(
        default=5.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "First wait before retrying a failed or interrupted backup while the phone stays "
            "connected (locked, Trust not yet tapped, connection dropped). The wait grows "
            "with each failure, up to retry_max_seconds."
        ),
    )
    retry_max_seconds: StrictNumber = Field(
        default=300.0,
        gt=0,
        allow_inf_nan=False,
        description="The longest wait between retries (at least retry_initial_seconds).",
    )
    scrub_cron: Annotated[StrictText, AfterValidator(_validate_cron)] = Field(
        default="0 4 * * sun",
        description=(
            "When to re-read archived files and check their hashes (a crontab line: minute "
            "hour day-of-month month day-of-week, in local time)."
        ),
    )
    scrub_bytes_per_run: StrictWhole = Field(
        default=20_000_000_000,
        gt=0,
        description="At most this many bytes are re-read per scrub run.",
    )
    scrub_rotation_weeks: StrictWhole = Field(
        default=8,
        gt=0,
        description="Every archived file is re-verified at least this often, in weeks.",
    )
    stale_after_days: StrictNumber = Field(
        default=7.0,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Warn (status, notification, on_stale hook) when a known phone has had no "
            "successful backup for this many days."
        ),
    )

    @field_validator("retry_max_seconds")
    @classmethod
    def _not_below_initial(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("retry_initial_seconds")
        if isinstance(initial, float) and value < initial:
            raise ValueError(f"must be at least retry_initial_seconds ({initial:g}), got {value:g}")
        return value


class FilterSettings(Section):
    section_help = "Which files to back up. Files left out are listed, never deleted."

    media_kinds: tuple[Literal["photo", "video", "sidecar"], ...] = Field(
        default=("photo", "video", "sidecar"),
        min_length=1,
        description=(
            'Kinds of files to copy: "photo", "video", "sidecar" (.AAE edit recipes, kept '
            "next to their photo)."
        ),
    )
    since: Annotated[datetime.date | None, BeforeValidator(_parse_since)] = Field(
        default=None,
        description=(
            "Only files captured on or after this date (YYYY-MM-DD, a TOML date or a string); "
            '"" for no limit.'
        ),
    )
    screenshots: StrictFlag = Field(
        default=True,
        description="Back up screenshots too.",
    )
    include_devices: tuple[StrictText, ...] = Field(
        default=(),
        description=(
            "Only back up these phones (UDIDs or phone names as shown by `rollkeeper "
            "devices`); empty means every phone."
        ),
    )
    exclude_devices: tuple[StrictText, ...] = Field(
        default=(),
        description="Never back up these phones (UDIDs or names); wins over include_devices.",
    )


class NotificationSettings(Section):
    section_help = "Telling you what happened, without spamming."

    desktop: StrictFlag = Field(
        default=True,
        description="Show desktop notifications (backup done, failed, overdue).",
    )
    on_success: StrictText = Field(
        default="",
        description=('A command run with sh -c after a successful backup ("" = none).'),
    )
    on_failure: StrictText = Field(
        default="",
        description='A command run with sh -c after a failed backup ("" = none).',
    )
    on_stale: StrictText = Field(
        default="",
        description=(
            'A command run with sh -c when a phone is overdue (see stale_after_days; "" = none).'
        ),
    )
    hook_timeout_seconds: StrictNumber = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description="A hook command still running after this long is stopped.",
    )
    healthcheck_url: Annotated[StrictText, AfterValidator(_validate_url)] = Field(
        default="",
        description=(
            "A healthchecks.io-style URL: pinged after each successful backup, URL/fail after "
            'a failure, so silence is noticed elsewhere too ("" = none).'
        ),
    )
    min_interval_minutes: StrictNumber = Field(
        default=60.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Repeated notifications of the same kind are sent at most this often (0 = always)."
        ),
    )


class LoggingSettings(Section):
    section_help = "The service's log (journalctl --user -u rollkeeper, or the launchd log file)."

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info",
        description='The least important events logged: "debug", "info", "warning", "error".',
    )
    format: Literal["auto", "console", "json"] = Field(
        default="auto",
        description=(
            '"console" (readable), "json" (one object per line), or "auto": console on a '
            "terminal, JSON otherwise."
        ),
    )


class Config(BaseModel):
    """The whole rollkeeper configuration; immutable, so a reload swaps it as one value."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    device: DeviceSettings = Field(default_factory=DeviceSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    filters: FilterSettings = Field(default_factory=FilterSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)


#: Section name -> model, in the order the starter config lists them.
SECTIONS: dict[str, type[Section]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in Config.model_fields.items()
}


def environment_defaults(environ: Mapping[str, str]) -> dict[str, dict[str, Path]]:
    """Defaults that depend on the environment (XDG folders, HOME), for the loader to fill in
    before validation so that ``load_config(..., environ=...)`` never reads ``os.environ``."""
    state_dir = default_state_dir(environ)
    return {
        "state": {"path": state_dir / "state.sqlite3"},
        "device": {"pairing_dir": state_dir / "pairing"},
    }
