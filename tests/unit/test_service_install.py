"""Carrying out install/uninstall plans on a real folder, with the service manager's commands
answered by a recorder (systemctl/launchctl cannot run here; their files and order can)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from rollkeeper.host.unit_install import (
    InstallInputs,
    MakeDir,
    Platform,
    RunCommand,
    ServiceInstallError,
    ServicePlan,
    exec_start_argv,
    execute_plan,
    plan_install,
    plan_uninstall,
    read_template,
    render_systemd_unit,
    rollkeeper_command,
    writable_roots,
)


class Manager:
    """Answers service-manager commands and remembers them."""

    def __init__(self, failing: dict[str, tuple[int, str]] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.failing = failing or {}

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        code, stderr = self.failing.get(" ".join(argv), (0, ""))
        return subprocess.CompletedProcess(list(argv), code, "", stderr)


def inputs(home: Path, platform: Platform = "linux") -> InstallInputs:
    return InstallInputs(
        platform=platform,
        command=("/opt/rk/bin/rollkeeper",),
        config_path=home / "rollkeeper.toml",
        archive_path=home / "Pictures" / "iPhone",
        state_path=home / ".local" / "state" / "rollkeeper" / "state.sqlite3",
        pairing_dir=home / ".local" / "state" / "rollkeeper" / "pairing",
        environ={"HOME": str(home)},
        uid=1000,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_linux_install_writes_the_unit_then_enables_and_restarts(tmp_path: Path) -> None:
    """A Linux install writes the user unit, then reloads, enables and restarts it in that order,
    and creates the private state folders and the archive without touching the user's existing
    folders."""
    (tmp_path / "Pictures").mkdir(mode=0o755)
    (tmp_path / "Pictures").chmod(0o755)
    manager = Manager()

    execute_plan(plan_install(inputs(tmp_path), True), runner=manager, echo=lambda _: None)

    unit = tmp_path / ".config" / "systemd" / "user" / "rollkeeper.service"
    assert 'ExecStart="/opt/rk/bin/rollkeeper" --config' in unit.read_text()
    assert manager.calls == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "rollkeeper.service"],
        ["systemctl", "--user", "restart", "rollkeeper.service"],
    ]
    assert mode(tmp_path / ".local" / "state" / "rollkeeper") == 0o700
    assert mode(tmp_path / ".local" / "state" / "rollkeeper" / "pairing") == 0o700
    assert (tmp_path / "Pictures" / "iPhone").is_dir()
    assert mode(tmp_path / "Pictures") == 0o755  # an existing folder of the user's is left alone


def test_macos_install_replaces_a_loaded_agent(tmp_path: Path) -> None:
    """A macOS install writes the agent's plist and replaces a loaded agent (bootout, enable,
    bootstrap), going on when bootout finds none loaded."""
    # bootout of an agent that is not loaded fails; that must not stop the install.
    manager = Manager({"launchctl bootout gui/1000/org.rollkeeper.agent": (3, "No such process")})

    execute_plan(
        plan_install(inputs(tmp_path, "macos"), False), runner=manager, echo=lambda _: None
    )

    plist = tmp_path / "Library" / "LaunchAgents" / "org.rollkeeper.agent.plist"
    assert plist.is_file()
    assert manager.calls == [
        ["launchctl", "bootout", "gui/1000/org.rollkeeper.agent"],
        ["launchctl", "enable", "gui/1000/org.rollkeeper.agent"],
        ["launchctl", "bootstrap", "gui/1000", str(plist)],
    ]
    assert (tmp_path / "Library" / "Logs" / "rollkeeper").is_dir()


def test_a_missing_user_bus_explains_linger(tmp_path: Path) -> None:
    """A systemctl failure for lack of a user bus stops the install with systemctl's words and the
    loginctl enable-linger advice, running nothing after it."""
    manager = Manager(
        {"systemctl --user daemon-reload": (1, "Failed to connect to bus: No medium found")}
    )

    with pytest.raises(ServiceInstallError) as failed:
        execute_plan(plan_install(inputs(tmp_path), True), runner=manager, echo=lambda _: None)

    assert "Failed to connect to bus" in str(failed.value)
    assert "loginctl enable-linger" in str(failed.value)
    assert len(manager.calls) == 1  # nothing after the failed step


def test_uninstall_removes_the_unit_and_keeps_the_data(tmp_path: Path) -> None:
    """Uninstall disables the service and removes its unit, tolerating a unit that is not loaded,
    and keeps the state and the archive."""
    (tmp_path / "Pictures").mkdir()
    execute_plan(plan_install(inputs(tmp_path), True), runner=Manager(), echo=lambda _: None)
    manager = Manager({"systemctl --user disable --now rollkeeper.service": (1, "not loaded")})

    plan = plan_uninstall("linux", {"HOME": str(tmp_path)}, 1000)
    execute_plan(plan, runner=manager, echo=lambda _: None)

    assert not plan.unit_path.exists()
    assert (tmp_path / ".local" / "state" / "rollkeeper").is_dir()
    assert (tmp_path / "Pictures" / "iPhone").is_dir()
    assert manager.calls == [
        ["systemctl", "--user", "disable", "--now", "rollkeeper.service"],
        ["systemctl", "--user", "daemon-reload"],
    ]


def test_a_file_where_a_private_folder_belongs_stops_the_plan(tmp_path: Path) -> None:
    """A file where a private folder belongs stops the plan before any service-manager command
    runs."""
    blocker = tmp_path / "state"
    blocker.write_text("a file, not a folder")
    plan = ServicePlan("linux", tmp_path / "unit")
    plan.steps = [MakeDir(blocker, private=True), RunCommand(("systemctl", "--user", "x"))]
    manager = Manager()

    with pytest.raises(NotADirectoryError):
        execute_plan(plan, runner=manager, echo=lambda _: None)
    assert manager.calls == []


def test_writable_roots_drop_nested_and_repeated_folders() -> None:
    """writable_roots keeps each folder once and drops those inside another one."""
    roots = writable_roots(
        [
            Path("/data/photos"),
            Path("/home/a/state"),
            Path("/home/a/state/pairing"),
            Path("/data/photos/"),
        ]
    )
    assert roots == [Path("/data/photos"), Path("/home/a/state")]


def test_rollkeeper_command_prefers_the_running_script(tmp_path: Path) -> None:
    """The service's command is the running script, else rollkeeper on PATH, else this interpreter
    with -m rollkeeper."""
    script = tmp_path / "bin" / "rollkeeper"
    assert rollkeeper_command(str(script), which=lambda _: None) == [str(script)]
    assert rollkeeper_command("rollkeeper", which=lambda _: "/usr/bin/rollkeeper") == [
        "/usr/bin/rollkeeper"
    ]
    # Started as `python -m rollkeeper` with no rollkeeper on PATH: this interpreter, as a module.
    fallback = rollkeeper_command("/src/daemon/__main__.py", which=lambda _: None)
    assert fallback == [os.path.abspath(sys.executable), "-m", "rollkeeper"]


def test_exec_start_argv_undoes_the_unit_quoting(tmp_path: Path) -> None:
    """exec_start_argv gives back the exact arguments of a unit whose paths hold quotes, %, $ and
    backslashes."""
    odd = tmp_path / 'it\'s 100% "$HOME"\\x'
    command = (str(odd / "rollkeeper"),)
    config = odd / "my $config.toml"
    unit = render_systemd_unit(
        read_template("linux"), command, config, [tmp_path], {"XDG_STATE_HOME": str(odd)}, True
    )

    assert exec_start_argv(unit) == [str(odd / "rollkeeper"), "--config", str(config), "run"]


def test_exec_start_argv_refuses_what_it_cannot_expand() -> None:
    """exec_start_argv refuses a systemd specifier, a variable, or a unit without exactly one
    ExecStart, instead of guessing."""
    with pytest.raises(ValueError, match="specifier"):
        exec_start_argv("ExecStart=%h/bin/rollkeeper run\n")
    with pytest.raises(ValueError, match="variable"):
        exec_start_argv("ExecStart=/bin/rollkeeper --config $CONFIG run\n")
    with pytest.raises(ValueError, match="one ExecStart"):
        exec_start_argv("[Service]\n")


def test_an_archive_on_a_missing_mount_point_is_not_created(tmp_path: Path) -> None:
    """Creating /media/disk/photos while the disk is unplugged would fill the system disk."""
    settings = inputs(tmp_path)
    unplugged = tmp_path / "media" / "backup-disk" / "photos"
    settings = InstallInputs(**{**settings.__dict__, "archive_path": unplugged})
    lines: list[str] = []

    execute_plan(plan_install(settings, True), runner=Manager(), echo=lines.append)

    assert not (tmp_path / "media").exists()
    assert any("not creating" in line and "unplugged" in line for line in lines)
    unit = tmp_path / ".config" / "systemd" / "user" / "rollkeeper.service"
    assert f'"-{unplugged}"' in unit.read_text()  # still writable once the disk is back


def test_an_archive_on_a_removable_disk_makes_its_mount_root_writable(tmp_path: Path) -> None:
    """An archive under /media/USER, /run/media/USER, /media or /mnt makes the whole mount
    root writable in the sandbox (a disk plugged in after the start is mounted there), never
    with RequiresMountsFor=; a local offsite repository and the engine's cache are writable
    too; an archive elsewhere stays the only writable folder of its own."""
    from rollkeeper.host.unit_install import InstallInputs, plan_install
    from rollkeeper.host.unit_install.locations import mount_root, offsite_writable_paths

    assert mount_root(Path("/media/ana/Photos/archive"), "ana") == Path("/media/ana")
    assert mount_root(Path("/run/media/ana/Disk/photos"), "ana") == Path("/run/media/ana")
    assert mount_root(Path("/media/Disk/photos"), "ana") == Path("/media")
    assert mount_root(Path("/mnt/backup/photos"), "") == Path("/mnt")
    assert mount_root(Path("/home/ana/Pictures"), "ana") is None
    assert mount_root(Path("/media"), "ana") is None  # the root itself is no disk
    home = tmp_path / "home"
    assert offsite_writable_paths("restic", "/mnt/nas/restic", {"HOME": str(home)}) == [
        home / ".cache" / "restic",
        Path("/mnt/nas/restic"),
    ]
    assert offsite_writable_paths("rclone", "b2:bucket", {"HOME": str(home)}) == [
        home / ".cache" / "rclone",
        home / ".config" / "rclone",
    ]
    assert offsite_writable_paths("", "", {"HOME": str(home)}) == []

    inputs = InstallInputs(
        platform="linux",
        command=("/usr/bin/rollkeeper",),
        config_path=home / ".config" / "rollkeeper" / "config.toml",
        archive_path=Path("/run/media/ana/Photos/archive"),
        state_path=home / ".local/state/rollkeeper/state.sqlite3",
        pairing_dir=home / ".local/state/rollkeeper/pairing",
        environ={"HOME": str(home), "USER": "ana"},
        uid=1000,
        offsite_engine="restic",
        offsite_destination="/mnt/nas/restic",
    )
    unit = plan_install(inputs, namespace_sandbox=True).unit_content
    assert unit is not None
    (line,) = [text for text in unit.splitlines() if text.startswith("ReadWritePaths=")]
    assert line == (
        f'ReadWritePaths="-/mnt" "-/run/media/ana" "-{home / ".cache" / "restic"}"'
        f' "-{home / ".local/state/rollkeeper"}"'
    )
    settings = [line for line in unit.splitlines() if not line.startswith("#")]
    assert not any(line.startswith("RequiresMountsFor=") for line in settings)
