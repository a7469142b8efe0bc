"""Run a real ``rollkeeper`` process in a test and wait on its structured log events.

The service writes JSON lines (not a terminal); a reader thread parses each line as it comes
and wakes waiters through a condition, so tests wait on events with a ceiling, never by sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

Event = dict[str, Any]

#: The ceiling for waiting on one event; generous for a loaded 2-core CI machine.
DEFAULT_TIMEOUT = 60.0


def write_config(path: Path, tmp_path: Path, **sections: dict[str, Any]) -> Path:
    """A config for a test: archive, state and pairing under ``tmp_path``, short debounce."""
    config: dict[str, dict[str, Any]] = {
        "archive": {"path": str(tmp_path / "archive")},
        "state": {"path": str(tmp_path / "state" / "state.sqlite3")},
        "device": {"pairing_dir": str(tmp_path / "pairing")},
        "schedule": {
            "debounce_seconds": 0.2,
            "retry_initial_seconds": 0.3,
            "retry_max_seconds": 2.0,
        },
        "logging": {"format": "json", "level": "info"},
    }
    (tmp_path / "archive").mkdir(exist_ok=True)
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    path.write_text(tomli_w.dumps(config))
    return path


def rollkeeper_command(*arguments: str) -> list[str]:
    """The command line of the installed ``rollkeeper`` of this venv."""
    return [sys.executable, "-m", "rollkeeper", *arguments]


class ServiceProcess:
    """``rollkeeper [--config C] ARGS`` as a subprocess, with its log events parsed."""

    def __init__(
        self,
        arguments: Sequence[str],
        environment: Mapping[str, str],
        command: Sequence[str] | None = None,
    ) -> None:
        self.events: list[Event] = []
        self.other_lines: list[str] = []
        self._condition = threading.Condition()
        self.process = subprocess.Popen(
            list(command) if command is not None else rollkeeper_command(*arguments),
            env=dict(environment),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._condition:
                try:
                    parsed = json.loads(line)
                except json.JSONDecodeError:
                    self.other_lines.append(line.rstrip("\n"))
                else:
                    if isinstance(parsed, dict):
                        self.events.append(parsed)
                    else:
                        self.other_lines.append(line.rstrip("\n"))
                self._condition.notify_all()
        with self._condition:
            self._condition.notify_all()

    def named(self, name: str, **fields: Any) -> list[Event]:
        """The events so far with this name and these field values."""
        with self._condition:
            return [
                event
                for event in self.events
                if event.get("event") == name
                and all(event.get(key) == value for key, value in fields.items())
            ]

    def wait_for(
        self,
        name: str,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
        predicate: Callable[[Event], bool] | None = None,
        **fields: Any,
    ) -> list[Event]:
        """Wait until ``count`` events named ``name`` (matching ``fields``) were logged."""

        def matching() -> list[Event]:
            found = self.named(name, **fields)
            return [event for event in found if predicate is None or predicate(event)]

        with self._condition:
            done = self._condition.wait_for(
                lambda: len(matching()) >= count or self.process.poll() is not None,
                timeout=timeout,
            )
            found = matching()
        if len(found) < count:
            code = self.process.poll()
            state = "running" if code is None else f"exited {code}"
            raise AssertionError(
                f"waited {timeout}s for {count} x {name} {fields}; process {state} "
                f"(woke={done}); last events: {self.tail()}"
            )
        return found

    def tail(self, lines: int = 15) -> str:
        """The last events and stray lines, for failure messages."""
        with self._condition:
            recent = [json.dumps(event)[:300] for event in self.events[-lines:]]
            return "\n".join(recent + self.other_lines[-lines:])

    def terminate(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """SIGTERM and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        return code

    def kill(self) -> None:
        """SIGKILL (a crash) and reap."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=DEFAULT_TIMEOUT)
        self._reader.join(timeout=DEFAULT_TIMEOUT)


def service_environment(usbmux_address: str, **extra: str) -> dict[str, str]:
    """The environment of a service under test: this one, pointed at the simulator."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ROLLKEEPER_") and key != "NOTIFY_SOCKET"
    }
    environment["USBMUXD_SOCKET_ADDRESS"] = usbmux_address
    environment.update(extra)
    return environment
