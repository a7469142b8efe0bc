"""One module per ``rollkeeper`` sub-command.

Each module exposes ``register(subparsers)``, which adds its parser and sets ``handler`` to a
function ``(args: argparse.Namespace) -> int`` returning the process exit code. Keeping commands
apart keeps :mod:`rollkeeper.cli` small and lets each command own its help text.
"""
