"""One-shot commands that cannot ask usbmuxd which phones are attached say so in one line.

What they catch is a named set of errors (:data:`rollkeeper.device.events.USBMUXD_REQUEST_ERRORS`),
not every exception: these tests hold that the set covers a missing socket, a usbmuxd that hangs
up, and one that answers garbage, through the real pymobiledevice3 client over a real socket.
"""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from rollkeeper.device.events import USBMUXD_REQUEST_ERRORS, list_attached
from rollkeeper.simulator import short_socket_folder
from tests.service_process import (
    DEFAULT_TIMEOUT,
    rollkeeper_command,
    service_environment,
    write_config,
)

#: usbmuxd's packet header: length, protocol version, message type, tag (little-endian).
HEADER = struct.Struct("<IIII")
PLIST_VERSION = 1
PLIST_MESSAGE = 8

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def unix_server(handler: Handler) -> AsyncIterator[str]:
    """A UNIX socket served by ``handler``; yields its path. On the way out, waits for every
    connection's handler to end (the client has closed its sockets by then)."""
    folder = short_socket_folder()
    path = folder / "usbmuxd"
    handlers: list[asyncio.Task[None]] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        await handler(reader, writer)

    server = await asyncio.start_unix_server(tracked, path=str(path))
    try:
        yield str(path)
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.wait_for(asyncio.gather(*handlers), DEFAULT_TIMEOUT)
        path.unlink(missing_ok=True)
        folder.rmdir()


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A usbmuxd that closes every connection at once."""
    writer.close()
    await writer.wait_closed()


async def answer_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A usbmuxd that frames its replies well but whose plist is not one."""
    try:
        while header := await reader.readexactly(HEADER.size):
            length, _version, _message, tag = HEADER.unpack(header)
            await reader.readexactly(length - HEADER.size)
            payload = b"this is not a property list"
            writer.write(
                HEADER.pack(HEADER.size + len(payload), PLIST_VERSION, PLIST_MESSAGE, tag) + payload
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass  # the client hung up: this connection is done
    finally:
        writer.close()


@pytest.mark.parametrize("handler", [hang_up, answer_garbage], ids=["hangs_up", "garbage"])
async def test_a_usbmuxd_that_is_not_well_raises_one_of_the_named_errors(handler: Handler) -> None:
    """A usbmuxd that hangs up or answers garbage makes list_attached raise an error of the set
    the commands catch (so they print one line, not a traceback)."""
    async with unix_server(handler) as address:
        with pytest.raises(USBMUXD_REQUEST_ERRORS):
            await list_attached(address)


@pytest.mark.parametrize("command", ["audit", "backup-now"])
def test_a_command_without_usbmuxd_says_so_in_one_line(command: str, tmp_path: Path) -> None:
    """audit (exit 2, stderr) and backup-now (its JSON problem) name the usbmuxd address, the
    error and the fix when nothing listens on the socket."""
    missing = str(tmp_path / "no-usbmuxd-here")
    config = write_config(tmp_path / "config.toml", tmp_path)
    arguments = ["audit"] if command == "audit" else ["backup-now", "--json", "--no-progress"]
    result = subprocess.run(
        rollkeeper_command("--config", str(config), *arguments),
        env=service_environment(missing),
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT,
        check=False,
    )
    expected = f"cannot reach usbmuxd at {missing} (ConnectionFailedToUsbmuxdError); "
    if command == "audit":
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.startswith(f"rollkeeper audit: {expected}"), result.stderr
        assert result.stderr.count("\n") == 1
    else:
        assert result.returncode == 1
        assert json.loads(result.stdout)["problem"].startswith(expected), result.stdout
