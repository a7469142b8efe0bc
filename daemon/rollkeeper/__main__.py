"""``python -m rollkeeper`` runs the ``rollkeeper`` command."""

import sys

from rollkeeper.cli import main

sys.exit(main())
