"""The state database and the files beside it: who opens it how, and under which lock.

Three ways in, one per kind of user:

* :func:`open_state` — the service (and ``backup-now``), after :func:`acquire_instance_lock`:
  read-write, and a damaged file is moved aside and a new one started.
* :func:`open_state_read_only` — commands that only read (``status``, ``history``,
  ``devices``, ``find``, ``audit``, ``verify``'s reading): never creates, migrates or writes,
  and in WAL mode never blocks the service nor waits for it.
* :func:`open_state_for_writing` — writers that may run while the service runs (``verify``'s
  stamps, ``adopt``, the service's own scrub thread). They do not take the instance lock: it
  guards the phones and the ``.partial`` files, which two services would race for, and these
  writers touch neither. SQLite serialises writers itself (WAL, ``busy_timeout``), and each of
  them writes in short transactions, so the service's writes wait milliseconds at most.
  Taking the lock instead would keep the service from starting (and so stop the backups) for
  as long as a verify of a large archive reads its disk.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rollkeeper.host.permissions import ensure_private_dir
from rollkeeper.host.single_instance import InstanceLock
from rollkeeper.store import StateDamagedError, StateStore

if TYPE_CHECKING:
    from rollkeeper.config import Config

#: Appended to the state database's name: the service's single-instance lock.
LOCK_SUFFIX = ".lock"
#: Appended to the state database's name: the findings of the last scrub that found something.
SCRUB_REPORT_SUFFIX = ".scrub.json"
THUMBNAIL_CACHE_SUFFIX = ".thumbnails"
#: Appended to the state database's name: an empty file whose time is the last full check.
FULL_CHECK_SUFFIX = ".checked"
#: How often opening the service's state runs the full ``integrity_check`` (every open runs
#: ``quick_check``): the full check compares every index with its table, 0.9 s at 100,000
#: files where the quick one takes a fraction of that.
FULL_CHECK_INTERVAL_SECONDS = 7 * 24 * 3600


def state_path(state: Config | Path) -> Path:
    """The state database of a config (or the path itself)."""
    # Not isinstance(state, Config): that would import the schema (pydantic) for a path.
    return Path(state) if isinstance(state, os.PathLike) else Path(state.state.path)


def state_lock_path(state: Config | Path) -> Path:
    """The single-instance lock beside the state database (``<state db>.lock``)."""
    path = state_path(state)
    return path.with_name(path.name + LOCK_SUFFIX)


def scrub_report_path(state: Config | Path) -> Path:
    """Where the service keeps the findings of the last scrub that found something
    (``<state db>.scrub.json``; ``status`` reads it)."""
    path = state_path(state)
    return path.with_name(path.name + SCRUB_REPORT_SUFFIX)


def thumbnail_cache_path(state: Config | Path) -> Path:
    """The status page's thumbnail cache beside the state database (``<state db>.thumbnails``,
    a 0700 folder of 0600 files; never inside the archive)."""
    path = state_path(state)
    return path.with_name(path.name + THUMBNAIL_CACHE_SUFFIX)


def acquire_instance_lock(config: Config) -> InstanceLock:
    """Take the single-instance lock beside the state database (creating its folder 0700).

    Raises :class:`~rollkeeper.host.single_instance.AlreadyRunningError` when another rollkeeper
    holds it.
    """
    lock_path = state_lock_path(config)
    ensure_private_dir(lock_path.parent)
    lock = InstanceLock(lock_path)
    lock.acquire()
    return lock


def open_state(config: Config) -> StateStore:
    """The service's store (taken under the instance lock); a damaged file is moved aside
    and a new one started.

    The archive is the real record: the importer recognises files already in place by their
    hash, so a lost manifest costs one read of the phone's files and never a duplicate. A
    missing (or empty) file is said out loud too: on a first start that is expected, later it
    means the state was deleted and the next run rebuilds it.
    """
    import structlog  # only the service logs from here; the read-only commands stay light

    log = structlog.get_logger("rollkeeper.bootstrap")
    path = state_path(config)
    existed = path.exists() and path.stat().st_size > 0
    try:
        store = StateStore.open(path)
        verdict = _check(store, path)
        if verdict == "ok":
            if not existed:
                log.info(
                    "state_database_created",
                    path=str(path),
                    action="files already in the archive are recognised by their hash",
                )
            return store
        store.close()
        reason = f"integrity check: {verdict}"
    except StateDamagedError as error:
        reason = error.reason
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    damaged = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(str(path) + suffix)
        if candidate.exists():
            os.replace(candidate, Path(str(damaged) + suffix))
    log.error(
        "state_database_damaged",
        path=str(path),
        reason=reason,
        moved_to=str(damaged),
        action="starting a new state database; archived files are recognised by their hash",
    )
    return StateStore.open(path)


def _check(store: StateStore, path: Path) -> str:
    """``quick_check`` on every open; the full ``integrity_check`` when the last one that
    passed (the time of ``<state db>.checked``) is a week old or more, or never ran."""
    stamp = path.with_name(path.name + FULL_CHECK_SUFFIX)
    try:
        age = datetime.now(UTC).timestamp() - stamp.stat().st_mtime
    except OSError:
        age = float("inf")
    if 0 <= age < FULL_CHECK_INTERVAL_SECONDS:
        return store.integrity_check(quick=True)
    verdict = store.integrity_check()
    if verdict == "ok":
        descriptor = os.open(stamp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(descriptor)
        os.utime(stamp)
    return verdict


def open_state_read_only(state: Config | Path) -> StateStore:
    """A read-only store for a command that only reads.

    Raises ``FileNotFoundError`` when there is no database yet (no backup has run) and
    :class:`~rollkeeper.store.StateDamagedError` when the file is not a usable database; each
    command says those in its own words.
    """
    return StateStore.open(state_path(state), read_only=True)


def open_state_for_writing(state: Config | Path) -> StateStore:
    """A read-write store that may be used while the service runs (see the module docstring).

    Creates the database when missing (``adopt`` before the first backup). A damaged file
    raises :class:`~rollkeeper.store.StateDamagedError`: moving it aside is the service's call
    at its start, never a command's while the service may be using it. Writes that find the
    database busy wait up to the store's busy timeout, then raise ``sqlite3.OperationalError``.
    """
    return StateStore.open(state_path(state))
