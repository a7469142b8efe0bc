"""Tell systemd what the service is doing: the sd_notify protocol, spoken directly.

systemd starts a ``Type=notify`` unit with ``$NOTIFY_SOCKET`` naming an ``AF_UNIX`` datagram
socket; the service sends newline-separated ``KEY=value`` assignments to it (``READY=1``,
``STATUS=...``, ``STOPPING=1``, ``WATCHDOG=1``). The protocol is small and stable, so it is
spoken here without a library: one ``sendto`` per message, no C dependency, and the same code
runs (as a no-op) on macOS and in a terminal, where ``$NOTIFY_SOCKET`` is unset.

A socket name starting with ``@`` lives in the Linux abstract namespace: the ``@`` stands for a
leading NUL byte.

Sending never raises: the service manager going away must not take a backup down with it. A
failed send is logged once per kind of failure and the service carries on.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)

#: systemd's own variable names (see sd_notify(3) and sd_watchdog_enabled(3)).
NOTIFY_SOCKET_VARIABLE = "NOTIFY_SOCKET"
WATCHDOG_USEC_VARIABLE = "WATCHDOG_USEC"
WATCHDOG_PID_VARIABLE = "WATCHDOG_PID"

#: The longest one message may wait for room in the service manager's queue.
DEFAULT_SEND_TIMEOUT_SECONDS = 0.2


class ServiceNotifier:
    """Sends sd_notify messages to the service manager; does nothing when there is none.

    Build it with :meth:`from_environment`. Thread-safe: the scheduler's threads and the event
    loop may report status at the same time.
    """

    def __init__(
        self,
        socket_address: str | None,
        watchdog_usec: int | None = None,
        send_timeout_seconds: float = DEFAULT_SEND_TIMEOUT_SECONDS,
    ) -> None:
        """``socket_address`` as found in ``$NOTIFY_SOCKET`` (``None``: notifications are off);
        ``watchdog_usec`` the watchdog timeout meant for this process, if any;
        ``send_timeout_seconds`` the longest a send may block when the manager's queue is full.
        """
        self._address = _socket_address(socket_address) if socket_address else None
        self._watchdog_usec = watchdog_usec
        self._send_timeout_seconds = send_timeout_seconds
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._failures_logged: set[str] = set()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ServiceNotifier:
        """Read ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID`` (default: os.environ).

        The watchdog is ours only when ``$WATCHDOG_PID`` is unset or names this process:
        systemd sets it so that a child which inherited the environment does not ping on
        behalf of its parent.
        """
        env = os.environ if environ is None else environ
        socket_address = env.get(NOTIFY_SOCKET_VARIABLE) or None
        return cls(socket_address, _watchdog_usec_for_this_process(env))

    @property
    def enabled(self) -> bool:
        """True when a service manager listens (``$NOTIFY_SOCKET`` was set)."""
        return self._address is not None

    @property
    def watchdog_interval_seconds(self) -> float | None:
        """How often to call :meth:`watchdog_ping`: half of ``WatchdogSec=``, as systemd advises.

        ``None`` when no watchdog is configured for this process.
        """
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def ready(self) -> None:
        """Start-up is complete (the service listens for phones): ``READY=1``.

        Also sent after a reload has finished, as the protocol asks.
        """
        self.send("READY=1")

    def status(self, text: str) -> None:
        """A one-line human status shown by ``systemctl --user status rollkeeper``.

        Newlines would start a new assignment in the datagram, so they become spaces.
        """
        self.send("STATUS=" + " ".join(text.splitlines()))

    def stopping(self) -> None:
        """Shutdown has begun: ``STOPPING=1``."""
        self.send("STOPPING=1")

    def reloading(self) -> None:
        """A config reload has begun: ``RELOADING=1``; follow it with :meth:`ready`."""
        self.send("RELOADING=1")

    def watchdog_ping(self) -> None:
        """The service is alive: ``WATCHDOG=1``. Call it every :attr:`watchdog_interval_seconds`."""
        self.send("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> None:
        """Ask for more time for the current start-up or shutdown: ``EXTEND_TIMEOUT_USEC=``.

        Useful when a stop waits for a large file in flight longer than ``TimeoutStopSec=``
        expects; each call restarts the clock with the given budget.
        """
        self.send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def send(self, *assignments: str) -> None:
        """Send ``KEY=value`` assignments in one datagram; no-op without a service manager."""
        if self._address is None:
            return
        payload = "\n".join(assignments).encode("utf-8")
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    # A datagram send blocks while the receiver's queue is full; a stuck
                    # manager must not stall the event loop that calls this.
                    self._socket.settimeout(self._send_timeout_seconds)
                self._socket.sendto(payload, self._address)
            except OSError as error:
                self._log_failure_once(error)

    def close(self) -> None:
        """Close the datagram socket (sending again reopens it)."""
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def _log_failure_once(self, error: OSError) -> None:
        # A dead manager would make every status update fail: one line per kind is enough.
        kind = type(error).__name__
        if kind in self._failures_logged:
            return
        self._failures_logged.add(kind)
        log.warning(
            "sd_notify_failed",
            socket=_printable(self._address),
            error=str(error),
            error_type=kind,
        )


def _socket_address(value: str) -> str | bytes:
    """``$NOTIFY_SOCKET`` as an address for ``sendto``: ``@name`` is the abstract ``\\0name``."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode("utf-8")
    return value


def _printable(address: str | bytes | None) -> str | None:
    if isinstance(address, bytes):
        return "@" + address[1:].decode("utf-8", errors="replace")
    return address


def _watchdog_usec_for_this_process(env: Mapping[str, str]) -> int | None:
    raw_usec = env.get(WATCHDOG_USEC_VARIABLE)
    if not raw_usec:
        return None
    try:
        usec = int(raw_usec)
    except ValueError:
        return None
    if usec <= 0:
        return None
    raw_pid = env.get(WATCHDOG_PID_VARIABLE)
    if raw_pid:
        try:
            if int(raw_pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec
