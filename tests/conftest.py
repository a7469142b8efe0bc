"""Shared pytest configuration for the whole suite.

The simulator and service fixtures serve the end-to-end tests (tests/e2e/) and the reliability
tests (tests/reliability/); tests/simulator/ keeps its own ``simulator`` fixture.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rollkeeper.simulator import SimulatorThread, short_socket_folder
from tests.service_process import ServiceProcess, service_environment, write_config


@pytest.fixture
def usbmuxd_profile() -> str:
    """The usbmuxd build the ``simulator`` fixture imitates; a test parametrizes this name to
    run under ``linux-usbmuxd`` or ``macos-usbmuxd`` (docs/simulator.md, "Profiles")."""
    return "generic"


@pytest.fixture
def simulator(monkeypatch: pytest.MonkeyPatch, usbmuxd_profile: str) -> Iterator[SimulatorThread]:
    """A simulator with no phones yet on a short UNIX socket, exported to this process."""
    folder = short_socket_folder()
    try:
        with SimulatorThread(
            socket_path=folder / "usbmuxd", usbmuxd_profile=usbmuxd_profile
        ) as running:
            monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", running.address)
            yield running
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A test config: archive, state and pairing in tmp_path, JSON logs, short debounce."""
    return write_config(tmp_path / "config.toml", tmp_path)


@pytest.fixture
def start_service(
    simulator: SimulatorThread, config_path: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    """Start ``rollkeeper --config C run`` processes; any left running are stopped at the end."""
    started: list[ServiceProcess] = []

    def start(*extra_arguments: str, config: Path | None = None) -> ServiceProcess:
        service = ServiceProcess(
            ["--config", str(config or config_path), "run", *extra_arguments],
            service_environment(simulator.address),
        )
        started.append(service)
        service.wait_for("service_ready")
        return service

    yield start
    for service in started:
        service.kill()
