"""Linux: a phone udev sees that usbmuxd does not show, and what the user should do about it.

Linux usbmuxd shows a phone to its clients only once its preflight is done with it
(``src/preflight.c``): a phone whose Trust dialog is still unanswered, or slow to appear (more
than 10-30 s on iOS 26, usbmuxd #281), or that refuses USB data (USB Restricted Mode), is
invisible in usbmuxd's Listen stream while udev sees its usbmux interface. rollkeeper would stay
silent then; this watch turns that combination into words instead.

:class:`UnseenPhoneWatch` is fed on the event loop with udev's usbmux interfaces
(:mod:`rollkeeper.device.udev_records`) and usbmuxd's attaches and detaches. A phone present in
udev and absent from usbmuxd for ``grace_seconds`` (while usbmuxd itself answers: a missing
usbmuxd is :class:`~rollkeeper.device.udev.UsbmuxdWatchdog`'s to report) is handed to
``on_unseen``; when usbmuxd shows it, or it is unplugged, ``on_resolved`` says how it ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog

from rollkeeper.device.udev_records import UsbmuxInterfaceEvent, same_phone

log = structlog.get_logger("rollkeeper.udev")

#: How long a phone may be on USB and not in usbmuxd before the user is told: a paired phone's
#: preflight takes a second or two.
DEFAULT_UNSEEN_GRACE_SECONDS = 10.0


@dataclass
class _Unseen:
    """One phone udev shows: its interfaces, the pending check, whether the user was told."""

    udid: str
    sys_paths: set[str] = field(default_factory=set)
    check: asyncio.TimerHandle | None = None
    told: bool = False


class UnseenPhoneWatch:
    """Tells when udev shows a phone that usbmuxd does not (see the module docstring).

    ``attached()`` gives the UDIDs usbmuxd shows now, ``listening()`` whether usbmuxd answers;
    ``on_unseen(udid)`` is called once per stretch, ``on_resolved(udid, how)`` with ``how``
    ``"shown"`` (usbmuxd shows it now) or ``"unplugged"``. All on the loop.
    """

    def __init__(
        self,
        *,
        attached: Callable[[], Iterable[str]],
        listening: Callable[[], bool],
        on_unseen: Callable[[str], None],
        on_resolved: Callable[[str, str], None],
        grace_seconds: float = DEFAULT_UNSEEN_GRACE_SECONDS,
    ) -> None:
        self._attached = attached
        self._listening = listening
        self._on_unseen = on_unseen
        self._on_resolved = on_resolved
        self.grace_seconds = grace_seconds
        self._phones: dict[str, _Unseen] = {}
        self._closed = False

    def interface_event(self, event: UsbmuxInterfaceEvent) -> None:
        """A usbmux interface appeared or went away (from udev, handed to the loop)."""
        if event.action == "add":
            self._interface_added(event)
        elif event.action == "remove":
            self._interface_removed(event.sys_path)

    def usbmuxd_attached(self, udid: str) -> None:
        """usbmuxd shows the phone: nothing left to say about it."""
        phone = self._find(udid)
        if phone is None:
            return
        self._cancel(phone)
        if phone.told:
            phone.told = False
            log.info("unseen_phone_shown", udid=phone.udid)
            self._on_resolved(phone.udid, "shown")

    def usbmuxd_detached(self, udid: str) -> None:
        """usbmuxd no longer shows the phone; if udev still does, look again after the grace
        (a phone re-enumerating after Trust comes back in a moment)."""
        phone = self._find(udid)
        if phone is not None and phone.sys_paths:
            self._schedule(phone)

    def close(self) -> None:
        """Cancel every pending check (the service stops)."""
        self._closed = True
        for phone in self._phones.values():
            self._cancel(phone)

    # -- internals ------------------------------------------------------------------------

    def _find(self, udid: str) -> _Unseen | None:
        for key, phone in self._phones.items():
            if same_phone(key, udid):
                return phone
        return None

    def _interface_added(self, event: UsbmuxInterfaceEvent) -> None:
        udid = event.udid
        if udid is None:
            return  # without a serial there is no phone to name
        phone = self._find(udid)
        if phone is None:
            phone = self._phones[udid] = _Unseen(udid)
        phone.sys_paths.add(event.sys_path)
        self._schedule(phone)

    def _interface_removed(self, sys_path: str) -> None:
        for key, phone in list(self._phones.items()):
            if sys_path not in phone.sys_paths:
                continue
            phone.sys_paths.discard(sys_path)
            if phone.sys_paths:
                continue
            self._cancel(phone)
            del self._phones[key]
            if phone.told:
                log.info("unseen_phone_unplugged", udid=phone.udid)
                self._on_resolved(phone.udid, "unplugged")

    def _schedule(self, phone: _Unseen) -> None:
        if self._closed:
            return
        self._cancel(phone)
        loop = asyncio.get_running_loop()
        phone.check = loop.call_later(self.grace_seconds, self._check, phone.udid)

    @staticmethod
    def _cancel(phone: _Unseen) -> None:
        if phone.check is not None:
            phone.check.cancel()
            phone.check = None

    def _shown(self, udid: str) -> bool:
        return any(same_phone(udid, shown) for shown in self._attached())

    def _check(self, udid: str) -> None:
        phone = self._phones.get(udid)
        if phone is None or not phone.sys_paths:
            return
        phone.check = None
        shown = self._shown(udid)
        log.debug("unseen_phone_checked", udid=udid, shown=shown, told=phone.told)
        if shown or phone.told:
            return
        if not self._listening():
            # No usbmuxd to show it: the usbmuxd watchdog tells that story.
            return
        phone.told = True
        log.warning("unseen_phone", udid=udid, waited_seconds=self.grace_seconds)
        self._on_unseen(udid)
