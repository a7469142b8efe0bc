"""The simulator facade: phones, their plug/lock/trust state, and the servers that expose them.

:class:`Simulator` runs on an asyncio loop (``async with Simulator(...) as sim``); its mutators
are plain methods that must be called on that loop. :class:`SimulatorThread` runs a Simulator on
its own loop in a background thread and offers the same operations to synchronous test code,
thread-safely: each call is executed on the simulator's loop and its result handed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import structlog

from rollkeeper.simulator.afc import AfcServer
from rollkeeper.simulator.pairing import (
    cached_rsa_key,
    generate_pair_record,
    pair_record_bytes,
    trusted_host_from_record,
)
from rollkeeper.simulator.phone import AfcFaults, PhoneIdentity, PhoneState, TrustPolicy
from rollkeeper.simulator.runtime import EventLog, PhoneRuntime, SimulatorEvent
from rollkeeper.simulator.usbmuxd import UsbmuxDaemon

log = structlog.get_logger(__name__)

_Result = TypeVar("_Result")
_Parameters = ParamSpec("_Parameters")

#: How long a synchronous call into the simulator's loop may take before it is an error.
CALL_TIMEOUT_SECONDS = 30.0


def parse_tcp_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:PORT"`` -> ``("127.0.0.1", PORT)``.

    :raises ValueError: not HOST:PORT with a port in 0..65535.
    """
    host, separator, port_text = text.rpartition(":")
    if not separator or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:27015, got {text!r}")
    return host, int(port_text)


class Simulator:
    """Simulated iPhones behind a simulated usbmuxd, on the running asyncio loop.

    Give either ``socket_path`` (a UNIX socket) or ``tcp`` (``("127.0.0.1", 0)`` picks a free
    port); neither means TCP on a free loopback port. :attr:`address` is then the value for
    ``USBMUXD_SOCKET_ADDRESS`` (pymobiledevice3), :attr:`libimobiledevice_address` the spelling
    libimobiledevice wants.
    """

    def __init__(
        self,
        *,
        socket_path: Path | str | None = None,
        tcp: tuple[str, int] | None = None,
    ) -> None:
        if socket_path is not None and tcp is not None:
            raise ValueError("give socket_path or tcp, not both")
        self._socket_path = Path(socket_path) if socket_path is not None else None
        self._tcp = tcp if tcp is not None or socket_path is not None else ("127.0.0.1", 0)
        self.events = EventLog()
        self.usbmuxd = UsbmuxDaemon(self.events, self._serve_service)
        self._phones: dict[str, PhoneRuntime] = {}
        self._next_device_id = 1
        self._address: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening; :attr:`address` is valid once this returns."""
        self._loop = asyncio.get_running_loop()
        self.events.bind_loop(self._loop)
        if self._socket_path is not None:
            await self.usbmuxd.listen_unix(str(self._socket_path))
            self._address = str(self._socket_path)
        else:
            assert self._tcp is not None
            host, port = self._tcp
            bound = await self.usbmuxd.listen_tcp(host, port)
            self._address = f"{host}:{bound}"
        log.info("simulator_listening", address=self._address)

    async def stop(self) -> None:
        """Cut every connection and stop listening."""
        for runtime in self._phones.values():
            runtime.drop_connections()
        await self.usbmuxd.close()
        # Only a socket this simulator created is removed: a refused start leaves the path alone.
        if self._socket_path is not None and self._address is not None:
            with contextlib.suppress(FileNotFoundError):
                self._socket_path.unlink()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def address(self) -> str:
        """``USBMUXD_SOCKET_ADDRESS`` for pymobiledevice3: a socket path or ``HOST:PORT``."""
        if self._address is None:
            raise RuntimeError("the simulator is not started")
        return self._address

    @property
    def libimobiledevice_address(self) -> str:
        """``USBMUXD_SOCKET_ADDRESS`` for libimobiledevice: ``UNIX:/path`` or ``HOST:PORT``."""
        if self._socket_path is not None:
            return f"UNIX:{self.address}"
        return self.address

    # -- phones -------------------------------------------------------------------------------

    async def add_phone(
        self,
        udid: str,
        media_root: Path,
        *,
        name: str = "iPhone",
        plugged: bool = True,
        locked: bool = False,
        trust: TrustPolicy = TrustPolicy.PAIRED,
        pending_polls: int = 0,
        identity: PhoneIdentity | None = None,
        faults: AfcFaults | None = None,
        connection_type: str = "USB",
    ) -> PhoneState:
        """Add a phone serving ``media_root`` (which holds ``DCIM/``); plugged in by default.

        ``identity`` overrides the model, iOS version and so on (its udid and name win over the
        ``udid``/``name`` arguments only if given). With ``trust=PAIRED`` the simulator pairs
        the phone with a host of its own and serves that pair record through ReadPairRecord.
        """
        if udid in self._phones:
            raise ValueError(f"a phone with UDID {udid} already exists")
        if identity is None:
            identity = PhoneIdentity(udid=udid, name=name)
        # Keys are cached, but the first one costs 0.2 s: keep the loop responsive meanwhile.
        device_key = await asyncio.to_thread(cached_rsa_key, "device")
        if trust is TrustPolicy.PAIRED:
            await asyncio.to_thread(cached_rsa_key, "root")
            await asyncio.to_thread(cached_rsa_key, "host")
        state = PhoneState(
            identity=identity,
            media_root=Path(media_root),
            plugged=False,
            locked=locked,
            trust=trust,
            pending_polls=pending_polls,
            connection_type=connection_type,
            faults=faults if faults is not None else AfcFaults(),
        )
        runtime = PhoneRuntime(state=state, device_key=device_key)
        self._phones[identity.udid] = runtime
        if trust is TrustPolicy.PAIRED:
            self._pair_with_simulator_host(runtime)
        self.events.record("phone_added", identity.udid)
        if plugged:
            self.plug(identity.udid)
        return state

    def _pair_with_simulator_host(self, runtime: PhoneRuntime) -> None:
        """Make the phone trust a host whose pair record usbmuxd already holds."""
        record = generate_pair_record(
            device_key=runtime.device_key,
            wifi_address=runtime.state.identity.wifi_address,
            system_buid=self.usbmuxd.system_buid,
        )
        runtime.trust(trusted_host_from_record(record))
        self.usbmuxd.pair_records[runtime.udid] = pair_record_bytes(record)

    def _runtime(self, udid: str) -> PhoneRuntime:
        try:
            return self._phones[udid]
        except KeyError:
            raise KeyError(f"no simulated phone with UDID {udid}") from None

    def phone(self, udid: str) -> PhoneState:
        """The live state of a phone (read it on the simulator's loop)."""
        return self._runtime(udid).state

    def phones(self) -> list[PhoneState]:
        """Every phone, plugged or not, in the order they were added."""
        return [runtime.state for runtime in self._phones.values()]

    def plug(self, udid: str) -> None:
        """Plug the phone in: a new usbmuxd DeviceID, and Attached to every Listen client."""
        runtime = self._runtime(udid)
        if runtime.state.plugged:
            return
        # Like usbmuxd, every attach gets a fresh DeviceID.
        runtime.state.device_id = self._next_device_id
        self._next_device_id += 1
        runtime.state.plugged = True
        runtime.pending_answers = 0
        self.usbmuxd.announce_attached(runtime)
        self.events.record("attached", udid, device_id=runtime.state.device_id)
        log.info("phone_attached", udid=udid, device_id=runtime.state.device_id)

    def unplug(self, udid: str) -> None:
        """Pull the cable: every connection of the phone closes, Detached goes to listeners."""
        runtime = self._runtime(udid)
        if not runtime.state.plugged:
            return
        runtime.state.plugged = False
        dropped = runtime.drop_connections()
        self.usbmuxd.announce_detached(runtime)
        self.events.record(
            "detached", udid, device_id=runtime.state.device_id, connections_dropped=dropped
        )
        log.info("phone_detached", udid=udid, connections_dropped=dropped)

    def lock(self, udid: str) -> None:
        """Lock the phone: StartService and Pair answer PasswordProtected until unlocked."""
        self._runtime(udid).state.locked = True
        self.events.record("locked", udid)

    def unlock(self, udid: str) -> None:
        """Unlock the phone."""
        self._runtime(udid).state.locked = False
        self.events.record("unlocked", udid)

    def set_trust(self, udid: str, policy: TrustPolicy, pending_polls: int = 0) -> None:
        """Change how the phone answers pairing.

        PAIRED pairs it with the simulator's host if it trusts nobody yet. ACCEPT and DENY start
        over from "never paired": the phone forgets its hosts and usbmuxd drops its record.
        """
        runtime = self._runtime(udid)
        runtime.state.trust = policy
        runtime.state.pending_polls = pending_polls
        runtime.pending_answers = 0
        if policy is TrustPolicy.PAIRED:
            if not runtime.trusted_hosts:
                self._pair_with_simulator_host(runtime)
        else:
            runtime.forget_hosts()
            self.usbmuxd.pair_records.pop(udid, None)
        self.events.record("trust_changed", udid, policy=policy.value, pending_polls=pending_polls)

    def revoke_trust(self, udid: str) -> None:
        """The phone forgets every host, but usbmuxd keeps its (now stale) pair record.

        What a phone reset or "Reset Location & Privacy" does: StartSession then answers
        InvalidHostID, and the host has to pair again.
        """
        self._runtime(udid).forget_hosts()
        self.events.record("trust_revoked", udid)

    def pair_record(self, udid: str) -> bytes | None:
        """The pair record usbmuxd would serve for the phone (an XML plist), if any."""
        return self.usbmuxd.pair_records.get(udid)

    def set_faults(self, udid: str, faults: AfcFaults) -> None:
        """Replace the phone's AFC faults (takes effect for the next AFC request)."""
        self._runtime(udid).state.faults = faults

    def update_phone(self, udid: str, change: Callable[[PhoneState], _Result]) -> _Result:
        """Run ``change(phone_state)`` (e.g. edit faults in place); returns what it returns."""
        return change(self._runtime(udid).state)

    def afc_request_counts(self, udid: str) -> Counter[str]:
        """A copy of the phone's AFC request counts by operation name."""
        return Counter(self._runtime(udid).state.afc_requests)

    def afc_bytes_served(self, udid: str) -> Counter[str]:
        """A copy of the bytes served by READ, by phone-side path."""
        return Counter(self._runtime(udid).state.afc_bytes_served)

    def reset_counts(self, udid: str) -> None:
        """Zero the phone's AFC request and byte counters."""
        state = self._runtime(udid).state
        state.afc_requests.clear()
        state.afc_bytes_served.clear()

    def describe(self) -> list[dict[str, Any]]:
        """A JSON-ready summary of every phone (the control socket's ``status``)."""
        return [
            {
                "udid": runtime.udid,
                "name": runtime.state.identity.name,
                "device_id": runtime.state.device_id,
                "plugged": runtime.state.plugged,
                "locked": runtime.state.locked,
                "trust": runtime.state.trust.value,
                "trusted_hosts": len(runtime.trusted_hosts),
                "open_connections": len(runtime.tunnels),
                "throttle_bytes_per_second": runtime.state.faults.throttle_bytes_per_second,
                "media_root": str(runtime.state.media_root),
            }
            for runtime in self._phones.values()
        ]

    # -- services -----------------------------------------------------------------------------

    async def _serve_service(
        self,
        runtime: PhoneRuntime,
        port: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Serve a connection to a started service (AFC) on the client's own socket."""
        udid = runtime.udid
        server = AfcServer(runtime.state, lambda: self.unplug(udid))
        self.events.record("afc_connected", udid, port=port)
        try:
            await server.serve(reader, writer)
        finally:
            self.events.record("afc_closed", udid, port=port)


class SimulatorThread:
    """A :class:`Simulator` on its own event loop in a background thread, for sync tests.

    ``with SimulatorThread(socket_path=...) as sim:`` starts it (listening before ``__enter__``
    returns) and stops it on exit. Every method is thread-safe: it runs on the simulator's loop.
    Wait for things with :meth:`wait_for` (events such as ``"detached"``), never with sleeps.
    """

    def __init__(
        self,
        *,
        socket_path: Path | str | None = None,
        tcp: tuple[str, int] | None = None,
    ) -> None:
        self.simulator = Simulator(socket_path=socket_path, tcp=tcp)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run_loop, name="rollkeeper-simulator", daemon=True
        )

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self) -> SimulatorThread:
        """Start the thread and the servers; returns self."""
        self._thread.start()
        try:
            self._run(self.simulator.start())
        except BaseException:
            self.stop()  # a refused start must not leave a loop running in a thread
            raise
        return self

    def stop(self) -> None:
        """Stop the servers, the loop and the thread."""
        if not self._thread.is_alive():
            if not self._thread.ident and not self._loop.is_closed():
                self._loop.close()  # never started: nothing runs on the loop
            return
        try:
            self._run(self.simulator.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=CALL_TIMEOUT_SECONDS)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, awaitable: Awaitable[_Result]) -> _Result:
        async def wrapper() -> _Result:
            return await awaitable

        future = asyncio.run_coroutine_threadsafe(wrapper(), self._loop)
        return future.result(timeout=CALL_TIMEOUT_SECONDS)

    def call(
        self,
        function: Callable[_Parameters, _Result],
        *args: _Parameters.args,
        **kwargs: _Parameters.kwargs,
    ) -> _Result:
        """Run ``function(*args, **kwargs)`` on the simulator's loop and return its result."""
        if threading.current_thread() is self._thread:
            return function(*args, **kwargs)
        future: Future[_Result] = Future()

        def run() -> None:
            try:
                future.set_result(function(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=CALL_TIMEOUT_SECONDS)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The simulator's event loop (for ``run_coroutine_threadsafe``)."""
        return self._loop

    @property
    def address(self) -> str:
        """``USBMUXD_SOCKET_ADDRESS`` for pymobiledevice3."""
        return self.simulator.address

    @property
    def libimobiledevice_address(self) -> str:
        """``USBMUXD_SOCKET_ADDRESS`` for libimobiledevice's tools."""
        return self.simulator.libimobiledevice_address

    @property
    def events(self) -> EventLog:
        """The event log (thread-safe)."""
        return self.simulator.events

    def add_phone(self, udid: str, media_root: Path, **options: Any) -> PhoneState:
        """See :meth:`Simulator.add_phone`. The returned state is live: read, don't write."""
        return self._run(self.simulator.add_phone(udid, media_root, **options))

    def plug(self, udid: str) -> None:
        """See :meth:`Simulator.plug`."""
        self.call(self.simulator.plug, udid)

    def unplug(self, udid: str) -> None:
        """See :meth:`Simulator.unplug`."""
        self.call(self.simulator.unplug, udid)

    def lock(self, udid: str) -> None:
        """See :meth:`Simulator.lock`."""
        self.call(self.simulator.lock, udid)

    def unlock(self, udid: str) -> None:
        """See :meth:`Simulator.unlock`."""
        self.call(self.simulator.unlock, udid)

    def set_trust(self, udid: str, policy: TrustPolicy, pending_polls: int = 0) -> None:
        """See :meth:`Simulator.set_trust`."""
        self.call(self.simulator.set_trust, udid, policy, pending_polls)

    def revoke_trust(self, udid: str) -> None:
        """See :meth:`Simulator.revoke_trust`."""
        self.call(self.simulator.revoke_trust, udid)

    def pair_record(self, udid: str) -> bytes | None:
        """See :meth:`Simulator.pair_record`."""
        return self.call(self.simulator.pair_record, udid)

    def set_faults(self, udid: str, faults: AfcFaults) -> None:
        """See :meth:`Simulator.set_faults` (a copy of ``faults`` is installed)."""
        self.call(self.simulator.set_faults, udid, replace(faults))

    def update_phone(self, udid: str, change: Callable[[PhoneState], _Result]) -> _Result:
        """Run ``change(phone_state)`` on the simulator's loop, e.g. to edit faults in place."""
        return self.call(self.simulator.update_phone, udid, change)

    def afc_request_counts(self, udid: str) -> Counter[str]:
        """See :meth:`Simulator.afc_request_counts`."""
        return self.call(self.simulator.afc_request_counts, udid)

    def afc_bytes_served(self, udid: str) -> Counter[str]:
        """See :meth:`Simulator.afc_bytes_served`."""
        return self.call(self.simulator.afc_bytes_served, udid)

    def reset_counts(self, udid: str) -> None:
        """See :meth:`Simulator.reset_counts`."""
        self.call(self.simulator.reset_counts, udid)

    def phone_snapshot(self, udid: str) -> dict[str, Any]:
        """A consistent copy of one phone's summary (see :meth:`Simulator.describe`)."""
        for entry in self.call(self.simulator.describe):
            if entry["udid"] == udid:
                return entry
        raise KeyError(f"no simulated phone with UDID {udid}")

    def mark(self) -> int:
        """The current event sequence number: pass as ``after=`` to :meth:`wait_for`."""
        return self.events.mark()

    def wait_for(
        self,
        kind: str,
        udid: str | None = None,
        *,
        after: int = 0,
        timeout: float = 10.0,
        where: Callable[[SimulatorEvent], bool] | None = None,
    ) -> SimulatorEvent:
        """Block until an event happens (see :class:`EventLog`); raises TimeoutError."""
        return self.events.wait_for(kind, udid, after=after, timeout=timeout, where=where)


def short_socket_folder() -> Path:
    """A fresh 0700 folder under the system temp dir for UNIX sockets.

    UNIX socket paths are limited to ~107 bytes, which pytest's tmp_path can exceed.
    """
    return Path(tempfile.mkdtemp(prefix="rk-sim-", dir=os.environ.get("TMPDIR", "/tmp")))
