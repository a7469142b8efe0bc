"""Notifications through real subprocesses, a real HTTP server and structured log events."""

from __future__ import annotations

import http.server
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from rollkeeper.config import NotificationSettings
from rollkeeper.notify.notifier import HOOK_VARIABLES, Notifier, RunNotice

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    environ = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(tmp_path)}
    environ.update(extra)
    return environ


def _recording_hook(directory: Path) -> str:
    # One file per call, holding the ROLLKEEPER_* environment (and NOTIFY_SOCKET) the hook saw.
    directory.mkdir(exist_ok=True)
    return (
        f'env | grep -E "^(ROLLKEEPER_|NOTIFY_SOCKET)" | sort > "{directory}/call.$$"; '
        "echo hook ran"
    )


def _calls(directory: Path) -> list[dict[str, str]]:
    calls = []
    for path in sorted(directory.glob("call.*")):
        lines = path.read_text().splitlines()
        calls.append(dict(line.split("=", 1) for line in lines))
    return calls


def _failure(run_id: int, **changes: Any) -> RunNotice:
    values: dict[str, Any] = {
        "udid": "00008110-000A1B2C3D4E5F60",
        "device_name": "Ann's iPhone",
        "run_id": run_id,
        "outcome": "failed",
        "files_copied": 12,
        "bytes_copied": 3_400_000,
        "files_failed": 2,
        "files_pending": 40,
        "error": "archive folder is not writable",
    }
    values.update(changes)
    return RunNotice(**values)


async def test_failure_hook_runs_once_per_failed_run_with_the_documented_environment(
    tmp_path: Path,
) -> None:
    """The failure hook runs once per failed run outside min_interval_minutes, with exactly the
    documented ROLLKEEPER_ variables and no inherited ones, and a device name holding shell code
    reaches it as data."""
    calls = tmp_path / "calls"
    settings = NotificationSettings(
        desktop=False, on_failure=_recording_hook(calls), min_interval_minutes=30
    )
    clock = Clock()
    # Left over from an earlier hook's world, and systemd's channel: neither reaches the hook.
    environ = _environ(tmp_path, ROLLKEEPER_RUN_ID="999", NOTIFY_SOCKET="/run/notify")
    notifier = Notifier(settings, clock, environ=environ)
    injected = tmp_path / "injected"
    with structlog.testing.capture_logs() as events:
        await notifier.run_failed(_failure(1))
        assert await notifier.wait_idle(30)
        # A retry failing again within min_interval_minutes is not announced again...
        clock.advance(timedelta(minutes=10))
        await notifier.run_failed(_failure(2))
        assert await notifier.wait_idle(30)
        # ...but the next failure after the interval is.
        clock.advance(timedelta(minutes=21))
        # Shell code in the name, as a separator and as a substitution: run, it leaves a mark.
        hostile = f"Ann\n$(touch {injected}); touch {injected}"
        await notifier.run_failed(_failure(3, device_name=hostile))
        assert await notifier.wait_idle(30)

    seen = sorted(_calls(calls), key=lambda call: call["ROLLKEEPER_RUN_ID"])
    assert [call["ROLLKEEPER_RUN_ID"] for call in seen] == ["1", "3"]
    first = seen[0]
    assert first == {
        "ROLLKEEPER_EVENT": "failure",
        "ROLLKEEPER_UDID": "00008110-000A1B2C3D4E5F60",
        "ROLLKEEPER_DEVICE_NAME": "Ann's iPhone",
        "ROLLKEEPER_RUN_ID": "1",
        "ROLLKEEPER_OUTCOME": "failed",
        "ROLLKEEPER_FILES_COPIED": "12",
        "ROLLKEEPER_BYTES_COPIED": "3400000",
        "ROLLKEEPER_FILES_FAILED": "2",
        "ROLLKEEPER_FILES_PENDING": "40",
        "ROLLKEEPER_ERROR": "archive folder is not writable",
        "ROLLKEEPER_LAST_COMPLETE_AT": "",
    }
    assert set(first) == set(HOOK_VARIABLES)
    # The untrusted name reached the hook as data in a variable, not as shell code.
    assert seen[1]["ROLLKEEPER_DEVICE_NAME"] == "Ann"  # its first line (env prints it raw)
    assert not injected.exists()

    suppressed = [event for event in events if event["event"] == "notification_suppressed"]
    assert [(event["kind"], event["udid"]) for event in suppressed] == [
        ("failure", "00008110-000A1B2C3D4E5F60")
    ]
    finished = [event for event in events if event["event"] == "hook_finished"]
    assert [(event["exit_code"], event["timed_out"]) for event in finished] == [(0, False)] * 2
    assert all(event["output"] == "hook ran\n" for event in finished)
    assert all(event["kind"] == "failure" for event in finished)
    assert {event["run_id"] for event in finished} == {1, 3}


async def test_without_a_minimum_interval_every_failed_run_fires(tmp_path: Path) -> None:
    """With no minimum interval every failed run fires the failure hook."""
    calls = tmp_path / "calls"
    settings = NotificationSettings(
        desktop=False, on_failure=_recording_hook(calls), min_interval_minutes=0
    )
    notifier = Notifier(settings, Clock(), environ=_environ(tmp_path))
    for run_id in (1, 2, 3):
        await notifier.run_failed(_failure(run_id))
    assert await notifier.wait_idle(30)
    assert sorted(call["ROLLKEEPER_RUN_ID"] for call in _calls(calls)) == ["1", "2", "3"]


async def test_a_success_lets_the_next_failure_through_at_once(tmp_path: Path) -> None:
    """A success in between lets the next failure through at once, whatever the interval."""
    calls = tmp_path / "calls"
    settings = NotificationSettings(
        desktop=False,
        on_failure=_recording_hook(calls),
        on_success=_recording_hook(calls),
        min_interval_minutes=60,
    )
    clock = Clock()
    notifier = Notifier(settings, clock, environ=_environ(tmp_path))
    await notifier.run_failed(_failure(1))
    clock.advance(timedelta(minutes=1))
    await notifier.run_succeeded(_failure(2, outcome="complete", files_failed=0, files_pending=0))
    clock.advance(timedelta(minutes=1))
    await notifier.run_failed(_failure(3))
    assert await notifier.wait_idle(30)
    events = sorted((c["ROLLKEEPER_RUN_ID"], c["ROLLKEEPER_EVENT"]) for c in _calls(calls))
    assert events == [("1", "failure"), ("2", "success"), ("3", "failure")]


def _process_gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def _wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    pause = threading.Event()
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    while not predicate():
        if datetime.now(UTC) > deadline:
            return False
        pause.wait(0.02)
    return True


async def test_a_hanging_hook_and_its_children_are_killed_at_the_timeout(tmp_path: Path) -> None:
    """A hook that hangs is killed at its timeout with its children and logged as a warning with its
    output, while the caller is not kept waiting."""
    child_pid_file = tmp_path / "child.pid"
    hook = f'sleep 300 & echo $! > "{child_pid_file}"; echo waiting; wait'
    settings = NotificationSettings(desktop=False, on_failure=hook, hook_timeout_seconds=0.5)
    notifier = Notifier(settings, Clock(), environ=_environ(tmp_path))
    with structlog.testing.capture_logs() as events:
        await notifier.run_failed(_failure(7))
        # The caller (a backup job) got control back while the hook still runs.
        assert notifier.busy
        assert await notifier.wait_idle(30)
    [timed_out] = [event for event in events if event["event"] == "hook_timed_out"]
    assert timed_out["timeout_seconds"] == 0.5
    [finished] = [event for event in events if event["event"] == "hook_finished"]
    assert finished["timed_out"] is True
    assert finished["exit_code"] != 0
    assert finished["output"] == "waiting\n"
    assert finished["log_level"] == "warning"
    child = int(child_pid_file.read_text())
    assert _wait_until(lambda: _process_gone(child), 10), "the hook's child survived"


async def test_a_failing_hook_is_logged_with_its_output(tmp_path: Path) -> None:
    """A hook that fails is logged with its kind, phone, exit code and output."""
    settings = NotificationSettings(desktop=False, on_stale="echo no disk >&2; exit 3")
    notifier = Notifier(settings, Clock(), environ=_environ(tmp_path))
    with structlog.testing.capture_logs() as events:
        await notifier.backups_stale("U1", "Bob", START - timedelta(days=9))
        assert await notifier.wait_idle(30)
    [finished] = [event for event in events if event["event"] == "hook_finished"]
    assert (finished["kind"], finished["udid"], finished["exit_code"]) == ("stale", "U1", 3)
    assert finished["output"] == "no disk\n"


class _PingHandler(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, str]]
    arrived: threading.Event

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        self.received.append(("POST", self.path, body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")
        self.arrived.set()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def ping_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, _PingHandler]]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    handler = type("Handler", (_PingHandler,), {"received": [], "arrived": threading.Event()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ping/abc-123", handler  # type: ignore[misc]
    finally:
        server.shutdown()
        server.server_close()


async def test_healthcheck_pings_success_and_fail_endpoints(
    tmp_path: Path, ping_server: tuple[str, _PingHandler]
) -> None:
    """The healthcheck URL is pinged on every success and, at /fail with the run's details, on every
    failure, without rate limit, and only its host is logged."""
    url, handler = ping_server
    settings = NotificationSettings(desktop=False, healthcheck_url=url, min_interval_minutes=60)
    notifier = Notifier(settings, Clock(), environ=_environ(tmp_path))
    with structlog.testing.capture_logs() as events:
        await notifier.run_succeeded(
            _failure(1, outcome="complete", files_failed=0, files_pending=0)
        )
        await notifier.run_failed(_failure(2))
        # Pings are the heartbeat: not rate limited like desktop notifications and hooks.
        await notifier.run_failed(_failure(3))
        assert await notifier.wait_idle(30)
    paths = sorted(path for _, path, _ in handler.received)
    assert paths == ["/ping/abc-123", "/ping/abc-123/fail", "/ping/abc-123/fail"]
    bodies = {body for _, path, body in handler.received if path.endswith("/fail")}
    assert any("run_id=2" in body and "error=archive folder" in body for body in bodies)
    pinged = [event for event in events if event["event"] == "healthcheck_pinged"]
    assert len(pinged) == 3
    # The URL's path is its secret: only the host is logged.
    assert all(event["host"].startswith("127.0.0.1:") for event in pinged)
    assert "abc-123" not in repr(events)


async def test_an_unreachable_healthcheck_is_a_warning_not_an_error(tmp_path: Path) -> None:
    """An unreachable healthcheck URL is logged as a warning naming the run, and nothing raises."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = NotificationSettings(desktop=False, healthcheck_url=f"http://127.0.0.1:{port}/x")
    notifier = Notifier(settings, Clock(), environ=_environ(tmp_path))
    with structlog.testing.capture_logs() as events:
        await notifier.run_failed(_failure(1))
        assert await notifier.wait_idle(30)
    [failed] = [event for event in events if event["event"] == "healthcheck_ping_failed"]
    assert failed["log_level"] == "warning"
    assert failed["kind"] == "failure"
    assert failed["run_id"] == 1


def _fake_notify_send(bin_dir: Path, record: Path) -> None:
    bin_dir.mkdir()
    script = bin_dir / "notify-send"
    script.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "{record}"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


async def test_desktop_notification_goes_through_notify_send_with_a_session_bus(
    tmp_path: Path,
) -> None:
    """With a session bus a desktop notification goes through notify-send with the app name, the
    urgency and "--" before the text, control characters in the name replaced."""
    record = tmp_path / "notify-send.args"
    _fake_notify_send(tmp_path / "bin", record)
    environ = _environ(
        tmp_path,
        PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin",
        DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent",
    )
    notifier = Notifier(
        NotificationSettings(desktop=True), Clock(), environ=environ, platform="linux"
    )
    await notifier.run_failed(_failure(1, device_name="-h\x1b[31mAnn"))
    assert await notifier.wait_idle(30)
    arguments = record.read_text().splitlines()
    assert arguments[:3] == ["--app-name=rollkeeper", "--urgency=critical", "--"]
    assert arguments[3] == "Backup of -h [31mAnn failed"
    assert arguments[4].startswith("archive folder is not writable.")


async def test_without_a_desktop_session_notifications_degrade_quietly(tmp_path: Path) -> None:
    """Without a desktop session notify-send is not run; that is logged once, and each notification
    is still logged."""
    record = tmp_path / "notify-send.args"
    _fake_notify_send(tmp_path / "bin", record)
    environ = _environ(tmp_path, PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin")
    notifier = Notifier(
        NotificationSettings(desktop=True), Clock(), environ=environ, platform="linux"
    )
    with structlog.testing.capture_logs() as events:
        await notifier.alert("usbmuxd is not running", "Start it: sudo systemctl start usbmuxd")
        await notifier.alert("another alert", "body")
        assert await notifier.wait_idle(30)
    assert not record.exists()
    unavailable = [e for e in events if e["event"] == "desktop_notification_unavailable"]
    assert len(unavailable) == 1
    sent = [e["title"] for e in events if e["event"] == "notification_sent"]
    assert sent == ["usbmuxd is not running", "another alert"]


async def test_a_success_is_only_called_backed_up_when_complete(tmp_path: Path) -> None:
    """A success is titled "backed up" only for a complete run; an incomplete one says it finished,
    not complete."""
    settings = NotificationSettings(desktop=False)
    notifier = Notifier(settings, Clock(), environ=_environ(tmp_path))
    with structlog.testing.capture_logs() as events:
        await notifier.run_succeeded(
            _failure(1, outcome="complete", files_failed=0, files_pending=0)
        )
        await notifier.run_succeeded(
            _failure(2, udid="U2", outcome="incomplete", files_failed=0, files_pending=3)
        )
        assert await notifier.wait_idle(30)
    titles = [e["title"] for e in events if e["event"] == "notification_sent"]
    assert titles == ["Ann's iPhone is backed up", "Backup of Ann's iPhone finished, not complete"]


async def test_run_finished_routes_by_outcome(tmp_path: Path) -> None:
    """run_finished sends complete runs to the success hook, failed runs and incomplete runs with
    failed files to the failure hook, and neither for pending-only or interrupted runs."""
    from rollkeeper.store import RunCounts

    calls = tmp_path / "calls"
    settings = NotificationSettings(
        desktop=False,
        on_success=_recording_hook(calls),
        on_failure=_recording_hook(calls),
        min_interval_minutes=0,
    )
    notifier = Notifier(settings, Clock(), environ=_environ(tmp_path))

    def notice(run_id: int, outcome: str, **counts: int) -> RunNotice:
        return RunNotice.from_counts(
            "U1", "Ann", run_id, outcome, RunCounts(files_copied=5, bytes_copied=50, **counts)
        )

    await notifier.run_finished(notice(1, "complete"))
    await notifier.run_finished(notice(2, "failed"))
    await notifier.run_finished(notice(3, "incomplete", files_failed=2, files_pending=1))
    await notifier.run_finished(notice(4, "incomplete", files_pending=7))
    await notifier.run_finished(notice(5, "interrupted", files_pending=7))
    assert await notifier.wait_idle(30)
    seen = {call["ROLLKEEPER_RUN_ID"]: call for call in _calls(calls)}
    assert sorted(seen) == ["1", "2", "3"]
    assert seen["1"]["ROLLKEEPER_EVENT"] == "success"
    assert seen["1"]["ROLLKEEPER_FILES_COPIED"] == "5"
    assert seen["2"]["ROLLKEEPER_EVENT"] == "failure"
    assert seen["3"]["ROLLKEEPER_EVENT"] == "failure"
    assert seen["3"]["ROLLKEEPER_OUTCOME"] == "incomplete"
    assert seen["3"]["ROLLKEEPER_ERROR"] == "2 files could not be copied"


async def test_alerts_from_another_thread_reach_the_loop(tmp_path: Path) -> None:
    """An alert sent from another thread reaches notify-send through the event loop, without that
    thread waiting for the desktop."""
    import asyncio

    record = tmp_path / "notify-send.args"
    _fake_notify_send(tmp_path / "bin", record)
    environ = _environ(
        tmp_path, PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin", DBUS_SESSION_BUS_ADDRESS="unix:x"
    )
    notifier = Notifier(NotificationSettings(desktop=True), Clock(), environ=environ)
    notify = notifier.alert_from_thread(asyncio.get_running_loop())
    # The udev watchdog calls from its worker thread and must never wait for the desktop.
    await asyncio.to_thread(notify, "usbmuxd is not running", "sudo systemctl start usbmuxd")
    assert await notifier.wait_idle(30)
    assert record.read_text().splitlines()[-2:] == [
        "usbmuxd is not running",
        "sudo systemctl start usbmuxd",
    ]


async def test_a_hook_that_leaves_a_child_holding_its_output_does_not_hang(
    tmp_path: Path,
) -> None:
    """A hook that leaves a child holding its output is finished when the hook itself ends, and the
    child is left alone."""
    child_pid_file = tmp_path / "child.pid"
    hook = f'sleep 60 & echo $! > "{child_pid_file}"; echo done'
    settings = NotificationSettings(desktop=False, on_failure=hook, hook_timeout_seconds=30)
    notifier = Notifier(settings, Clock(), environ=_environ(tmp_path))
    try:
        with structlog.testing.capture_logs() as events:
            await notifier.run_failed(_failure(1))
            assert await notifier.wait_idle(20)
        [finished] = [event for event in events if event["event"] == "hook_finished"]
        assert (finished["exit_code"], finished["timed_out"]) == (0, False)
        assert finished["output"] == "done\n"
        # The hook ended in time: what it left running is its own business.
        assert not _process_gone(int(child_pid_file.read_text()))
    finally:
        os.kill(int(child_pid_file.read_text()), 9)


async def test_hook_output_is_logged_up_to_its_limit(tmp_path: Path) -> None:
    """A hook's output is logged up to HOOK_OUTPUT_LIMIT and marked as truncated beyond it."""
    from rollkeeper.notify.notifier import HOOK_OUTPUT_LIMIT

    hook = "head -c 100000 /dev/zero | tr '\\0' x"
    settings = NotificationSettings(desktop=False, on_failure=hook)
    notifier = Notifier(settings, Clock(), environ=_environ(tmp_path))
    with structlog.testing.capture_logs() as events:
        await notifier.run_failed(_failure(1))
        assert await notifier.wait_idle(30)
    [finished] = [event for event in events if event["event"] == "hook_finished"]
    assert finished["exit_code"] == 0
    assert finished["output"] == "x" * HOOK_OUTPUT_LIMIT
    assert finished["output_truncated"] is True


def test_an_alert_after_the_loop_closed_is_dropped_quietly(tmp_path: Path) -> None:
    """An alert sent after the event loop closed is dropped with one log line and leaves nothing
    running."""
    import asyncio

    loop = asyncio.new_event_loop()
    notifier = Notifier(NotificationSettings(desktop=True), Clock(), environ=_environ(tmp_path))
    notify = notifier.alert_from_thread(loop)
    loop.close()
    with structlog.testing.capture_logs() as events:
        notify("usbmuxd is not running", "start it")
    assert [event["event"] for event in events] == ["notification_dropped"]
    assert not notifier.busy
