"""The one ``printable``: untrusted text made safe to show, in words or exactly."""

from __future__ import annotations

from rollkeeper.domain.display import printable


def test_words_lose_control_characters_and_runs_of_blanks_and_are_cut() -> None:
    """By default control characters become spaces, blanks fold into one and long text is
    cut with an ellipsis to exactly the limit."""
    assert printable("Evil\x1b[2J\x1b]0;owned\x07Phone\n") == "Evil [2J ]0;owned Phone"
    assert printable("phone said:\n\n  no\ttrust") == "phone said: no trust"
    cut = printable("x" * 200, 80)
    assert cut == "x" * 79 + "…"
    assert len(cut) == 80
    assert printable("y" * 200, None) == "y" * 200


def test_escaped_text_keeps_every_character_and_shows_controls_as_escapes() -> None:
    """With escape=True nothing is lost: C0, DEL and C1 become \\xNN, blanks and other text
    (accents, emoji with their joiners) stay as they are, and only ``limit`` cuts."""
    assert (
        printable("2024/evil\x1b[2J\nname.jpg", None, escape=True)
        == "2024/evil\\x1b[2J\\x0aname.jpg"
    )
    assert printable("IMG  0001\x7f\x9b.JPG", None, escape=True) == "IMG  0001\\x7f\\x9b.JPG"
    family = "Zoë 👩\u200d👧"
    assert printable(family, None, escape=True) == family
    assert printable("z" * 50, 10, escape=True) == "z" * 9 + "…"


def test_the_default_limit_is_120() -> None:
    """Without a limit, words are cut at 120 characters (the one-line summaries' width)."""
    assert len(printable("w" * 500)) == 120
