"""What restic and rclone are run with, and what their output says. Pure: no processes here.

Each engine gets the archive (and, when that feature exists, the device-backup snapshots) as
its sources and excludes rollkeeper's working folder (``.rollkeeper``: partial files and
quarantine). rollkeeper never deletes anything offsite on its own: restic's ``forget --prune``
runs only with the keep policy the user wrote in ``retention``, and rclone is run as ``copy``,
which never deletes on the remote (``sync`` would).

Secrets are handed over the engines' own way: ``RESTIC_PASSWORD_FILE`` (restic reads the file
itself) or ``RCLONE_CONFIG_PASS``, plus the ``KEY=VALUE`` lines of ``environment_file``; none of
them is ever on a command line or in a log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rollkeeper.archive.locations import WORKING_FOLDER_NAME

RESTIC = "restic"
RCLONE = "rclone"

#: Variables of the service manager's protocols that the engine must not inherit.
_SERVICE_MANAGER_VARIABLES = frozenset(
    {"NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}
)
#: ``user:password@`` in a URL-like destination (``rest:https://u:p@host/``).
_USER_INFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


@dataclass(frozen=True, slots=True)
class OffsitePlan:
    """The offsite settings as plain values (from the config's ``[offsite]`` section)."""

    engine: str
    #: restic's repository or rclone's remote.
    destination: str
    executable: str = ""
    password_file: str = ""
    environment_file: str = ""
    retention: tuple[str, ...] = ()
    extra_arguments: tuple[str, ...] = ()
    min_interval_hours: float = 24.0
    stale_after_days: float = 7.0

    @property
    def program(self) -> str:
        """The engine's program: the configured one, else its name (found on ``PATH``)."""
        return self.executable or self.engine

    @property
    def shown_destination(self) -> str:
        """The destination as it may be shown and stored: any ``user:password@`` taken out."""
        return _USER_INFO.sub(r"\g<scheme>***@", self.destination)


@dataclass(frozen=True, slots=True)
class CopyFigures:
    """What a copy did, as the engine reported it (None where it did not say)."""

    snapshot_id: str = ""
    bytes_added: int | None = None
    files_new: int | None = None


class EnvironmentFileError(ValueError):
    """The ``environment_file`` cannot be read or has a line that is not ``KEY=VALUE``."""


def parse_environment_file(text: str, name: str = "environment_file") -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, blank lines and an ``export`` prefix allowed; values
    may be in single or double quotes). Raises :class:`EnvironmentFileError` naming the line."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, separator, value = line.partition("=")
        key = key.strip()
        if not separator or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise EnvironmentFileError(f"{name}:{number}: not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def engine_environment(
    plan: OffsitePlan, environ: Mapping[str, str], file_values: Mapping[str, str]
) -> dict[str, str]:
    """The engine's environment: the service's (less the service manager's variables), the
    ``environment_file``'s values, and the destination and password the engine's own way."""
    environment = {
        name: value for name, value in environ.items() if name not in _SERVICE_MANAGER_VARIABLES
    }
    environment.update(file_values)
    if plan.engine == RESTIC:
        environment["RESTIC_REPOSITORY"] = plan.destination
        if plan.password_file:
            environment["RESTIC_PASSWORD_FILE"] = plan.password_file
            # A password file wins: an inherited password of another repository must not.
            environment.pop("RESTIC_PASSWORD", None)
            environment.pop("RESTIC_PASSWORD_COMMAND", None)
    elif plan.engine == RCLONE and plan.password_file:
        environment["RCLONE_CONFIG_PASS"] = _first_line(Path(plan.password_file))
    return environment


def _first_line(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text.splitlines()[0] if text else ""


def copy_command(plan: OffsitePlan, sources: Sequence[Path]) -> list[str]:
    """The argv that copies ``sources`` (the archive first) offsite."""
    if plan.engine == RESTIC:
        argv = [plan.program, "backup", "--json", "--tag", "rollkeeper"]
        for source in sources:
            argv += ["--exclude", str(source / WORKING_FOLDER_NAME)]
        return [*argv, *plan.extra_arguments, *(str(source) for source in sources)]
    if plan.engine == RCLONE:
        # rclone copies one tree to one place: the archive goes to the remote itself.
        return [
            plan.program,
            "copy",
            str(sources[0]),
            plan.destination,
            "--exclude",
            f"/{WORKING_FOLDER_NAME}/**",
            "--use-json-log",
            "--log-level",
            "NOTICE",
            # One stats line at the end (the interval only needs to be longer than any copy).
            "--stats",
            "8760h",
            "--stats-log-level",
            "NOTICE",
            *plan.extra_arguments,
        ]
    raise ValueError(f"unknown offsite engine {plan.engine!r}")


def forget_command(plan: OffsitePlan) -> list[str] | None:
    """restic's ``forget --prune`` with the user's keep policy; None when no retention is set
    (then nothing is ever deleted offsite) and for rclone (``copy`` deletes nothing)."""
    if plan.engine != RESTIC or not plan.retention:
        return None
    return [plan.program, "forget", "--tag", "rollkeeper", "--prune", *plan.retention]


def check_command(plan: OffsitePlan, archive: Path, read_data: bool) -> list[str]:
    """The engine's own verification: ``restic check`` (``--read-data``: every byte read back),
    ``rclone check --one-way`` (every archive file is on the remote with its size and hash;
    ``--download``: content compared byte for byte)."""
    if plan.engine == RESTIC:
        return [plan.program, "check", *(["--read-data"] if read_data else [])]
    if plan.engine == RCLONE:
        return [
            plan.program,
            "check",
            str(archive),
            plan.destination,
            "--one-way",
            "--exclude",
            f"/{WORKING_FOLDER_NAME}/**",
            *(["--download"] if read_data else []),
        ]
    raise ValueError(f"unknown offsite engine {plan.engine!r}")


def init_command(plan: OffsitePlan) -> list[str] | None:
    """``restic init`` (a repository is made once, by the user, never by a copy); None for
    rclone, whose remotes are made with ``rclone config``."""
    return [plan.program, "init"] if plan.engine == RESTIC else None


def copy_figures(plan: OffsitePlan, stdout: str, stderr: str) -> CopyFigures:
    """Snapshot id, bytes added and new files from the engine's output (JSON lines: restic's
    ``summary`` on standard output, rclone's final ``stats`` on standard error)."""
    if plan.engine == RESTIC:
        for document in reversed(_json_lines(stdout)):
            if document.get("message_type") == "summary":
                return CopyFigures(
                    snapshot_id=str(document.get("snapshot_id") or ""),
                    bytes_added=_whole(document.get("data_added")),
                    files_new=_whole(document.get("files_new")),
                )
        return CopyFigures()
    for document in reversed(_json_lines(stderr)):
        stats = document.get("stats")
        if isinstance(stats, dict):
            return CopyFigures(
                bytes_added=_whole(stats.get("bytes")), files_new=_whole(stats.get("transfers"))
            )
    return CopyFigures()


def error_text(stdout: str, stderr: str, limit: int = 400) -> str:
    """The engine's own words about why it failed: the last lines of its error output that say
    something (restic's ``Fatal: ...``, rclone's JSON ``msg``), cut to ``limit``."""
    messages: list[str] = []
    for line in stderr.splitlines():
        text = line.strip()
        if not text:
            continue
        if text.startswith("{"):
            try:
                document = json.loads(text)
            except ValueError:
                document = None
            if isinstance(document, dict):
                if document.get("level") in ("error", "critical", "fatal"):
                    messages.append(str(document.get("msg", "")).strip())
                continue
        messages.append(text)
    if not messages:
        messages = [line.strip() for line in stdout.splitlines() if line.strip()][-1:]
    joined = " / ".join(message for message in messages[-3:] if message)
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


def _json_lines(text: str) -> list[dict[str, object]]:
    documents: list[dict[str, object]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict):
            documents.append(document)
    return documents


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
