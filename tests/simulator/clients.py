"""Helpers for running the unmodified client stacks against the simulator."""

from __future__ import annotations

import asyncio
import os
import shutil
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
