"""Live reload of the config file: watch it, debounce bursts, call back only on real changes.

Editors save in different ways: writing in place, writing a temporary file and renaming it
over the original (vim, VS Code, most GUI editors), or deleting and re-creating the file. A
watch on the file itself loses track after a rename, so the watcher watches the file's folder
(and, for a symlinked config, the folder of the file it points to) and looks at every event
that names the config file as its source or destination.

A save produces a burst of events (create, modify, close, move). The watcher waits until the
burst has been quiet for ``debounce_seconds``, reads the file once, and compares the bytes
with what it last saw: a touch or a save without changes calls nobody back. Changed content is
loaded with :func:`rollkeeper.config.parse_config_bytes`; a valid config goes to ``on_change``, a
broken one to ``on_error`` with every problem (FILE:LINE) -- the caller keeps its running
config and logs the problems (the watcher itself only traces at debug level). Callbacks run
on the watcher's own thread; an asyncio service hands them to its loop with
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from rollkeeper.config import Config, ConfigError, ConfigProblem, parse_config_bytes

log = structlog.get_logger(__name__)

#: Events that can change the file's content (opening or reading it cannot; reacting to our own
#: reads would loop).
_CHANGING_EVENTS = frozenset({"created", "modified", "moved", "deleted", "closed"})

FILE_REMOVED_MESSAGE = "the file was removed; the running config stays in use until it is back"


class ConfigWatcher:
    """Reload the config file at ``path`` whenever its content changes.

    ``on_change(config)`` gets each new valid config, ``on_error(error)`` each broken edit
    (and the file's removal). Both run on the watcher's thread. ``environ`` defaults to
    ``os.environ`` (environment overrides apply on every reload, as at start-up).
    """

    def __init__(
        self,
        path: Path,
        on_change: Callable[[Config], None],
        on_error: Callable[[ConfigError], None],
        *,
        environ: Mapping[str, str] | None = None,
        debounce_seconds: float = 0.25,
    ) -> None:
        self._label = str(path)
        self._path = Path(os.path.abspath(path))
        self._on_change = on_change
        self._on_error = on_error
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._debounce_seconds = debounce_seconds
        self._targets = {str(self._path), os.path.realpath(self._path)}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._force_reload = False
        self._last_content: bytes | None = None
        self._checks_completed = 0
        self._checks_condition = threading.Condition()
        self._observer: BaseObserver | None = None
        self._worker: threading.Thread | None = None

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Remember the file's current content and start watching its folder.

        Only later changes call back: the caller is expected to have loaded the config at
        start-up. To close the gap between that load and ``start()``, call
        :meth:`request_reload` after ``start()``.
        """
        if self._worker is not None:
            raise RuntimeError("ConfigWatcher.start() called twice")
        self._last_content = self._read()
        observer = Observer()
        handler = _FolderEvents(self._event_seen)
        for folder in sorted({os.path.dirname(target) for target in self._targets}):
            observer.schedule(handler, folder, recursive=False)
        observer.daemon = True
        self._worker = threading.Thread(
            target=self._run, name="rollkeeper-config-watch", daemon=True
        )
        self._worker.start()
        observer.start()
        self._observer = observer
        log.debug("config_watch_started", path=self._label)

    def stop(self) -> None:
        """Stop watching and wait for the watcher's threads to end (idempotent)."""
        self._stopping.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
            self._observer = None
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join()

    def request_reload(self) -> None:
        """Load the file again even if its content did not change (SIGHUP, `reload`), and
        even if it is empty (an empty file is otherwise taken as a save in progress).

        Useful when something outside the file changed: an environment override, or the
        archive folder that a previous load found unwritable.
        """
        self._force_reload = True
        self._wake.set()

    # -- observability (tests and status) ---------------------------------------------------

    @property
    def checks_completed(self) -> int:
        """How many times the watcher has read the file after a burst of events."""
        with self._checks_condition:
            return self._checks_completed

    def wait_for_checks(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` checks have completed, or ``timeout`` seconds pass."""
        with self._checks_condition:
            return self._checks_condition.wait_for(
                lambda: self._checks_completed >= count, timeout=timeout
            )

    # -- internals ---------------------------------------------------------------------------

    def _concerns_file(self, event: FileSystemEvent) -> bool:
        if event.event_type not in _CHANGING_EVENTS:
            return False
        paths = {os.fsdecode(event.src_path)}
        destination = getattr(event, "dest_path", "")
        if destination:
            paths.add(os.fsdecode(destination))
        return not paths.isdisjoint(self._targets)

    def _event_seen(self, event: FileSystemEvent) -> None:
        if self._concerns_file(event):
            self._wake.set()

    def _read(self) -> bytes | None:
        try:
            return self._path.read_bytes()
        except FileNotFoundError:
            return None

    def _run(self) -> None:
        while True:
            self._wake.wait()
            # Wait for the burst to end: any new event restarts the quiet period.
            while True:
                self._wake.clear()
                if self._stopping.is_set():
                    return
                if not self._wake.wait(self._debounce_seconds):
                    break
            if self._stopping.is_set():
                return
            try:
                self._check()
            finally:
                with self._checks_condition:
                    self._checks_completed += 1
                    self._checks_condition.notify_all()

    def _check(self) -> None:
        forced, self._force_reload = self._force_reload, False
        try:
            content = self._read()
        except OSError as error:
            self._report(
                ConfigError(
                    [ConfigProblem(self._label, None, None, "", f"cannot read it: {error}")]
                )
            )
            return
        if content == self._last_content and not forced:
            return
        if content == b"" and not forced:
            # An editor writing in place truncates first: an empty file is most likely a save
            # in progress, and applying it would switch every setting to its default for a
            # moment. The write that follows wakes us again; request_reload() applies a file
            # emptied on purpose.
            log.debug("config_file_empty_waiting", path=self._label)
            return
        self._last_content = content
        if content is None:
            self._report(
                ConfigError([ConfigProblem(self._label, None, None, "", FILE_REMOVED_MESSAGE)])
            )
            return
        try:
            config = parse_config_bytes(content, self._label, self._environ)
        except ConfigError as error:
            self._report(error)
            return
        # The service logs what it does with the new config; this is the watcher's own trace.
        log.debug("config_file_loaded", path=self._label)
        try:
            self._on_change(config)
        except Exception:
            # The watcher must outlive a bug in a callback: the next edit should still apply.
            log.exception("config_change_callback_failed", path=self._label)

    def _report(self, error: ConfigError) -> None:
        # on_error's owner (the service) logs the problems for the user; see docs/config.md.
        log.debug(
            "config_file_rejected",
            path=self._label,
            problems=[str(problem) for problem in error.problems],
        )
        try:
            self._on_error(error)
        except Exception:
            log.exception("config_error_callback_failed", path=self._label)


class _FolderEvents(FileSystemEventHandler):
    """Forwards the events of the watched folder to the watcher, which filters them."""

    def __init__(self, forward: Callable[[FileSystemEvent], None]) -> None:
        super().__init__()
        self._forward = forward

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._forward(event)
