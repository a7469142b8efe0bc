"""``rollkeeper man``: the rollkeeper(1) manual page, written from the command-line parser.

The page is made from the same parser the command runs with (every command, its description
and its options), so it cannot fall behind the program. Install it for your user with
``rollkeeper man > ~/.local/share/man/man1/rollkeeper.1`` (then ``man rollkeeper``), or read it
at once with ``rollkeeper man | man -l -``.
"""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from rollkeeper import __version__

SEE_ALSO = "systemctl(1), journalctl(1), restic(1), rclone(1)"


def register(subparsers: Any) -> None:
    """Add ``man`` to the ``rollkeeper`` parser."""
    parser = subparsers.add_parser(
        "man",
        help="print the rollkeeper(1) manual page (roff)",
        description=(
            "Print the manual page, made from this program's own options. Install it with "
            "`rollkeeper man > ~/.local/share/man/man1/rollkeeper.1`, or read it now with "
            "`rollkeeper man | man -l -`."
        ),
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Print the page for the whole command tree."""
    from rollkeeper.cli import build_parser

    print(render_manual(build_parser()), end="")
    return 0


def roff_text(text: str) -> str:
    """Plain text made safe for roff: backslashes escaped, dashes kept as ASCII minus, other
    characters as Unicode escapes, and a line starting with ``.`` or ``'`` (a request) guarded."""
    escaped = text.replace("\\", "\\e").replace("-", "\\-")
    # groff reads ASCII: anything else is written as its Unicode escape (an em dash: \[u2014]).
    escaped = "".join(
        character if ord(character) < 128 else f"\\[u{ord(character):04X}]" for character in escaped
    )
    lines = []
    for line in escaped.splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _paragraphs(text: str) -> list[str]:
    """A help text's paragraphs; lines indented in the source stay as pre-formatted blocks."""
    blocks: list[str] = []
    for block in (text or "").strip().split("\n\n"):
        lines = block.splitlines()
        if any(line.startswith("  ") for line in lines):
            blocks.append(".nf\n" + roff_text(block) + "\n.fi")
        else:
            blocks.append(roff_text(" ".join(line.strip() for line in lines)))
    return blocks


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    # argparse offers no public list of a parser's arguments; this one is its own attribute.
    actions: list[argparse.Action] = vars(parser)["_actions"]
    return actions


def _is_subcommands(action: argparse.Action) -> bool:
    return not action.option_strings and isinstance(action.choices, dict)


def _options(parser: argparse.ArgumentParser) -> list[str]:
    lines: list[str] = []
    for action in _actions(parser):
        if _is_subcommands(action) or action.dest == "help":
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            names = ", ".join(action.option_strings)
            if action.nargs != 0:
                names += f" {action.metavar or action.dest.upper()}"
        else:
            names = str(action.metavar or action.dest)
            if action.choices:
                names = "{" + ",".join(str(choice) for choice in action.choices) + "}"
        lines.append(".TP")
        lines.append(f"\\fB{roff_text(names)}\\fR")
        lines.append(roff_text(action.help or ""))
    return lines


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    for action in _actions(parser):
        if _is_subcommands(action) and isinstance(action.choices, dict):
            return list(action.choices.items())
    return []


def _command_section(name: str, parser: argparse.ArgumentParser, level: str) -> list[str]:
    lines = [f".{level} {roff_text(name)}"]
    usage = parser.format_usage().removeprefix("usage: ").strip()
    lines.append(f"\\fB{roff_text(' '.join(usage.split()))}\\fR")
    lines.append(".PP")
    for paragraph in _paragraphs(parser.description or ""):
        lines.extend([paragraph, ".PP"])
    lines.extend(_options(parser))
    for sub_name, sub_parser in _subcommands(parser):
        lines.extend(_command_section(f"{name} {sub_name}", sub_parser, "SS"))
    return lines


def render_manual(parser: argparse.ArgumentParser, today: datetime.date | None = None) -> str:
    """The manual page (man(7) macros) of ``parser`` and every sub-command under it."""
    day = (today or datetime.date.today()).isoformat()
    lines = [
        f'.TH ROLLKEEPER 1 "{day}" "rollkeeper {roff_text(__version__)}" "User Commands"',
        ".SH NAME",
        "rollkeeper \\- back up an iPhone's photos and videos to a folder you own",
        ".SH SYNOPSIS",
        "\\fBrollkeeper\\fR [\\fB\\-\\-config\\fR \\fIPATH\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION",
    ]
    for paragraph in _paragraphs(parser.description or ""):
        lines.extend([paragraph, ".PP"])
    lines.append(".SH OPTIONS")
    lines.extend(_options(parser))
    lines.append(".SH COMMANDS")
    for name, sub_parser in _subcommands(parser):
        lines.extend(_command_section(name, sub_parser, "SS"))
    lines.extend(
        [
            ".SH ENVIRONMENT",
            ".TP",
            "\\fBROLLKEEPER_CONFIG\\fR",
            "the config file, when \\-\\-config is not given",
            ".TP",
            "\\fBROLLKEEPER_\\fISECTION\\fB__\\fIKEY\\fR",
            "overrides one key of the config",
            ".TP",
            "\\fBUSBMUXD_SOCKET_ADDRESS\\fR",
            "the usbmuxd socket, when the config does not name one",
            ".SH SEE ALSO",
            roff_text(SEE_ALSO),
        ]
    )
    return "\n".join(lines) + "\n"
