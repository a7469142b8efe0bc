"""A protocol-level iPhone simulator: usbmuxd, lockdownd (with TLS) and AFC over real sockets.

Unmodified clients (pymobiledevice3, libimobiledevice's tools) talk to it through
``USBMUXD_SOCKET_ADDRESS``. Tests use :class:`SimulatorThread` (sync) or :class:`Simulator`
(async); people use ``rollkeeper simulate``. See docs/simulator.md.
"""

from rollkeeper.simulator.addresses import short_socket_folder
from rollkeeper.simulator.phone import (
    AfcFaults,
    HostileEntry,
    PhoneIdentity,
    PhoneState,
    TrustPolicy,
)
from rollkeeper.simulator.runtime import EventLog, SimulatorEvent
from rollkeeper.simulator.simulator import Simulator
from rollkeeper.simulator.simulator_thread import SimulatorThread

__all__ = [
    "AfcFaults",
    "EventLog",
    "HostileEntry",
    "PhoneIdentity",
    "PhoneState",
    "Simulator",
    "SimulatorEvent",
    "SimulatorThread",
    "TrustPolicy",
    "short_socket_folder",
]
