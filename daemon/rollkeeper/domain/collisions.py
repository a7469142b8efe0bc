"""The collision rule: a taken name in the archive is never overwritten.

When a file's destination is taken by *different* content (the caller has already checked that
the content is not the same: same content means nothing to write), the file gets a suffix
before its extension: ``IMG_1234.HEIC``, then ``IMG_1234~2.HEIC``, ``IMG_1234~3.HEIC`` and so
on. ``~1`` is never used: the unsuffixed name is the first. The suffix is chosen for a whole
group at once, so a Live Photo's ``.HEIC`` and ``.MOV`` and an edit's sidecars keep matching
names (``IMG_1234~2.HEIC`` with ``IMG_1234~2.MOV``). The rule is deterministic: the smallest n
for which no member's suffixed name is taken, so the same archive and the same files always give
the same names; a caller may ask for some suffixes to be tried first (the importer tries the
one an earlier run gave the group, so a group completed over several runs keeps matching
names). ``~`` is chosen because the camera never writes it, it is legal on every file system,
and it sorts next to the original in a listing.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
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


def suffix_of(base: PurePosixPath, path: PurePosixPath) -> int | None:
    """The suffix n for which ``suffixed(base, n) == path``, or None when there is none."""
    if path == base:
        return 0
    stem = path.name.rpartition(".")[0] or path.name
    number = stem.rpartition("~")[2]
    if not (number.isascii() and number.isdigit()):
        return None
    n = int(number)
    return n if n >= 2 and suffixed(base, n) == path else None


def candidate_suffixes(preferred: Iterable[int] = ()) -> Iterator[int]:
    """The suffixes to try, in order, each once: ``preferred`` first, then 0, 2, 3, ... up to
    :data:`MAX_SUFFIX`. A preferred value must itself be a valid suffix (0 or >= 2)."""
    first: list[int] = []
    for n in preferred:
        if n != 0 and n < 2:
            raise ValueError(f"collision suffix must be 0 or >= 2, not {n}")
        if n not in first:
            first.append(n)
    yield from first
    for n in itertools.chain((0,), suffix_candidates()):
        if n not in first:
            yield n


def choose_group_suffix(
    targets: Sequence[PurePosixPath],
    is_taken: Callable[[int, PurePosixPath], bool],
    preferred: Iterable[int] = (),
) -> int:
    """The first n of :func:`candidate_suffixes` for which no target suffixed by n is taken:
    without ``preferred``, the smallest (0, 2, 3, ...).

    ``targets`` are the destinations of one group's members; the same n must be used for all of
    them. ``is_taken(i, path)`` says whether ``path``, the suffixed destination of
    ``targets[i]``, is taken: the caller decides what taken means (the importer: held by other
    content than member i's, since the same content there is nothing to write). Members are
    asked in order and the first taken one ends the try of that n. An empty group needs no
    suffix (0). Raises :class:`NoFreeSuffix` after :data:`MAX_SUFFIX`.
    """
    if not targets:
        return 0
    for n in candidate_suffixes(preferred):
        if not any(is_taken(index, suffixed(target, n)) for index, target in enumerate(targets)):
            return n
    raise NoFreeSuffix(f"no free collision suffix up to {MAX_SUFFIX} for {targets[0]}")


async def choose_group_suffix_async(
    targets: Sequence[PurePosixPath],
    is_taken: Callable[[int, PurePosixPath], Awaitable[bool]],
    preferred: Iterable[int] = (),
) -> int:
    """:func:`choose_group_suffix` for a caller whose ``is_taken`` must wait (the importer
    hashes a file on disk in a worker thread to tell the same content from other content)."""
    if not targets:
        return 0
    for n in candidate_suffixes(preferred):
        for index, target in enumerate(targets):
            if await is_taken(index, suffixed(target, n)):
                break
        else:
            return n
    raise NoFreeSuffix(f"no free collision suffix up to {MAX_SUFFIX} for {targets[0]}")
