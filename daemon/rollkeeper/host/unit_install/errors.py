"""The one error of installing the service: a reason to stop that the user can act on."""

from __future__ import annotations


class ServiceInstallError(Exception):
    """A user-facing reason why install/uninstall cannot go on (one line, no traceback)."""
