"""A usbmuxd (or lockdownd) that accepts the connection and then says nothing: no hung job.

pymobiledevice3 puts no time limit on reaching a phone (usbmuxd Connect, lockdown, TLS,
StartService), so the session setup has its own ceiling. The other end here is a real UNIX
socket server that accepts and never answers.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from rollkeeper.device.errors import PhoneNotRespondingError
from rollkeeper.device.session import SessionSettings, open_session
from rollkeeper.simulator import short_socket_folder

UDID = "00008110-00AA0000000000A9"


async def test_a_silent_usbmuxd_becomes_phone_not_responding_within_the_limit(
    tmp_path: Path,
) -> None:
    """A usbmuxd that accepts and never answers fails the session setup with PhoneNotRespondingError
    within the connect limit instead of hanging."""
    folder = short_socket_folder()
    connections: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        connections.append(writer)
        await reader.read()  # until the client gives up and closes

    server = await asyncio.start_unix_server(accept_and_say_nothing, path=str(folder / "mux"))
    settings = SessionSettings(
        usbmux_address=str(folder / "mux"),
        pairing_dir=tmp_path / "pairing",
        connect_timeout_seconds=0.3,
    )

    async def attempt() -> None:
        async with open_session(UDID, settings):
            raise AssertionError("a session with nobody")

    try:
        with pytest.raises(PhoneNotRespondingError, match=r"no answer from lockdown within 0\.3 s"):
            # The outer ceiling only catches a hang (it would raise TimeoutError instead).
            await asyncio.wait_for(attempt(), 20)
        assert connections, "the client did reach the silent server"
    finally:
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()
        shutil.rmtree(folder, ignore_errors=True)
