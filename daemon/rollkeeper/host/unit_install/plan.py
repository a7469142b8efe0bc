"""The plan of an install or uninstall: files to write or remove, folders, commands, in order.

Install, uninstall and their ``--dry-run`` share one plan: :func:`plan_install` and
:func:`plan_uninstall` only decide, :func:`~rollkeeper.host.unit_install.execute.execute_plan`
carries a plan out. Keeping the plan as data is what lets ``--dry-run`` print exactly what a
real install would do, and what lets tests check the steps without a service manager.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rollkeeper.host.unit_install.locations import (
    LAUNCHD_LABEL,
    UNIT_NAME,
    Platform,
    carried_environment,
    macos_log_dir,
    offsite_writable_paths,
    unit_file_path,
    writable_for_service,
    writable_roots,
)
from rollkeeper.host.unit_install.render import (
    read_template,
    render_launchd_plist,
    render_systemd_unit,
)


@dataclass(frozen=True)
class WriteFile:
    """Write ``content`` to ``path`` (its folder is created if needed)."""

    path: Path
    content: str

    def describe(self) -> str:
        return f"write {self.path}"


@dataclass(frozen=True)
class RemoveFile:
    """Remove ``path`` (a file that is already gone is fine)."""

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
    #: ``[offsite]`` engine and its repository or remote ("" when off): what it writes must be
    #: writable in the sandbox too.
    offsite_engine: str = ""
    offsite_destination: str = ""


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
        user = inputs.environ.get("USER") or inputs.environ.get("LOGNAME") or ""
        # On a removable disk the whole mount root is writable: the disk may be plugged in
        # after the service started (docs/service.md, "Removable disks").
        writable = writable_roots(
            writable_for_service(path, user)
            for path in (
                inputs.archive_path,
                state_dir,
                inputs.pairing_dir,
                *offsite_writable_paths(
                    inputs.offsite_engine, inputs.offsite_destination, inputs.environ
                ),
            )
        )
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


def _shell_word(word: str) -> str:
    import shlex

    return shlex.quote(word)
