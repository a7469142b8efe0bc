"""The command-line edges shared by ``verify``, ``adopt`` and ``find``: errors and progress.

Kept apart from the logic modules so those stay free of terminals and argument parsing. Their
untrusted text goes through :func:`rollkeeper.domain.display.printable` with ``escape=True``:
paths are shown exactly, control characters escaped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Exit statuses of the archive commands (documented in docs/verify.md).
EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def fail(message: str) -> int:
    """Print a one-line error to stderr and return the usage exit status."""
    print(f"rollkeeper: {message}", file=sys.stderr)
    return EXIT_USAGE


def wants_progress(json_output: bool) -> bool:
    """A progress bar only for a person: stderr is a terminal and no JSON was asked for."""
    return not json_output and sys.stderr.isatty()


@contextmanager
def byte_progress(
    enabled: bool, description: str, total_bytes: int
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar over bytes on stderr (so stdout stays clean); a no-op when disabled.

    Yields the callback to call with the bytes of each file done.
    """
    if not enabled:
        yield lambda _bytes: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task(description, total=total_bytes)
        yield lambda done: progress.advance(task, done)
