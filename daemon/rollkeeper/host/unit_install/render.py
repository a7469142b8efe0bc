"""Filling in the systemd unit and the launchd plist from the templates shipped in the package.

The templates are package data (:mod:`rollkeeper.resources`: ``systemd/rollkeeper.service``
and ``launchd/org.rollkeeper.agent.plist``, linked from the top of the source tree), so an
installed wheel has them; this module fills in their ``@PLACEHOLDERS@`` with absolute
paths, quoted for the format they go into (systemd's own quoting and ``%`` specifiers, XML
escapes), and checks the result: a broken plist must never reach launchd. A template without
a placeholder this module fills is an error, so template and code cannot drift apart silently.
"""

from __future__ import annotations

import plistlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from rollkeeper.host.unit_install.errors import ServiceInstallError
from rollkeeper.host.unit_install.locations import Platform
from rollkeeper.host.unit_install.sandbox import NAMESPACE_SANDBOX_OPTIONS
from rollkeeper.resources import LAUNCHD_AGENT_TEMPLATE, SYSTEMD_UNIT_TEMPLATE

#: The templates, inside the installed package.
SYSTEMD_TEMPLATE = SYSTEMD_UNIT_TEMPLATE
LAUNCHD_TEMPLATE = LAUNCHD_AGENT_TEMPLATE


def systemd_quote(word: str, command_line: bool = False) -> str:
    """One quoted word for a unit file, with ``%`` specifiers escaped.

    ``command_line``: the word is an argument in ``ExecStart=``, where systemd also expands
    ``$VAR``, so ``$`` is escaped too (elsewhere, the program path included, ``$$`` would stay
    two dollars).
    """
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if command_line:
        escaped = escaped.replace("$", "$$")
    return f'"{escaped}"'


def render_systemd_unit(
    template: str,
    command: Sequence[str],
    config_path: Path,
    writable_paths: Sequence[Path],
    environment: Mapping[str, str],
    namespace_sandbox: bool,
) -> str:
    """The unit with every placeholder filled in.

    ``namespace_sandbox`` adds :data:`NAMESPACE_SANDBOX_OPTIONS` and ``ReadWritePaths=`` for
    ``writable_paths``; each path has a ``-`` prefix so that an unplugged archive disk makes
    the backup fail loudly with "read-only/missing" instead of keeping the service from
    starting at all.
    """
    environment_lines = "\n".join(
        f"Environment={systemd_quote(f'{name}={value}')}" for name, value in environment.items()
    )
    if namespace_sandbox:
        paths = " ".join(systemd_quote(f"-{path}") for path in writable_paths)
        sandbox_lines = "\n".join((*NAMESPACE_SANDBOX_OPTIONS, f"ReadWritePaths={paths}"))
    else:
        sandbox_lines = (
            "# Left out: this machine does not allow them in a user unit "
            "(see docs/service.md, Sandboxing)."
        )
    replacements = {
        # systemd expands $VARIABLES in the arguments but not in the program's path.
        "@ROLLKEEPER@": " ".join(
            [systemd_quote(command[0])]
            + [systemd_quote(word, command_line=True) for word in command[1:]]
        ),
        "@CONFIG@": systemd_quote(str(config_path), command_line=True),
        "@ENVIRONMENT@\n": environment_lines + "\n" if environment_lines else "",
        "@NAMESPACE_SANDBOX@": sandbox_lines,
    }
    return _fill(template, replacements)


def exec_start_argv(unit_text: str) -> list[str]:
    """The argv that systemd would run for the unit's ``ExecStart=`` (as rendered here).

    Undoes :func:`systemd_quote`: quotes and backslashes, ``%%`` everywhere, ``$$`` in the
    arguments. Tests use it to start the service exactly as systemd would. Other specifiers
    (``%h``) and ``$VARIABLES`` are not expanded; a unit using them raises ``ValueError``.
    """
    import shlex

    lines = [line for line in unit_text.splitlines() if line.startswith("ExecStart=")]
    if len(lines) != 1:
        raise ValueError(f"expected one ExecStart= line, found {len(lines)}")
    words = shlex.split(lines[0][len("ExecStart=") :])
    argv: list[str] = []
    for index, word in enumerate(words):
        pieces = word.split("%%")
        if any("%" in piece for piece in pieces):
            raise ValueError(f"unsupported specifier in {word!r}")
        unescaped = "%".join(pieces)
        if index > 0:
            pieces = unescaped.split("$$")
            if any("$" in piece for piece in pieces):
                raise ValueError(f"unsupported variable in {word!r}")
            unescaped = "$".join(pieces)
        argv.append(unescaped)
    return argv


def render_launchd_plist(
    template: str,
    command: Sequence[str],
    config_path: Path,
    log_dir: Path,
    environment: Mapping[str, str],
) -> str:
    """The agent's plist with every placeholder filled in; checked by parsing it back."""
    program = "".join(f"<string>{xml_escape(word)}</string>" for word in command)
    environment_lines = "\n".join(
        f"\t\t<key>{xml_escape(name)}</key>\n\t\t<string>{xml_escape(value)}</string>"
        for name, value in environment.items()
    )
    replacements = {
        "<string>@ROLLKEEPER@</string>": program,
        "@CONFIG@": xml_escape(str(config_path)),
        "@LOG_DIR@": xml_escape(str(log_dir)),
        "@ENVIRONMENT@\n": environment_lines + "\n" if environment_lines else "",
    }
    rendered = _fill(template, replacements)
    plistlib.loads(rendered.encode("utf-8"))  # a broken plist must never reach launchd
    return rendered


def _fill(template: str, replacements: Mapping[str, str]) -> str:
    rendered = template
    for placeholder, value in replacements.items():
        if placeholder not in rendered:
            raise ServiceInstallError(f"the service template has no {placeholder.strip()}")
        rendered = rendered.replace(placeholder, value)
    return rendered


def read_template(platform: Platform) -> str:
    """The template text, from the package's data files."""
    path = LAUNCHD_TEMPLATE if platform == "macos" else SYSTEMD_TEMPLATE
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ServiceInstallError(
            f"the service template {path} is missing from this installation of rollkeeper; "
            "reinstall it (pipx install rollkeeper, uv tool install rollkeeper, pip install .)"
        ) from None
