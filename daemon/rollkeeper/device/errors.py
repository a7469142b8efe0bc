"""What can stand between rollkeeper and a phone's files, as the service reasons about it.

The adapters translate pymobiledevice3's many exceptions into these few, each of which maps to
one state the user is told about and one retry policy. Keeping the mapping in one place means the
scheduler never imports pymobiledevice3.
"""

from __future__ import annotations


class PhoneUnavailableError(Exception):
    """The phone cannot be backed up right now. ``state`` is what status shows; ``retry`` says
    whether trying again while the phone stays attached can help."""

    state = "error"
    retry = True
    hint = ""


class PhoneLockedError(PhoneUnavailableError):
    """The phone is locked: services are refused until it is unlocked."""

    state = "waiting_for_unlock"
    hint = "unlock your iPhone"


class TrustPendingError(PhoneUnavailableError):
    """The "Trust This Computer?" dialog is showing and has not been answered."""

    state = "waiting_for_trust"
    hint = "tap Trust on your iPhone"


class TrustDeniedError(PhoneUnavailableError):
    """The user tapped "Don't Trust": retrying would only show the dialog again and again."""

    state = "trust_denied"
    retry = False
    hint = "you tapped Don't Trust; unplug and plug the iPhone in again to be asked again"


class PhoneDisconnectedError(PhoneUnavailableError):
    """The phone went away (unplugged, usbmuxd restarted, connection dropped)."""

    state = "disconnected"
    hint = "the connection to the iPhone dropped"


class PhoneNotRespondingError(PhoneUnavailableError):
    """An AFC request got no answer within the time limit; the session is abandoned."""

    state = "error"
    hint = "the iPhone stopped answering; retrying"


class UsbmuxdUnavailableError(Exception):
    """usbmuxd is not running or its socket cannot be reached."""

    def __init__(self, address: str, detail: str = "") -> None:
        super().__init__(f"cannot reach usbmuxd at {address}" + (f": {detail}" if detail else ""))
        self.address = address
