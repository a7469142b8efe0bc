"""The collision rule: a taken name in the archive is never overwritten.

When a file's destination is taken by *different* content (the caller has already checked that
the content is not the same: same content means nothing to write), the file gets a suffix
before its extension: ``IMG_1234.HEIC``, then ``IMG_1234~2.HEIC``, ``IMG_1234~3.HEIC`` and so
on. ``~1`` is never used: the unsuffixed name is the first. The suffix is chosen for a whole
group at once, so a Live Photo's ``.HEIC`` and ``.MOV`` and an edit's sidecars keep matching
names (``IMG_1234~2.HEIC`` with ``IMG_1234~2.MOV``). The rule is deterministic: the smallest n
for which no member's suffixed name is taken, so the same archive and the same files always give
the same names. ``~`` is chosen because the camera never writes it, it is legal on every file
system, and it sorts next to the original in a listing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

#: How many suffixes :func:`choose_group_suffix` tries before giving up.
MAX_SUFFIX = 1_000_000


class NoFreeSuffix(RuntimeError):
    """Every suffix up to :data:`MAX_SUFFIX` is taken (a broken ``is_taken``, not an archive)."""


def suffixed(path: PurePosixPath, n: int) -> PurePosixPath:
    """``path`` with collision suffix ``n``: 0 leaves it unchanged, n >= 2 gives ``stem~n.ext``.

    The suffix goes before the last extension of the final component (``IMG_1234~2.HEIC``);
    a name without an extension gets it at the end (``notes~2``). 1 and negative values are
    errors: the original name is number one.
    """
    if n == 0:
        return path
    if n < 2:
        raise ValueError(f"collision suffix must be 0 or >= 2, not {n}")
    name = path.name
    stem, dot, extension = name.rpartition(".")
    new_name = f"{stem}~{n}.{extension}" if dot and stem else f"{name}~{n}"
    return path.with_name(new_name)


def suffix_candidates() -> range:
    """The suffixes tried, in order, after 0: 2, 3, ... up to :data:`MAX_SUFFIX`."""
    return range(2, MAX_SUFFIX + 1)


def choose_group_suffix(
    targets: Sequence[PurePosixPath], is_taken: Callable[[PurePosixPath], bool]
) -> int:
    """The smallest n (0, 2, 3, ...) for which no target suffixed by n is taken.

    ``targets`` are the destinations of one group's members; the same n must be used for all of
    them. ``is_taken`` answers for the archive (and for names already planned in this run).
    An empty group needs no suffix (0). Raises :class:`NoFreeSuffix` after :data:`MAX_SUFFIX`.
    """
    if not targets:
        return 0
    for n in itertools.chain((0,), suffix_candidates()):
        if not any(is_taken(suffixed(target, n)) for target in targets):
            return n
    raise NoFreeSuffix(f"no free collision suffix up to {MAX_SUFFIX} for {targets[0]}")
