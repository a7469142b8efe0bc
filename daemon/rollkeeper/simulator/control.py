"""The control socket of ``rollkeeper simulate``: plug, unplug, lock, unlock from another shell.

A UNIX stream socket (mode 0600) taking one JSON object per line and answering one JSON line::

    -> {"command": "unplug", "udid": "00008120-001A2B3C4D5E6F70"}
    <- {"ok": true, "phones": [{"udid": "...", "plugged": false, ...}]}

``command`` is ``plug``, ``unplug``, ``lock``, ``unlock`` or ``status``; ``udid`` is optional (no
UDID = every phone). Errors answer ``{"ok": false, "error": "..."}``. Try it with
``rollkeeper simulate --control PATH unplug`` or
``printf '{"command":"status"}\\n' | socat - UNIX-CONNECT:PATH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import structlog

from rollkeeper.simulator.simulator import Simulator
from rollkeeper.simulator.usbmuxd import claim_socket_path

log = structlog.get_logger(__name__)

COMMANDS = ("plug", "unplug", "lock", "unlock", "restart", "status")
MAX_LINE_BYTES = 64 * 1024


class ControlError(Exception):
    """The control socket could not be reached or refused the command."""


def apply_command(simulator: Simulator, command: str, udid: str | None) -> dict[str, Any]:
    """Run one control command on the simulator's loop; returns the JSON reply."""
    if command not in COMMANDS:
        return {"ok": False, "error": f"unknown command {command!r}; use one of {COMMANDS}"}
    known = [phone.identity.udid for phone in simulator.phones()]
    if udid is not None and udid not in known:
        return {"ok": False, "error": f"no simulated phone with UDID {udid}"}
    targets = [udid] if udid is not None else known
    action = {
        "plug": simulator.plug,
        "unplug": simulator.unplug,
        "lock": simulator.lock,
        "unlock": simulator.unlock,
        "restart": simulator.restart,
    }.get(command)
    if action is not None:
        for target in targets:
            action(target)
    return {"ok": True, "phones": simulator.describe()}


class ControlServer:
    """Serves the control socket for one :class:`Simulator` on its loop."""

    def __init__(self, simulator: Simulator, path: Path) -> None:
        self.simulator = simulator
        self.path = path
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on :attr:`path`, readable and writable by the owner only."""
        claim_socket_path(str(self.path))
        previous_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._handle, path=str(self.path), limit=MAX_LINE_BYTES
            )
        finally:
            os.umask(previous_umask)

    async def stop(self) -> None:
        """Stop listening and remove the socket file."""
        if self._server is None:
            return  # never listened: the path belongs to someone else, if to anyone
        self._server.close()
        await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                reply = self._answer(line)
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, ValueError):
            pass  # a client that hung up or sent an overlong line
        finally:
            writer.close()

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "expected one JSON object per line"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "expected a JSON object"}
        command = request.get("command")
        udid = request.get("udid")
        if not isinstance(command, str) or (udid is not None and not isinstance(udid, str)):
            return {"ok": False, "error": "command must be a string, udid a string or absent"}
        log.info("control_command", command=command, udid=udid)
        return apply_command(self.simulator, command, udid)


def send_command(
    path: Path | str, command: str, udid: str | None = None, *, timeout: float = 10.0
) -> dict[str, Any]:
    """Send one command to a control socket and return its JSON reply (blocking).

    :raises ControlError: the socket is missing, refused, timed out or answered garbage.
    """
    request: dict[str, Any] = {"command": command}
    if udid is not None:
        request["udid"] = udid
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(str(path))
            connection.sendall(json.dumps(request).encode() + b"\n")
            with connection.makefile("rb") as stream:
                line = stream.readline(MAX_LINE_BYTES)
    except OSError as error:
        raise ControlError(
            f"cannot reach the simulator's control socket {path}: {error}"
        ) from error
    try:
        reply = json.loads(line)
    except ValueError as error:
        raise ControlError(f"the control socket {path} answered {line[:80]!r}") from error
    if not isinstance(reply, dict):
        raise ControlError(f"the control socket {path} answered {reply!r}")
    return reply
