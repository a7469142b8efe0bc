"""Untrusted text made safe to show: the one ``printable`` every command and notice uses.

Phone names, file names, folder names and error messages come from the phone or from folders
rollkeeper did not write; an escape sequence in one must not drive the user's terminal (or a
desktop notification), and a newline must not split one line of output into two.
"""

from __future__ import annotations


def _is_control(character: str) -> bool:
    """C0, DEL and C1: the characters a terminal acts on."""
    code = ord(character)
    return code < 0x20 or 0x7F <= code < 0xA0


def printable(text: object, limit: int | None = 120, *, escape: bool = False) -> str:
    """``text`` made safe for a terminal or a one-line summary, cut to ``limit`` characters
    (with an ellipsis; None: never cut).

    Two ways, for two kinds of text:

    * by default, for names, reasons and errors in words (``status``, ``history``, the
      ``--check`` line, notifications): every unprintable character becomes a space and runs
      of blanks one space, so a multi-line error reads as one line;
    * ``escape=True``, for paths the user may look for or copy (``verify``, ``adopt``,
      ``find``, the phone paths of ``audit`` and ``history``): nothing is lost, the control
      characters (C0, DEL, C1) are shown as ``\\xNN`` escapes and blanks are kept as they are.
    """
    if escape:
        shown = "".join(
            f"\\x{ord(character):02x}" if _is_control(character) else character
            for character in str(text)
        )
    else:
        cleaned = "".join(character if character.isprintable() else " " for character in str(text))
        shown = " ".join(cleaned.split())
    if limit is None or len(shown) <= limit:
        return shown
    return shown[: limit - 1] + "…"
