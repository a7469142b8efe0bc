"""How the AFC server says no: an error status for one request, or the end of the connection.

A request the server cannot answer with data raises :class:`AfcRequestError`; the request loop
turns it into a STATUS reply and goes on with the next request. :class:`AfcConnectionEnded`
ends the whole connection instead (an unplug fault, or a reply that could not be completed).
Host errors are mapped to the statuses a phone's afcd would give by :func:`status_for_os_error`.
"""

from __future__ import annotations

import errno

from rollkeeper.simulator.afc_protocol import Status


class AfcRequestError(Exception):
    """A request that is answered with an AFC error status instead of data."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.name)
        self.status = status


class AfcConnectionEnded(Exception):
    """The connection is over (unplug fault, or a reply that could not be completed)."""


def status_for_os_error(error: OSError) -> Status:
    """The AFC status for a host error met while answering a request."""
    if isinstance(error, PermissionError):
        return Status.PERM_DENIED
    if isinstance(error, IsADirectoryError):
        return Status.OBJECT_IS_DIR
    # ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP: the object cannot be reached under this name.
    if isinstance(error, (FileNotFoundError, NotADirectoryError)) or error.errno in (
        errno.ENAMETOOLONG,
        errno.ELOOP,
    ):
        return Status.OBJECT_NOT_FOUND
    return Status.IO_ERROR
