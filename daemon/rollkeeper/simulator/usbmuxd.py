"""The simulated usbmuxd: plist protocol version 1 on a UNIX socket or a loopback TCP port.

Every packet is ``<u32 length, u32 version=1, u32 message=8 (plist), u32 tag>`` (little-endian,
length counting the header) followed by an XML plist; replies echo the tag. The messages are
those pymobiledevice3 (``usbmux.py``) and libusbmuxd 2.0 (``libusbmuxd.c``) send: ReadBUID,
ListDevices, Listen, Connect, ReadPairRecord, SavePairRecord, DeletePairRecord.

After a successful Connect the client's socket *is* the connection to the phone's port: the same
``StreamReader``/``StreamWriter`` pair is handed to lockdownd or to the AFC server, so bytes are
not copied through any relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import plistlib
import socket
import stat
import struct
from collections.abc import Callable
from typing import Any

import structlog

from rollkeeper.simulator.lockdownd import LOCKDOWN_PORT, LockdownConnection
from rollkeeper.simulator.pairing import SIMULATOR_SYSTEM_BUID
from rollkeeper.simulator.runtime import EventLog, PhoneRuntime, Tunnel
from rollkeeper.simulator.usbmuxd_profiles import (
    USBMUXD_PROFILES,
    UsbmuxdProfile,
    attached_properties,
)

log = structlog.get_logger(__name__)

_HEADER = struct.Struct("<IIII")
PLIST_VERSION = 1
MESSAGE_RESULT = 1
MESSAGE_PLIST = 8
#: Result numbers (usbmuxd's ``RESULT_*``).
RESULT_OK = 0
RESULT_BADCOMMAND = 1
RESULT_BADDEV = 2
RESULT_CONNREFUSED = 3
RESULT_BADVERSION = 6
#: usbmuxd answers a missing pair record with the errno ENOENT.
RESULT_ENOENT = 2
#: Largest request accepted (a pair record with an escrow bag is a few KiB).
MAX_PACKET_BYTES = 1 << 20


def claim_socket_path(path: str) -> None:
    """Refuse a UNIX socket path that something still listens on, or that is not a socket.

    asyncio would silently unlink any socket file in the way; at ``/var/run/usbmuxd`` that would
    cut the real usbmuxd off from its clients. A stale socket (nobody listening) may go.

    :raises FileExistsError: the path is taken.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return
    raise FileExistsError(f"something already listens on {path}")


def encode_packet(tag: int, message: dict[str, Any], *, version: int = PLIST_VERSION) -> bytes:
    """One usbmuxd packet carrying ``message`` as an XML plist."""
    payload = plistlib.dumps(message)
    return _HEADER.pack(_HEADER.size + len(payload), version, MESSAGE_PLIST, tag) + payload


ServeService = Callable[[PhoneRuntime, int, asyncio.StreamReader, asyncio.StreamWriter], Any]


class UsbmuxDaemon:
    """The usbmuxd side of the simulator: devices, listeners, pair records and tunnels.

    ``serve_service(runtime, port, reader, writer)`` is awaited for a Connect to a port that a
    StartService opened (the AFC server); lockdownd's port is served here. Runs on one loop.
    ``profile`` is the usbmuxd build imitated (:mod:`.usbmuxd_profiles`).
    """

    def __init__(
        self,
        events: EventLog,
        serve_service: ServeService,
        profile: UsbmuxdProfile = USBMUXD_PROFILES["generic"],
    ) -> None:
        self.events = events
        self._serve_service = serve_service
        self.profile = profile
        #: Phones by DeviceID, only while announced (a phone listed twice has two DeviceIDs).
        self.attached: dict[int, PhoneRuntime] = {}
        #: Pair records as the host's usbmuxd stores them, by UDID (PairRecordID).
        self.pair_records: dict[str, bytes] = {}
        self._listeners: set[asyncio.StreamWriter] = set()
        self._clients: set[tuple[asyncio.StreamWriter, asyncio.Task[Any]]] = set()
        self._server: asyncio.Server | None = None
        self.system_buid = SIMULATOR_SYSTEM_BUID

    async def listen_unix(self, path: str) -> None:
        """Serve on a UNIX socket (replacing a stale socket file there, never a live one)."""
        claim_socket_path(path)
        self._server = await asyncio.start_unix_server(self._handle_client, path=path)

    async def listen_tcp(self, host: str, port: int) -> int:
        """Serve on a TCP address; returns the port (useful with port 0)."""
        self._server = await asyncio.start_server(self._handle_client, host=host, port=port)
        sockname = self._server.sockets[0].getsockname()
        return int(sockname[1])

    async def close(self) -> None:
        """Stop accepting and cut every client connection."""
        if self._server is not None:
            self._server.close()
        for writer, task in list(self._clients):
            writer.transport.abort()
            task.cancel()
        tasks = [task for _writer, task in self._clients]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # -- device events -------------------------------------------------------------------------

    def _entries(self, runtime: PhoneRuntime) -> list[tuple[int, str]]:
        """(DeviceID, connection type) of every record usbmuxd lists for the phone."""
        state = runtime.state
        entries = [(state.device_id, state.connection_type)]
        if runtime.network_device_id is not None:
            entries.append((runtime.network_device_id, "Network"))
        return entries

    def attached_message(self, device_id: int) -> dict[str, Any]:
        """The Attached record of one listed DeviceID, as in ListDevices and Listen."""
        runtime = self.attached[device_id]
        connection_type = (
            "Network" if device_id == runtime.network_device_id else runtime.state.connection_type
        )
        properties = attached_properties(self.profile, runtime, device_id, connection_type)
        return {"MessageType": "Attached", "DeviceID": device_id, "Properties": properties}

    def announce_attached(self, runtime: PhoneRuntime) -> None:
        """List a plugged phone (twice under a build with Network twins); tell every listener."""
        for device_id, _connection_type in self._entries(runtime):
            self.attached[device_id] = runtime
            self._broadcast(self.attached_message(device_id))

    def announce_detached(self, runtime: PhoneRuntime) -> None:
        """Remove an unplugged phone and tell every Listen client (if it was ever shown)."""
        for device_id, _connection_type in self._entries(runtime):
            if self.attached.get(device_id) is runtime:
                del self.attached[device_id]
                self._broadcast({"MessageType": "Detached", "DeviceID": device_id})

    def _broadcast(self, message: dict[str, Any]) -> None:
        # usbmuxd sends events with tag 0.
        packet = encode_packet(0, message)
        for writer in list(self._listeners):
            if writer.is_closing():
                self._listeners.discard(writer)
                continue
            writer.write(packet)

    # -- client connections --------------------------------------------------------------------

    async def _handle_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        entry = (writer, task)
        self._clients.add(entry)
        tunnels: list[Tunnel] = []
        try:
            await self._serve_requests(reader, writer, tunnels)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            if not (tunnels and tunnels[0].dropped):
                raise
            # An unplug cut this connection: that is the end of it, not a shutdown.
        finally:
            self._clients.discard(entry)
            self._listeners.discard(writer)
            writer.transport.abort()

    async def _serve_requests(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tunnels: list[Tunnel],
    ) -> None:
        """Answer requests; ``tunnels`` receives the Tunnel if the connection becomes one."""
        while True:
            try:
                header = await reader.readexactly(_HEADER.size)
            except asyncio.IncompleteReadError:
                return
            length, version, message_type, tag = _HEADER.unpack(header)
            if length < _HEADER.size or length > MAX_PACKET_BYTES:
                return
            payload = await reader.readexactly(length - _HEADER.size)
            if version != PLIST_VERSION or message_type != MESSAGE_PLIST:
                # Only the plist protocol is simulated. Real usbmuxd also speaks the binary
                # protocol (version 0); both clients try plists first, so refusing is enough.
                writer.write(
                    struct.pack(
                        "<IIIII", _HEADER.size + 4, 0, MESSAGE_RESULT, tag, RESULT_BADVERSION
                    )
                )
                await writer.drain()
                continue
            request = _decoded_plist(payload)
            if not isinstance(request, dict):
                return
            kind = str(request.get("MessageType", ""))
            if kind == "Connect":
                await self._connect(tag, request, reader, writer, tunnels)
                return
            if kind == "Listen":
                await self._listen(tag, reader, writer)
                return
            reply = self._answer(kind, request)
            writer.write(encode_packet(tag, reply))
            await writer.drain()

    def _answer(self, kind: str, request: dict[str, Any]) -> dict[str, Any]:
        if kind == "ReadBUID":
            return {"BUID": self.system_buid}
        if kind == "ListDevices":
            listed = [self.attached_message(number) for number in sorted(self.attached)]
            return {"DeviceList": listed}
        if kind == "ReadPairRecord":
            record = self.pair_records.get(str(request.get("PairRecordID", "")))
            if record is None:
                return _result(RESULT_ENOENT)
            return {"PairRecordData": record}
        if kind == "SavePairRecord":
            return self._save_pair_record(request)
        if kind == "DeletePairRecord":
            udid = str(request.get("PairRecordID", ""))
            if self.pair_records.pop(udid, None) is None:
                return _result(RESULT_ENOENT)
            self.events.record("pair_record_deleted", udid)
            return _result(RESULT_OK)
        return _result(RESULT_BADCOMMAND)

    def _save_pair_record(self, request: dict[str, Any]) -> dict[str, Any]:
        udid = str(request.get("PairRecordID", ""))
        data = request.get("PairRecordData")
        if not udid or not isinstance(data, bytes):
            return _result(RESULT_BADCOMMAND)
        if _decoded_plist(data) is None:
            return _result(RESULT_BADCOMMAND)
        self.pair_records[udid] = data
        self.events.record("pair_record_saved", udid)
        device_id = request.get("DeviceID")
        # usbmuxd (src/client.c) announces Paired only for an attached device of that serial.
        attached = self.attached.get(device_id) if isinstance(device_id, int) else None
        if attached is not None and attached.udid == udid:
            self._broadcast({"MessageType": "Paired", "DeviceID": device_id})
        return _result(RESULT_OK)

    async def _listen(
        self, tag: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Turn this connection into an event stream: Result, then Attached for each phone."""
        writer.write(encode_packet(tag, _result(RESULT_OK)))
        for device_id in sorted(self.attached):
            writer.write(encode_packet(0, self.attached_message(device_id)))
        self._listeners.add(writer)
        self.events.record("listen_started", None)
        await writer.drain()
        # Nothing more is expected from a listener; wait for it to hang up.
        while await reader.read(4096):
            pass

    async def _connect(
        self,
        tag: int,
        request: dict[str, Any],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tunnels: list[Tunnel],
    ) -> None:
        """Connect the client's socket to a port of a phone, then serve that port on it."""
        device_id = request.get("DeviceID")
        raw_port = request.get("PortNumber")
        runtime = self.attached.get(device_id) if isinstance(device_id, int) else None
        if runtime is None or not isinstance(raw_port, int):
            writer.write(encode_packet(tag, _result(RESULT_BADDEV)))
            await writer.drain()
            return
        # The port travels in network byte order inside a host-order integer.
        port = socket.ntohs(raw_port & 0xFFFF)
        if runtime.state.usb_restricted:
            # USB Restricted Mode: the phone takes no data connection until it is unlocked.
            self.events.record("connect_refused", runtime.udid, port=port, reason="usb_restricted")
            writer.write(encode_packet(tag, _result(RESULT_CONNREFUSED)))
            await writer.drain()
            return
        if port == LOCKDOWN_PORT:
            service = "lockdown"
        else:
            found = runtime.service_ports.pop(port, None)
            if found is None:
                self.events.record("connect_refused", runtime.udid, port=port)
                writer.write(encode_packet(tag, _result(RESULT_CONNREFUSED)))
                await writer.drain()
                return
            service = found
        task = asyncio.current_task()
        tunnel = Tunnel(udid=runtime.udid, port=port, writer=writer, task=task)
        runtime.tunnels.add(tunnel)
        tunnels.append(tunnel)
        try:
            writer.write(encode_packet(tag, _result(RESULT_OK)))
            await writer.drain()
            self.events.record("connected", runtime.udid, port=port, service=service)
            if port == LOCKDOWN_PORT:
                await LockdownConnection(runtime, self.events, reader, writer).serve()
            else:
                await self._serve_service(runtime, port, reader, writer)
        finally:
            runtime.tunnels.discard(tunnel)
            self.events.record(
                "connection_closed",
                runtime.udid,
                port=port,
                service=service,
                dropped=tunnel.dropped,
            )
            with contextlib.suppress(Exception):
                writer.transport.abort()


def _decoded_plist(data: bytes) -> Any | None:
    """A client's plist, or None when it is not one (a plist cannot hold None).

    On garbage plistlib raises several unrelated types (ValueError, ExpatError, IndexError,
    AttributeError from a malformed date, RecursionError ...), and the daemon must survive any
    client: here every exception is "not a plist".
    """
    try:
        return plistlib.loads(data)
    except Exception:  # noqa: BLE001 - any type on garbage (see the docstring); the client is refused
        return None


def _result(number: int) -> dict[str, Any]:
    return {"MessageType": "Result", "Number": number}
