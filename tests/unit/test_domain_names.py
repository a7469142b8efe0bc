"""Untrusted phone names and paths: hostile input is rejected with a reason, never repaired."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollkeeper.domain.names import (
    NameRejected,
    all_ordinary,
    all_ordinary_joined,
    check_name_thoroughly,
    check_phone_name,
    check_phone_path,
)


@pytest.mark.parametrize(
    "name",
    ["IMG_0001.HEIC", "IMG_E0001.MOV", "Fête à Noël 🎄.JPG", "a", "x" * 255, "é" * 127],
)
def test_ordinary_names_pass_unchanged(name: str) -> None:
    """Ordinary names, accents and emoji included, up to 255 bytes pass unchanged."""
    assert check_phone_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        (".", "dot_name"),
        ("..", "dot_name"),
        ("../x", "separator"),
        ("/abs", "separator"),
        ("a/b", "separator"),
        ("..\\..\\x", "separator"),
        ("IMG\x00.HEIC", "nul"),
        ("IMG\n0001.HEIC", "control_character"),
        ("IMG\r.HEIC", "control_character"),
        ("\x1b[31mred", "control_character"),
        ("IMG\x7f.HEIC", "control_character"),
        ("IMG\x85.HEIC", "control_character"),
        ("x" * 256, "too_long"),
        ("x" * 4096, "too_long"),
        ("é" * 128, "too_long"),
        ("IMG_\udcff.HEIC", "not_utf8"),
        ("IMG_\ud800.HEIC", "not_utf8"),
        (".hidden", "hidden"),
        (".IMG_0001.HEIC.partial", "hidden"),
    ],
)
def test_hostile_names_are_rejected_with_a_reason(name: str, reason: str) -> None:
    """Each kind of hostile name is rejected with its reason, in a message that is short printable
    ASCII whatever the name held."""
    with pytest.raises(NameRejected) as caught:
        check_phone_name(name)
    assert caught.value.reason == reason
    # The message is printable ASCII whatever the name held: safe for logs and terminals.
    assert caught.value.message.isascii()
    assert all(character.isprintable() for character in caught.value.message)
    assert len(caught.value.message) < 300


def test_name_from_undecodable_bytes_is_rejected() -> None:
    """A name decoded from bytes that are not UTF-8 is rejected as not_utf8."""
    name = b"IMG_\xff\xfe.HEIC".decode("utf-8", "surrogateescape")
    with pytest.raises(NameRejected) as caught:
        check_phone_name(name)
    assert caught.value.reason == "not_utf8"


@pytest.mark.parametrize(
    "path",
    ["/DCIM", "/DCIM/100APPLE", "/DCIM/100APPLE/IMG_0001.HEIC", "/DCIM/202401__/IMG_1.JPG"],
)
def test_camera_roll_paths_pass(path: str) -> None:
    """Absolute paths under /DCIM pass unchanged."""
    assert check_phone_path(path) == path


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("DCIM/100APPLE/IMG_0001.HEIC", "not_absolute"),
        ("", "not_absolute"),
        ("/", "outside_dcim"),
        ("/etc/passwd", "outside_dcim"),
        ("/PhotoData/Photos.sqlite", "outside_dcim"),
        ("/DCIMX/IMG_1.JPG", "outside_dcim"),
        ("/DCIM/../etc/passwd", "dot_name"),
        ("/DCIM/100APPLE/../../etc", "dot_name"),
        ("/DCIM//IMG_1.JPG", "empty"),
        ("/DCIM/100APPLE/", "empty"),
        ("/DCIM/100APPLE/IMG\x00.JPG", "nul"),
        ("/DCIM/100APPLE/.hidden", "hidden"),
        ("/DCIM/" + "x" * 4096, "too_long"),
    ],
)
def test_bad_paths_are_rejected(path: str, reason: str) -> None:
    """A path that is relative, outside /DCIM, climbs with .., or holds an empty, NUL, hidden or
    overlong part is rejected with its reason."""
    with pytest.raises(NameRejected) as caught:
        check_phone_path(path)
    assert caught.value.reason == reason


@given(st.text(max_size=300))
def test_an_accepted_name_is_one_safe_component(name: str) -> None:
    """Any accepted name comes back unchanged as one safe path component of at most 255 bytes; any
    other is rejected with a reason."""
    try:
        checked = check_phone_name(name)
    except NameRejected as rejected:
        assert rejected.reason
        return
    assert checked == name
    assert "/" not in checked and "\\" not in checked and "\x00" not in checked
    assert checked not in ("", ".", "..")
    assert not checked.startswith(".")
    assert len(checked.encode("utf-8")) <= 255


def test_a_folder_of_camera_names_is_ordinary_and_one_odd_name_is_not() -> None:
    """all_ordinary accepts camera names (and no names); one hidden, dotted, separator-holding,
    non-ASCII or overlong name makes the whole folder go through the name-by-name checks."""
    assert all_ordinary(["IMG_0001.HEIC", "IMG_E0002 2.MOV", "IMG_0003.AAE"])
    assert all_ordinary([])
    for odd in (".hidden", "..", "a/b", "caf\u00e9.JPG", "x" * 201, "A\nB", ""):
        assert not all_ordinary(["IMG_0001.HEIC", odd]), odd


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=12)))
def test_names_the_shortcut_accepts_pass_every_check(names: list[str]) -> None:
    """Whatever all_ordinary (one match for a folder) or check_phone_name's shortcut accept,
    the full checks one by one accept too: the shortcuts never let a bad name through."""
    if all_ordinary(names):
        for name in names:
            assert check_name_thoroughly(name) == name
    for name in names:
        try:
            accepted = check_phone_name(name)
        except NameRejected:
            with pytest.raises(NameRejected):
                check_name_thoroughly(name)
        else:
            assert check_name_thoroughly(name) == accepted


@given(st.lists(st.text(max_size=12)))
def test_a_joined_listing_is_ordinary_only_when_every_name_is(names: list[str]) -> None:
    """all_ordinary_joined (one match over a listing as the phone sent it, names separated by
    NUL) accepts exactly when every name it holds passes the full checks: an empty name (two
    NULs in a row) or a NUL inside a name never slips through."""
    joined = "\x00".join(names)
    if all_ordinary_joined(joined):
        for name in joined.split("\x00") if joined else []:
            assert name and check_name_thoroughly(name) == name
    if names != [""] and not any("\x00" in name for name in names):  # [""] joins as []
        assert all_ordinary_joined(joined) == all_ordinary(names)
