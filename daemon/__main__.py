"""``python -m daemon`` runs the ``rollkeeper`` command."""

import sys

from daemon.cli import main

sys.exit(main())
