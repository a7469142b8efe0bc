"""sd_notify against a real AF_UNIX datagram socket that the test owns, as systemd would own it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from rollkeeper.host.sd_notify import ServiceNotifier

RECEIVE_TIMEOUT_SECONDS = 5.0


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to ~107 bytes; pytest's tmp_path can be longer than that.
    with tempfile.TemporaryDirectory(prefix="rk-notify-") as name:
        yield Path(name)


@pytest.fixture
def manager_socket(short_dir: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket playing systemd's part; yields it and its $NOTIFY_SOCKET value."""
    path = short_dir / "notify"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(RECEIVE_TIMEOUT_SECONDS)
    yield receiver, str(path)
    receiver.close()


def receive(receiver: socket.socket) -> str:
    return receiver.recv(65536).decode("utf-8")


def test_each_message_arrives_as_one_datagram(manager_socket: tuple[socket.socket, str]) -> None:
    """Each notification (ready, status, reloading, watchdog, extend timeout, stopping) arrives as
    one datagram with systemd's assignment."""
    receiver, address = manager_socket
    notifier = ServiceNotifier.from_environment({"NOTIFY_SOCKET": address})
    assert notifier.enabled

    notifier.ready()
    notifier.status("backing up iPhone of Ana: 120/800")
    notifier.reloading()
    notifier.watchdog_ping()
    notifier.extend_timeout(2.5)
    notifier.stopping()
    notifier.close()

    assert [receive(receiver) for _ in range(6)] == [
        "READY=1",
        "STATUS=backing up iPhone of Ana: 120/800",
        "RELOADING=1",
        "WATCHDOG=1",
        "EXTEND_TIMEOUT_USEC=2500000",
        "STOPPING=1",
    ]


def test_status_with_newlines_stays_one_assignment(
    manager_socket: tuple[socket.socket, str],
) -> None:
    """A status text with a newline stays one assignment, so it cannot smuggle another one in."""
    receiver, address = manager_socket
    notifier = ServiceNotifier.from_environment({"NOTIFY_SOCKET": address})

    notifier.status("idle\nREADY=1")

    # A newline would have smuggled a second assignment (READY=1) into the datagram.
    assert receive(receiver) == "STATUS=idle READY=1"


@pytest.mark.skipif(sys.platform != "linux", reason="abstract AF_UNIX names exist on Linux only")
def test_abstract_socket_name() -> None:
    """A NOTIFY_SOCKET starting with @ reaches an abstract AF_UNIX socket."""
    name = f"rollkeeper-test-{uuid.uuid4().hex}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(b"\0" + name.encode())
    receiver.settimeout(RECEIVE_TIMEOUT_SECONDS)
    try:
        notifier = ServiceNotifier.from_environment({"NOTIFY_SOCKET": "@" + name})
        notifier.ready()
        assert receive(receiver) == "READY=1"
    finally:
        receiver.close()


def test_a_child_process_reports_through_the_inherited_environment(
    manager_socket: tuple[socket.socket, str],
) -> None:
    """The way systemd uses it: the variable is in the service process's own environment."""
    receiver, address = manager_socket
    code = (
        "from rollkeeper.host.sd_notify import ServiceNotifier\n"
        "n = ServiceNotifier.from_environment()\n"
        "n.ready(); n.status('idle'); n.stopping()\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "NOTIFY_SOCKET": address},
        check=True,
        timeout=60,
    )
    assert [receive(receiver) for _ in range(3)] == ["READY=1", "STATUS=idle", "STOPPING=1"]


def test_without_notify_socket_it_is_a_quiet_no_op() -> None:
    """Without NOTIFY_SOCKET the notifier is disabled, has no watchdog interval, and its calls do
    nothing and log nothing."""
    notifier = ServiceNotifier.from_environment({})

    assert not notifier.enabled
    assert notifier.watchdog_interval_seconds is None
    with capture_logs() as logs:
        notifier.ready()
        notifier.status("idle")
        notifier.stopping()
    assert logs == []


def test_a_vanished_manager_is_logged_once_and_never_raises(short_dir: Path) -> None:
    """A notify socket that is gone is logged once as a warning naming it, and no call raises."""
    notifier = ServiceNotifier.from_environment({"NOTIFY_SOCKET": str(short_dir / "gone")})

    with capture_logs() as logs:
        notifier.ready()
        notifier.status("idle")
        notifier.watchdog_ping()

    assert [entry["event"] for entry in logs] == ["sd_notify_failed"]
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["socket"] == str(short_dir / "gone")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}, 10.0),
        # Inherited from a parent: systemd meant the watchdog for that other process.
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout_for_this_process_only(
    environ: dict[str, str], expected: float | None
) -> None:
    """The watchdog interval is half of WATCHDOG_USEC, and there is none when the value is zero or
    unreadable or WATCHDOG_PID names another process."""
    notifier = ServiceNotifier.from_environment({"NOTIFY_SOCKET": "/nonexistent", **environ})
    assert notifier.watchdog_interval_seconds == expected


def test_a_manager_that_stops_reading_cannot_stall_the_service(
    manager_socket: tuple[socket.socket, str],
) -> None:
    """Datagram sends block on a full queue; the notifier gives up after its send timeout."""
    receiver, address = manager_socket
    notifier = ServiceNotifier(address, send_timeout_seconds=0.05)

    with capture_logs() as logs:
        # Far more than any datagram queue holds (net.unix.max_dgram_qlen is 10-512).
        for _ in range(5000):
            notifier.status("x" * 1000)
            if logs:
                break

    assert [entry["event"] for entry in logs] == ["sd_notify_failed"]
    assert logs[0]["error_type"] in {"TimeoutError", "BlockingIOError"}
    assert receive(receiver).startswith("STATUS=x")  # what was queued is still delivered
