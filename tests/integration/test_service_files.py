"""The systemd unit and launchd agent as `rollkeeper service` renders them, checked by the real
tools: `systemd-analyze verify` for the unit, plistlib for the agent, and the real command line
in a subprocess with HOME pointed at a temporary folder.
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from rollkeeper.host.unit_install import LAUNCHD_TEMPLATE, SYSTEMD_TEMPLATE, exec_start_argv

ROLLKEEPER = Path(sys.executable).parent / "rollkeeper"
PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def clean_environment(home: Path) -> dict[str, str]:
    """The caller's environment minus anything that would steer rollkeeper elsewhere."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("XDG_", "ROLLKEEPER_")) and name not in {"USER", "LOGNAME"}
    }
    environment["HOME"] = str(home)
    return environment


def write_config(home: Path, folder_name: str = "photos") -> Path:
    config = home / "rollkeeper.toml"
    config.write_text(
        f'[archive]\npath = "{home / folder_name}"\n'
        f'[state]\npath = "{home / "state" / "state.sqlite3"}"\n'
        f'[device]\npairing_dir = "{home / "state" / "pairing"}"\n',
        encoding="utf-8",
    )
    return config


def rollkeeper(
    home: Path, *arguments: str, executable: Path = ROLLKEEPER, **extra_environment: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(executable), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean_environment(home), **extra_environment},
        cwd=home,
    )


def rendered_files(output: str) -> dict[str, str]:
    """The files a dry run prints between `--- PATH ---` and `--- end ---`."""
    return {
        match.group(1): match.group(2)
        for match in re.finditer(r"^--- (/.+) ---\n(.*?)\n--- end ---$", output, re.S | re.M)
    }


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.stat().st_mode, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
    }


def systemd_verify(unit_file: Path, runtime_dir: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not found (Debian package `systemd`; .ci/run installs it)")
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    # --user: the unit is a user unit. A user manager needs XDG_RUNTIME_DIR, which a container
    # or CI shell has none of; verify only uses it as a search path.
    return subprocess.run(
        ["systemd-analyze", "--user", "verify", str(unit_file)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir), "SYSTEMD_LOG_LEVEL": "notice"},
    )


def render_unit(
    home: Path, *arguments: str, executable: Path = ROLLKEEPER, config: Path | None = None
) -> tuple[str, str]:
    config = config or write_config(home)
    result = rollkeeper(
        home,
        "--config",
        str(config),
        "service",
        "install",
        "--dry-run",
        "--platform",
        "linux",
        *arguments,
        executable=executable,
    )
    assert result.returncode == 0, result.stderr
    unit_path = str(home / ".config" / "systemd" / "user" / "rollkeeper.service")
    files = rendered_files(result.stdout)
    assert list(files) == [unit_path]
    return files[unit_path], result.stdout


# -- the systemd user unit ----------------------------------------------------------------------


@pytest.mark.parametrize("sandbox", ["full", "basic"])
def test_rendered_unit_passes_systemd_analyze_verify(tmp_path: Path, sandbox: str) -> None:
    """The rendered user unit, with either sandbox, passes systemd-analyze verify without a single
    warning."""
    unit, _ = render_unit(tmp_path, "--sandbox", sandbox)
    unit_file = tmp_path / "rollkeeper.service"
    unit_file.write_text(unit, encoding="utf-8")

    verified = systemd_verify(unit_file, tmp_path / "runtime")

    assert verified.returncode == 0, verified.stderr
    # verify only warns (exit 0) about unknown keys or bad values: any output is a finding.
    assert verified.stderr.strip() == "" and verified.stdout.strip() == ""


def test_a_broken_unit_is_caught_by_the_verify_step(tmp_path: Path) -> None:
    """The check above can fail: the same verify call flags a unit whose command is missing."""
    unit, _ = render_unit(tmp_path)
    unit_file = tmp_path / "rollkeeper.service"
    unit_file.write_text(unit.replace(str(ROLLKEEPER), str(tmp_path / "gone")), encoding="utf-8")

    verified = systemd_verify(unit_file, tmp_path / "runtime")

    assert verified.returncode != 0
    assert "is not executable" in verified.stderr


def test_unit_runs_this_rollkeeper_with_this_config_as_a_notify_service(tmp_path: Path) -> None:
    """The unit runs this rollkeeper with this config as a notify service with a watchdog, umask
    0077 and a strict sandbox in which only the archive and the state folder are writable."""
    unit, _ = render_unit(tmp_path, "--sandbox", "full")
    options = [line for line in unit.splitlines() if line and not line.startswith("#")]

    config = tmp_path / "rollkeeper.toml"
    assert f'ExecStart="{ROLLKEEPER}" --config "{config}" run' in options
    for expected in (
        "Type=notify",
        "NotifyAccess=main",
        "Restart=on-failure",
        "WatchdogSec=60s",
        "TimeoutStopSec=90s",
        "UMask=0077",
        "NoNewPrivileges=yes",
        "PrivateUsers=yes",
        "PrivateTmp=yes",
        "ProtectSystem=strict",
        "Environment=PYTHONUNBUFFERED=1",
        "WantedBy=default.target",
    ):
        assert expected in options
    # The archive and the state folder (with pairing inside it) are the only writable places.
    assert f'ReadWritePaths="-{tmp_path / "photos"}" "-{tmp_path / "state"}"' in options
    assert not PLACEHOLDER.search(unit)


def test_basic_sandbox_leaves_out_only_the_namespace_options(tmp_path: Path) -> None:
    """The basic sandbox leaves out only the namespace options, keeps NoNewPrivileges, and the
    output says file-system sandboxing is off."""
    unit, output = render_unit(tmp_path, "--sandbox", "basic")

    for absent in ("PrivateUsers=", "PrivateTmp=", "ProtectSystem=", "ReadWritePaths="):
        assert not any(line.startswith(absent) for line in unit.splitlines())
    assert "NoNewPrivileges=yes" in unit.splitlines()
    assert "file-system sandboxing" in output


def test_awkward_paths_survive_systemd_unquoting(tmp_path: Path) -> None:
    """Spaces, % (a specifier) and $ (a variable) in the paths: verify resolves the command
    exactly as systemd would run it, so a wrong escape shows up as "not executable"."""
    odd_folder = tmp_path / "my bin 100% $HOME"
    odd_folder.mkdir()
    odd_rollkeeper = odd_folder / "rollkeeper"
    odd_rollkeeper.symlink_to(ROLLKEEPER)

    unit, _ = render_unit(tmp_path, "--sandbox", "full", executable=odd_rollkeeper)
    unit_file = tmp_path / "rollkeeper.service"
    unit_file.write_text(unit, encoding="utf-8")

    # The symlink is kept as typed (not resolved): pipx-style upgrades repoint it.
    assert 'ExecStart="' + str(odd_rollkeeper).replace("%", "%%") + '" --config' in unit
    verified = systemd_verify(unit_file, tmp_path / "runtime")
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr.strip() == ""


def test_xdg_folders_of_the_installing_shell_are_carried_into_the_unit(tmp_path: Path) -> None:
    """XDG folders of the installing shell are carried into the unit's environment."""
    config = write_config(tmp_path)
    result = rollkeeper(
        tmp_path,
        "--config",
        str(config),
        "service",
        "install",
        "--dry-run",
        "--platform",
        "linux",
        XDG_STATE_HOME=str(tmp_path / "xdg state"),
    )

    assert result.returncode == 0, result.stderr
    unit = next(iter(rendered_files(result.stdout).values()))
    assert f'Environment="XDG_STATE_HOME={tmp_path / "xdg state"}"' in unit.splitlines()


# -- the launchd agent --------------------------------------------------------------------------


def test_rendered_plist_parses_and_has_the_agent_keys(tmp_path: Path) -> None:
    """The rendered launchd agent parses as a plist with exactly the agent's keys, and the output
    says how to bootstrap it and where its log is."""
    config = write_config(tmp_path)

    result = rollkeeper(
        tmp_path, "--config", str(config), "service", "install", "--dry-run", "--platform", "macos"
    )

    assert result.returncode == 0, result.stderr
    plist_path = str(tmp_path / "Library" / "LaunchAgents" / "org.rollkeeper.agent.plist")
    files = rendered_files(result.stdout)
    assert list(files) == [plist_path]
    agent = plistlib.loads(files[plist_path].encode("utf-8"))
    log_file = str(tmp_path / "Library" / "Logs" / "rollkeeper" / "rollkeeper.log")
    assert agent == {
        "Label": "org.rollkeeper.agent",
        "ProgramArguments": [str(ROLLKEEPER), "--config", str(config), "run"],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 10,
        "ExitTimeOut": 90,
        "ProcessType": "Background",
        "Umask": 0o077,
        "StandardOutPath": log_file,
        "StandardErrorPath": log_file,
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
    }
    uid = os.getuid()
    assert f"run launchctl bootstrap gui/{uid} {plist_path}" in result.stdout
    assert "Logs: tail -f " + log_file in result.stdout


def test_plist_escapes_xml_in_paths(tmp_path: Path) -> None:
    """Paths holding & and < are escaped in the agent's XML and parse back to the same paths."""
    home = tmp_path / "R&D <photos>"
    home.mkdir()
    config = write_config(home)

    result = rollkeeper(
        home,
        "--config",
        str(config),
        "service",
        "install",
        "--dry-run",
        "--platform",
        "macos",
        XDG_CONFIG_HOME=str(home / "cfg & co"),
    )

    assert result.returncode == 0, result.stderr
    agent = plistlib.loads(next(iter(rendered_files(result.stdout).values())).encode("utf-8"))
    assert agent["ProgramArguments"][2] == str(config)
    assert agent["EnvironmentVariables"]["XDG_CONFIG_HOME"] == str(home / "cfg & co")


def test_templates_hold_only_the_placeholders_the_renderer_fills() -> None:
    """The unit and agent templates hold only the placeholders the renderer fills."""
    assert set(PLACEHOLDER.findall(SYSTEMD_TEMPLATE.read_text())) == {
        "@ROLLKEEPER@",
        "@CONFIG@",
        "@ENVIRONMENT@",
        "@NAMESPACE_SANDBOX@",
    }
    assert set(PLACEHOLDER.findall(LAUNCHD_TEMPLATE.read_text())) == {
        "@ROLLKEEPER@",
        "@CONFIG@",
        "@LOG_DIR@",
        "@ENVIRONMENT@",
    }


# -- dry run, refusals, status ------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["linux", "macos"])
@pytest.mark.parametrize("action", ["install", "uninstall"])
def test_dry_run_touches_nothing(tmp_path: Path, platform: str, action: str) -> None:
    """A dry run of install or uninstall, on either platform, says nothing is changed and touches no
    file."""
    config = write_config(tmp_path)
    before = snapshot(tmp_path)

    result = rollkeeper(
        tmp_path, "--config", str(config), "service", action, "--dry-run", "--platform", platform
    )

    assert result.returncode == 0, result.stderr
    assert "nothing is changed" in result.stdout
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "photos").exists()


def test_linux_install_explains_logs_and_linger(tmp_path: Path) -> None:
    """A Linux install says how to follow the logs and keep the service running after logout, and
    lists its systemctl steps in order."""
    _, output = render_unit(tmp_path)

    assert "journalctl --user -u rollkeeper -f" in output
    assert "loginctl enable-linger" in output
    steps = [line.strip() for line in output.splitlines() if line.startswith("  run ")]
    assert steps == [
        "run systemctl --user daemon-reload",
        "run systemctl --user enable rollkeeper.service",
        "run systemctl --user restart rollkeeper.service",
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="checks the refusal that only root gets")
def test_install_as_root_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """Installing as root is refused with exit code 2, without a traceback, and writes nothing."""
    config = write_config(tmp_path)
    before = snapshot(tmp_path)

    result = rollkeeper(tmp_path, "--config", str(config), "service", "install")

    assert result.returncode == 2
    assert "refusing to install the service as root" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before


def test_install_without_a_config_file_says_how_to_make_one(tmp_path: Path) -> None:
    """Installing without a config file says how to make one and writes nothing."""
    result = rollkeeper(tmp_path, "service", "install", "--dry-run", "--platform", "linux")

    assert result.returncode == 1
    assert "rollkeeper config init" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_install_with_a_broken_config_shows_its_problems(tmp_path: Path) -> None:
    """Installing with a broken config shows its problems with FILE:LINE and no traceback."""
    config = tmp_path / "rollkeeper.toml"
    config.write_text('[archive]\npath = "relative/photos"\n', encoding="utf-8")

    result = rollkeeper(tmp_path, "--config", str(config), "service", "install", "--dry-run")

    assert result.returncode == 1
    assert f"{config}:2" in result.stderr
    assert "Traceback" not in result.stderr


def test_another_platform_only_as_a_dry_run(tmp_path: Path) -> None:
    """Installing for another platform than this one is allowed only as a dry run."""
    other = "macos" if sys.platform != "darwin" else "linux"
    config = write_config(tmp_path)

    result = rollkeeper(
        tmp_path, "--config", str(config), "service", "install", "--platform", other
    )

    assert result.returncode == 2
    assert "--dry-run" in result.stderr


def status(home: Path, config: Path) -> tuple[int, dict[str, Any]]:
    result = rollkeeper(
        home, "--config", str(config), "service", "status", "--platform", "linux", "--json"
    )
    parsed: dict[str, Any] = json.loads(result.stdout)
    return result.returncode, parsed


HOLDER = """
import sys
from pathlib import Path
from rollkeeper.host.single_instance import InstanceLock
InstanceLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
sys.stdin.read()
"""


def test_status_reports_installation_drift_and_the_running_process(tmp_path: Path) -> None:
    """service status reports not installed, then installed, up to date and running under the lock
    holder's pid, then out of date, naming what changed, once the archive moves."""
    config = write_config(tmp_path)
    unit, _ = render_unit(tmp_path)
    unit_path = tmp_path / ".config" / "systemd" / "user" / "rollkeeper.service"

    exit_code, report = status(tmp_path, config)
    assert exit_code == 1
    assert report["installed"] is False
    assert report["running"] is False

    unit_path.parent.mkdir(parents=True)
    unit_path.write_text(unit, encoding="utf-8")
    (tmp_path / "state").mkdir()
    lock_path = tmp_path / "state" / "state.sqlite3.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        exit_code, report = status(tmp_path, config)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert report["installed"] is True
    assert report["up_to_date"] is True
    assert report["running_pid"] == holder.pid
    assert report["lock_path"] == str(lock_path)
    assert exit_code == 0, report["problems"]

    # The archive moved in the config: the installed sandbox no longer lets it write there.
    write_config(tmp_path, folder_name="elsewhere")
    exit_code, report = status(tmp_path, config)
    assert exit_code == 1
    assert report["up_to_date"] is False
    [problem] = report["problems"]
    assert "service install" in problem
    assert "installed 'ReadWritePaths=" in problem  # it names what changed
    assert str(tmp_path / "elsewhere") in problem


# -- the unit's own command line, run the way systemd runs it -------------------------------


def receive_until(receiver: socket.socket, wanted: str, seen: list[str]) -> None:
    """Collect datagrams until one carries ``wanted`` (each recv waits for the next one)."""
    while True:
        message = receiver.recv(65536).decode("utf-8")
        seen.append(message)
        if wanted in message.splitlines():
            return


def test_the_units_exec_start_speaks_sd_notify_and_stops_cleanly(tmp_path: Path) -> None:
    """Start exactly what the installed unit would start, with systemd's environment
    (NOTIFY_SOCKET, WATCHDOG_USEC, the unit's umask): READY=1, STATUS=, WATCHDOG=1 pings,
    a second copy refused while it runs, then SIGTERM -> STOPPING=1 and exit 0."""
    config = write_config(tmp_path)
    with config.open("a", encoding="utf-8") as extra:  # [device] is the last section
        extra.write(f'usbmux_address = "{tmp_path / "no-usbmuxd"}"\n')
    unit, _ = render_unit(tmp_path, config=config)
    argv = exec_start_argv(unit)
    assert argv == [str(ROLLKEEPER), "--config", str(config), "run"]

    with tempfile.TemporaryDirectory(prefix="rk-unit-") as short:
        notify_path = Path(short) / "notify"
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(str(notify_path))
        receiver.settimeout(60)  # a ceiling per datagram, not a pacing
        environment = {
            **clean_environment(tmp_path),
            "NOTIFY_SOCKET": str(notify_path),
            "WATCHDOG_USEC": "2000000",
            "PYTHONUNBUFFERED": "1",
        }
        service = subprocess.Popen(
            argv,
            env=environment,
            cwd="/",
            umask=0o077,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen: list[str] = []
        try:
            receive_until(receiver, "READY=1", seen)
            receive_until(receiver, "WATCHDOG=1", seen)

            second = subprocess.run(
                argv, env=clean_environment(tmp_path), capture_output=True, text=True, timeout=120
            )
            assert second.returncode == 1
            assert f"process {service.pid} holds" in second.stderr

            service.send_signal(signal.SIGTERM)
            receive_until(receiver, "STOPPING=1", seen)
            assert service.wait(timeout=60) == 0
        finally:
            if service.poll() is None:
                service.kill()
                service.wait(timeout=30)
            receiver.close()

    assert any(message.startswith("STATUS=") for message in seen)
    assert seen.index("READY=1") < seen.index("STOPPING=1")
    state = tmp_path / "state"
    assert stat_mode(state) == 0o700
    assert stat_mode(state / "state.sqlite3") == 0o600


def stat_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
