"""Reach a phone's lockdownd and settle trust, telling apart the states real phones are in.

pymobiledevice3's ``autopair`` hides why a session could not start. Here the connection is made
with ``autopair=False`` and the outcome is read step by step, because each step fails for its
own reason and the user must hear that reason, not "tap Trust" for everything:

* usbmuxd refuses the Connect to lockdownd: USB Restricted Mode (a phone locked for over an hour
  when plugged in takes no USB data until it is unlocked).
* StartSession with our pair record answers PasswordProtected: the phone restarted and was not
  unlocked since (its pairing data stays encrypted until the first unlock; usbmuxd pull
  request #65).
* StartSession refuses the record (Invalid HostID): the phone forgot this computer ("Reset
  Location & Privacy", libimobiledevice #922). It is asked to pair again, and the user told why.
* Pair answers PasswordProtected: a locked phone shows no Trust dialog (libimobiledevice #20).
* Pair pending / denied: the dialog is showing / the user tapped Don't Trust.
* A Pair that succeeded and still no session: the phone refuses the new pairing too; pairing
  again would only repeat that, so the service stops retrying (:class:`PairingRejectedError`).
* After Trust the phone re-enumerates (libusbmuxd #26): the connection drops right after the
  Pair, which is the expected end of this attempt (:class:`ReconnectingAfterTrustError`).

Pairing never waits for the dialog (``timeout=0``): the scheduler retries, and ``status`` says
what the phone waits for meanwhile.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import structlog
from pymobiledevice3.exceptions import (
    ConnectionFailedError,
    ConnectionTerminatedError,
    DeviceNotFoundError,
    MuxException,
    NoDeviceConnectedError,
    PairingDialogResponsePendingError,
    PasswordRequiredError,
    SessionActiveError,
    UserDeniedPairingError,
)
from pymobiledevice3.lockdown import create_using_usbmux

from rollkeeper.device.errors import (
    LockedBeforeTrustError,
    NotUnlockedSinceRestartError,
    PairingRejectedError,
    ReconnectingAfterTrustError,
    TrustDeniedError,
    TrustForgottenError,
    TrustPendingError,
    UsbRestrictedError,
)

log = structlog.get_logger("rollkeeper.session")

#: What a connection dropping right after a successful Pair looks like in pymobiledevice3.
_DROPPED_AFTER_TRUST = (
    ConnectionTerminatedError,
    DeviceNotFoundError,
    NoDeviceConnectedError,
    MuxException,
    SessionActiveError,
    ConnectionError,
)


async def open_lockdown(
    udid: str, *, label: str, pairing_dir: Path, usbmux_address: str | None
) -> Any:
    """A lockdown client of ``udid`` with a session started, pairing first if the phone needs
    it; raises one of :mod:`rollkeeper.device.errors` for each state described above (anything
    else propagates for :func:`~rollkeeper.device.translate.translate_error`)."""
    try:
        lockdown = await create_using_usbmux(
            serial=udid,
            autopair=False,
            label=label,
            pairing_records_cache_folder=pairing_dir,
            usbmux_address=usbmux_address,
        )
    except ConnectionFailedError as error:
        raise UsbRestrictedError("the iPhone refused the connection to lockdownd") from error
    except PasswordRequiredError as error:
        raise NotUnlockedSinceRestartError(
            "the iPhone refused the session until it is unlocked"
        ) from error
    if lockdown.paired:
        return lockdown
    try:
        await _establish_trust(lockdown, udid)
    except BaseException:
        await lockdown.close()
        raise
    return lockdown


async def _establish_trust(lockdown: Any, udid: str) -> None:
    """Pair once (the Trust dialog) and start the session with the new record."""
    forgotten = lockdown.pair_record is not None
    if forgotten:
        # Our record was presented and refused: the phone no longer knows this computer.
        log.warning("pair_record_rejected", udid=udid, reason="invalid_host_id")
    await _pair(lockdown, udid, forgotten)
    log.info("phone_paired", udid=udid, again=forgotten)
    try:
        session_started = await lockdown.validate_pairing()
    except _DROPPED_AFTER_TRUST as error:
        raise ReconnectingAfterTrustError(
            f"the iPhone reconnects after Trust ({type(error).__name__})"
        ) from error
    if not session_started:
        raise PairingRejectedError("the iPhone refused the session after pairing")


async def _pair(lockdown: Any, udid: str, forgotten: bool) -> None:
    """Send Pair without waiting for the dialog; each refusal becomes its state's error.

    pymobiledevice3 keeps the phone's new record (and writes it to our pairing folder) before
    it hands it to usbmuxd; a phone that re-enumerates after Trust can cut that hand-over
    short. The phone is paired all the same, and the pairing is logged then too.
    """
    record_before = lockdown.pair_record
    try:
        await lockdown.pair(timeout=0)
    except _DROPPED_AFTER_TRUST as error:
        if lockdown.pair_record is record_before:
            raise
        log.info("phone_paired", udid=udid, again=forgotten)
        raise ReconnectingAfterTrustError(
            f"the iPhone reconnects after Trust ({type(error).__name__})"
        ) from error
    except asyncio.CancelledError:
        # Unplugged (the re-enumeration) during the hand-over: the job is cancelled.
        if lockdown.pair_record is not record_before:
            log.info("phone_paired", udid=udid, again=forgotten)
        raise
    except PasswordRequiredError as error:
        raise LockedBeforeTrustError("the locked iPhone refused to pair") from error
    except PairingDialogResponsePendingError as error:
        if forgotten:
            raise TrustForgottenError("the iPhone forgot this computer; Trust pending") from error
        raise TrustPendingError("waiting for Trust to be tapped on the iPhone") from error
    except UserDeniedPairingError as error:
        raise TrustDeniedError("the user tapped Don't Trust") from error
