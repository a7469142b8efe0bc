"""Hooks: the user's ``on_success``, ``on_failure`` and ``on_stale`` commands.

A hook is run with ``sh -c`` in a new process group with ``ROLLKEEPER_*`` variables (see
:data:`HOOK_VARIABLES` and docs/notifications.md) and standard input from ``/dev/null``. A hook
still running after its timeout gets SIGTERM, then SIGKILL, sent to its whole process group.
Its output is logged (``hook_finished``). A hook never inherits the service manager's
variables: a hook calling systemd-notify would otherwise speak for the service.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime

from rollkeeper.host.logs import get_logger
from rollkeeper.notify.notices import EVENT_STALE, RunNotice
from rollkeeper.notify.processes import kill_group

log = get_logger(__name__)

#: Every variable a hook may find in its environment (documented in docs/notifications.md).
HOOK_VARIABLES: tuple[str, ...] = (
    "ROLLKEEPER_EVENT",
    "ROLLKEEPER_UDID",
    "ROLLKEEPER_DEVICE_NAME",
    "ROLLKEEPER_RUN_ID",
    "ROLLKEEPER_OUTCOME",
    "ROLLKEEPER_FILES_COPIED",
    "ROLLKEEPER_BYTES_COPIED",
    "ROLLKEEPER_FILES_FAILED",
    "ROLLKEEPER_FILES_PENDING",
    "ROLLKEEPER_ERROR",
    "ROLLKEEPER_LAST_COMPLETE_AT",
)

#: Variables of systemd's and launchd's protocols that a hook must not inherit (a hook calling
#: systemd-notify would otherwise speak for the service).
_SERVICE_MANAGER_VARIABLES = frozenset(
    {"NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}
)

#: Time between SIGTERM and SIGKILL for a hook past its timeout.
HOOK_KILL_GRACE_SECONDS = 2.0
#: Hook output kept for the log; more is cut (a chatty hook must not flood the journal).
HOOK_OUTPUT_LIMIT = 8192


def run_environment(report: RunNotice) -> dict[str, str]:
    """The ``ROLLKEEPER_*`` variables of a run's success or failure hook."""
    return {
        "ROLLKEEPER_UDID": report.udid,
        "ROLLKEEPER_DEVICE_NAME": report.device_name,
        "ROLLKEEPER_RUN_ID": "" if report.run_id is None else str(report.run_id),
        "ROLLKEEPER_OUTCOME": report.outcome,
        "ROLLKEEPER_FILES_COPIED": str(report.files_copied),
        "ROLLKEEPER_BYTES_COPIED": str(report.bytes_copied),
        "ROLLKEEPER_FILES_FAILED": str(report.files_failed),
        "ROLLKEEPER_FILES_PENDING": str(report.files_pending),
        "ROLLKEEPER_ERROR": report.error,
    }


def stale_environment(
    udid: str, device_name: str, last_complete_at: datetime | None
) -> dict[str, str]:
    """The ``ROLLKEEPER_*`` variables of the ``on_stale`` hook."""
    return {
        "ROLLKEEPER_EVENT": EVENT_STALE,
        "ROLLKEEPER_UDID": udid,
        "ROLLKEEPER_DEVICE_NAME": device_name,
        "ROLLKEEPER_LAST_COMPLETE_AT": (
            "" if last_complete_at is None else last_complete_at.astimezone(UTC).isoformat()
        ),
    }


class HookRunner:
    """Runs hook commands and keeps the ones still running, so shutdown can stop them.

    ``environ`` is the environment hooks inherit (minus the service manager's variables).
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._processes: set[asyncio.subprocess.Process] = set()

    def kill_all(self) -> None:
        """SIGKILL every hook still running, with its process group (shutdown)."""
        for process in list(self._processes):
            kill_group(process, signal.SIGKILL)

    async def run(
        self,
        kind: str,
        command: str,
        hook_env: Mapping[str, str],
        timeout: float,  # noqa: ASYNC109 - the hook's time limit: on expiry it is killed and logged
    ) -> None:
        """Run one hook to its end or its timeout and log what it did; never raises for it."""
        env = {
            name: value
            for name, value in self._environ.items()
            # The service manager's channels are the service's, not the hook's.
            if name not in _SERVICE_MANAGER_VARIABLES
        }
        # Variables from an earlier event never leak into this one.
        for name in HOOK_VARIABLES:
            env[name] = ""
        env.update({name: value.replace("\0", "") for name, value in hook_env.items()})
        env["ROLLKEEPER_EVENT"] = kind
        run_id_text = hook_env.get("ROLLKEEPER_RUN_ID", "")
        fields = {
            "kind": kind,
            "udid": hook_env.get("ROLLKEEPER_UDID") or None,
            # An integer, like the run_id of every other event.
            "run_id": int(run_id_text) if run_id_text.isdigit() else None,
        }
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Output goes to an unlinked temporary file, not a pipe: a child the hook leaves in the
        # background keeps a pipe open and would hold up the wait for the hook itself.
        with tempfile.TemporaryFile(prefix="rollkeeper-hook-") as output_file:
            try:
                process = await asyncio.create_subprocess_exec(
                    "/bin/sh",
                    "-c",
                    command,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output_file,
                    stderr=asyncio.subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            except OSError as error:
                log.warning("hook_failed_to_start", error=str(error), **fields)
                return
            self._processes.add(process)
            log.info("hook_started", pid=process.pid, **fields)
            timed_out = False
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                timed_out = True
                log.warning("hook_timed_out", pid=process.pid, timeout_seconds=timeout, **fields)
                kill_group(process, signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), HOOK_KILL_GRACE_SECONDS)
                except TimeoutError:
                    kill_group(process, signal.SIGKILL)
                    await process.wait()
                # Whatever of the group survived SIGTERM (the shell gone, children left) goes.
                kill_group(process, signal.SIGKILL)
            finally:
                self._processes.discard(process)
            output_file.seek(0)
            output = output_file.read(HOOK_OUTPUT_LIMIT + 1)
        truncated = len(output) > HOOK_OUTPUT_LIMIT
        text = output[:HOOK_OUTPUT_LIMIT].decode("utf-8", "replace")
        report = log.warning if timed_out or process.returncode != 0 else log.info
        report(
            "hook_finished",
            exit_code=process.returncode,
            timed_out=timed_out,
            duration_seconds=round(loop.time() - started, 3),
            output=text,
            output_truncated=truncated,
            **fields,
        )
