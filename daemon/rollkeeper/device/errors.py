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


class LockedBeforeTrustError(PhoneLockedError):
    """A locked phone answered Pair with PasswordProtected: it shows the Trust dialog only once
    unlocked (libimobiledevice #20)."""

    hint = "unlock your iPhone, then tap Trust on it"


class TrustForgottenError(TrustPendingError):
    """The phone refused our pair record (Invalid HostID: it forgot this computer, after "Reset
    Location & Privacy" or an erase); it was asked to pair again and its dialog is pending."""

    hint = (
        "your iPhone no longer trusts this computer (its Location & Privacy settings were reset "
        "or it was erased): unlock it and tap Trust again"
    )


class PairingRejectedError(PhoneUnavailableError):
    """The phone accepted a new pairing and still refused the session: pairing again would only
    repeat that, so rollkeeper stops until the phone is plugged in again."""

    state = "error"
    retry = False
    hint = "the iPhone was paired again but still refuses this computer: unplug it and plug it in"


class UsbRestrictedError(PhoneUnavailableError):
    """The phone takes no USB data connection: locked for over an hour when it was plugged in
    (USB Restricted Mode), it refuses them until it is unlocked."""

    state = "usb_restricted"
    hint = (
        "unlock your iPhone: locked for over an hour, it refuses USB data until it is unlocked "
        "(USB Restricted Mode)"
    )


class NotUnlockedSinceRestartError(PhoneUnavailableError):
    """The phone restarted and was not unlocked since: it refuses sessions until its passcode
    is entered once (its pairing data stays encrypted until then)."""

    state = "waiting_for_first_unlock"
    hint = "unlock your iPhone once with its passcode: since it restarted it refuses computers"


class PhoneDisconnectedError(PhoneUnavailableError):
    """The phone went away (unplugged, usbmuxd restarted, connection dropped)."""

    state = "disconnected"
    hint = "the connection to the iPhone dropped"


class ReconnectingAfterTrustError(PhoneDisconnectedError):
    """Trust was just accepted and the phone dropped its connections: iPhones re-enumerate on
    USB after Trust (a new DeviceID); the backup starts when it is back."""

    hint = "Trust accepted: the iPhone reconnects, as iPhones do after Trust"


class PhoneOutOfFileSlotsError(PhoneUnavailableError):
    """The phone refused to open a file for lack of resources ("No file slots", AFC status 3):
    its open files on this connection are used up. Not the file's fault: the run ends without
    blaming any file, and the next attempt starts on a fresh connection."""

    state = "error"
    hint = "the iPhone ran out of open-file slots ('No file slots'); retrying on a new connection"


class PhoneNotRespondingError(PhoneUnavailableError):
    """An AFC request got no answer within the time limit; the session is abandoned."""

    state = "error"
    hint = "the iPhone stopped answering; retrying"
    #: The phone files whose requests went unanswered, where known (several read together).
    paths: tuple[str, ...] = ()


class UsbmuxdUnavailableError(Exception):
    """usbmuxd is not running or its socket cannot be reached."""

    def __init__(self, address: str, detail: str = "") -> None:
        super().__init__(f"cannot reach usbmuxd at {address}" + (f": {detail}" if detail else ""))
        self.address = address
