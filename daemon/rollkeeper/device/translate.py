"""Translation of pymobiledevice3's exceptions into the service's few phone errors.

Specific pairing errors are checked before their base class ``PairingError``, as pymobiledevice3
advises; ``ConnectionTerminatedError`` is not an ``OSError`` and gets its own branch.
"""

from __future__ import annotations

import os
from typing import NoReturn

from pymobiledevice3.exceptions import (
    ConnectionFailedToUsbmuxdError,
    ConnectionTerminatedError,
    DeviceNotFoundError,
    InvalidHostIDError,
    MuxException,
    NoDeviceConnectedError,
    NotPairedError,
    PairingDialogResponsePendingError,
    PairingError,
    PasswordRequiredError,
    PyMobileDevice3Exception,
    UserDeniedPairingError,
)

from rollkeeper.device.errors import (
    PhoneDisconnectedError,
    PhoneLockedError,
    PhoneUnavailableError,
    TrustDeniedError,
    TrustPendingError,
    UsbmuxdUnavailableError,
)


def translate_error(error: BaseException) -> PhoneUnavailableError | UsbmuxdUnavailableError | None:
    """The service-level error for a pymobiledevice3 (or socket) error, or None if unknown.

    Specific pairing errors are checked before their base class, as pymobiledevice3 advises.
    """
    translated: PhoneUnavailableError | UsbmuxdUnavailableError
    if isinstance(error, PasswordRequiredError):
        translated = PhoneLockedError("the iPhone is locked")
    elif isinstance(error, PairingDialogResponsePendingError):
        translated = TrustPendingError("waiting for Trust to be tapped on the iPhone")
    elif isinstance(error, UserDeniedPairingError):
        translated = TrustDeniedError("the user tapped Don't Trust")
    elif isinstance(error, ConnectionFailedToUsbmuxdError):
        translated = UsbmuxdUnavailableError(os.environ.get("USBMUXD_SOCKET_ADDRESS", "default"))
    elif isinstance(error, InvalidHostIDError | NotPairedError):
        translated = TrustPendingError("the iPhone does not know this computer any more")
    elif isinstance(
        error,
        ConnectionTerminatedError
        | NoDeviceConnectedError
        | DeviceNotFoundError
        | MuxException
        | ConnectionError
        | EOFError,
    ):
        translated = PhoneDisconnectedError(f"{type(error).__name__}: {error}")
    elif isinstance(error, PairingError):
        translated = TrustPendingError(f"pairing failed: {type(error).__name__}")
    elif isinstance(error, PyMobileDevice3Exception | OSError):
        translated = PhoneDisconnectedError(f"{type(error).__name__}: {error}")
    else:
        return None
    return translated


def translate_or_raise(error: BaseException) -> NoReturn:
    """Raise the service-level error for ``error``, or ``error`` itself when it is unknown."""
    translated = translate_error(error)
    if translated is None:
        raise error
    raise translated from error
