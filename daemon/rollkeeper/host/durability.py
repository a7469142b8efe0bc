"""Making a folder's entries durable: the one ``fsync`` of a folder the whole program uses.

A new file, a rename or a link is on the disk only once its folder has been fsync'ed (ext4 with
default options, and the power-cut model of ``tests/reliability``). The importer calls this
after each placement, the state store after creating its database, and the private-folder
helper after each folder it creates, so that none of them can vanish in a power cut after the
program went on as if it were there.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_folder(folder: Path) -> None:
    """Make a folder's entries durable (no-op where folders cannot be opened, e.g. Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
