"""Lockdown's transport: length-prefixed plists, in the clear or inside TLS, and its TLS context.

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
import plistlib
import struct
from typing import Any

from OpenSSL import SSL, crypto

from rollkeeper.simulator.pairing import TrustedHost, load_certificate
from rollkeeper.simulator.runtime import PhoneRuntime

#: Largest lockdown message accepted; pair records are a few KiB.
MAX_MESSAGE_BYTES = 1 << 20
#: TLS record content types: change_cipher_spec, alert, handshake, application_data.
_TLS_CONTENT_TYPES = frozenset({20, 21, 22, 23})
_TLS_READ_CHUNK = 1 << 16


class ClientGone(Exception):
    """The host closed the connection or broke the protocol; the handler just ends."""


class LockdownChannel:
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


def session_context(runtime: PhoneRuntime, host: TrustedHost) -> SSL.Context:
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
