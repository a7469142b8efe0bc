"""The simulated lockdownd: the service behind usbmux port 62078 of every phone.

Framing is a 4-byte big-endian length and an XML plist each way. After ``StartSession`` the same
socket carries TLS (the phone presents the DeviceCertificate of the pair record, the host its own
certificate); after ``StopSession`` a client may drop back to plain text (libimobiledevice sends a
TLS close_notify and then ``Goodbye`` in the clear) or carry on inside TLS (pymobiledevice3).

The host is checked by comparing the certificate it presents with the certificates of the pair
record the phone holds for that HostID, in a pyOpenSSL verify callback. OpenSSL's own chain
checks cannot do it: lockdown certificates have empty subjects and issuers, and
libimobiledevice 1.3.0 presents the *root* certificate where pymobiledevice3 presents the host
certificate. Python's :mod:`ssl` has no verify callback, hence pyOpenSSL over memory BIOs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import plistlib
import struct
import uuid
from typing import Any

import structlog
from OpenSSL import SSL, crypto

from rollkeeper.simulator.pairing import (
    TrustedHost,
    certificate_matches_key,
    device_public_key_pem,
    load_certificate,
    trusted_host_from_record,
)
from rollkeeper.simulator.phone import TrustPolicy
from rollkeeper.simulator.runtime import EventLog, PhoneRuntime

log = structlog.get_logger(__name__)

#: The usbmux port lockdownd listens on (0xF27E).
LOCKDOWN_PORT = 62078
#: The only service the simulated phone can start.
AFC_SERVICE = "com.apple.afc"
#: Largest lockdown message accepted; pair records are a few KiB.
MAX_MESSAGE_BYTES = 1 << 20
#: TLS record content types: change_cipher_spec, alert, handshake, application_data.
_TLS_CONTENT_TYPES = frozenset({20, 21, 22, 23})
_TLS_READ_CHUNK = 1 << 16

#: Keys lockdownd answers before a session exists (what ``ideviceinfo -s`` shows on real
#: phones); everything else needs StartSession.
PUBLIC_KEYS = frozenset(
    {
        "BasebandCertId",
        "BasebandKeyHashInformation",
        "BasebandSerialNumber",
        "BasebandVersion",
        "BoardId",
        "BuildVersion",
        "ChipID",
        "CPUArchitecture",
        "DeviceClass",
        "DeviceColor",
        "DeviceName",
        "DevicePublicKey",
        "DieID",
        "HardwareModel",
        "HasSiDP",
        "PartitionType",
        "ProductName",
        "ProductType",
        "ProductVersion",
        "ProductionSOC",
        "ProtocolVersion",
        "TelephonyCapability",
        "UniqueChipID",
        "UniqueDeviceID",
        "WiFiAddress",
    }
)


class ClientGone(Exception):
    """The host closed the connection or broke the protocol; the handler just ends."""


def unique_chip_id(udid: str) -> int:
    """The ECID encoded in a modern UDID (``CHIPID-ECID``), else a stable number from the UDID."""
    digits = udid.replace("-", "")
    if len(digits) == 24:
        try:
            return int(digits[8:], 16)
        except ValueError:
            pass
    return int.from_bytes(uuid.uuid5(uuid.NAMESPACE_OID, udid).bytes[:7], "big")


def lockdown_values(runtime: PhoneRuntime, *, in_session: bool) -> dict[str, Any]:
    """The default-domain values of the phone (all of them in a session, else the public ones)."""
    state = runtime.state
    identity = state.identity
    values: dict[str, Any] = {
        "ActivationState": "Activated",
        "BasebandVersion": "2.60.01",
        "BluetoothAddress": "a0:b1:c2:d3:e4:f6",
        "BoardId": 12,
        "BuildVersion": identity.build_version,
        "CPUArchitecture": "arm64e",
        "ChipID": 33056,
        "DeviceClass": identity.device_class,
        "DeviceColor": "1",
        "DeviceName": identity.name,
        "DevicePublicKey": device_public_key_pem(runtime.device_key),
        "FirmwareVersion": "iBoot-10151.122.1",
        "HardwareModel": "D73AP",
        "HardwarePlatform": "t8120",
        "HasSiDP": True,
        "HostAttached": True,
        "ModelNumber": "MQ0G3",
        "PartitionType": "GUID_partition_scheme",
        "PasswordProtected": state.locked,
        "ProductName": "iPhone OS",
        "ProductType": identity.product_type,
        "ProductVersion": identity.product_version,
        "ProductionSOC": True,
        "ProtocolVersion": "2",
        "RegionInfo": "LL/A",
        "SerialNumber": identity.serial_number,
        "SupportedDeviceFamilies": [1],
        "TelephonyCapability": True,
        "TimeZone": "Europe/Berlin",
        "TrustedHostAttached": bool(runtime.trusted_hosts),
        "UniqueChipID": unique_chip_id(identity.udid),
        "UniqueDeviceID": identity.udid,
        "Uses24HourClock": True,
        "WiFiAddress": identity.wifi_address,
    }
    if in_session:
        return values
    return {key: value for key, value in values.items() if key in PUBLIC_KEYS}


def domain_values(runtime: PhoneRuntime, domain: str) -> dict[str, Any] | None:
    """Values of the few non-default domains clients commonly read, or None if unknown."""
    media_bytes = _folder_bytes(runtime.state.media_root)
    domains: dict[str, dict[str, Any]] = {
        "com.apple.disk_usage": {
            "TotalDiskCapacity": 128_000_000_000,
            "TotalDataCapacity": 110_000_000_000,
            "TotalDataAvailable": max(0, 110_000_000_000 - media_bytes),
            "AmountDataAvailable": max(0, 110_000_000_000 - media_bytes),
            "AmountDataReserved": 200_000_000,
            "CameraUsage": media_bytes,
        },
        "com.apple.mobile.battery": {
            "BatteryCurrentCapacity": 87,
            "BatteryIsCharging": True,
            "ExternalChargeCapable": True,
            "ExternalConnected": True,
            "FullyCharged": False,
        },
    }
    return domains.get(domain)


def _folder_bytes(root: os.PathLike[str] | str) -> int:
    """Bytes under the media folder (disk usage is only a courtesy value: errors count as 0)."""
    total = 0
    for folder, _subfolders, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


class _Channel:
    """Lockdown framing over one stream pair, in the clear or inside TLS.

    TLS is read one record at a time so that nothing past a close_notify is swallowed: the bytes
    after it are the client's plain-text requests.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.tls: SSL.Connection | None = None
        #: Set by StopSession: the client may now leave TLS without a close_notify.
        self.may_leave_tls = False
        self._plain: bytearray = bytearray()
        self._raw: bytearray = bytearray()

    async def _raw_exactly(self, size: int) -> bytes:
        """Read exactly ``size`` bytes of the socket, first from what was put back."""
        if self._raw:
            taken = bytes(self._raw[:size])
            del self._raw[:size]
            if len(taken) == size:
                return taken
            return taken + await self._reader_exactly(size - len(taken))
        return await self._reader_exactly(size)

    async def _reader_exactly(self, size: int) -> bytes:
        try:
            return await self.reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            raise ClientGone("connection closed") from error

    async def read_exactly(self, size: int) -> bytes:
        """Read ``size`` bytes of the (decrypted) stream."""
        while self.tls is not None and len(self._plain) < size:
            await self._pump_tls()
        if self.tls is None and len(self._plain) < size:
            missing = size - len(self._plain)
            self._plain += await self._raw_exactly(missing)
        data = bytes(self._plain[:size])
        del self._plain[:size]
        return data

    async def _pump_tls(self) -> None:
        """Decrypt more bytes, reading one TLS record from the socket when OpenSSL needs it."""
        assert self.tls is not None
        try:
            self._plain += self.tls.recv(_TLS_READ_CHUNK)
            return
        except SSL.WantReadError:
            pass
        except SSL.ZeroReturnError:
            # close_notify: the client left TLS (libimobiledevice after StopSession) or is about
            # to close; the stream continues in the clear. A closing client gets our
            # close_notify back (asyncio's TLS transport waits a second for it before closing);
            # after StopSession it does not, because a client may go on in plain text and would
            # read our alert as a garbled length prefix.
            if not self.may_leave_tls:
                with contextlib.suppress(SSL.Error):
                    self.tls.shutdown()
                await self._flush_tls()
            self.tls = None
            self.may_leave_tls = False
            return
        except SSL.Error as error:
            raise ClientGone(f"TLS error: {error}") from error
        await self._feed_record()
        await self._flush_tls()

    async def _feed_record(self) -> None:
        """Move one TLS record from the socket into OpenSSL (or leave TLS if it is plain text)."""
        assert self.tls is not None
        header = await self._raw_exactly(5)
        if header[0] not in _TLS_CONTENT_TYPES or header[1] != 3:
            if self.may_leave_tls:
                self.tls = None
                self.may_leave_tls = False
                self._raw[:0] = header
                return
            raise ClientGone(f"non-TLS bytes inside a TLS session: {header.hex()}")
        (length,) = struct.unpack(">H", header[3:5])
        self.tls.bio_write(header + await self._raw_exactly(length))

    async def _flush_tls(self) -> None:
        """Send whatever OpenSSL has queued (handshake messages, records, alerts)."""
        assert self.tls is not None
        pending = bytearray()
        while True:
            try:
                pending += self.tls.bio_read(_TLS_READ_CHUNK)
            except SSL.WantReadError:
                break
        if pending:
            self.writer.write(bytes(pending))
            await self.writer.drain()

    async def read_message(self) -> dict[str, Any]:
        """Read one length-prefixed plist request."""
        (length,) = struct.unpack(">I", await self.read_exactly(4))
        if length > MAX_MESSAGE_BYTES:
            raise ClientGone(f"lockdown message of {length} bytes")
        payload = await self.read_exactly(length)
        try:
            message = plistlib.loads(payload)
        except Exception as error:  # plistlib raises several unrelated types on garbage
            raise ClientGone(f"not a plist: {error}") from error
        if not isinstance(message, dict):
            raise ClientGone("plist is not a dictionary")
        return message

    async def write_message(self, message: dict[str, Any]) -> None:
        """Send one length-prefixed XML plist reply."""
        payload = plistlib.dumps(message)
        data = struct.pack(">I", len(payload)) + payload
        if self.tls is None:
            self.writer.write(data)
            await self.writer.drain()
            return
        self.tls.sendall(data)
        await self._flush_tls()

    async def start_tls(self, context: SSL.Context) -> SSL.Connection:
        """Run the server side of the TLS handshake on the current stream."""
        connection = SSL.Connection(context, None)
        connection.set_accept_state()
        self.tls = connection
        while True:
            try:
                connection.do_handshake()
                break
            except SSL.WantReadError:
                await self._flush_tls()
                await self._feed_record()
            except SSL.Error:
                # Send the alert that says why, then give up on this client.
                await self._flush_tls()
                raise
        await self._flush_tls()
        return connection


def _session_context(runtime: PhoneRuntime, host: TrustedHost) -> SSL.Context:
    """A TLS server context presenting the phone's certificate and pinning the host's."""
    accepted = host.accepted_client_certificates()

    def verify(
        _connection: SSL.Connection, certificate: crypto.X509, _error: int, _depth: int, _ok: int
    ) -> bool:
        # Every certificate the client shows must be one of the pair record's: that is the
        # check, not OpenSSL's chain building (which fails on lockdown's empty names).
        presented = crypto.dump_certificate(crypto.FILETYPE_ASN1, certificate)
        return presented in accepted

    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    # TLS 1.2 only: under 1.3 the client finishes its handshake before the server has checked
    # the client certificate, so a refused host would see a broken connection on its first
    # request instead of a failed handshake (an open question for real phones, see the docs).
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_max_proto_version(SSL.TLS1_2_VERSION)
    context.use_certificate(load_certificate(host.device_certificate))
    context.use_privatekey(runtime.device_key)
    context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
    return context


class LockdownConnection:
    """One host connection to the phone's lockdownd; :meth:`serve` answers until it closes."""

    def __init__(
        self,
        runtime: PhoneRuntime,
        events: EventLog,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.runtime = runtime
        self.events = events
        self.channel = _Channel(reader, writer)
        self.session_id: str | None = None
        self.session_host: TrustedHost | None = None

    @property
    def udid(self) -> str:
        """The phone this connection talks to."""
        return self.runtime.udid

    async def serve(self) -> None:
        """Answer requests until the host closes the connection or sends Goodbye."""
        try:
            while True:
                request = await self.channel.read_message()
                name = str(request.get("Request", ""))
                reply = self._answer(name, request)
                await self.channel.write_message(reply)
                if name == "Goodbye":
                    return
                if name == "StartSession" and "Error" not in reply:
                    await self._upgrade_to_tls()
                elif name == "StopSession" and "Error" not in reply:
                    self.channel.may_leave_tls = True
        except ClientGone as reason:
            # A host hanging up is the normal end of a connection; anything else is worth a line.
            if not isinstance(reason.__cause__, asyncio.IncompleteReadError):
                log.info("lockdown_client_dropped", udid=self.udid, reason=str(reason))
        except (ConnectionError, SSL.Error) as error:
            log.debug("lockdown_connection_failed", udid=self.udid, error=repr(error))

    async def _upgrade_to_tls(self) -> None:
        host = self.session_host
        assert host is not None
        try:
            connection = await self.channel.start_tls(_session_context(self.runtime, host))
        except SSL.Error as error:
            self.events.record("tls_rejected", self.udid, host_id=host.host_id, error=repr(error))
            log.info("lockdown_tls_rejected", udid=self.udid, host_id=host.host_id)
            raise ClientGone("TLS handshake refused") from error
        presented = connection.get_peer_certificate()
        if presented is None:
            raise ClientGone("no client certificate")
        presented_der = crypto.dump_certificate(crypto.FILETYPE_ASN1, presented)
        # Which certificate the client chose is a difference between clients worth seeing.
        which = "host" if presented_der == host.host_certificate_der() else "root"
        self.events.record(
            "session_started", self.udid, host_id=host.host_id, client_certificate=which
        )

    def _answer(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        handlers = {
            "QueryType": self._query_type,
            "GetValue": self._get_value,
            "SetValue": self._set_value,
            "Pair": self._pair,
            "ValidatePair": self._validate_pair,
            "Unpair": self._unpair,
            "StartSession": self._start_session,
            "StopSession": self._stop_session,
            "StartService": self._start_service,
            "Goodbye": self._goodbye,
        }
        handler = handlers.get(name)
        if handler is None:
            return {"Request": name, "Error": "InvalidRequest"}
        return handler(request)

    def _query_type(self, _request: dict[str, Any]) -> dict[str, Any]:
        return {"Request": "QueryType", "Type": "com.apple.mobile.lockdown"}

    def _get_value(self, request: dict[str, Any]) -> dict[str, Any]:
        domain = request.get("Domain")
        key = request.get("Key")
        reply: dict[str, Any] = {"Request": "GetValue"}
        if domain:
            reply["Domain"] = domain
        if key:
            reply["Key"] = key
        in_session = self.session_id is not None
        if domain:
            if not in_session:
                return reply | {"Error": "GetProhibited"}
            values = domain_values(self.runtime, str(domain))
            if values is None:
                return reply | {"Error": "MissingValue"}
        else:
            values = lockdown_values(self.runtime, in_session=in_session)
        if not key:
            return reply | {"Value": values}
        if key not in values:
            return reply | {"Error": "MissingValue"}
        return reply | {"Value": values[key]}

    def _set_value(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"Request": "SetValue", "Error": "SetProhibited"}

    def _pair(self, request: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = {"Request": "Pair"}
        state = self.runtime.state
        if state.locked:
            self.events.record("pair_refused_locked", self.udid)
            return reply | {"Error": "PasswordProtected"}
        record = request.get("PairRecord")
        try:
            if not isinstance(record, dict):
                raise ValueError("no PairRecord")
            host = trusted_host_from_record(record)
            if not certificate_matches_key(host.device_certificate, self.runtime.device_key):
                raise ValueError("DeviceCertificate does not carry DevicePublicKey")
        except ValueError as error:
            self.events.record("pair_invalid", self.udid, error=str(error))
            return reply | {"Error": "InvalidPairRecord"}
        already = host.host_id in self.runtime.trusted_hosts
        if not already and state.trust is not TrustPolicy.PAIRED:
            if self.runtime.pending_answers < state.pending_polls:
                # The "Trust This Computer?" dialog is showing and nobody has tapped yet.
                self.runtime.pending_answers += 1
                self.events.record("pair_pending", self.udid, answered=self.runtime.pending_answers)
                return reply | {"Error": "PairingDialogResponsePending"}
            if state.trust is TrustPolicy.DENY:
                self.events.record("pair_denied", self.udid, host_id=host.host_id)
                return reply | {"Error": "UserDeniedPairing"}
        self.runtime.trust(host)
        self.events.record("paired", self.udid, host_id=host.host_id)
        log.info("phone_paired", udid=self.udid, host_id=host.host_id)
        return reply | {"EscrowBag": _escrow_bag(self.udid, host.host_id)}

    def _validate_pair(self, request: dict[str, Any]) -> dict[str, Any]:
        record = request.get("PairRecord")
        host_id = record.get("HostID") if isinstance(record, dict) else None
        if host_id not in self.runtime.trusted_hosts:
            return {"Request": "ValidatePair", "Error": "InvalidHostID"}
        return {"Request": "ValidatePair"}

    def _unpair(self, request: dict[str, Any]) -> dict[str, Any]:
        record = request.get("PairRecord")
        host_id = record.get("HostID") if isinstance(record, dict) else None
        if host_id not in self.runtime.trusted_hosts:
            return {"Request": "Unpair", "Error": "InvalidHostID"}
        del self.runtime.trusted_hosts[host_id]
        self.runtime.state.paired_host_ids.discard(host_id)
        self.events.record("unpaired", self.udid, host_id=host_id)
        return {"Request": "Unpair"}

    def _start_session(self, request: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = {"Request": "StartSession"}
        if self.session_id is not None:
            return reply | {"Error": "SessionActive"}
        host = self.runtime.trusted_hosts.get(str(request.get("HostID", "")))
        if host is None:
            self.events.record("session_refused", self.udid, host_id=request.get("HostID"))
            return reply | {"Error": "InvalidHostID"}
        self.session_id = str(uuid.uuid4()).upper()
        self.session_host = host
        return reply | {"SessionID": self.session_id, "EnableSessionSSL": True}

    def _stop_session(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.session_id is None or request.get("SessionID") != self.session_id:
            return {"Request": "StopSession", "Error": "InvalidSessionID"}
        self.session_id = None
        self.session_host = None
        self.events.record("session_stopped", self.udid)
        return {"Request": "StopSession", "Result": "Success"}

    def _start_service(self, request: dict[str, Any]) -> dict[str, Any]:
        service = str(request.get("Service", ""))
        reply: dict[str, Any] = {"Request": "StartService", "Service": service}
        if self.session_id is None:
            return reply | {"Error": "SessionInactive"}
        if self.runtime.state.locked:
            self.events.record("service_refused", self.udid, service=service, error="locked")
            return reply | {"Error": "PasswordProtected"}
        if service != AFC_SERVICE:
            self.events.record("service_refused", self.udid, service=service, error="invalid")
            return reply | {"Error": "InvalidService"}
        port = self.runtime.allocate_service_port(service)
        self.events.record("service_started", self.udid, service=service, port=port)
        return reply | {"Port": port, "EnableServiceSSL": False}

    def _goodbye(self, _request: dict[str, Any]) -> dict[str, Any]:
        self.events.record("goodbye", self.udid)
        return {"Request": "Goodbye", "Result": "Success"}


def _escrow_bag(udid: str, host_id: str) -> bytes:
    """An opaque escrow bag (real phones return a keybag blob; hosts only store it)."""
    stamp = datetime.datetime.now(datetime.UTC).isoformat()
    return uuid.uuid5(uuid.NAMESPACE_OID, f"{udid}/{host_id}/{stamp}").bytes * 4
