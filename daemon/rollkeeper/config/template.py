"""The commented starter config and the TOML form of an effective config.

tomli-w writes values but no comments, so the starter config is assembled here: for each
section its help text and header, for each key its field description as comments and then the
``key = value`` line that tomli-w writes for the default. ``config.example.toml`` at the repo
root is exactly this text (a test compares them), so the example cannot drift from the schema.
"""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path
from typing import Any

import tomli_w

from rollkeeper.config.schema import SECTIONS, Config

WIDTH = 100

HEADER = """\
# rollkeeper configuration.
#
# Every key is optional: a key left out (or commented out) takes the default shown here.
# Paths may start with ~ and use $VARIABLES; relative paths are errors.
# Check your edits with `rollkeeper config check`; the running service reloads this file when
# it is saved, and keeps the previous settings (and says so in `rollkeeper status`) if an edit
# is broken. Any key can also be set with an environment variable ROLLKEEPER_<SECTION>__<KEY>,
# e.g. ROLLKEEPER_ARCHIVE__PATH=/mnt/photos. Full reference: docs/config.md.
"""


def _comment(text: str, indent: str = "") -> list[str]:
    return [
        f"{indent}# {line}"
        for line in textwrap.wrap(text, width=WIDTH - len(indent) - 2, break_on_hyphens=False)
    ]


def toml_value(value: Any) -> Any:
    """A setting as tomli-w can write it (paths as text, tuples as arrays, no date = "")."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [toml_value(item) for item in value]
    if value is None:
        return ""
    if isinstance(value, datetime.date):
        return value
    return value


def _key_line(key: str, value: Any) -> str:
    value = toml_value(value)
    if isinstance(value, list):
        # tomli-w spreads arrays over lines; short lists of words read better on one.
        items = [tomli_w.dumps({"item": item}).rstrip("\n")[len("item = ") :] for item in value]
        return f"{key} = [{', '.join(items)}]"
    return tomli_w.dumps({key: value}).rstrip("\n")


def render_starter_config() -> str:
    """The commented starter config: every key with its default and what it means.

    Keys whose default depends on the platform (the state folder) are written commented out,
    showing the Linux default, so the same text is right on every machine.
    """
    lines = HEADER.splitlines()
    for section, model in SECTIONS.items():
        lines.append("")
        lines.extend(_comment(model.section_help))
        lines.append(f"[{section}]")
        for key, field in model.model_fields.items():
            lines.append("")
            lines.extend(_comment(field.description or ""))
            if key in model.platform_defaults:
                lines.append("# " + _key_line(key, model.platform_defaults[key]))
            else:
                lines.append(_key_line(key, field.get_default(call_default_factory=True)))
    return "\n".join(lines) + "\n"


def config_as_toml_data(config: Config) -> dict[str, dict[str, Any]]:
    """The effective config as plain TOML data (what `config show` prints)."""
    data: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        settings = getattr(config, section)
        data[section] = {
            key: toml_value(getattr(settings, key)) for key in type(settings).model_fields
        }
    return data


def config_as_toml(config: Config) -> str:
    """The effective config as a TOML document that loads back to the same config."""
    return tomli_w.dumps(config_as_toml_data(config))


if __name__ == "__main__":
    # `make config-example`: regenerate config.example.toml from the schema.
    import sys

    sys.stdout.write(render_starter_config())
