"""Trust and lock states surface in pymobiledevice3 as the exceptions a real phone causes."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest
from pymobiledevice3.exceptions import (
    PairingDialogResponsePendingError,
    PasswordRequiredError,
    UserDeniedPairingError,
)
from pymobiledevice3.lockdown import create_using_usbmux

from rollkeeper.simulator import SimulatorThread, TrustPolicy
from tests.simulator.clients import PHONE_UDID, run


async def _connect(pair_records: Path, pair_timeout: float | None) -> bool:
    async with await create_using_usbmux(
        PHONE_UDID,
        autopair=True,
        pair_timeout=pair_timeout,
        pairing_records_cache_folder=pair_records,
    ) as lockdown:
        return bool(lockdown.paired)


def test_accepting_phone_pairs_and_both_sides_keep_the_record(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """A phone that accepts pairs with the client, both sides keep the record of the same HostID,
    and the session starts with it."""
    simulator.add_phone(
        PHONE_UDID, media_root, trust=TrustPolicy.ACCEPT, reenumerate_on_trust=False
    )
    assert simulator.pair_record(PHONE_UDID) is None

    assert run(_connect(pair_records, pair_timeout=0)) is True

    paired = simulator.wait_for("paired", PHONE_UDID)
    saved = simulator.pair_record(PHONE_UDID)
    assert saved is not None and plistlib.loads(saved)["HostID"] == paired.details["host_id"]
    assert (pair_records / f"{PHONE_UDID}.plist").is_file()
    assert (
        simulator.wait_for("session_started", PHONE_UDID).details["host_id"]
        == (paired.details["host_id"])
    )


def test_pending_dialog_raises_when_the_host_will_not_wait(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """A pending Trust dialog raises PairingDialogResponsePendingError for a client that will not
    wait, and the next attempt finds it accepted."""
    simulator.add_phone(
        PHONE_UDID,
        media_root,
        trust=TrustPolicy.ACCEPT,
        pending_polls=1,
        reenumerate_on_trust=False,
    )

    with pytest.raises(PairingDialogResponsePendingError):
        run(_connect(pair_records, pair_timeout=0))

    # The dialog was answered "pending" once; the next request finds it accepted.
    assert run(_connect(pair_records, pair_timeout=0)) is True
    assert len(simulator.events.events("pair_pending", PHONE_UDID)) == 1


def test_denied_pairing_raises_user_denied(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """Don't Trust raises UserDeniedPairingError, and the phone keeps no record and trusts no
    host."""
    simulator.add_phone(PHONE_UDID, media_root, trust=TrustPolicy.DENY)

    with pytest.raises(UserDeniedPairingError):
        run(_connect(pair_records, pair_timeout=0))
    assert simulator.pair_record(PHONE_UDID) is None
    assert simulator.phone_snapshot(PHONE_UDID)["trusted_hosts"] == 0


def test_denied_after_pending_polls(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """A dialog that is pending first and then denied raises the pending error, then
    UserDeniedPairingError."""
    simulator.add_phone(PHONE_UDID, media_root, trust=TrustPolicy.DENY, pending_polls=1)

    with pytest.raises(PairingDialogResponsePendingError):
        run(_connect(pair_records, pair_timeout=0))
    with pytest.raises(UserDeniedPairingError):
        run(_connect(pair_records, pair_timeout=0))


def test_locked_unpaired_phone_refuses_to_pair(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """A locked unpaired phone refuses to pair with PasswordRequiredError and pairs once
    unlocked."""
    simulator.add_phone(
        PHONE_UDID, media_root, trust=TrustPolicy.ACCEPT, locked=True, reenumerate_on_trust=False
    )

    with pytest.raises(PasswordRequiredError):
        run(_connect(pair_records, pair_timeout=0))
    assert simulator.wait_for("pair_refused_locked", PHONE_UDID)

    simulator.unlock(PHONE_UDID)
    assert run(_connect(pair_records, pair_timeout=0)) is True


def test_phone_that_forgot_the_host_pairs_again(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """A stale pair record (phone reset): StartSession says InvalidHostID, the client re-pairs."""
    simulator.add_phone(
        PHONE_UDID, media_root, trust=TrustPolicy.PAIRED, reenumerate_on_trust=False
    )
    stale = simulator.pair_record(PHONE_UDID)
    assert stale is not None
    simulator.set_trust(PHONE_UDID, TrustPolicy.ACCEPT)
    simulator.call(simulator.simulator.usbmuxd.pair_records.__setitem__, PHONE_UDID, stale)
    mark = simulator.mark()

    assert run(_connect(pair_records, pair_timeout=0)) is True

    refused = simulator.wait_for("session_refused", PHONE_UDID, after=mark)
    assert refused.details["host_id"] == plistlib.loads(stale)["HostID"]
    paired = simulator.wait_for("paired", PHONE_UDID, after=refused.sequence)
    simulator.wait_for("session_started", PHONE_UDID, after=paired.sequence)
    # pymobiledevice3 keeps its HostID but pairs with fresh certificates.
    renewed = simulator.pair_record(PHONE_UDID)
    assert renewed is not None
    assert plistlib.loads(renewed)["HostCertificate"] != plistlib.loads(stale)["HostCertificate"]


def test_set_trust_paired_makes_an_unpaired_phone_usable_without_a_dialog(
    simulator: SimulatorThread, media_root: Path, pair_records: Path
) -> None:
    """set_trust(PAIRED) makes a phone that denied usable at once, without a pairing dialog."""
    simulator.add_phone(PHONE_UDID, media_root, trust=TrustPolicy.DENY)
    simulator.set_trust(PHONE_UDID, TrustPolicy.PAIRED)

    assert run(_connect(pair_records, pair_timeout=0)) is True
    assert not simulator.events.events("paired", PHONE_UDID)
