"""rollkeeper: back up an iPhone's photos and videos to a folder you own, at every plug-in.

The import name and the command are both ``rollkeeper``; the source lives in the repository's
``daemon/`` folder (see :mod:`rollkeeper.cli`).
"""

__version__ = "0.1.0"
