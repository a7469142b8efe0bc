"""Each lock and trust state of a real phone is told apart when a session is opened.

The real session code (:func:`rollkeeper.device.session.open_session`, through pymobiledevice3)
against the simulator playing the phone: the state names and hints asserted here are what
``status`` shows and what the scheduler's retry policy is keyed by.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollkeeper.device.errors import PhoneUnavailableError
from rollkeeper.device.session import SessionSettings, open_session
from rollkeeper.simulator import SimulatorThread, TrustPolicy

UDID = "00008110-00CC0000000000C3"


def settings_for(simulator: SimulatorThread, tmp_path: Path) -> SessionSettings:
    """Session settings reaching the simulator, with a private pairing folder."""
    return SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pairing")


async def session_refusal(settings: SessionSettings) -> PhoneUnavailableError:
    """The error that stops a session from opening (a failure if it opens)."""
    with pytest.raises(PhoneUnavailableError) as refused:
        async with open_session(UDID, settings):
            pass
    return refused.value


async def opens(settings: SessionSettings) -> str:
    """Open a session and return the phone's name."""
    async with open_session(UDID, settings) as session:
        return session.info.name


async def test_usb_restricted_mode_is_its_own_state(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A phone plugged in after an hour locked refuses the connection: the state is
    ``usb_restricted`` (not "disconnected"), the hint says to unlock it, and it is retried at the
    short interval; unlocked, it re-enumerates and a session opens."""
    settings = settings_for(simulator, tmp_path)
    simulator.add_phone(UDID, tmp_path / "phone", locked=True, locked_for_seconds=2 * 3600)

    refusal = await session_refusal(settings)

    assert refusal.state == "usb_restricted"
    assert refusal.retry
    assert "unlock" in refusal.hint and "USB Restricted Mode" in refusal.hint
    mark = simulator.mark()
    simulator.unlock(UDID)
    simulator.wait_for("attached", UDID, after=mark)
    assert await opens(settings) == "iPhone"


async def test_a_phone_not_unlocked_since_it_restarted_is_its_own_state(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A restarted phone refuses the session with PasswordProtected: the state is
    ``waiting_for_first_unlock`` and the hint asks for the passcode once; after the first unlock
    the session opens."""
    settings = settings_for(simulator, tmp_path)
    simulator.add_phone(UDID, tmp_path / "phone", restarted=True)

    refusal = await session_refusal(settings)

    assert refusal.state == "waiting_for_first_unlock"
    assert "restarted" in refusal.hint
    simulator.unlock(UDID)
    assert await opens(settings) == "iPhone"


async def test_a_locked_phone_that_refuses_to_pair_asks_for_unlock_then_trust(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A locked unpaired phone answers Pair with PasswordProtected: the user is asked to unlock
    it and then tap Trust (not only to unlock it)."""
    settings = settings_for(simulator, tmp_path)
    simulator.add_phone(UDID, tmp_path / "phone", trust=TrustPolicy.ACCEPT, locked=True)

    refusal = await session_refusal(settings)

    assert refusal.state == "waiting_for_unlock"
    assert "unlock" in refusal.hint and "Trust" in refusal.hint
    assert simulator.wait_for("pair_refused_locked", UDID)


async def test_invalid_host_id_pairs_again_once_and_says_the_phone_forgot_us(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A phone that forgot this computer (Invalid HostID for our record) is asked to pair again
    and the user is told why the dialog is back; once Trust is tapped the phone re-enumerates,
    and the next session uses the new record without pairing again."""
    settings = settings_for(simulator, tmp_path)
    simulator.add_phone(UDID, tmp_path / "phone", name="Ana's iPhone")
    assert await opens(settings) == "Ana's iPhone"
    # "Reset Location & Privacy": the phone forgets its hosts; the next Pair shows the dialog.
    simulator.revoke_trust(UDID, then=TrustPolicy.ACCEPT, pending_polls=1)
    mark = simulator.mark()

    refusal = await session_refusal(settings)

    assert refusal.state == "waiting_for_trust"
    assert "no longer trusts this computer" in refusal.hint
    assert simulator.wait_for("session_refused", UDID, after=mark)
    # The user taps Trust: the next attempt pairs, and the phone re-enumerates.
    trusted = await session_refusal(settings)
    assert trusted.state == "disconnected"
    assert "Trust accepted" in trusted.hint
    paired = simulator.wait_for("paired", UDID, after=mark)
    simulator.wait_for("attached", UDID, after=paired.sequence)
    assert await opens(settings) == "Ana's iPhone"
    assert len(simulator.events.events("paired", UDID, after=mark)) == 1


async def test_trust_accepted_then_the_phone_reenumerates(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Tapping Trust on a new phone drops the connection (the phone re-enumerates with a new
    DeviceID): that attempt ends as "Trust accepted, reconnecting", and the next one opens."""
    settings = settings_for(simulator, tmp_path)
    state = simulator.add_phone(UDID, tmp_path / "phone", trust=TrustPolicy.ACCEPT)
    first = state.device_id
    mark = simulator.mark()

    refusal = await session_refusal(settings)

    assert refusal.state == "disconnected" and refusal.retry
    assert "Trust accepted" in refusal.hint
    back = simulator.wait_for("attached", UDID, after=mark)
    assert back.details["device_id"] != first
    assert await opens(settings) == "iPhone"
