"""How the phone's :class:`~rollkeeper.simulator.phone.AfcFaults` change the AFC server's replies.

Faults are read at each request from the phone's state, so a test can change them while a
transfer runs. This module holds the decisions: which stat values a fault overrides or hides,
how far a READ may go before a read error or an unplug, and the bytes a growing file serves
past its real end. The server modules apply them (hostile entries, being names, are resolved
with the paths in :mod:`.afc_paths`; "not found" is checked where each request looks a path
up). A new fault gets its field in ``AfcFaults`` and its decision here.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollkeeper.simulator.afc_errors import AfcRequestError
from rollkeeper.simulator.afc_protocol import Status
from rollkeeper.simulator.phone import AfcFaults

_GROWN_PERIOD = 251
_GROWN_PATTERN = bytes(range(_GROWN_PERIOD))


def grown_bytes(offset: int, count: int) -> bytes:
    """The bytes a growing file (``grows_by_bytes``) serves past its real end.

    Byte ``i`` of the file (counted from the file's start) is ``i % 251``: deterministic, so a
    test can tell exactly which bytes it received, and not a repeat of the real content.
    """
    start = offset % _GROWN_PERIOD
    repeats = (start + count) // _GROWN_PERIOD + 1
    return (_GROWN_PATTERN * repeats)[start : start + count]


@dataclass(frozen=True)
class StatValues:
    """The numbers GET_FILE_INFO reports for one object (before or after the faults)."""

    size: int
    blocks: int
    mtime_ns: int
    birthtime_ns: int


def faulted_stat(faults: AfcFaults, key: str, real: StatValues) -> StatValues:
    """``real`` with the path's ``stat_size``, ``stat_mtime_ns`` and ``stat_birthtime_ns``."""
    size, blocks = real.size, real.blocks
    if key in faults.stat_size:
        size = faults.stat_size[key]
        blocks = (max(size, 0) + 511) // 512
    return StatValues(
        size=size,
        blocks=blocks,
        mtime_ns=faults.stat_mtime_ns.get(key, real.mtime_ns),
        birthtime_ns=faults.stat_birthtime_ns.get(key, real.birthtime_ns),
    )


def without_missing_keys(
    faults: AfcFaults, key: str, pairs: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The GET_FILE_INFO pairs minus the keys ``stat_missing_keys`` leaves out for the path."""
    missing = faults.stat_missing_keys.get(key)
    if missing:
        return [(name, value) for name, value in pairs if name not in missing]
    return pairs


@dataclass(frozen=True)
class ReadLimits:
    """How much of a READ is served: ``count`` bytes promised, ``cut`` where an unplug hits."""

    #: The length the DATA reply's header announces.
    count: int
    #: Bytes to send before the phone is unplugged mid-reply (None: no unplug in this READ).
    cut: int | None


def read_limits(
    faults: AfcFaults, key: str, position: int, wanted: int, real_size: int, served: int
) -> ReadLimits:
    """Apply ``grows_by_bytes``, ``read_error_after_bytes`` and ``unplug_after_bytes`` to a READ.

    ``served`` is how many bytes of the file were served so far over every read of it.

    :raises AfcRequestError: READ_ERROR, when the read-error fault's budget is spent;
        IO_ERROR from the ``io_error_after_bytes`` offset of the file on.
    """
    end = real_size + max(0, faults.grows_by_bytes.get(key, 0))
    count = max(0, min(wanted, end - position))
    io_error_after = faults.io_error_after_bytes.get(key)
    if io_error_after is not None:
        if position >= io_error_after:
            raise AfcRequestError(Status.IO_ERROR)
        count = min(count, io_error_after - position)
    error_after = faults.read_error_after_bytes.get(key)
    if error_after is not None:
        allowed = error_after - served
        if allowed <= 0:
            raise AfcRequestError(Status.READ_ERROR)
        count = min(count, allowed)
    cut: int | None = None
    unplug_after = faults.unplug_after_bytes.get(key)
    if unplug_after is not None and count >= unplug_after - served:
        cut = max(0, unplug_after - served)
    return ReadLimits(count=count, cut=cut)


def permission_denied(faults: AfcFaults, key: str) -> bool:
    """Whether the path is, or lies under, a path the phone refuses (``permission_denied``)."""
    return any(
        key == refused or key.startswith(refused.rstrip("/") + "/")
        for refused in faults.permission_denied
    )


def check_permission(faults: AfcFaults, key: str) -> None:
    """:raises AfcRequestError: PERM_DENIED for a refused path."""
    if faults.permission_denied and permission_denied(faults, key):
        raise AfcRequestError(Status.PERM_DENIED)


def check_file_slots(faults: AfcFaults, open_now: int) -> None:
    """:raises AfcRequestError: NO_RESOURCES when afcd's ``file_slots`` are all taken
    ("No file slots", libimobiledevice #284)."""
    if faults.file_slots is not None and open_now >= faults.file_slots:
        raise AfcRequestError(Status.NO_RESOURCES)
