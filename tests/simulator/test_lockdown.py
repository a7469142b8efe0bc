"""The simulated lockdownd through pymobiledevice3's lockdown client: values, sessions, TLS."""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pymobiledevice3.exceptions import ConnectionTerminatedError, PasswordRequiredError
from pymobiledevice3.lockdown import create_using_usbmux

from rollkeeper.simulator import PhoneIdentity, SimulatorThread
from rollkeeper.simulator.pairing import certificate_pem, key_to_pem
from tests.simulator.clients import OTHER_UDID, PHONE_UDID, run


def test_paired_phone_opens_a_tls_session_and_reports_its_identity(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """A paired client opens a TLS session with its host certificate and reads the phone's identity,
    its private values and its battery domain."""
    simulator.add_phone(PHONE_UDID, media_root, name="Alice's iPhone")
    mark = simulator.mark()

    async def session() -> tuple[bool, dict[str, Any], Any, Any]:
        async with await create_using_usbmux(
            PHONE_UDID, autopair=False, pairing_records_cache_folder=pair_records
        ) as lockdown:
            serial = await lockdown.get_value(key="SerialNumber")
            battery = await lockdown.get_value(domain="com.apple.mobile.battery")
            return lockdown.paired, lockdown.all_values, serial, battery

    paired, values, serial, battery = run(session())

    assert paired
    assert values["UniqueDeviceID"] == PHONE_UDID
    assert values["DeviceName"] == "Alice's iPhone"
    assert values["ProductType"] == "iPhone15,2"
    assert values["ProductVersion"] == "17.5.1"
    assert values["DeviceClass"] == "iPhone"
    assert values["WiFiAddress"] == "a0:b1:c2:d3:e4:f5"
    assert values["DevicePublicKey"].startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    assert serial == "F2LXXXXXXXXX"
    assert battery["BatteryCurrentCapacity"] == 87
    started = simulator.wait_for("session_started", PHONE_UDID, after=mark)
    # pymobiledevice3 presents the host certificate of the pair record.
    assert started.details["client_certificate"] == "host"


def test_values_before_a_session_are_the_public_subset(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """Without a session the client gets only the public values: the UDID and the public key, no
    serial number."""
    simulator.add_phone(PHONE_UDID, media_root)

    async def public_values() -> dict[str, Any]:
        # autopair=False and no record found: the connection never starts a session.
        lockdown = await create_using_usbmux(
            PHONE_UDID,
            autopair=False,
            pair_record={"HostID": "UNKNOWN", "SystemBUID": "X"},
            pairing_records_cache_folder=pair_records,
        )
        try:
            assert not lockdown.paired
            return dict(lockdown.all_values)
        finally:
            await lockdown.close()

    values = run(public_values())

    assert values["UniqueDeviceID"] == PHONE_UDID
    assert "DevicePublicKey" in values
    assert "SerialNumber" not in values


def test_identity_of_each_phone_is_its_own(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """Two phones on one simulator each report their own name, model and iOS version."""
    simulator.add_phone(PHONE_UDID, media_root, name="New")
    simulator.add_phone(
        OTHER_UDID,
        media_root,
        identity=PhoneIdentity(
            udid=OTHER_UDID, name="Old", product_type="iPhone12,1", product_version="16.7.8"
        ),
    )

    async def info(udid: str) -> dict[str, Any]:
        async with await create_using_usbmux(
            udid, autopair=False, pairing_records_cache_folder=pair_records
        ) as lockdown:
            return lockdown.short_info

    new, old = run(info(PHONE_UDID)), run(info(OTHER_UDID))

    assert (new["DeviceName"], new["ProductType"]) == ("New", "iPhone15,2")
    assert (old["DeviceName"], old["ProductType"], old["ProductVersion"]) == (
        "Old",
        "iPhone12,1",
        "16.7.8",
    )


def test_a_host_presenting_a_foreign_certificate_is_refused(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """The pinning check: right HostID, wrong certificate -> no session."""
    simulator.add_phone(PHONE_UDID, media_root)
    genuine = simulator.pair_record(PHONE_UDID)
    assert genuine is not None
    record = plistlib.loads(genuine)
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    record["HostCertificate"] = certificate_pem(_self_signed(impostor_key))
    record["HostPrivateKey"] = key_to_pem(impostor_key)
    mark = simulator.mark()

    async def attempt() -> bool:
        lockdown = await create_using_usbmux(
            PHONE_UDID,
            autopair=False,
            pair_record=record,
            pairing_records_cache_folder=pair_records,
        )
        try:
            return bool(lockdown.paired)
        finally:
            await lockdown.close()

    assert run(attempt()) is False
    rejected = simulator.wait_for("tls_rejected", PHONE_UDID, after=mark)
    assert rejected.details["host_id"] == record["HostID"]
    assert not simulator.events.events("session_started", PHONE_UDID, after=mark)


def test_stop_session_then_carry_on(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """After StopSession the connection still answers plain requests such as QueryType."""
    simulator.add_phone(PHONE_UDID, media_root)
    mark = simulator.mark()

    async def stop_then_query() -> str:
        async with await create_using_usbmux(
            PHONE_UDID, autopair=False, pairing_records_cache_folder=pair_records
        ) as lockdown:
            await lockdown.stop_session()
            return await lockdown.query_type()

    assert run(stop_then_query()) == "com.apple.mobile.lockdown"
    assert simulator.wait_for("session_stopped", PHONE_UDID, after=mark)


def test_start_service_returns_a_port_and_no_ssl(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """StartService for AFC returns a dynamic port (49152 and up) without service SSL, as a phone
    does."""
    simulator.add_phone(PHONE_UDID, media_root)

    async def start() -> dict[str, Any]:
        async with await create_using_usbmux(
            PHONE_UDID, autopair=False, pairing_records_cache_folder=pair_records
        ) as lockdown:
            return await lockdown.get_service_connection_attributes("com.apple.afc")

    attributes = run(start())

    assert attributes["Port"] >= 49152
    assert attributes["EnableServiceSSL"] is False
    assert attributes["Service"] == "com.apple.afc"


def test_locked_phone_refuses_services_until_unlocked(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """A locked phone opens a session but refuses StartService with PasswordRequired until it is
    unlocked."""
    simulator.add_phone(PHONE_UDID, media_root, locked=True)

    async def start(expect_locked: bool) -> dict[str, Any]:
        async with await create_using_usbmux(
            PHONE_UDID, autopair=False, pairing_records_cache_folder=pair_records
        ) as lockdown:
            # A locked phone still opens a session: only services are refused.
            assert lockdown.paired
            assert lockdown.all_values["PasswordProtected"] is expect_locked
            return await lockdown.get_service_connection_attributes("com.apple.afc")

    with pytest.raises(PasswordRequiredError):
        run(start(expect_locked=True))
    simulator.unlock(PHONE_UDID)
    assert run(start(expect_locked=False))["Port"] >= 49152


def test_unplug_cuts_an_open_lockdown_connection(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """An unplug drops an open lockdown connection: the next request raises
    ConnectionTerminatedError and the phone keeps no connection open."""
    simulator.add_phone(PHONE_UDID, media_root)

    async def scenario() -> None:
        lockdown = await create_using_usbmux(
            PHONE_UDID, autopair=False, pairing_records_cache_folder=pair_records
        )
        try:
            mark = simulator.mark()
            simulator.unplug(PHONE_UDID)
            closed = simulator.wait_for("connection_closed", PHONE_UDID, after=mark)
            assert closed.details["dropped"] is True
            # The raw connection, below pymobiledevice3's reconnect-and-retry in _request.
            await lockdown.service.send_recv_plist({"Request": "QueryType"})
        finally:
            await lockdown.close()

    with pytest.raises(ConnectionTerminatedError):
        run(scenario())
    assert simulator.phone_snapshot(PHONE_UDID)["open_connections"] == 0


def _self_signed(key: rsa.RSAPrivateKey) -> Any:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
