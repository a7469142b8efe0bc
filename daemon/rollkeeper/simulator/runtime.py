"""What the simulator keeps per phone beyond :class:`PhoneState`, and its event log.

:class:`PhoneState` is the contract with the AFC server and with tests; the runtime adds what only
the transport needs: the phone's key, the hosts it trusts, the services it has started and the
connections that an unplug must cut. The :class:`EventLog` lets tests wait for "the phone was
detached" or "a session started" instead of sleeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from rollkeeper.simulator.pairing import TrustedHost
from rollkeeper.simulator.phone import PhoneState

#: Where started services listen: real lockdownd hands out ports from the dynamic range.
FIRST_SERVICE_PORT = 49152
LAST_SERVICE_PORT = 65535


@dataclass(eq=False)
class Tunnel:
    """One usbmux connection forwarded to a port of a phone (lockdown or a service).

    ``dropped`` is set when an unplug cut the connection, so the task serving it knows its
    cancellation is the unplug and not the simulator shutting down.
    """

    udid: str
    port: int
    writer: asyncio.StreamWriter
    task: asyncio.Task[Any] | None
    dropped: bool = False

    def drop(self) -> None:
        """Cut the connection the way an unplug does: no goodbye, buffered bytes are lost."""
        self.dropped = True
        self.writer.transport.abort()
        if self.task is not None and not self.task.done():
            self.task.cancel()


@dataclass(eq=False)
class PhoneRuntime:
    """The transport-side state of one simulated phone. Touched only on the simulator's loop."""

    state: PhoneState
    device_key: rsa.RSAPrivateKey
    #: Hosts the phone trusts, by HostID (what "Trust This Computer?" answered yes to).
    trusted_hosts: dict[str, TrustedHost] = field(default_factory=dict)
    #: Pair requests answered PairingDialogResponsePending since the trust policy was set or the
    #: phone was plugged in (the dialog shows again on the next plug).
    pending_answers: int = 0
    #: Services started by StartService and not yet connected to: port -> service name.
    service_ports: dict[int, str] = field(default_factory=dict)
    next_service_port: int = FIRST_SERVICE_PORT
    #: Every port handed out, with its service (kept after Connect: the server is chosen by it).
    service_names: dict[int, str] = field(default_factory=dict)
    #: Open forwarded connections, cut on unplug.
    tunnels: set[Tunnel] = field(default_factory=set)
    #: Set while the phone is unlocked (what a Trust dialog waits for).
    unlocked: asyncio.Event = field(default_factory=asyncio.Event)
    #: The DeviceID of the phone's second, Network entry (usbmuxd builds that list one).
    network_device_id: int | None = None
    #: The Linux usbmuxd preflight of the current attach, while it runs.
    preflight: asyncio.Task[None] | None = None
    #: The scheduled return of a re-enumerating phone to the bus.
    returning: asyncio.TimerHandle | None = None
    #: Called (on the loop, after the reply went out) when Pair trusted a new host: a real
    #: phone then re-enumerates on USB.
    on_new_host_trusted: Callable[[], None] | None = None

    @property
    def udid(self) -> str:
        """The phone's UDID (its usbmuxd SerialNumber)."""
        return self.state.identity.udid

    def trust(self, host: TrustedHost) -> None:
        """Remember a host as trusted (a successful Pair)."""
        self.trusted_hosts[host.host_id] = host
        self.state.paired_host_ids.add(host.host_id)

    def forget_hosts(self) -> None:
        """Forget every trusted host (a phone reset, or "Reset Location & Privacy")."""
        self.trusted_hosts.clear()
        self.state.paired_host_ids.clear()

    def allocate_service_port(self, service: str) -> int:
        """Reserve a port for a started service; one connection may use it."""
        port = self.next_service_port
        self.next_service_port = port + 1 if port < LAST_SERVICE_PORT else FIRST_SERVICE_PORT
        self.service_ports[port] = service
        self.service_names[port] = service
        return port

    def drop_connections(self) -> int:
        """Cut every forwarded connection of the phone; returns how many were open."""
        tunnels = list(self.tunnels)
        self.tunnels.clear()
        self.service_ports.clear()
        for tunnel in tunnels:
            tunnel.drop()
        return len(tunnels)


@dataclass(frozen=True)
class SimulatorEvent:
    """Something that happened in the simulator, in order (``sequence`` counts from 1)."""

    sequence: int
    kind: str
    udid: str | None
    details: Mapping[str, Any]
    monotonic: float


class EventLog:
    """An ordered, thread-safe record of simulator events that tests can wait on.

    Events are recorded on the simulator's loop. Synchronous code waits with :meth:`wait_for`
    (a condition variable, no polling); async code on the simulator's own loop with
    :meth:`wait_for_async`. ``after`` (from :meth:`mark`) ignores events that happened before
    the step a test is checking.
    """

    def __init__(self) -> None:
        self._events: list[SimulatorEvent] = []
        self._condition = threading.Condition()
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the loop events are recorded on (for async waiters on that loop)."""
        self._loop = loop
        self._changed = asyncio.Event()

    def record(self, kind: str, udid: str | None = None, **details: Any) -> SimulatorEvent:
        """Append an event and wake every waiter."""
        with self._condition:
            event = SimulatorEvent(
                sequence=len(self._events) + 1,
                kind=kind,
                udid=udid,
                details=dict(details),
                monotonic=time.monotonic(),
            )
            self._events.append(event)
            self._condition.notify_all()
        changed = self._changed
        if changed is not None:
            # Swap before setting: waiters that wake re-check the list and then wait on the
            # fresh event, so no record between their check and their wait is missed.
            self._changed = asyncio.Event()
            changed.set()
        return event

    def mark(self) -> int:
        """The sequence number of the last event so far; pass it as ``after=`` to wait later."""
        with self._condition:
            return len(self._events)

    def events(
        self, kind: str | None = None, udid: str | None = None, *, after: int = 0
    ) -> list[SimulatorEvent]:
        """Events so far, optionally only of one kind and/or phone, newer than ``after``."""
        with self._condition:
            return [event for event in self._events[after:] if _matches(event, kind, udid, None)]

    def wait_for(
        self,
        kind: str,
        udid: str | None = None,
        *,
        after: int = 0,
        timeout: float = 10.0,
        where: Callable[[SimulatorEvent], bool] | None = None,
    ) -> SimulatorEvent:
        """Block until an event of ``kind`` (for ``udid``) newer than ``after`` is recorded.

        :raises TimeoutError: none came within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for event in self._events[after:]:
                    if _matches(event, kind, udid, where):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no simulator event {kind!r} for {udid!r} in {timeout}s")
                self._condition.wait(remaining)

    async def wait_for_async(
        self,
        kind: str,
        udid: str | None = None,
        *,
        after: int = 0,
        timeout: float = 10.0,  # noqa: ASYNC109 - wait_for's API (it runs that in a thread)
        where: Callable[[SimulatorEvent], bool] | None = None,
    ) -> SimulatorEvent:
        """Await an event like :meth:`wait_for`, without blocking the calling loop."""
        if asyncio.get_running_loop() is not self._loop:
            return await asyncio.to_thread(
                self.wait_for, kind, udid, after=after, timeout=timeout, where=where
            )
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                assert changed is not None
                for event in self.events(after=after):
                    if _matches(event, kind, udid, where):
                        return event
                await changed.wait()


def _matches(
    event: SimulatorEvent,
    kind: str | None,
    udid: str | None,
    where: Callable[[SimulatorEvent], bool] | None,
) -> bool:
    if kind is not None and event.kind != kind:
        return False
    if udid is not None and event.udid != udid:
        return False
    return where is None or where(event)
