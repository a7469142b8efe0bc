"""Keys, certificates and pair records of the simulated phones.

A real pairing involves three RSA keys: the phone's own key (its public half is the lockdown value
``DevicePublicKey``), and the host's root and host keys, which the host generates when it pairs.
For a phone the simulator starts as already paired (:attr:`TrustPolicy.PAIRED`), the simulator
plays the host's part too and builds the whole pair record itself, the way
``pymobiledevice3/ca.py`` and libimobiledevice's ``common/userpref.c`` do: empty subject and
issuer, serial 1, a root CA signing a host certificate and a device certificate.

Generating a 2048-bit RSA key costs about 0.2 s, and a test session starts dozens of phones, so
keys are cached per process by role (:func:`cached_rsa_key`). Setting the environment variable
``ROLLKEEPER_SIMULATOR_KEY_DIR`` to a folder also shares them between processes (the test
suite's subprocesses of ``rollkeeper simulate``): the keys are written there with mode 0600. They
are test keys of a simulator and protect nothing.
"""

from __future__ import annotations

import datetime
import os
import plistlib
import threading
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.utils import CryptographyDeprecationWarning

#: Environment variable naming a folder where simulator keys are shared between processes.
KEY_DIR_ENV = "ROLLKEEPER_SIMULATOR_KEY_DIR"

#: The system BUID the simulated usbmuxd reports (ReadBUID) and writes into the pair records it
#: generates. Real usbmuxd generates one per host installation and keeps it.
SIMULATOR_SYSTEM_BUID = "5C8A1E0B-52D3-4F7A-9B36-7D1E2F3A4B5C"

_key_cache: dict[str, rsa.RSAPrivateKey] = {}
_key_cache_lock = threading.Lock()


def cached_rsa_key(role: str) -> rsa.RSAPrivateKey:
    """Return the 2048-bit RSA key for ``role`` (``device``, ``root``, ``host``), made once.

    Every simulated phone of a process shares the same three keys: what differs between phones
    is their identity, not their keys, and a fresh key per phone would cost 0.2 s each.
    """
    with _key_cache_lock:
        key = _key_cache.get(role)
        if key is None:
            key = _load_or_generate(role)
            _key_cache[role] = key
        return key


def _load_or_generate(role: str) -> rsa.RSAPrivateKey:
    """Read the key for ``role`` from the shared key folder if there is one, else generate it."""
    folder = os.environ.get(KEY_DIR_ENV)
    path = Path(folder) / f"simulator-{role}-key.pem" if folder else None
    if path is not None and path.is_file():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(loaded, rsa.RSAPrivateKey) and loaded.key_size == 2048:
            return loaded
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if path is not None:
        _write_private(path, key_to_pem(key))
    return key


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 in a 0700 folder, atomically by rename.

    Two processes may race to create the same key; each writes its own temporary file and the
    last rename wins, which leaves one complete key either way.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def key_to_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#8 PEM of a private key, the form pair records hold (``HostPrivateKey``)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def device_public_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """The lockdown value ``DevicePublicKey``: a PKCS#1 ``RSA PUBLIC KEY`` PEM.

    Both clients load it as PKCS#1 (pymobiledevice3's ``load_pem_public_key`` accepts either;
    libimobiledevice's ``pair_record_generate`` reads ``BEGIN RSA PUBLIC KEY``).
    """
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )


def _certificate(
    public_key: rsa.RSAPublicKey,
    signing_key: rsa.RSAPrivateKey,
    *,
    certificate_authority: bool,
    subject_key_identifier: bool = False,
) -> x509.Certificate:
    """One lockdown-style certificate: empty subject and issuer, serial 1, ten years valid."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(public_key)
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.BasicConstraints(ca=certificate_authority, path_length=None), critical=True
        )
    )
    if not certificate_authority:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if subject_key_identifier:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


def certificate_pem(certificate: x509.Certificate) -> bytes:
    """PEM bytes of a certificate, the form pair records hold."""
    return certificate.public_bytes(serialization.Encoding.PEM)


def load_certificate(pem: bytes) -> x509.Certificate:
    """Parse a PEM certificate a host sent, tolerating libimobiledevice's serial number 0.

    libimobiledevice 1.3.0 issues its certificates with serial 0, which RFC 5280 forbids and
    ``cryptography`` warns about on every parse; real phones accept them, so the simulator does.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_pem_x509_certificate(pem)


def certificate_der_from_pem(pem: bytes) -> bytes:
    """DER bytes of a PEM certificate: what two certificates are compared by."""
    return load_certificate(pem).public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class TrustedHost:
    """What the phone keeps about a host it trusts: enough to recognise it at StartSession.

    ``host_certificate`` and ``root_certificate`` are the certificates the host may present in
    the TLS handshake (pymobiledevice3 presents the host certificate, libimobiledevice 1.3.0 the
    root certificate); ``device_certificate`` is what the phone presents back.
    """

    host_id: str
    system_buid: str
    host_certificate: bytes
    root_certificate: bytes
    device_certificate: bytes

    def host_certificate_der(self) -> bytes:
        """DER form of the host certificate."""
        return certificate_der_from_pem(self.host_certificate)

    def accepted_client_certificates(self) -> frozenset[bytes]:
        """DER forms of the certificates a TLS client of this host may present."""
        return frozenset(
            certificate_der_from_pem(pem) for pem in (self.host_certificate, self.root_certificate)
        )


def generate_pair_record(
    *, device_key: rsa.RSAPrivateKey, wifi_address: str, system_buid: str = SIMULATOR_SYSTEM_BUID
) -> dict[str, Any]:
    """Build a complete pair record as a host would after a successful Pair.

    The keys are the process-wide cached ``root`` and ``host`` keys; the certificates and the
    HostID are fresh, so two phones never share a HostID.
    """
    root_key = cached_rsa_key("root")
    host_key = cached_rsa_key("host")
    root_certificate = _certificate(root_key.public_key(), root_key, certificate_authority=True)
    host_certificate = _certificate(host_key.public_key(), root_key, certificate_authority=False)
    device_certificate = _certificate(
        device_key.public_key(), root_key, certificate_authority=False, subject_key_identifier=True
    )
    return {
        "DeviceCertificate": certificate_pem(device_certificate),
        # What Pair returns; services that work while locked (mobilebackup2) are started with it.
        "EscrowBag": os.urandom(128),
        "HostCertificate": certificate_pem(host_certificate),
        "HostID": str(uuid.uuid4()).upper(),
        "HostPrivateKey": key_to_pem(host_key),
        "RootCertificate": certificate_pem(root_certificate),
        "RootPrivateKey": key_to_pem(root_key),
        "SystemBUID": system_buid,
        "WiFiMACAddress": wifi_address,
    }


def trusted_host_from_record(record: dict[str, Any]) -> TrustedHost:
    """The phone's side of a pair record (as sent in Pair, or generated for PAIRED phones).

    :raises ValueError: a field the phone needs is missing or not PEM data.
    """
    try:
        host = TrustedHost(
            host_id=str(record["HostID"]),
            system_buid=str(record.get("SystemBUID", "")),
            host_certificate=bytes(record["HostCertificate"]),
            root_certificate=bytes(record["RootCertificate"]),
            device_certificate=bytes(record["DeviceCertificate"]),
        )
        host.accepted_client_certificates()
        load_certificate(host.device_certificate)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"unusable pair record: {error}") from error
    return host


def certificate_matches_key(certificate_pem_data: bytes, key: rsa.RSAPrivateKey) -> bool:
    """Whether a certificate carries ``key``'s public half (a Pair's DeviceCertificate must)."""
    public = load_certificate(certificate_pem_data).public_key()
    wanted = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return (
        public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == wanted
    )


def pair_record_bytes(record: dict[str, Any]) -> bytes:
    """The pair record as usbmuxd stores and serves it (an XML plist)."""
    return plistlib.dumps(record)
