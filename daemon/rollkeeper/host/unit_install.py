"""Install rollkeeper as a per-user service: the systemd user unit or the launchd agent.

The templates live in ``systemd/rollkeeper.service`` and ``launchd/org.rollkeeper.agent.plist``
at the top of the source tree; this module fills in their ``@PLACEHOLDERS@`` with absolute paths
(a service manager does not run in your shell: no ``PATH``, no working folder, no ``~``) and
turns install, uninstall and status into a :class:`ServicePlan`: files to write or remove,
folders to create and commands to run, in order. ``--dry-run`` prints the plan; otherwise
:func:`execute_plan` carries it out. Keeping the plan as data is what lets ``--dry-run`` print
exactly what a real install would do.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape as xml_escape

from rollkeeper.host.permissions import ensure_private_dir

Platform = Literal["linux", "macos"]
PLATFORMS: tuple[Platform, ...] = ("linux", "macos")

UNIT_NAME = "rollkeeper.service"
LAUNCHD_LABEL = "org.rollkeeper.agent"

#: The source tree's root: the templates sit beside the ``daemon/`` source folder.
SOURCE_ROOT = Path(__file__).resolve().parents[3]
SYSTEMD_TEMPLATE = SOURCE_ROOT / "systemd" / UNIT_NAME
LAUNCHD_TEMPLATE = SOURCE_ROOT / "launchd" / f"{LAUNCHD_LABEL}.plist"

#: Variables that change where rollkeeper looks for its defaults. A user manager does not read
#: your shell profile, so values set there are written into the unit/agent explicitly.
CARRIED_VARIABLES = ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")

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


class ServiceInstallError(Exception):
    """A user-facing reason why install/uninstall cannot go on (one line, no traceback)."""


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


# -- rendering ----------------------------------------------------------------------------------


def systemd_quote(word: str, command_line: bool = False) -> str:
    """One quoted word for a unit file, with ``%`` specifiers escaped.

    ``command_line``: the word is an argument in ``ExecStart=``, where systemd also expands
    ``$VAR``, so ``$`` is escaped too (elsewhere, the program path included, ``$$`` would stay
    two dollars).
    """
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if command_line:
        escaped = escaped.replace("$", "$$")
    return f'"{escaped}"'


def render_systemd_unit(
    template: str,
    command: Sequence[str],
    config_path: Path,
    writable_paths: Sequence[Path],
    environment: Mapping[str, str],
    namespace_sandbox: bool,
) -> str:
    """The unit with every placeholder filled in.

    ``namespace_sandbox`` adds :data:`NAMESPACE_SANDBOX_OPTIONS` and ``ReadWritePaths=`` for
    ``writable_paths``; each path has a ``-`` prefix so that an unplugged archive disk makes
    the backup fail loudly with "read-only/missing" instead of keeping the service from
    starting at all.
    """
    environment_lines = "\n".join(
        f"Environment={systemd_quote(f'{name}={value}')}" for name, value in environment.items()
    )
    if namespace_sandbox:
        paths = " ".join(systemd_quote(f"-{path}") for path in writable_paths)
        sandbox_lines = "\n".join((*NAMESPACE_SANDBOX_OPTIONS, f"ReadWritePaths={paths}"))
    else:
        sandbox_lines = (
            "# Left out: this machine does not allow them in a user unit "
            "(see docs/service.md, Sandboxing)."
        )
    replacements = {
        # systemd expands $VARIABLES in the arguments but not in the program's path.
        "@ROLLKEEPER@": " ".join(
            [systemd_quote(command[0])]
            + [systemd_quote(word, command_line=True) for word in command[1:]]
        ),
        "@CONFIG@": systemd_quote(str(config_path), command_line=True),
        "@ENVIRONMENT@\n": environment_lines + "\n" if environment_lines else "",
        "@NAMESPACE_SANDBOX@": sandbox_lines,
    }
    return _fill(template, replacements)


def exec_start_argv(unit_text: str) -> list[str]:
    """The argv that systemd would run for the unit's ``ExecStart=`` (as rendered here).

    Undoes :func:`systemd_quote`: quotes and backslashes, ``%%`` everywhere, ``$$`` in the
    arguments. Tests use it to start the service exactly as systemd would. Other specifiers
    (``%h``) and ``$VARIABLES`` are not expanded; a unit using them raises ``ValueError``.
    """
    import shlex

    lines = [line for line in unit_text.splitlines() if line.startswith("ExecStart=")]
    if len(lines) != 1:
        raise ValueError(f"expected one ExecStart= line, found {len(lines)}")
    words = shlex.split(lines[0][len("ExecStart=") :])
    argv: list[str] = []
    for index, word in enumerate(words):
        pieces = word.split("%%")
        if any("%" in piece for piece in pieces):
            raise ValueError(f"unsupported specifier in {word!r}")
        unescaped = "%".join(pieces)
        if index > 0:
            pieces = unescaped.split("$$")
            if any("$" in piece for piece in pieces):
                raise ValueError(f"unsupported variable in {word!r}")
            unescaped = "$".join(pieces)
        argv.append(unescaped)
    return argv


def render_launchd_plist(
    template: str,
    command: Sequence[str],
    config_path: Path,
    log_dir: Path,
    environment: Mapping[str, str],
) -> str:
    """The agent's plist with every placeholder filled in; checked by parsing it back."""
    program = "".join(f"<string>{xml_escape(word)}</string>" for word in command)
    environment_lines = "\n".join(
        f"\t\t<key>{xml_escape(name)}</key>\n\t\t<string>{xml_escape(value)}</string>"
        for name, value in environment.items()
    )
    replacements = {
        "<string>@ROLLKEEPER@</string>": program,
        "@CONFIG@": xml_escape(str(config_path)),
        "@LOG_DIR@": xml_escape(str(log_dir)),
        "@ENVIRONMENT@\n": environment_lines + "\n" if environment_lines else "",
    }
    rendered = _fill(template, replacements)
    plistlib.loads(rendered.encode("utf-8"))  # a broken plist must never reach launchd
    return rendered


def _fill(template: str, replacements: Mapping[str, str]) -> str:
    rendered = template
    for placeholder, value in replacements.items():
        if placeholder not in rendered:
            raise ServiceInstallError(f"the service template has no {placeholder.strip()}")
        rendered = rendered.replace(placeholder, value)
    return rendered


def read_template(platform: Platform) -> str:
    """The template text from the source tree."""
    path = LAUNCHD_TEMPLATE if platform == "macos" else SYSTEMD_TEMPLATE
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ServiceInstallError(
            f"the service template {path} is missing; install rollkeeper from its source "
            "tree (pip install -e .), which carries the systemd/ and launchd/ folders"
        ) from None


# -- plans --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteFile:
    """Write ``content`` to ``path`` (its folder is created if needed)."""

    path: Path
    content: str

    def describe(self) -> str:
        return f"write {self.path}"


@dataclass(frozen=True)
class RemoveFile:
    path: Path

    def describe(self) -> str:
        return f"remove {self.path}"


@dataclass(frozen=True)
class MakeDir:
    """Create a folder the service writes to; ``private`` ones are made 0700 with their parents.

    A non-private folder (the archive) is only created inside an existing parent: a missing
    parent is most likely an unplugged disk's mount point, and creating the folder there would
    fill the system disk instead of the backup disk.
    """

    path: Path
    private: bool

    def describe(self) -> str:
        return f"create folder {self.path}" + (
            " (0700)" if self.private else " (if its parent folder exists)"
        )


@dataclass(frozen=True)
class RunCommand:
    """Run ``argv``; with ``may_fail`` a non-zero exit is reported but does not stop the plan."""

    argv: tuple[str, ...]
    may_fail: bool = False

    def describe(self) -> str:
        return "run " + " ".join(_shell_word(word) for word in self.argv)


Step = WriteFile | RemoveFile | MakeDir | RunCommand


@dataclass
class ServicePlan:
    """What install/uninstall will do, in order, and what to tell the user afterwards."""

    platform: Platform
    unit_path: Path
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def unit_content(self) -> str | None:
        for step in self.steps:
            if isinstance(step, WriteFile) and step.path == self.unit_path:
                return step.content
        return None


@dataclass(frozen=True)
class InstallInputs:
    """Everything an install depends on, gathered once (and so shown once by --dry-run)."""

    platform: Platform
    command: tuple[str, ...]
    config_path: Path
    archive_path: Path
    state_path: Path
    pairing_dir: Path
    environ: Mapping[str, str]
    uid: int


def plan_install(inputs: InstallInputs, namespace_sandbox: bool) -> ServicePlan:
    """The steps that install, enable and start the service for the current user."""
    environment = carried_environment(inputs.environ)
    unit_path = unit_file_path(inputs.platform, inputs.environ)
    plan = ServicePlan(inputs.platform, unit_path)
    state_dir = inputs.state_path.parent
    # The service creates these itself too; doing it here means a sandbox's ReadWritePaths
    # (which ignores folders missing at start) covers them from the first start on.
    plan.steps.append(MakeDir(inputs.archive_path, private=False))
    plan.steps.append(MakeDir(state_dir, private=True))
    plan.steps.append(MakeDir(inputs.pairing_dir, private=True))
    if inputs.platform == "linux":
        writable = writable_roots([inputs.archive_path, state_dir, inputs.pairing_dir])
        content = render_systemd_unit(
            read_template("linux"),
            inputs.command,
            inputs.config_path,
            writable,
            environment,
            namespace_sandbox,
        )
        plan.steps.append(WriteFile(unit_path, content))
        plan.steps.append(RunCommand(("systemctl", "--user", "daemon-reload")))
        plan.steps.append(RunCommand(("systemctl", "--user", "enable", UNIT_NAME)))
        # restart, not start: a re-install must replace a running old version.
        plan.steps.append(RunCommand(("systemctl", "--user", "restart", UNIT_NAME)))
        plan.notes.extend(linux_notes(inputs.environ))
        if not namespace_sandbox:
            plan.warnings.append(
                "file-system sandboxing (ProtectSystem=strict, PrivateTmp, ...) is left out: "
                "this machine does not allow user namespaces for user services"
            )
    else:
        log_dir = macos_log_dir(inputs.environ)
        content = render_launchd_plist(
            read_template("macos"), inputs.command, inputs.config_path, log_dir, environment
        )
        plan.steps.append(MakeDir(log_dir, private=True))
        domain = f"gui/{inputs.uid}"
        # bootstrap refuses an agent that is already loaded: take an old one out first.
        plan.steps.append(
            RunCommand(("launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"), may_fail=True)
        )
        plan.steps.append(WriteFile(unit_path, content))
        plan.steps.append(RunCommand(("launchctl", "enable", f"{domain}/{LAUNCHD_LABEL}")))
        plan.steps.append(RunCommand(("launchctl", "bootstrap", domain, str(unit_path))))
        plan.notes.extend(macos_notes(log_dir))
    overridden = sorted(name for name in inputs.environ if name.startswith("ROLLKEEPER_"))
    if overridden:
        plan.warnings.append(
            "these variables are set here but the service will not see them; put the "
            "settings in the config file instead: " + ", ".join(overridden)
        )
    return plan


def plan_uninstall(platform: Platform, environ: Mapping[str, str], uid: int) -> ServicePlan:
    """The steps that stop, disable and remove the service. Archive, state and config stay."""
    unit_path = unit_file_path(platform, environ)
    plan = ServicePlan(platform, unit_path)
    if platform == "linux":
        plan.steps.append(
            RunCommand(("systemctl", "--user", "disable", "--now", UNIT_NAME), may_fail=True)
        )
        plan.steps.append(RemoveFile(unit_path))
        plan.steps.append(RunCommand(("systemctl", "--user", "daemon-reload"), may_fail=True))
    else:
        plan.steps.append(
            RunCommand(("launchctl", "bootout", f"gui/{uid}/{LAUNCHD_LABEL}"), may_fail=True)
        )
        plan.steps.append(RemoveFile(unit_path))
    plan.notes.append(
        "Your archive, the state database, the pairing records and the config are kept."
    )
    return plan


def linux_notes(environ: Mapping[str, str]) -> list[str]:
    user = environ.get("USER") or environ.get("LOGNAME") or "$USER"
    return [
        "Logs: journalctl --user -u rollkeeper -f",
        "State: systemctl --user status rollkeeper (or: rollkeeper service status)",
        "A user service runs while you are logged in. On a machine where nobody logs in "
        f"(a home server), let it run from boot: sudo loginctl enable-linger {user}",
    ]


def macos_notes(log_dir: Path) -> list[str]:
    return [
        f"Logs: tail -f {log_dir / 'rollkeeper.log'}",
        "launchd's own view: launchctl print gui/$(id -u)/" + LAUNCHD_LABEL,
        "launchd's messages about the agent: log show --last 1h --predicate "
        f'\'subsystem == "com.apple.xpc.launchd" AND eventMessage CONTAINS "{LAUNCHD_LABEL}"\'',
    ]


# -- carrying out -------------------------------------------------------------------------------

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run a service-manager command, capturing its output (shown only when it fails)."""
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)


@dataclass(frozen=True)
class StepResult:
    step: Step
    ok: bool
    detail: str = ""


def execute_plan(
    plan: ServicePlan, runner: Runner = run_command, echo: Callable[[str], None] = print
) -> list[StepResult]:
    """Carry the plan out in order, echoing each step; stop at the first failure that matters.

    Raises :class:`ServiceInstallError` naming the failed step and its output.
    """
    results: list[StepResult] = []
    for step in plan.steps:
        echo(step.describe())
        if isinstance(step, WriteFile):
            step.path.parent.mkdir(parents=True, exist_ok=True)
            step.path.write_text(step.content, encoding="utf-8")
            step.path.chmod(0o644)  # service managers read it; it holds no secret
            results.append(StepResult(step, True))
        elif isinstance(step, RemoveFile):
            existed = step.path.exists()
            step.path.unlink(missing_ok=True)
            results.append(StepResult(step, True, "" if existed else "was not there"))
        elif isinstance(step, MakeDir):
            if step.private:
                ensure_private_dir(step.path)
            elif step.path.parent.is_dir():
                # An existing folder (say ~/Pictures) keeps its mode: it is not ours to change.
                step.path.mkdir(mode=0o700, exist_ok=True)
            else:
                echo(
                    f"  not creating {step.path}: {step.path.parent} does not exist "
                    "(an unplugged disk?); rollkeeper will say so until it is there"
                )
                results.append(StepResult(step, False, "parent missing"))
                continue
            results.append(StepResult(step, True))
        else:
            try:
                completed = runner(step.argv)
            except FileNotFoundError:
                raise ServiceInstallError(
                    f"{step.argv[0]} not found: is this a {plan.platform} machine with its "
                    "service manager?"
                ) from None
            output = (completed.stderr or completed.stdout or "").strip()
            ok = completed.returncode == 0
            results.append(StepResult(step, ok, output))
            if not ok and not step.may_fail:
                raise ServiceInstallError(
                    f"`{' '.join(step.argv)}` failed (exit {completed.returncode}): "
                    f"{output or 'no output'}" + _manager_hint(plan.platform, output)
                )
    return results


def _manager_hint(platform: Platform, output: str) -> str:
    if platform == "linux" and ("bus" in output.lower() or "XDG_RUNTIME_DIR" in output):
        return (
            ". There is no user service manager in this session (e.g. over ssh or su): log in "
            "normally, or run `sudo loginctl enable-linger $USER` and log in again"
        )
    return ""


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


# -- status -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceStatus:
    """What ``service status`` reports; ``as_dict`` is the ``--json`` shape."""

    platform: Platform
    unit_path: Path
    installed: bool
    up_to_date: bool | None
    manager_state: str
    running_pid: int | None
    lock_path: Path
    problems: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "platform": self.platform,
            "unit_path": str(self.unit_path),
            "installed": self.installed,
            "up_to_date": self.up_to_date,
            "manager_state": self.manager_state,
            "running": self.running_pid is not None,
            "running_pid": self.running_pid,
            "lock_path": str(self.lock_path),
            "problems": list(self.problems),
        }


def manager_state(platform: Platform, uid: int, runner: Runner = run_command) -> str:
    """The service manager's word on the service: active, inactive, failed, ... or unknown."""
    if platform == "linux":
        argv: list[str] = ["systemctl", "--user", "is-active", UNIT_NAME]
    else:
        argv = ["launchctl", "print", f"gui/{uid}/{LAUNCHD_LABEL}"]
    try:
        completed = runner(argv)
    except (FileNotFoundError, subprocess.TimeoutExpired) as error:
        return f"unknown ({argv[0]}: {type(error).__name__})"
    if platform == "linux":
        state = completed.stdout.strip()
        if state:
            return state
        return "unknown (" + (completed.stderr.strip() or f"exit {completed.returncode}") + ")"
    return "loaded" if completed.returncode == 0 else "not loaded"


def _shell_word(word: str) -> str:
    import shlex

    return shlex.quote(word)
