"""The collision rule: never overwrite; one deterministic suffix for a whole group."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollkeeper.domain import collisions
from rollkeeper.domain.collisions import (
    NoFreeSuffix,
    candidate_suffixes,
    choose_group_suffix,
    choose_group_suffix_async,
    suffix_of,
    suffixed,
)

HEIC = PurePosixPath("2023/2023-07/IMG_1234.HEIC")
MOV = PurePosixPath("2023/2023-07/IMG_1234.MOV")

Chooser = Callable[[Sequence[PurePosixPath], Callable[[PurePosixPath], bool], Iterable[int]], int]


def choose_sync(
    targets: Sequence[PurePosixPath],
    taken: Callable[[PurePosixPath], bool],
    preferred: Iterable[int],
) -> int:
    return choose_group_suffix(targets, lambda _member, path: taken(path), preferred)


def choose_async(
    targets: Sequence[PurePosixPath],
    taken: Callable[[PurePosixPath], bool],
    preferred: Iterable[int],
) -> int:
    async def is_taken(_member: int, path: PurePosixPath) -> bool:
        return taken(path)

    return asyncio.run(choose_group_suffix_async(targets, is_taken, preferred))


#: Both ways of asking (the importer uses the async one): every rule test runs on each.
CHOOSERS = pytest.mark.parametrize("choose", [choose_sync, choose_async], ids=["sync", "async"])


def test_suffixed() -> None:
    """0 keeps the name; n >= 2 goes before the last extension, or at the end without one."""
    assert suffixed(HEIC, 0) == HEIC
    assert suffixed(HEIC, 2) == PurePosixPath("2023/2023-07/IMG_1234~2.HEIC")
    assert suffixed(HEIC, 17) == PurePosixPath("2023/2023-07/IMG_1234~17.HEIC")
    assert suffixed(PurePosixPath("a/notes"), 3) == PurePosixPath("a/notes~3")
    assert suffixed(PurePosixPath("a/x.tar.gz"), 2) == PurePosixPath("a/x.tar~2.gz")


@pytest.mark.parametrize("n", [1, -1, -2])
def test_suffix_one_and_negative_are_errors(n: int) -> None:
    """~1 and negative suffixes do not exist: the unsuffixed name is number one."""
    with pytest.raises(ValueError):
        suffixed(HEIC, n)


@CHOOSERS
def test_free_names_need_no_suffix(choose: Chooser) -> None:
    """A group whose names are all free keeps them."""
    assert choose([HEIC, MOV], lambda path: False, ()) == 0


@CHOOSERS
def test_one_taken_member_moves_the_whole_group(choose: Chooser) -> None:
    """One member's taken name gives every member the same suffix."""
    taken = {HEIC}
    n = choose([HEIC, MOV], taken.__contains__, ())
    assert n == 2
    assert {suffixed(HEIC, n), suffixed(MOV, n)}.isdisjoint(taken)


@CHOOSERS
def test_the_smallest_suffix_free_for_every_member_wins(choose: Chooser) -> None:
    """The suffix is the smallest free for all members at once, not for each alone."""
    # ~2 is free for the photo but taken for the video; ~3 taken for the photo: ~4 it is.
    taken = {HEIC, MOV, suffixed(MOV, 2), suffixed(HEIC, 3)}
    assert choose([HEIC, MOV], taken.__contains__, ()) == 4


@CHOOSERS
def test_empty_group(choose: Chooser) -> None:
    """An empty group asks nothing and needs no suffix."""
    assert choose([], lambda path: True, ()) == 0


@CHOOSERS
def test_a_predicate_that_always_says_taken_ends(
    choose: Chooser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A predicate that never finds a free name ends with NoFreeSuffix, not a loop forever."""
    monkeypatch.setattr(collisions, "MAX_SUFFIX", 50)
    with pytest.raises(NoFreeSuffix):
        choose([HEIC], lambda path: True, ())


@CHOOSERS
def test_a_preferred_suffix_is_tried_first(choose: Chooser) -> None:
    """A group an earlier run placed at ~3 goes to ~3 again even though ~2 (and the plain name)
    are free: its members keep matching names across runs."""
    assert choose([HEIC, MOV], lambda path: False, [3]) == 3


@CHOOSERS
def test_a_taken_preferred_suffix_falls_back_to_the_usual_order(choose: Chooser) -> None:
    """When the preferred suffix is taken, the usual order (0, 2, 3 ...) decides."""
    taken = {suffixed(HEIC, 3), HEIC}
    assert choose([HEIC, MOV], taken.__contains__, [3]) == 2


def test_candidate_suffixes_tries_each_once_preferred_first() -> None:
    """Preferred suffixes lead, in their order and once each; then 0, 2, 3 ... without them."""
    order = candidate_suffixes([3, 0, 3])
    assert [next(order) for _ in range(5)] == [3, 0, 2, 4, 5]
    with pytest.raises(ValueError):
        next(candidate_suffixes([1]))


def test_the_predicate_is_told_which_member_it_asks_about() -> None:
    """is_taken gets the member's index with its suffixed name (what is taken depends on the
    member: the importer compares the occupant with that member's content), members in order,
    and the first taken one ends the try of that suffix."""
    asked: list[tuple[int, PurePosixPath]] = []

    def is_taken(member: int, path: PurePosixPath) -> bool:
        asked.append((member, path))
        return path == HEIC

    assert choose_group_suffix([HEIC, MOV], is_taken) == 2
    assert asked == [(0, HEIC), (0, suffixed(HEIC, 2)), (1, suffixed(MOV, 2))]


def test_suffix_of_inverts_suffixed() -> None:
    """suffix_of finds the suffix that turned a base name into a path, and None for a path no
    suffix makes from that base (another name, ~1, a folder of its own)."""
    assert suffix_of(HEIC, HEIC) == 0
    assert suffix_of(HEIC, suffixed(HEIC, 2)) == 2
    assert suffix_of(HEIC, suffixed(HEIC, 31)) == 31
    notes = PurePosixPath("a/notes")
    assert suffix_of(notes, suffixed(notes, 3)) == 3
    assert suffix_of(HEIC, PurePosixPath("2023/2023-07/IMG_1234~1.HEIC")) is None
    assert suffix_of(HEIC, suffixed(MOV, 2)) is None
    assert suffix_of(HEIC, PurePosixPath("2024/2024-01/IMG_1234~2.HEIC")) is None
    assert suffix_of(HEIC, PurePosixPath("2023/2023-07/IMG_1234~².HEIC")) is None


@given(
    st.sets(st.integers(min_value=0, max_value=12)),
    st.sets(st.integers(min_value=0, max_value=12)),
    st.sampled_from([choose_sync, choose_async]),
)
def test_choice_is_minimal_and_free(
    photo_taken: set[int], video_taken: set[int], choose: Chooser
) -> None:
    """Whatever is taken, the choice is free for both members and no smaller suffix is."""
    taken = {suffixed(HEIC, n) for n in photo_taken if n != 1} | {
        suffixed(MOV, n) for n in video_taken if n != 1
    }
    chosen = choose([HEIC, MOV], taken.__contains__, ())
    assert chosen == 0 or chosen >= 2
    assert suffixed(HEIC, chosen) not in taken and suffixed(MOV, chosen) not in taken
    for smaller in [0, *range(2, chosen)] if chosen else []:
        assert suffixed(HEIC, smaller) in taken or suffixed(MOV, smaller) in taken


@given(st.integers(min_value=2, max_value=10**6), st.sampled_from([HEIC, MOV]))
def test_suffix_of_finds_every_suffix(n: int, base: PurePosixPath) -> None:
    """suffix_of(base, suffixed(base, n)) is n for every valid n."""
    assert suffix_of(base, suffixed(base, n)) == n
