"""rollkeeper: back up an iPhone's photos and videos to a folder you own, at every plug-in.

The import name is ``daemon``; the command is ``rollkeeper`` (see :mod:`daemon.cli`).
"""

__version__ = "0.1.0"
