"""A :class:`~rollkeeper.simulator.simulator.Simulator` for synchronous code, thread-safely.

:class:`SimulatorThread` runs a Simulator on its own event loop in a background thread and
offers the same operations to synchronous test code: each call is executed on the simulator's
loop and its result handed back, within :data:`CALL_TIMEOUT_SECONDS`. A new operation of the
Simulator gets its one-line counterpart here.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from rollkeeper.simulator.phone import AfcFaults, PhoneState, TrustPolicy
from rollkeeper.simulator.runtime import EventLog, SimulatorEvent
from rollkeeper.simulator.simulator import Simulator

_Result = TypeVar("_Result")
_Parameters = ParamSpec("_Parameters")

#: How long a synchronous call into the simulator's loop may take before it is an error.
CALL_TIMEOUT_SECONDS = 30.0


class SimulatorThread:
    """A :class:`Simulator` on its own event loop in a background thread, for sync tests.

    ``with SimulatorThread(socket_path=...) as sim:`` starts it (listening before ``__enter__``
    returns) and stops it on exit. Every method is thread-safe: it runs on the simulator's loop.
    Wait for things with :meth:`wait_for` (events such as ``"detached"``), never with sleeps.
    """

    def __init__(
        self,
        *,
        socket_path: Path | str | None = None,
        tcp: tuple[str, int] | None = None,
        usbmuxd_profile: str = "generic",
    ) -> None:
        self.simulator = Simulator(
            socket_path=socket_path, tcp=tcp, usbmuxd_profile=usbmuxd_profile
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run_loop, name="rollkeeper-simulator", daemon=True
        )

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self) -> SimulatorThread:
        """Start the thread and the servers; returns self."""
        self._thread.start()
        try:
            self._run(self.simulator.start())
        except BaseException:
            self.stop()  # a refused start must not leave a loop running in a thread
            raise
        return self

    def stop(self) -> None:
        """Stop the servers, the loop and the thread."""
        if not self._thread.is_alive():
            if not self._thread.ident and not self._loop.is_closed():
                self._loop.close()  # never started: nothing runs on the loop
            return
        try:
            self._run(self.simulator.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=CALL_TIMEOUT_SECONDS)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, awaitable: Awaitable[_Result]) -> _Result:
        async def wrapper() -> _Result:
            return await awaitable

        future = asyncio.run_coroutine_threadsafe(wrapper(), self._loop)
        return future.result(timeout=CALL_TIMEOUT_SECONDS)

    def call(
        self,
        function: Callable[_Parameters, _Result],
        *args: _Parameters.args,
        **kwargs: _Parameters.kwargs,
    ) -> _Result:
        """Run ``function(*args, **kwargs)`` on the simulator's loop and return its result."""
        if threading.current_thread() is self._thread:
            return function(*args, **kwargs)
        future: Future[_Result] = Future()

        def run() -> None:
            try:
                future.set_result(function(*args, **kwargs))
            except BaseException as error:  # noqa: BLE001 - re-raised in the calling thread
                future.set_exception(error)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=CALL_TIMEOUT_SECONDS)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The simulator's event loop (for ``run_coroutine_threadsafe``)."""
        return self._loop

    @property
    def address(self) -> str:
        """``USBMUXD_SOCKET_ADDRESS`` for pymobiledevice3."""
        return self.simulator.address

    @property
    def libimobiledevice_address(self) -> str:
        """``USBMUXD_SOCKET_ADDRESS`` for libimobiledevice's tools."""
        return self.simulator.libimobiledevice_address

    @property
    def events(self) -> EventLog:
        """The event log (thread-safe)."""
        return self.simulator.events

    def add_phone(self, udid: str, media_root: Path, **options: Any) -> PhoneState:
        """See :meth:`Simulator.add_phone`. The returned state is live: read, don't write."""
        return self._run(self.simulator.add_phone(udid, media_root, **options))

    def plug(self, udid: str) -> None:
        """See :meth:`Simulator.plug`."""
        self.call(self.simulator.plug, udid)

    def unplug(self, udid: str) -> None:
        """See :meth:`Simulator.unplug`."""
        self.call(self.simulator.unplug, udid)

    def lock(self, udid: str, locked_for_seconds: float = 0.0) -> None:
        """See :meth:`Simulator.lock`."""
        self.call(self.simulator.lock, udid, locked_for_seconds)

    def unlock(self, udid: str) -> None:
        """See :meth:`Simulator.unlock`."""
        self.call(self.simulator.unlock, udid)

    def restart(self, udid: str) -> None:
        """See :meth:`Simulator.restart`."""
        self.call(self.simulator.restart, udid)

    def reenumerate(self, udid: str) -> None:
        """See :meth:`Simulator.reenumerate`."""
        self.call(self.simulator.reenumerate, udid)

    def set_trust(self, udid: str, policy: TrustPolicy, pending_polls: int = 0) -> None:
        """See :meth:`Simulator.set_trust`."""
        self.call(self.simulator.set_trust, udid, policy, pending_polls)

    def revoke_trust(
        self, udid: str, then: TrustPolicy | None = None, pending_polls: int = 0
    ) -> None:
        """See :meth:`Simulator.revoke_trust`."""
        self.call(self.simulator.revoke_trust, udid, then, pending_polls)

    def pair_record(self, udid: str) -> bytes | None:
        """See :meth:`Simulator.pair_record`."""
        return self.call(self.simulator.pair_record, udid)

    def set_faults(self, udid: str, faults: AfcFaults) -> None:
        """See :meth:`Simulator.set_faults` (a copy of ``faults`` is installed)."""
        self.call(self.simulator.set_faults, udid, replace(faults))

    def enter_passcode(self, udid: str) -> bool:
        """See :meth:`Simulator.enter_passcode`."""
        return self.call(self.simulator.enter_passcode, udid)

    def update_phone(self, udid: str, change: Callable[[PhoneState], _Result]) -> _Result:
        """Run ``change(phone_state)`` on the simulator's loop, e.g. to edit faults in place."""
        return self.call(self.simulator.update_phone, udid, change)

    def afc_request_counts(self, udid: str) -> Counter[str]:
        """See :meth:`Simulator.afc_request_counts`."""
        return self.call(self.simulator.afc_request_counts, udid)

    def afc_bytes_served(self, udid: str) -> Counter[str]:
        """See :meth:`Simulator.afc_bytes_served`."""
        return self.call(self.simulator.afc_bytes_served, udid)

    def reset_counts(self, udid: str) -> None:
        """See :meth:`Simulator.reset_counts`."""
        self.call(self.simulator.reset_counts, udid)

    def phone_snapshot(self, udid: str) -> dict[str, Any]:
        """A consistent copy of one phone's summary (see :meth:`Simulator.describe`)."""
        for entry in self.call(self.simulator.describe):
            if entry["udid"] == udid:
                return entry
        raise KeyError(f"no simulated phone with UDID {udid}")

    def mark(self) -> int:
        """The current event sequence number: pass as ``after=`` to :meth:`wait_for`."""
        return self.events.mark()

    def wait_for(
        self,
        kind: str,
        udid: str | None = None,
        *,
        after: int = 0,
        timeout: float = 10.0,
        where: Callable[[SimulatorEvent], bool] | None = None,
    ) -> SimulatorEvent:
        """Block until an event happens (see :class:`EventLog`); raises TimeoutError."""
        return self.events.wait_for(kind, udid, after=after, timeout=timeout, where=where)
