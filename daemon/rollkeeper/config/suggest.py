""" "Did you mean ...?" hints for misspelt keys, sections and values."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``word`` (ignoring case), or ``None`` if none is close."""
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[matches[0]] if matches else None


def did_you_mean(word: str, candidates: Iterable[str], quote: str = "''") -> str:
    """``"; did you mean 'x'?"`` for the closest candidate, or ``""`` when none is close.

    ``quote`` is the pair of characters put around the suggestion: ``"''"`` for keys,
    ``"[]"`` for sections, ``"{}"`` for layout placeholders.
    """
    match = closest(word, candidates)
    if match is None:
        return ""
    return f"; did you mean {quote[0]}{match}{quote[1]}?"
