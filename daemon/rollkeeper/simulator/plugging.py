"""The simulated phones' USB side: plugging in and out, re-enumerating, and the lock states that
decide whether a plugged-in phone takes data.

Every attach gets a new usbmuxd DeviceID (like usbmuxd). A phone locked for an hour or more when
it is plugged in comes in under USB Restricted Mode (every usbmux Connect refused) until it is
unlocked, which makes it re-enumerate. A restart leaves the bus and comes back locked and
"before first unlock". Under a usbmuxd build with a preflight (``linux-usbmuxd``) a plugged
phone is announced when :func:`~rollkeeper.simulator.usbmuxd_profiles.linux_preflight` is done
with it; otherwise at once. Tapping Trust re-enumerates the phone after a short gap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from rollkeeper.simulator.runtime import EventLog, PhoneRuntime
from rollkeeper.simulator.usbmuxd import UsbmuxDaemon
from rollkeeper.simulator.usbmuxd_profiles import PreflightHooks, linux_preflight

log = structlog.get_logger(__name__)

#: A phone locked this long when it is plugged in refuses USB data (USB Restricted Mode).
USB_RESTRICTED_AFTER_SECONDS = 3600.0
#: How long a re-enumerating phone is off the bus (a USB re-enumeration and usbmuxd's own
#: setup take a moment; no public measurement of it exists).
REENUMERATE_GAP_SECONDS = 0.5


class PhoneBus:
    """Plugs the phones of one simulator in and out of its usbmuxd (all on its loop)."""

    def __init__(
        self,
        usbmuxd: UsbmuxDaemon,
        events: EventLog,
        pair_with_usbmuxd_host: Callable[[PhoneRuntime], None],
    ) -> None:
        self.usbmuxd = usbmuxd
        self.events = events
        self._pair_with_usbmuxd_host = pair_with_usbmuxd_host
        self._next_device_id = 1

    def _next_id(self) -> int:
        # Like usbmuxd, every attach gets a fresh DeviceID.
        number = self._next_device_id
        self._next_device_id += 1
        return number

    def plug(self, runtime: PhoneRuntime) -> None:
        """Plug the phone in: a new usbmuxd DeviceID, and Attached to every Listen client.

        A phone locked for an hour or more comes in under USB Restricted Mode. Under a usbmuxd
        with a preflight (``linux-usbmuxd``) the phone is announced when the preflight is done.
        """
        state = runtime.state
        udid = runtime.udid
        self._cancel_return(runtime)
        if state.plugged:
            return
        now = asyncio.get_running_loop().time()
        state.device_id = self._next_id()
        runtime.network_device_id = (
            self._next_id()
            if self.usbmuxd.profile.network_twin and state.connection_type == "USB"
            else None
        )
        state.plugged = True
        state.plugged_at = now
        state.usb_restricted = (
            state.locked
            and state.locked_since is not None
            and now - state.locked_since >= USB_RESTRICTED_AFTER_SECONDS
        )
        runtime.pending_answers = 0
        self.events.record(
            "attached", udid, device_id=state.device_id, usb_restricted=state.usb_restricted
        )
        log.info("phone_attached", udid=udid, device_id=state.device_id)
        if self.usbmuxd.profile.preflight and state.connection_type == "USB":
            runtime.preflight = asyncio.ensure_future(linux_preflight(runtime, self._hooks()))
        else:
            self.usbmuxd.announce_attached(runtime)

    def _hooks(self) -> PreflightHooks:
        return PreflightHooks(
            events=self.events,
            pair_records=self.usbmuxd.pair_records,
            pair_with_usbmuxd_host=self._pair_with_usbmuxd_host,
            announce=self.usbmuxd.announce_attached,
            reenumerate=self.reenumerate,
        )

    @staticmethod
    def _cancel_return(runtime: PhoneRuntime) -> None:
        returning, runtime.returning = runtime.returning, None
        if returning is not None:
            returning.cancel()

    @staticmethod
    def cancel_pending(runtime: PhoneRuntime) -> None:
        """Stop the phone's preflight and scheduled return (the simulator stops)."""
        PhoneBus._cancel_return(runtime)
        PhoneBus._cancel_preflight(runtime)

    @staticmethod
    def _cancel_preflight(runtime: PhoneRuntime) -> None:
        preflight, runtime.preflight = runtime.preflight, None
        if preflight is not None and not preflight.done():
            preflight.cancel()

    def unplug(self, runtime: PhoneRuntime) -> None:
        """Pull the cable: every connection of the phone closes, Detached goes to listeners."""
        udid = runtime.udid
        self._cancel_return(runtime)
        if not runtime.state.plugged:
            return
        runtime.state.plugged = False
        runtime.state.usb_restricted = False
        self._cancel_preflight(runtime)
        dropped = runtime.drop_connections()
        self.usbmuxd.announce_detached(runtime)
        self.events.record(
            "detached", udid, device_id=runtime.state.device_id, connections_dropped=dropped
        )
        log.info("phone_detached", udid=udid, connections_dropped=dropped)

    def reenumerate(
        self, runtime: PhoneRuntime, gap_seconds: float = REENUMERATE_GAP_SECONDS
    ) -> None:
        """The phone drops off the USB bus and comes back ``gap_seconds`` later: open connections
        reset, a new DeviceID (what tapping Trust, or unlocking out of USB Restricted Mode,
        does). A plug or unplug by the test meanwhile wins over the scheduled return."""
        self.events.record("reenumerating", runtime.udid, gap_seconds=gap_seconds)
        self.unplug(runtime)
        if gap_seconds <= 0:
            self.plug(runtime)
            return
        runtime.returning = asyncio.get_running_loop().call_later(gap_seconds, self.plug, runtime)

    def new_host_trusted(self, runtime: PhoneRuntime) -> None:
        """The phone trusted a new host: a real phone re-enumerates on USB."""
        if runtime.state.reenumerate_on_trust:
            self.reenumerate(runtime)

    def lock(self, runtime: PhoneRuntime, locked_for_seconds: float = 0.0) -> None:
        """Lock the phone: StartService and Pair answer PasswordProtected until unlocked.

        ``locked_for_seconds`` backdates the lock (plugged in an hour or more after it, the
        phone is in USB Restricted Mode).
        """
        runtime.state.locked = True
        runtime.state.locked_since = asyncio.get_running_loop().time() - locked_for_seconds
        runtime.unlocked.clear()
        self.events.record("locked", runtime.udid)

    def unlock(self, runtime: PhoneRuntime) -> None:
        """Unlock the phone (the first unlock after a restart too). A phone plugged in under
        USB Restricted Mode then enables USB data: it re-enumerates."""
        state = runtime.state
        state.locked = False
        state.locked_since = None
        state.unlocked_since_boot = True
        runtime.unlocked.set()
        self.events.record("unlocked", runtime.udid)
        if state.plugged and state.usb_restricted:
            self.reenumerate(runtime)

    def restart(self, runtime: PhoneRuntime) -> None:
        """The phone restarts: it leaves the bus, comes back locked, and refuses sessions until
        its passcode is entered once (before first unlock)."""
        was_plugged = runtime.state.plugged
        self.unplug(runtime)
        runtime.state.unlocked_since_boot = False
        self.lock(runtime)
        self.events.record("restarted", runtime.udid)
        if was_plugged:
            self.plug(runtime)
