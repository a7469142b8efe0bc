"""Running the offsite engine as a child process, from the event loop, stoppable.

The engine's output goes to unlinked temporary files, not pipes (restic prints a status line
every second or so on a long upload; nobody has to drain it), and only its tail is read back
for the summary and the error. The child runs in its own process group with standard input
from ``/dev/null`` (a password prompt must fail, not hang). Cancelling the wait (service stop)
sends SIGINT, on which restic and rclone stop cleanly (restic removes its repository lock),
then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

#: Output kept from the end of each stream (the summary and the error are at the end).
TAIL_BYTES = 256 * 1024
#: After SIGINT, how long the engine has to stop before SIGKILL.
STOP_GRACE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class EngineExit:
    """How one engine process ended. ``exit_code`` None: it could not be started."""

    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float
    #: Why it could not start (program not found, ...), for ``exit_code`` None.
    start_error: str = ""


async def run_engine(
    argv: Sequence[str],
    environment: Mapping[str, str],
    *,
    stop_grace_seconds: float = STOP_GRACE_SECONDS,
) -> EngineExit:
    """Run ``argv`` to its end and return its exit code and the tails of its output.

    Raises :class:`asyncio.CancelledError` when cancelled, after the child has been stopped
    (SIGINT, then SIGKILL after ``stop_grace_seconds``) and waited for.
    """
    started = time.monotonic()
    with (
        tempfile.TemporaryFile(prefix="rollkeeper-offsite-") as out,
        tempfile.TemporaryFile(prefix="rollkeeper-offsite-") as err,
    ):
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(environment),
                start_new_session=True,
            )
        except OSError as error:
            reason = (
                f"{argv[0]} not found: install it (apt install {os.path.basename(argv[0])}) "
                "or set [offsite] executable"
                if isinstance(error, FileNotFoundError)
                else f"{argv[0]} could not be started: {error.strerror or error}"
            )
            return EngineExit(None, "", "", time.monotonic() - started, start_error=reason)
        try:
            exit_code = await process.wait()
        except asyncio.CancelledError:
            await _stop(process, stop_grace_seconds)
            raise
        return EngineExit(exit_code, _tail(out), _tail(err), time.monotonic() - started)


async def _stop(process: asyncio.subprocess.Process, grace_seconds: float) -> None:
    """SIGINT to the engine's group (a clean stop), SIGKILL if it is still there after the
    grace period; waits for it either way, so no child outlives the service."""
    _signal_group(process, signal.SIGINT)
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), grace_seconds)
    except TimeoutError:
        _signal_group(process, signal.SIGKILL)
        await process.wait()


def _signal_group(process: asyncio.subprocess.Process, number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, number)


def _tail(stream: IO[bytes]) -> str:
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - TAIL_BYTES))
    return stream.read().decode("utf-8", "replace")
