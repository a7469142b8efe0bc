"""Config problems, each pinned to where the user can fix it (file and line, or a variable)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the config, located as precisely as we can.

    ``file`` is the config file as the user named it, or the name of the environment variable
    the bad value came from (``ROLLKEEPER_ARCHIVE__PATH``), or ``"(defaults)"``. ``line`` and
    ``column`` are 1-based and ``None`` when unknown. ``key_path`` is the dotted key
    (``archive.layout``, list items as ``filters.media_kinds[1]``), empty for problems with the
    file as a whole (a TOML syntax error, a missing file).
    """

    file: str
    line: int | None
    column: int | None
    key_path: str
    message: str

    def __str__(self) -> str:
        location = self.file
        if self.line is not None:
            location += f":{self.line}"
            # A syntax error has no key to point at, so the column is what helps there.
            if not self.key_path and self.column is not None:
                location += f":{self.column}"
        if self.key_path:
            return f"{location}: {self.key_path}: {self.message}"
        return f"{location}: {self.message}"


class ConfigError(Exception):
    """The config cannot be used; ``problems`` lists everything wrong with it, in file order."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)
