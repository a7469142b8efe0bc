"""Where each key of a TOML document is written: a small scanner over the text.

:mod:`tomllib` returns plain dicts with no positions, but a config error is only useful when it
says which line to fix. This scanner walks the same text a second time and records, for every
key path, the line and column where the key is written: table headers (``[a.b]``), arrays of
tables (``[[a]]``, items indexed ``("a", 0)``), ``key = value`` lines, dotted keys
(``a.b.c = 1``), quoted keys, inline tables and the items of arrays (``("a", "list", 2)``).

It runs only on text that :mod:`tomllib` has already accepted, so it need not report syntax
errors; on anything unexpected it stops and returns what it found so far, because a missing
line number is better than a crash while reporting another error.
"""

from __future__ import annotations

import bisect
import contextlib
import tomllib

KeyPath = tuple[str | int, ...]
Position = tuple[int, int]  # (line, column), both 1-based

_BARE_KEY_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_TERMINATORS = frozenset(",]}#\n\r")


class _ScanStop(Exception):
    """Raised internally when the text is not what the scanner expects."""


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.offset = 0
        self.line_starts = [0]
        for index, character in enumerate(text):
            if character == "\n":
                self.line_starts.append(index + 1)
        self.positions: dict[KeyPath, Position] = {}
        self.duplicates: list[tuple[KeyPath, Position]] = []
        self.array_table_counts: dict[KeyPath, int] = {}

    # -- positions ---------------------------------------------------------------------------

    def position(self, offset: int) -> Position:
        line_index = bisect.bisect_right(self.line_starts, offset) - 1
        return line_index + 1, offset - self.line_starts[line_index] + 1

    def record(self, path: KeyPath, offset: int, *, definition: bool = False) -> None:
        position = self.position(offset)
        if path in self.positions:
            if definition:
                self.duplicates.append((path, position))
            return
        self.positions[path] = position

    # -- characters --------------------------------------------------------------------------

    def peek(self, length: int = 1) -> str:
        return self.text[self.offset : self.offset + length]

    def at_end(self) -> bool:
        return self.offset >= len(self.text)

    def skip_blanks(self) -> None:
        while not self.at_end() and self.text[self.offset] in " \t":
            self.offset += 1

    def skip_comment(self) -> None:
        if self.peek() == "#":
            end = self.text.find("\n", self.offset)
            self.offset = len(self.text) if end == -1 else end

    def skip_blanks_comments_newlines(self) -> None:
        while not self.at_end():
            self.skip_blanks()
            self.skip_comment()
            if self.peek() in ("\n", "\r") and not self.at_end():
                self.offset += 1
                continue
            return

    def expect(self, literal: str) -> None:
        if not self.text.startswith(literal, self.offset):
            raise _ScanStop
        self.offset += len(literal)

    # -- keys --------------------------------------------------------------------------------

    def parse_key(self) -> list[tuple[str, int]]:
        """A dotted key: its parts, each with the offset where it starts."""
        parts: list[tuple[str, int]] = []
        while True:
            self.skip_blanks()
            start = self.offset
            character = self.peek()
            if character in ('"', "'"):
                raw = self.read_single_line_string()
                parts.append((_decode_string(raw), start))
            else:
                while not self.at_end() and self.text[self.offset] in _BARE_KEY_CHARACTERS:
                    self.offset += 1
                if self.offset == start:
                    raise _ScanStop
                parts.append((self.text[start : self.offset], start))
            self.skip_blanks()
            if self.peek() != ".":
                return parts
            self.offset += 1

    # -- strings -----------------------------------------------------------------------------

    def read_single_line_string(self) -> str:
        quote = self.peek()
        start = self.offset
        self.offset += 1
        while not self.at_end():
            character = self.text[self.offset]
            if quote == '"' and character == "\\":
                self.offset += 2
                continue
            self.offset += 1
            if character == quote:
                return self.text[start : self.offset]
        raise _ScanStop

    def skip_multi_line_string(self) -> None:
        delimiter = self.peek(3)
        self.offset += 3
        while not self.at_end():
            if delimiter == '"""' and self.text[self.offset] == "\\":
                self.offset += 2
                continue
            if self.text.startswith(delimiter, self.offset):
                self.offset += 3
                # Up to two quotes right before the closing delimiter belong to the content.
                extra = 0
                while extra < 2 and self.peek() == delimiter[0]:
                    self.offset += 1
                    extra += 1
                return
            self.offset += 1
        raise _ScanStop

    # -- values ------------------------------------------------------------------------------

    def parse_value(self, path: KeyPath) -> None:
        self.skip_blanks()
        character = self.peek()
        if self.peek(3) in ('"""', "'''"):
            self.skip_multi_line_string()
        elif character in ('"', "'"):
            self.read_single_line_string()
        elif character == "[":
            self.parse_array(path)
        elif character == "{":
            self.parse_inline_table(path)
        else:
            start = self.offset
            while not self.at_end() and self.text[self.offset] not in _SCALAR_TERMINATORS:
                self.offset += 1
            if self.offset == start:
                raise _ScanStop

    def parse_array(self, path: KeyPath) -> None:
        self.expect("[")
        index = 0
        while True:
            self.skip_blanks_comments_newlines()
            if self.peek() == "]":
                self.offset += 1
                return
            self.record((*path, index), self.offset)
            self.parse_value((*path, index))
            index += 1
            self.skip_blanks_comments_newlines()
            if self.peek() == ",":
                self.offset += 1
            elif self.peek() != "]":
                raise _ScanStop

    def parse_inline_table(self, path: KeyPath) -> None:
        self.expect("{")
        self.skip_blanks()
        if self.peek() == "}":
            self.offset += 1
            return
        while True:
            self.parse_key_value(path)
            self.skip_blanks()
            if self.peek() == ",":
                self.offset += 1
                continue
            self.expect("}")
            return

    def parse_key_value(self, table: KeyPath) -> None:
        parts = self.parse_key()
        path: KeyPath = table
        for number, (name, offset) in enumerate(parts):
            path = (*path, name)
            self.record(path, offset, definition=number == len(parts) - 1)
        self.skip_blanks()
        self.expect("=")
        self.parse_value(path)

    # -- the document ------------------------------------------------------------------------

    def scan(self) -> None:
        table: KeyPath = ()
        while True:
            self.skip_blanks_comments_newlines()
            if self.at_end():
                return
            if self.peek(2) == "[[":
                self.offset += 2
                parts = self.parse_key()
                self.expect("]]")
                header: KeyPath = tuple(name for name, _ in parts)
                index = self.array_table_counts.get(header, 0)
                self.array_table_counts[header] = index + 1
                self.record(header, parts[0][1])
                table = (*header, index)
                self.record(table, parts[0][1])
            elif self.peek() == "[":
                self.offset += 1
                parts = self.parse_key()
                self.expect("]")
                table = ()
                for number, (name, offset) in enumerate(parts):
                    table = (*table, name)
                    self.record(table, offset, definition=number == len(parts) - 1)
            else:
                self.parse_key_value(table)
            self.skip_blanks()
            self.skip_comment()


def _decode_string(raw: str) -> str:
    """The value of a quoted key, escapes and all (tomllib knows the rules; reuse it)."""
    try:
        value = tomllib.loads(f"k = {raw}")["k"]
    except tomllib.TOMLDecodeError as error:
        raise _ScanStop from error
    return str(value)


def key_positions(text: str) -> dict[KeyPath, Position]:
    """Map every key path written in ``text`` to the (line, column) where it is written.

    The first mention wins: a table's position is its ``[header]`` (or the first dotted key
    that creates it). Array items are keyed by their index.
    """
    scanner = _Scanner(text)
    with contextlib.suppress(_ScanStop, IndexError):
        scanner.scan()
    return scanner.positions


def duplicate_key_positions(text: str) -> list[tuple[KeyPath, Position]]:
    """Keys (or tables) defined a second time, with where the second definition is.

    Python 3.11's tomllib reports some duplicate keys "at end of document"; this finds the
    line that actually repeats the key. Implicitly created tables (``[a.b]`` then ``[a]``) are
    legal TOML and may appear here too, so only use this to locate an error tomllib reported.
    """
    scanner = _Scanner(text)
    with contextlib.suppress(_ScanStop, IndexError):
        scanner.scan()
    return scanner.duplicates


def locate(positions: dict[KeyPath, Position], path: KeyPath) -> Position | None:
    """The position of ``path``, else of its longest written prefix (the key of a list whose
    item is wrong, or the table a missing key belongs in), else ``None``."""
    for length in range(len(path), 0, -1):
        found = positions.get(path[:length])
        if found is not None:
            return found
    return None
