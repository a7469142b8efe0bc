"""Fixtures for driving the simulator with unmodified clients.

``simulator`` is a :class:`SimulatorThread` on a UNIX socket with ``USBMUXD_SOCKET_ADDRESS``
pointing at it (pymobiledevice3's ``save_pair_record`` ignores ``usbmux_address``, so the
environment variable is what makes every client code path reach the simulator).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollkeeper.simulator import SimulatorThread, short_socket_folder
from rollkeeper.simulator.pairing import KEY_DIR_ENV


@pytest.fixture(scope="session", autouse=True)
def shared_simulator_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Share the simulator's RSA keys with every ``rollkeeper simulate`` subprocess.

    In-process simulators share keys through the module cache already; subprocesses would each
    spend ~0.6 s generating three keys without this folder.
    """
    folder = tmp_path_factory.mktemp("simulator-keys")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_DIR_ENV, str(folder))
        yield folder


@pytest.fixture
def socket_folder() -> Iterator[Path]:
    """A short 0700 folder for UNIX sockets (pytest's tmp_path can exceed the 107-byte limit)."""
    folder = short_socket_folder()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    """A small phone media folder: two photos in DCIM/100APPLE."""
    root = tmp_path / "phone"
    folder = root / "DCIM" / "100APPLE"
    folder.mkdir(parents=True)
    (folder / "IMG_0001.JPG").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(5000))
    (folder / "IMG_0002.HEIC").write_bytes(os.urandom(12000))
    return root


@pytest.fixture
def simulator(socket_folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorThread]:
    """A running simulator (no phones yet) on a UNIX socket, exported to this process's env."""
    with SimulatorThread(socket_path=socket_folder / "usbmuxd") as running:
        monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", running.address)
        yield running


@pytest.fixture
def tcp_simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorThread]:
    """A running simulator on a free loopback TCP port, exported to this process's env."""
    with SimulatorThread(tcp=("127.0.0.1", 0)) as running:
        monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", running.address)
        yield running


@pytest.fixture
def pair_records(tmp_path: Path) -> Path:
    """pymobiledevice3's pairing_records_cache_folder for one test (never ~/.pymobiledevice3)."""
    folder = tmp_path / "pair-records"
    folder.mkdir(mode=0o700)
    return folder
