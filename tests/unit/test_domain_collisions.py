"""The collision rule: never overwrite; one deterministic suffix for a whole group."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollkeeper.domain import collisions
from rollkeeper.domain.collisions import NoFreeSuffix, choose_group_suffix, suffixed

HEIC = PurePosixPath("2023/2023-07/IMG_1234.HEIC")
MOV = PurePosixPath("2023/2023-07/IMG_1234.MOV")


def test_suffixed() -> None:
    """suffixed puts ~N before the last extension (none for 0), and adds it to a name without
    one."""
    assert suffixed(HEIC, 0) == HEIC
    assert suffixed(HEIC, 2) == PurePosixPath("2023/2023-07/IMG_1234~2.HEIC")
    assert suffixed(HEIC, 17) == PurePosixPath("2023/2023-07/IMG_1234~17.HEIC")
    assert suffixed(PurePosixPath("a/notes"), 3) == PurePosixPath("a/notes~3")
    assert suffixed(PurePosixPath("a/x.tar.gz"), 2) == PurePosixPath("a/x.tar~2.gz")


@pytest.mark.parametrize("n", [1, -1, -2])
def test_suffix_one_and_negative_are_errors(n: int) -> None:
    """Suffix 1 and negative suffixes are refused with ValueError, since ~1 is never used."""
    with pytest.raises(ValueError):
        suffixed(HEIC, n)


def test_free_names_need_no_suffix() -> None:
    """A group whose names are all free needs no suffix."""
    assert choose_group_suffix([HEIC, MOV], lambda path: False) == 0


def test_one_taken_member_moves_the_whole_group() -> None:
    """One taken member moves the whole group to a suffix free for every member."""
    taken = {HEIC}
    n = choose_group_suffix([HEIC, MOV], taken.__contains__)
    assert n == 2
    assert {suffixed(HEIC, n), suffixed(MOV, n)}.isdisjoint(taken)


def test_the_smallest_suffix_free_for_every_member_wins() -> None:
    """The suffix chosen is the smallest one free for every member of the group."""
    # ~2 is free for the photo but taken for the video; ~3 taken for the photo: ~4 it is.
    taken = {HEIC, MOV, suffixed(MOV, 2), suffixed(HEIC, 3)}
    assert choose_group_suffix([HEIC, MOV], taken.__contains__) == 4


def test_empty_group() -> None:
    """An empty group needs no suffix."""
    assert choose_group_suffix([], lambda path: True) == 0


def test_a_predicate_that_always_says_taken_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """A predicate that always says taken ends in NoFreeSuffix after MAX_SUFFIX tries instead of
    looping forever."""
    monkeypatch.setattr(collisions, "MAX_SUFFIX", 50)
    with pytest.raises(NoFreeSuffix):
        choose_group_suffix([HEIC], lambda path: True)


@given(
    st.sets(st.integers(min_value=0, max_value=12)), st.sets(st.integers(min_value=0, max_value=12))
)
def test_choice_is_minimal_and_free(photo_taken: set[int], video_taken: set[int]) -> None:
    """The suffix chosen for any taken names is free for the whole group and no smaller suffix
    is."""
    taken = {suffixed(HEIC, n) for n in photo_taken if n != 1} | {
        suffixed(MOV, n) for n in video_taken if n != 1
    }
    chosen = choose_group_suffix([HEIC, MOV], taken.__contains__)
    assert chosen == 0 or chosen >= 2
    assert suffixed(HEIC, chosen) not in taken and suffixed(MOV, chosen) not in taken
    for smaller in [0, *range(2, chosen)] if chosen else []:
        assert suffixed(HEIC, smaller) in taken or suffixed(MOV, smaller) in taken
