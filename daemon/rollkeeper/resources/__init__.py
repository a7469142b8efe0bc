"""Files that ship inside the package: the systemd unit and launchd agent templates, and the
commented example config.

They live here, not beside the source folder, so that an installed wheel (pipx, uv tool) has
them and ``rollkeeper service install`` works without the source tree. The repository's
``systemd/``, ``launchd/`` and ``config.example.toml`` are links to these files.
"""

from pathlib import Path

#: The folder these files are in.
RESOURCES = Path(__file__).resolve().parent
SYSTEMD_UNIT_TEMPLATE = RESOURCES / "systemd" / "rollkeeper.service"
LAUNCHD_AGENT_TEMPLATE = RESOURCES / "launchd" / "org.rollkeeper.agent.plist"
EXAMPLE_CONFIG = RESOURCES / "config.example.toml"
