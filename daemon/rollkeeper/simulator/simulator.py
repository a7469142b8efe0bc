"""The simulator facade: phones, their plug/lock/trust state, and the servers that expose them.

:class:`Simulator` runs on an asyncio loop (``async with Simulator(...) as sim``); its mutators
are plain methods that must be called on that loop. Synchronous code uses
:class:`~rollkeeper.simulator.simulator_thread.SimulatorThread`, which runs a Simulator on a
loop of its own in a background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import structlog

from rollkeeper.simulator.addresses import parse_tcp_address
from rollkeeper.simulator.afc import AfcServer
from rollkeeper.simulator.backup_services import HELPER_SERVICES, serve_helper_service
from rollkeeper.simulator.lockdownd import AFC_SERVICE
from rollkeeper.simulator.mobilebackup2 import MOBILEBACKUP2_SERVICE, Mobilebackup2Server
from rollkeeper.simulator.pairing import (
    cached_rsa_key,
    generate_pair_record,
    pair_record_bytes,
    trusted_host_from_record,
)
from rollkeeper.simulator.phone import AfcFaults, PhoneIdentity, PhoneState, TrustPolicy
from rollkeeper.simulator.plugging import REENUMERATE_GAP_SECONDS, PhoneBus
from rollkeeper.simulator.runtime import EventLog, PhoneRuntime
from rollkeeper.simulator.usbmuxd import UsbmuxDaemon
from rollkeeper.simulator.usbmuxd_profiles import UsbmuxdProfile
from rollkeeper.simulator.usbmuxd_profiles import usbmuxd_profile as find_usbmuxd_profile

# parse_tcp_address is imported from here by `rollkeeper simulate`; it lives in .addresses.
__all__ = ["Simulator", "parse_tcp_address"]

log = structlog.get_logger(__name__)

_Result = TypeVar("_Result")


class Simulator:
    """Simulated iPhones behind a simulated usbmuxd, on the running asyncio loop.

    Give either ``socket_path`` (a UNIX socket) or ``tcp`` (``("127.0.0.1", 0)`` picks a free
    port); neither means TCP on a free loopback port. :attr:`address` is then the value for
    ``USBMUXD_SOCKET_ADDRESS`` (pymobiledevice3), :attr:`libimobiledevice_address` the spelling
    libimobiledevice wants. ``usbmuxd_profile`` names the usbmuxd build imitated
    (:data:`~rollkeeper.simulator.usbmuxd_profiles.USBMUXD_PROFILES`: ``generic``,
    ``linux-usbmuxd``, ``macos-usbmuxd``).
    """

    def __init__(
        self,
        *,
        socket_path: Path | str | None = None,
        tcp: tuple[str, int] | None = None,
        usbmuxd_profile: str | UsbmuxdProfile = "generic",
    ) -> None:
        if socket_path is not None and tcp is not None:
            raise ValueError("give socket_path or tcp, not both")
        self._socket_path = Path(socket_path) if socket_path is not None else None
        self._tcp = tcp if tcp is not None or socket_path is not None else ("127.0.0.1", 0)
        self.events = EventLog()
        profile = (
            usbmuxd_profile
            if isinstance(usbmuxd_profile, UsbmuxdProfile)
            else find_usbmuxd_profile(usbmuxd_profile)
        )
        self.usbmuxd = UsbmuxDaemon(self.events, self._serve_service, profile)
        self.bus = PhoneBus(self.usbmuxd, self.events, self._pair_with_simulator_host)
        self._phones: dict[str, PhoneRuntime] = {}
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
            self.bus.cancel_pending(runtime)
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
        locked_for_seconds: float = 0.0,
        restarted: bool = False,
        trust_prompt_delay_seconds: float = 0.0,
        reenumerate_on_trust: bool = True,
    ) -> PhoneState:
        """Add a phone serving ``media_root`` (which holds ``DCIM/``); plugged in by default.

        ``identity`` overrides the model, iOS version and so on (its udid and name win over the
        ``udid``/``name`` arguments only if given). With ``trust=PAIRED`` the simulator pairs
        the phone with a host of its own and serves that pair record through ReadPairRecord.
        ``locked_for_seconds`` says how long a locked phone has been locked (an hour or more
        when it is plugged in: USB Restricted Mode); ``restarted`` means it restarted and was
        not unlocked since; ``trust_prompt_delay_seconds`` how long its Trust dialog takes to
        appear; ``reenumerate_on_trust=False`` keeps it attached when it trusts a new host.
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
            unlocked_since_boot=not restarted,
            trust_prompt_delay_seconds=trust_prompt_delay_seconds,
            reenumerate_on_trust=reenumerate_on_trust,
        )
        runtime = PhoneRuntime(state=state, device_key=device_key)
        if locked or restarted:
            state.locked = True
            state.locked_since = asyncio.get_running_loop().time() - locked_for_seconds
        else:
            runtime.unlocked.set()
        runtime.on_new_host_trusted = lambda: self.bus.new_host_trusted(runtime)
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
        """Plug the phone in: a new usbmuxd DeviceID, and Attached to every Listen client
        (see :mod:`.plugging` for USB Restricted Mode and the Linux preflight)."""
        self.bus.plug(self._runtime(udid))

    def unplug(self, udid: str) -> None:
        """Pull the cable: every connection of the phone closes, Detached goes to listeners."""
        self.bus.unplug(self._runtime(udid))

    def reenumerate(self, udid: str, gap_seconds: float = REENUMERATE_GAP_SECONDS) -> None:
        """The phone leaves the bus and comes back ``gap_seconds`` later under a new DeviceID."""
        self.bus.reenumerate(self._runtime(udid), gap_seconds)

    def lock(self, udid: str, locked_for_seconds: float = 0.0) -> None:
        """Lock the phone: StartService and Pair answer PasswordProtected until unlocked;
        ``locked_for_seconds`` backdates the lock (an hour or more: USB Restricted Mode)."""
        self.bus.lock(self._runtime(udid), locked_for_seconds)

    def unlock(self, udid: str) -> None:
        """Unlock the phone (also its first unlock after a restart)."""
        self.bus.unlock(self._runtime(udid))

    def restart(self, udid: str) -> None:
        """The phone restarts: back locked, refusing sessions until its first unlock."""
        self.bus.restart(self._runtime(udid))

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

    def revoke_trust(
        self, udid: str, then: TrustPolicy | None = None, pending_polls: int = 0
    ) -> None:
        """The phone forgets every host, but usbmuxd keeps its (now stale) pair record.

        What a phone reset or "Reset Location & Privacy" does: StartSession then answers
        InvalidHostID, and the host has to pair again. ``then`` is how its Trust dialog answers
        that new pairing (a real phone asks again: ACCEPT or DENY, after ``pending_polls``);
        None keeps the policy it had.
        """
        runtime = self._runtime(udid)
        runtime.forget_hosts()
        if then is not None:
            runtime.state.trust = then
            runtime.state.pending_polls = pending_polls
            runtime.pending_answers = 0
        self.events.record("trust_revoked", udid)

    def pair_record(self, udid: str) -> bytes | None:
        """The pair record usbmuxd would serve for the phone (an XML plist), if any."""
        return self.usbmuxd.pair_records.get(udid)

    def enter_passcode(self, udid: str) -> bool:
        """Enter the passcode on the phone's backup prompt; False if no prompt is showing."""
        waiting = self._runtime(udid).state.backup.passcode_entered
        if waiting is None:
            return False
        waiting.set()
        return True

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
                "usb_restricted": runtime.state.usb_restricted,
                "unlocked_since_boot": runtime.state.unlocked_since_boot,
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
        """Serve a connection to a started service on the client's own socket, by its name."""
        udid = runtime.udid
        service = runtime.service_names.get(port, AFC_SERVICE)
        if service == MOBILEBACKUP2_SERVICE:
            backup = Mobilebackup2Server(runtime.state, self.events, lambda: self.unplug(udid))
            await backup.serve(reader, writer)
            return
        if service in HELPER_SERVICES:
            await serve_helper_service(service, udid, self.events, reader, writer)
            return
        server = AfcServer(runtime.state, lambda: self.unplug(udid))
        self.events.record("afc_connected", udid, port=port)
        try:
            await server.serve(reader, writer)
        finally:
            self.events.record("afc_closed", udid, port=port)
