"""Install rollkeeper as a per-user service: the systemd user unit or the launchd agent.

Install, uninstall and status are turned into a :class:`ServicePlan` (:mod:`.plan`): files to
write or remove, folders to create and commands to run, in order. ``--dry-run`` prints the
plan; otherwise :func:`execute_plan` (:mod:`.execute`) carries it out. The other modules are
what the plan is made from: the command and the file places (:mod:`.locations`), the unit and
plist filled in from the templates (:mod:`.render`), the optional namespace sandbox and its
probe (:mod:`.sandbox`), the service manager's commands (:mod:`.manager_commands`) and what
``service status`` reports (:mod:`.status`).

Every name is importable from here, as it was when this was one module.
"""

from rollkeeper.host.unit_install.errors import ServiceInstallError
from rollkeeper.host.unit_install.execute import StepResult, execute_plan
from rollkeeper.host.unit_install.locations import (
    CARRIED_VARIABLES,
    LAUNCHD_LABEL,
    PLATFORMS,
    UNIT_NAME,
    Platform,
    carried_environment,
    home_dir,
    host_platform,
    macos_log_dir,
    rollkeeper_command,
    unit_file_path,
    writable_roots,
)
from rollkeeper.host.unit_install.manager_commands import Runner, run_command
from rollkeeper.host.unit_install.plan import (
    InstallInputs,
    MakeDir,
    RemoveFile,
    RunCommand,
    ServicePlan,
    Step,
    WriteFile,
    linux_notes,
    macos_notes,
    plan_install,
    plan_uninstall,
)
from rollkeeper.host.unit_install.render import (
    LAUNCHD_TEMPLATE,
    SYSTEMD_TEMPLATE,
    exec_start_argv,
    read_template,
    render_launchd_plist,
    render_systemd_unit,
    systemd_quote,
)
from rollkeeper.host.unit_install.sandbox import (
    NAMESPACE_SANDBOX_OPTIONS,
    SandboxChoice,
    namespace_sandbox_works,
)
from rollkeeper.host.unit_install.status import ServiceStatus, manager_state

__all__ = [
    "CARRIED_VARIABLES",
    "LAUNCHD_LABEL",
    "LAUNCHD_TEMPLATE",
    "NAMESPACE_SANDBOX_OPTIONS",
    "PLATFORMS",
    "SYSTEMD_TEMPLATE",
    "UNIT_NAME",
    "InstallInputs",
    "MakeDir",
    "Platform",
    "RemoveFile",
    "RunCommand",
    "Runner",
    "SandboxChoice",
    "ServiceInstallError",
    "ServicePlan",
    "ServiceStatus",
    "Step",
    "StepResult",
    "WriteFile",
    "carried_environment",
    "exec_start_argv",
    "execute_plan",
    "home_dir",
    "host_platform",
    "linux_notes",
    "macos_log_dir",
    "macos_notes",
    "manager_state",
    "namespace_sandbox_works",
    "plan_install",
    "plan_uninstall",
    "read_template",
    "render_launchd_plist",
    "render_systemd_unit",
    "rollkeeper_command",
    "run_command",
    "systemd_quote",
    "unit_file_path",
    "writable_roots",
]
