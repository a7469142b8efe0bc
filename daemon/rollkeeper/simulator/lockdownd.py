"""The simulated lockdownd: the service behind usbmux port 62078 of every phone.

:class:`LockdownConnection` answers one host connection's requests: QueryType, GetValue,
SetValue (refused), Pair / ValidatePair / Unpair (the "Trust This Computer?" dialog, by the
phone's :class:`~rollkeeper.simulator.phone.TrustPolicy`), StartSession / StopSession (TLS on
the same socket), StartService and Goodbye. The transport and the TLS host check are
:mod:`.lockdown_channel`; the values GetValue reports are :mod:`.lockdown_values`.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from typing import Any

import structlog
from OpenSSL import SSL, crypto

from rollkeeper.simulator.backup_services import HELPER_SERVICES
from rollkeeper.simulator.lockdown_channel import ClientGone, LockdownChannel, session_context
from rollkeeper.simulator.lockdown_values import domain_values, lockdown_values
from rollkeeper.simulator.mobilebackup2 import MOBILEBACKUP2_SERVICE
from rollkeeper.simulator.pairing import (
    TrustedHost,
    certificate_matches_key,
    trusted_host_from_record,
)
from rollkeeper.simulator.runtime import EventLog, PhoneRuntime
from rollkeeper.simulator.trust_dialog import DialogAnswer, dialog_answer

log = structlog.get_logger(__name__)

#: The usbmux port lockdownd listens on (0xF27E).
LOCKDOWN_PORT = 62078
#: The media folder's service.
AFC_SERVICE = "com.apple.afc"
#: Every service the simulated phone can start (AFC, and what a full backup needs).
STARTABLE_SERVICES = frozenset({AFC_SERVICE, MOBILEBACKUP2_SERVICE} | HELPER_SERVICES)


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
        self.channel = LockdownChannel(reader, writer)
        self.session_id: str | None = None
        self.session_host: TrustedHost | None = None
        #: Set by a Pair that trusted a new host: the phone re-enumerates once the reply is out.
        self._trusted_new_host = False

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
                if self._trusted_new_host:
                    self._trusted_new_host = False
                    if self.runtime.on_new_host_trusted is not None:
                        asyncio.get_running_loop().call_soon(self.runtime.on_new_host_trusted)
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
            connection = await self.channel.start_tls(session_context(self.runtime, host))
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
        if not already:
            answer = dialog_answer(self.runtime, asyncio.get_running_loop().time())
            if answer is DialogAnswer.PENDING:
                # The "Trust This Computer?" dialog is not answered (or not even shown) yet.
                self.events.record("pair_pending", self.udid, answered=self.runtime.pending_answers)
                return reply | {"Error": "PairingDialogResponsePending"}
            if answer is DialogAnswer.DONT_TRUST:
                self.events.record("pair_denied", self.udid, host_id=host.host_id)
                return reply | {"Error": "UserDeniedPairing"}
            self._trusted_new_host = True
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
        if not self.runtime.state.unlocked_since_boot:
            # Restarted and never unlocked: the pairing data stays encrypted until the passcode
            # is entered once (usbmuxd pull request #65), so no host can start a session.
            self.events.record("session_refused", self.udid, host_id=request.get("HostID"))
            return reply | {"Error": "PasswordProtected"}
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
        if service not in STARTABLE_SERVICES:
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
