"""Helpers for running the unmodified client stacks against the simulator."""

from __future__ import annotations

import asyncio
import os
import plistlib
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

PHONE_UDID = "00008120-001A2B3C4D5E6F70"
OTHER_UDID = "00008030-000A1B2C3D4E5F60"
#: The venv's bin folder: pymobiledevice3's and rollkeeper's console scripts.
VENV_BIN = Path(sys.executable).parent

_Result = TypeVar("_Result")


def run(coroutine: Coroutine[Any, Any, _Result]) -> _Result:
    """Run pymobiledevice3 (asyncio-only) from a synchronous test."""
    return asyncio.run(coroutine)


def libimobiledevice_tool(name: str) -> str:
    """Path of a libimobiledevice tool, or skip when the Debian package is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (apt-get install libimobiledevice-utils)")
    return path


def run_tool(
    arguments: list[str], usbmuxd_address: str, home: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run a client tool against the simulator with a private HOME (no stray pair records)."""
    environment = dict(os.environ, USBMUXD_SOCKET_ADDRESS=usbmuxd_address, HOME=str(home))
    return subprocess.run(
        arguments, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )


class SimulateProcess:
    """``rollkeeper simulate`` as a subprocess; :attr:`first_line` is its first stdout line.

    The command prints that line only once it listens, so there is nothing to wait for after
    :meth:`start` returns. Stopped with SIGTERM on exit.
    """

    def __init__(self, arguments: list[str]) -> None:
        self.arguments = [str(VENV_BIN / "rollkeeper"), "simulate", *arguments]
        self.process: subprocess.Popen[str] | None = None
        self.first_line = ""

    def start(self, timeout: float = 30.0) -> SimulateProcess:
        """Start the simulator and wait (select, with a ceiling) for its first line."""
        self.process = subprocess.Popen(
            self.arguments,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.stop()
            raise TimeoutError(f"rollkeeper simulate printed nothing in {timeout}s")
        self.first_line = self.process.stdout.readline().rstrip("\n")
        return self

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> SimulateProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()


def raw_usbmuxd(address: str) -> socket.socket:
    """A plain socket to the simulator's usbmuxd (a UNIX socket path), to speak its protocol."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(10)
    connection.connect(address)
    return connection


def receive_exactly(connection: socket.socket, size: int) -> bytes:
    """``size`` bytes from the socket (an assertion error if it closes first)."""
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        assert chunk, "usbmuxd closed the connection"
        data += chunk
    return data


def read_usbmuxd_packet(connection: socket.socket) -> tuple[int, dict[str, Any]]:
    """One usbmuxd plist packet: its tag and its message."""
    length, _version, _message, tag = struct.unpack("<IIII", receive_exactly(connection, 16))
    reply = plistlib.loads(receive_exactly(connection, length - 16))
    assert isinstance(reply, dict)
    return tag, reply


def usbmuxd_exchange(
    connection: socket.socket, tag: int, message: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Send one plist request and read the next packet."""
    payload = plistlib.dumps(message)
    connection.sendall(struct.pack("<IIII", 16 + len(payload), 1, 8, tag) + payload)
    return read_usbmuxd_packet(connection)
