"""The backup sync lock: ``/com.apple.itunes.lock_sync``, opened ``r+`` and locked over AFC.

Backup clients (pymobiledevice3's ``Mobilebackup2Service``, ``idevicebackup2``) open this file
read-write and take an exclusive ``FILE_LOCK`` on it before a backup, so that two hosts never
back the phone up at once. The simulated media folder is read-only, so the lock file is a
virtual, empty file: opening it never touches the host folder. A second connection asking for
the exclusive lock while another holds it gets ``OP_WOULD_BLOCK``, as from ``flock``.
"""

from __future__ import annotations

import struct

from rollkeeper.simulator.afc_errors import AfcRequestError
from rollkeeper.simulator.afc_protocol import Status
from rollkeeper.simulator.phone import PhoneState

SYNC_LOCK_PATH = "/com.apple.itunes.lock_sync"
_LOCK_REQUEST = struct.Struct("<QQ")
#: flock operations as AFC carries them (LOCK_SH|LOCK_NB, LOCK_EX|LOCK_NB, LOCK_UN|LOCK_NB).
LOCK_SHARED = 1 | 4
LOCK_EXCLUSIVE = 2 | 4
LOCK_UNLOCK = 8 | 4


def is_sync_lock(phone_path: str) -> bool:
    """Whether a FILE_OPEN names the sync lock file (the one file a host may open to write)."""
    return "/" + phone_path.strip("/") == SYNC_LOCK_PATH


def file_lock(
    phone: PhoneState, connection: object, payload: bytes, open_handles: set[int]
) -> None:
    """FILE_LOCK on one of ``connection``'s handles; raises :class:`AfcRequestError`."""
    if len(payload) < _LOCK_REQUEST.size:
        raise AfcRequestError(Status.INVALID_ARG)
    handle, operation = _LOCK_REQUEST.unpack_from(payload)
    if handle not in open_handles:
        raise AfcRequestError(Status.INVALID_ARG)
    holder = phone.backup.sync_lock_holder
    if operation == LOCK_UNLOCK:
        if holder is connection:
            phone.backup.sync_lock_holder = None
        return
    if operation not in (LOCK_SHARED, LOCK_EXCLUSIVE):
        raise AfcRequestError(Status.INVALID_ARG)
    if holder is not None and holder is not connection:
        raise AfcRequestError(Status.OP_WOULD_BLOCK)
    phone.backup.sync_lock_holder = connection


def release(phone: PhoneState, connection: object) -> None:
    """The connection is over: a lock it held goes with it (as a closed flock descriptor)."""
    if phone.backup.sync_lock_holder is connection:
        phone.backup.sync_lock_holder = None
