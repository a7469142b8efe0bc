"""``rollkeeper completion bash|zsh|fish``: the shell's tab completion for ``rollkeeper``.

argcomplete does the work: the script printed here makes the shell run ``rollkeeper`` itself
with ``_ARGCOMPLETE`` set at each tab, and :func:`complete` answers from the real parser, so
completion always knows every command and option of the installed version (no generated file
to keep in step). argcomplete was chosen over shtab because it covers fish too; it is imported
only while completing, so no other command pays for it, and completing imports only the
command being typed (the others are offered by name).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

SHELLS = ("bash", "zsh", "fish")

DESCRIPTION = """\
Print the completion script for your shell. Load it once per session, or install it:

  bash   rollkeeper completion bash > ~/.local/share/bash-completion/completions/rollkeeper
  zsh    rollkeeper completion zsh > ~/.zfunc/_rollkeeper   (with fpath+=~/.zfunc before compinit)
  fish   rollkeeper completion fish > ~/.config/fish/completions/rollkeeper.fish

or for this shell only: eval "$(rollkeeper completion bash)" (zsh: the same with zsh).
"""


def register(subparsers: Any) -> None:
    """Add ``completion`` to the ``rollkeeper`` parser."""
    parser = subparsers.add_parser(
        "completion",
        help="print the shell completion script for bash, zsh or fish",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Print the script for ``args.shell``."""
    from argcomplete.shell_integration import shellcode

    print(shellcode(["rollkeeper"], shell=args.shell), end="")
    return 0


def complete(build_parser: Any) -> None:
    """Answer a completion request (``_ARGCOMPLETE`` is set) and exit.

    ``build_parser(words)`` builds the parser for the words typed so far (``COMP_LINE``), so
    only the command being completed is imported.
    """
    import argcomplete

    words = os.environ.get("COMP_LINE", "").split()[1:]
    argcomplete.autocomplete(build_parser(words))
    return None
