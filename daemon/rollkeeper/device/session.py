"""A session with one phone: lockdown over usbmux (pairing if needed), then the AFC service.

Everything pymobiledevice3 can raise while getting there is translated into the few errors of
:mod:`rollkeeper.device.errors`, each a state the user is told about ("unlock your iPhone", "tap
Trust") rather than a crash. Which lock or trust state stands in the way is told apart in
:mod:`rollkeeper.device.pairing`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymobiledevice3.services.afc import AfcService

from rollkeeper.device.errors import (
    PhoneNotRespondingError,
    PhoneUnavailableError,
    UsbmuxdUnavailableError,
)
from rollkeeper.device.pairing import open_lockdown
from rollkeeper.device.phone_files import PhoneFilesystem
from rollkeeper.device.recording import PhoneRecorder
from rollkeeper.device.translate import translate_error
from rollkeeper.ports import PhoneFiles

#: The label lockdownd shows for this host.
LOCKDOWN_LABEL = "rollkeeper"


@dataclass(frozen=True, slots=True)
class PhoneInfo:
    """Who the phone says it is (untrusted text, shown to the user, never used as a path)."""

    udid: str
    name: str
    product_type: str
    product_version: str


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """How to reach phones: the usbmuxd address, our private pairing folder, timeouts."""

    usbmux_address: str | None
    pairing_dir: Path
    afc_timeout_seconds: float = 30.0
    #: Ceiling for reaching the phone (usbmuxd Connect, lockdown, TLS, StartService): none of
    #: these has a time limit in pymobiledevice3, and a silent usbmuxd or lockdownd would
    #: otherwise hold the phone's backup job until it is unplugged.
    connect_timeout_seconds: float = 30.0


def secure_pairing_dir(pairing_dir: Path) -> None:
    """Create the pairing folder 0700 and make every record in it 0600.

    pymobiledevice3 writes pair records (which hold the host's private key) with the process
    umask; the service runs with umask 077, and this closes the gap for older files.
    """
    pairing_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pairing_dir.chmod(0o700)
    for record in pairing_dir.iterdir():
        if record.is_file() and not record.is_symlink():
            record.chmod(0o600)


class PhoneSession:
    """An open lockdown + AFC connection to one phone."""

    def __init__(self, info: PhoneInfo, lockdown: Any, afc: AfcService, timeout: float) -> None:
        self.info = info
        self._lockdown = lockdown
        self._afc = afc
        self._timeout = timeout
        self.files: PhoneFiles = PhoneFilesystem(afc, timeout_seconds=timeout)
        self._extra: list[AfcService] = []

    @property
    def lockdown_values(self) -> dict[str, Any]:
        """What lockdownd reported in the session (untrusted, for records and recordings)."""
        values: dict[str, Any] = dict(self._lockdown.all_values)
        return values

    @property
    def lockdown(self) -> Any:
        """The session's lockdown client (other services, such as mobilebackup2, start on it)."""
        return self._lockdown

    async def open_files(self) -> PhoneFilesystem:
        """A second AFC connection for work that should not queue behind the first."""
        afc = AfcService(self._lockdown)
        await afc.__aenter__()  # type: ignore[no-untyped-call]
        self._extra.append(afc)
        return PhoneFilesystem(afc, timeout_seconds=self._timeout)

    async def close(self) -> None:
        """Close AFC and lockdown; errors while closing a dead connection are irrelevant."""
        for afc in [*self._extra, self._afc]:
            with contextlib.suppress(Exception):
                await afc.aclose()
        with contextlib.suppress(Exception):
            await self._lockdown.close()


def _no_answer(what: str, settings: SessionSettings) -> PhoneNotRespondingError:
    return PhoneNotRespondingError(
        f"no answer from {what} within {settings.connect_timeout_seconds:g} s"
    )


@contextlib.asynccontextmanager
async def open_session(
    udid: str, settings: SessionSettings, recorder: PhoneRecorder | None = None
) -> AsyncIterator[PhoneSession]:
    """Open a session with the phone ``udid``; raise a :mod:`rollkeeper.device.errors` error if not.

    Pairing never waits for the Trust dialog: a pending dialog raises at once and the scheduler
    retries, so the user sees "tap Trust" in ``status`` instead of a silent wait. A
    ``recorder`` (``backup-now --record``) hears how the session opened and every request of
    its phone-files port.
    """
    try:
        session = await _establish(udid, settings)
    except (PhoneUnavailableError, UsbmuxdUnavailableError) as error:
        if recorder is not None:
            recorder.session_refused(error)
        raise
    if recorder is not None:
        recorder.session_opened(session.lockdown_values)
        session.files = recorder.wrap(session.files)
    try:
        yield session
    finally:
        await session.close()


async def _establish(udid: str, settings: SessionSettings) -> PhoneSession:
    """Lockdown (pairing if needed), the AFC service and the phone's identity, or the error."""
    secure_pairing_dir(settings.pairing_dir)
    try:
        lockdown = await asyncio.wait_for(
            open_lockdown(
                udid,
                label=LOCKDOWN_LABEL,
                pairing_dir=settings.pairing_dir,
                usbmux_address=settings.usbmux_address,
            ),
            settings.connect_timeout_seconds,
        )
    except TimeoutError as error:
        raise _no_answer("lockdown", settings) from error
    except Exception as error:
        translated = translate_error(error)
        if translated is None:
            raise
        raise translated from error
    secure_pairing_dir(settings.pairing_dir)
    afc: AfcService | None = None
    try:
        afc = AfcService(lockdown)
        try:
            await asyncio.wait_for(
                afc.__aenter__(),  # type: ignore[no-untyped-call]
                settings.connect_timeout_seconds,
            )
        except TimeoutError as error:
            raise _no_answer("the AFC service", settings) from error
        values = lockdown.all_values
        info = PhoneInfo(
            udid=udid,
            name=str(values.get("DeviceName", "")),
            product_type=str(values.get("ProductType", "")),
            product_version=str(values.get("ProductVersion", "")),
        )
    except Exception as error:
        if afc is not None:
            with contextlib.suppress(Exception):
                await afc.aclose()
        with contextlib.suppress(Exception):
            await lockdown.close()
        translated = translate_error(error)
        if translated is None:
            raise
        raise translated from error
    return PhoneSession(info, lockdown, afc, settings.afc_timeout_seconds)
