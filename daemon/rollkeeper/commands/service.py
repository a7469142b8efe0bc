"""``rollkeeper service install | uninstall | status``: rollkeeper as your background service.

Linux: a systemd user unit (``~/.config/systemd/user/rollkeeper.service``). macOS: a launchd
agent (``~/Library/LaunchAgents/org.rollkeeper.agent.plist``). The work is planned in
:mod:`rollkeeper.host.unit_install`; this module gathers the inputs, prints and carries out the
plan.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from rollkeeper import bootstrap
from rollkeeper.config import Config, ConfigError, load_config, resolve_config_path
from rollkeeper.config.paths import UnsetVariableError
from rollkeeper.host.single_instance import InstanceLock
from rollkeeper.host.unit_install import (
    PLATFORMS,
    InstallInputs,
    Platform,
    ServiceInstallError,
    ServicePlan,
    ServiceStatus,
    WriteFile,
    execute_plan,
    host_platform,
    manager_state,
    namespace_sandbox_works,
    plan_install,
    plan_uninstall,
    rollkeeper_command,
    unit_file_path,
)

SERVICE_HELP = """\
Run rollkeeper in the background as your own user, started at login and restarted if it fails.

  rollkeeper service install     write the systemd user unit (Linux) or launchd agent (macOS)
                                 with this rollkeeper and your config, then enable and start it
  rollkeeper service uninstall   stop it and remove the unit (archive, state and config stay)
  rollkeeper service status      installed? up to date with the config? running?

Add --dry-run to see every file and command without changing anything. Install needs a
config file (`rollkeeper config init` writes one) and refuses to run as root: the service
runs as you, and your photos and pairing keys stay yours.
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2


def register(subparsers: Any) -> None:
    """Add ``service`` and its actions to the ``rollkeeper`` parser."""
    parser = subparsers.add_parser(
        "service",
        help="install, remove or inspect the background service (systemd / launchd)",
        description=SERVICE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=lambda args: _usage(parser))
    actions = parser.add_subparsers(dest="service_action", metavar="ACTION")

    install = actions.add_parser(
        "install",
        help="install, enable and start the service",
        description=(
            "Render the unit (or agent) with the absolute path of this rollkeeper and of the "
            "config, write it for your user, enable and start it, and say how to read its "
            "logs. Running it again updates an installed service (do so after changing the "
            "archive or state path: the sandbox lets the service write only there)."
        ),
    )
    _add_common(install)
    install.add_argument(
        "--sandbox",
        choices=("auto", "full", "basic"),
        default="auto",
        help=(
            "Linux only. full: add the file-system sandbox (read-only system, private /tmp, "
            "only the archive and state writable), which needs user namespaces; basic: leave "
            "it out; auto (default): try it with a throw-away unit first and use it if it works"
        ),
    )
    install.set_defaults(handler=_install)

    uninstall = actions.add_parser(
        "uninstall",
        help="stop and remove the service (your archive, state and config stay)",
        description="Stop and disable the service and remove its unit or agent file.",
    )
    _add_common(uninstall)
    uninstall.set_defaults(handler=_uninstall)

    status = actions.add_parser(
        "status",
        help="is the service installed, up to date, running?",
        description=(
            "Say whether the unit/agent is installed, whether it still matches this rollkeeper "
            "and config, what the service manager says, and which process holds the state lock."
        ),
    )
    status.add_argument(
        "--platform", choices=PLATFORMS, default=None, help="default: this machine's"
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=_status)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print every file and command, change nothing",
    )
    parser.add_argument(
        "--platform",
        choices=PLATFORMS,
        default=None,
        help="default: this machine's; another platform only with --dry-run (to see its files)",
    )


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_REFUSED


def _platform(args: argparse.Namespace) -> Platform:
    chosen: Platform = args.platform or host_platform()
    return chosen


def _error(message: str) -> None:
    print(f"rollkeeper service: {message}", file=sys.stderr)


def _refuse_foreign_platform(args: argparse.Namespace, platform: Platform) -> bool:
    if platform != host_platform() and not args.dry_run:
        _error(f"this machine is not {platform}: use --dry-run to see what would be installed")
        return True
    return False


def _refuse_root(action: str) -> bool:
    if os.geteuid() == 0:
        _error(
            f"refusing to {action} as root: rollkeeper runs as your own user (your photos, "
            "your pairing keys). Run it again as that user, without sudo."
        )
        return True
    return False


def _install_inputs(args: argparse.Namespace, platform: Platform) -> InstallInputs | None:
    environ = dict(os.environ)
    try:
        config_path = resolve_config_path(args.config, environ)
    except UnsetVariableError as error:
        _error(f"--config: {error}")
        return None
    if config_path is None:
        _error(
            "no config file yet: the service needs one it can always find. Write one with "
            "`rollkeeper config init` (or name one with --config), then install again."
        )
        return None
    config_path = Path(os.path.abspath(config_path))
    try:
        config = load_config(config_path, environ)
    except ConfigError as error:
        _error(f"the config has problems; fix them before installing:\n{error}")
        return None
    return InstallInputs(
        platform=platform,
        command=tuple(rollkeeper_command()),
        config_path=config_path,
        archive_path=Path(config.archive.path),
        state_path=Path(config.state.path),
        pairing_dir=Path(config.device.pairing_dir),
        environ=environ,
        uid=os.getuid(),
        **_offsite_inputs(config),
    )


def _offsite_inputs(config: Config) -> dict[str, str]:
    """The offsite engine and its destination, whose files the sandbox must let it write."""
    offsite = config.offsite
    destination = offsite.repository if offsite.engine == "restic" else offsite.remote
    return {"offsite_engine": offsite.engine, "offsite_destination": destination}


def _install(args: argparse.Namespace) -> int:
    platform = _platform(args)
    if _refuse_foreign_platform(args, platform):
        return EXIT_REFUSED
    if not args.dry_run and _refuse_root("install the service"):
        return EXIT_REFUSED
    inputs = _install_inputs(args, platform)
    if inputs is None:
        return EXIT_FAILED
    try:
        namespace_sandbox = _choose_sandbox(args, platform)
        plan = plan_install(inputs, namespace_sandbox)
    except ServiceInstallError as error:
        _error(str(error))
        return EXIT_FAILED
    return _carry_out(plan, args.dry_run, "installed and started")


def _choose_sandbox(args: argparse.Namespace, platform: Platform) -> bool:
    if platform != "linux" or args.sandbox == "basic":
        return False
    if args.sandbox == "full" or args.dry_run:
        if args.sandbox == "auto":
            print(
                "(dry run: a real install first tries the file-system sandbox with "
                "`systemd-run --user`; shown here with it)"
            )
        return True
    works, output = namespace_sandbox_works()
    if not works:
        print(f"The file-system sandbox does not work here, leaving it out: {output or 'failed'}")
    return works


def _uninstall(args: argparse.Namespace) -> int:
    platform = _platform(args)
    if _refuse_foreign_platform(args, platform):
        return EXIT_REFUSED
    if not args.dry_run and _refuse_root("uninstall the service"):
        return EXIT_REFUSED
    plan = plan_uninstall(platform, os.environ, os.getuid())
    return _carry_out(plan, args.dry_run, "stopped and removed")


def _carry_out(plan: ServicePlan, dry_run: bool, done: str) -> int:
    for warning in plan.warnings:
        print(f"warning: {warning}")
    if dry_run:
        print(f"Dry run for {plan.platform}: nothing is changed. A real run would:")
        for step in plan.steps:
            print(f"  {step.describe()}")
        for step in plan.steps:
            if isinstance(step, WriteFile):
                print(f"\n--- {step.path} ---\n{step.content.rstrip()}\n--- end ---")
        if os.geteuid() == 0:
            print("\n(as root, a real run would be refused: the service runs as your user)")
    else:
        try:
            execute_plan(plan, echo=lambda line: print(f"  {line}"))
        except (ServiceInstallError, OSError) as error:
            _error(str(error))
            return EXIT_FAILED
        print(f"rollkeeper service {done} ({plan.unit_path}).")
    if plan.notes:
        print()
        for note in plan.notes:
            print(note)
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    platform: Platform = args.platform or host_platform()
    environ = dict(os.environ)
    unit_path = unit_file_path(platform, environ)
    problems: list[str] = []
    lock_path = Path("(unknown)")
    expected: set[str] = set()
    try:
        config_path = resolve_config_path(args.config, environ)
        config = load_config(config_path, environ)
        state_path = Path(config.state.path)
        lock_path = bootstrap.state_lock_path(state_path)
        if config_path is not None:
            inputs = InstallInputs(
                platform=platform,
                command=tuple(rollkeeper_command()),
                config_path=Path(os.path.abspath(config_path)),
                archive_path=Path(config.archive.path),
                state_path=state_path,
                pairing_dir=Path(config.device.pairing_dir),
                environ=environ,
                uid=os.getuid(),
                **_offsite_inputs(config),
            )
            for sandbox in (True, False) if platform == "linux" else (False,):
                content = plan_install(inputs, sandbox).unit_content
                if content is not None:
                    expected.add(content.rstrip())
    except (ConfigError, UnsetVariableError, ServiceInstallError) as error:
        problems.append(f"config: {error}")
    installed = unit_path.is_file()
    up_to_date: bool | None = None
    if installed and expected:
        # Trailing whitespace is no difference that matters (editors add or drop a newline).
        installed_text = unit_path.read_text(encoding="utf-8").rstrip()
        up_to_date = installed_text in expected
        if not up_to_date:
            problems.append(
                "the installed unit differs from what this rollkeeper and config would install"
                f"{_first_difference(installed_text, expected)}: "
                "run `rollkeeper service install` again"
            )
    running_pid = InstanceLock.holder_pid(lock_path) if lock_path.name != "(unknown)" else None
    status = ServiceStatus(
        platform=platform,
        unit_path=unit_path,
        installed=installed,
        up_to_date=up_to_date,
        manager_state=manager_state(platform, os.getuid()) if installed else "not installed",
        running_pid=running_pid,
        lock_path=lock_path,
        problems=tuple(problems),
    )
    if args.json:
        print(json.dumps(status.as_dict(), indent=2))
    else:
        _print_status(status)
    return EXIT_OK if installed and not problems else EXIT_FAILED


def _first_difference(installed: str, expected: set[str]) -> str:
    """`` (installed X, now Y)`` for the first setting that changed, against the closest
    expected variant; comments and blank lines do not count."""

    def settings(text: str) -> list[str]:
        return [
            line.strip()
            for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "<!--"))
        ]

    mine = settings(installed)
    best: tuple[int, str] | None = None
    for variant in expected:
        theirs = settings(variant)
        changed = [(a, b) for a, b in zip(mine, theirs, strict=False) if a != b]
        removed = len(mine) != len(theirs)
        if not changed and not removed:
            continue
        score = len(changed) + abs(len(mine) - len(theirs))
        first = changed[0] if changed else ("(fewer lines)", "(more lines)")
        text = f" (installed {first[0]!r}, now {first[1]!r})"
        if best is None or score < best[0]:
            best = (score, text)
    return best[1] if best is not None else ""


def _print_status(status: ServiceStatus) -> None:
    print(f"unit:      {status.unit_path} ({'installed' if status.installed else 'not installed'})")
    if status.up_to_date is not None:
        print(f"matches:   {'yes' if status.up_to_date else 'no'}")
    print(f"manager:   {status.manager_state}")
    if status.running_pid is not None:
        print(f"running:   yes, pid {status.running_pid} holds {status.lock_path}")
    else:
        print(f"running:   no process holds {status.lock_path}")
    for problem in status.problems:
        print(f"problem:   {problem}")
