"""The status page's rules on their own: listen addresses, the [web] config checks, dot
segments, the Host check, the token and cookie, the links, and the month rows of the chart."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollkeeper.config import ConfigError, load_config
from rollkeeper.config.web_settings import ListenAddress, parse_listen_address
from rollkeeper.web.access import AccessPolicy, has_dot_segment
from rollkeeper.web.links import page_url
from rollkeeper.web.page_data import month_rows

TOKEN = "correct-horse-battery-staple-42"


@pytest.mark.parametrize(
    ("text", "host", "port", "loopback"),
    [
        ("127.0.0.1:8765", "127.0.0.1", 8765, True),
        ("127.8.9.10:1", "127.8.9.10", 1, True),
        ("localhost:80", "localhost", 80, True),
        ("[::1]:8765", "::1", 8765, True),
        ("0.0.0.0:8765", "0.0.0.0", 8765, False),
        ("[::]:8765", "::", 8765, False),
        ("192.168.1.20:0", "192.168.1.20", 0, False),
    ],
)
def test_listen_addresses_parse_and_know_loopback(
    text: str, host: str, port: int, loopback: bool
) -> None:
    """HOST:PORT with an IP literal (IPv6 in brackets) or localhost; loopback is 127/8, ::1,
    localhost."""
    address = parse_listen_address(text)
    assert (address.host, address.port, address.loopback) == (host, port, loopback)


@pytest.mark.parametrize(
    "text",
    [
        "8765",
        ":8765",
        "127.0.0.1",
        "127.0.0.1:http",
        "127.0.0.1:65536",
        "::1:8765",
        "example.com:8765",
        "[::1:8765",
    ],
)
def test_bad_listen_addresses_are_refused(text: str) -> None:
    """No port, a port out of range, an IPv6 address without brackets or a host name other
    than localhost is a ValueError saying what to write."""
    with pytest.raises(ValueError):
        parse_listen_address(text)


def _load(tmp_path: Path, web: str) -> object:
    path = tmp_path / "config.toml"
    path.write_text(f'[archive]\npath = "{tmp_path / "archive"}"\n[web]\n{web}')
    return load_config(path, {"HOME": str(tmp_path)})


def test_a_lan_bind_without_a_token_does_not_load(tmp_path: Path) -> None:
    """enabled + a listen address off loopback + no token is a config error on the listen line
    that says why and how to fix it; the same with a token, or with the page off, loads."""
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, 'enabled = true\nlisten = "0.0.0.0:8765"\n')
    text = str(caught.value)
    assert "config.toml:5: web.listen:" in text
    assert "token" in text
    assert "rollkeeper web token" in text
    _load(tmp_path, f'enabled = true\nlisten = "0.0.0.0:8765"\ntoken = "{TOKEN}"\n')
    _load(tmp_path, 'enabled = false\nlisten = "0.0.0.0:8765"\n')
    _load(tmp_path, 'enabled = true\nlisten = "127.0.0.1:8765"\n')


@pytest.mark.parametrize("token", ["short", "has spaces in it, too many", "a/b/c/d/e/f/g/h/i/j"])
def test_a_token_must_be_long_and_url_safe(tmp_path: Path, token: str) -> None:
    """A token shorter than 16 characters, or with characters a URL would have to escape, is a
    config error naming web.token."""
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f'token = "{token}"\n')
    assert "web.token:" in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        ("/", False),
        ("/api/status", False),
        ("/thumbnails/" + "ab" * 32, False),
        ("/login?token=a..b/../c", False),
        ("/a..b/c", False),
        ("/..", True),
        ("/../etc/passwd", True),
        ("/a/./b", True),
        ("/%2e%2e/x", True),
        ("/%2E%2e%2Fx", True),
        ("/x/..%2fy", True),
        ("/%252e%252e/x", True),
        ("/a\\..\\b", True),
        ("/a%5cb", True),
        ("/a%00b", True),
        ("/%25252525252e", True),
    ],
)
def test_dot_segments_are_found_however_encoded(raw: str, found: bool) -> None:
    """``.``/``..`` segments, backslashes and NULs count plainly, percent-encoded and
    double-encoded; dots inside a name or in the query do not."""
    assert has_dot_segment(raw) is found


def test_the_host_check_accepts_only_loopback_names_with_the_port() -> None:
    """On a loopback bind: 127.0.0.1, localhost and [::1] with the bound port (any case); no
    Host, another name or another port is refused. Off loopback every Host passes (the token
    is the guard there)."""
    policy = AccessPolicy(ListenAddress("127.0.0.1", 8765), 8765, "")
    for allowed in ("127.0.0.1:8765", "localhost:8765", "LocalHost:8765", "[::1]:8765"):
        assert policy.host_allowed(allowed), allowed
    refused: list[str | None] = [
        None,
        "",
        "127.0.0.1",
        "127.0.0.1:80",
        "evil.example:8765",
        "localhost.evil:8765",
    ]
    for host in refused:
        assert not policy.host_allowed(host), host
    lan = AccessPolicy(ListenAddress("0.0.0.0", 8765), 8765, TOKEN)
    assert lan.host_allowed("nas.local:8765")


def test_the_cookie_is_an_hmac_of_the_token_and_changes_with_it() -> None:
    """The session cookie proves the token without being it; another token makes another
    value, so changing the token signs every browser out; a bearer header works too."""
    policy = AccessPolicy(ListenAddress("0.0.0.0", 8765), 8765, TOKEN)
    value = policy.session_value()
    assert TOKEN not in value
    assert policy.authorised(value, None)
    assert policy.authorised(None, f"Bearer {TOKEN}")
    assert policy.authorised(None, f"bearer {TOKEN}")
    assert not policy.authorised(None, None)
    assert not policy.authorised(value[:-1] + "0", None)
    assert not policy.authorised(TOKEN, None), "the token itself is not a cookie"
    assert policy.replace_token("another-token-for-the-page-77")
    assert not policy.authorised(value, None)


def test_a_page_off_loopback_never_drops_its_token() -> None:
    """An empty token from a reload is refused on a LAN bind (the page would become open) and
    taken on a loopback bind."""
    lan = AccessPolicy(ListenAddress("0.0.0.0", 8765), 8765, TOKEN)
    assert not lan.replace_token("")
    assert lan.token_required
    loopback = AccessPolicy(ListenAddress("127.0.0.1", 8765), 8765, TOKEN)
    assert loopback.replace_token("")
    assert not loopback.token_required


def test_links_carry_the_token_only_to_login() -> None:
    """Without a token the link is the page; with one it is /login?token=...; a bind to every
    interface names this machine (or --host), an IPv6 address gets brackets."""
    assert page_url(ListenAddress("127.0.0.1", 8765), 8765, "") == "http://127.0.0.1:8765/"
    assert (
        page_url(ListenAddress("0.0.0.0", 8765), 8765, TOKEN, "nas.local")
        == f"http://nas.local:8765/login?token={TOKEN}"
    )
    assert page_url(ListenAddress("::1", 9000), 9000, "") == "http://[::1]:9000/"
    assert "0.0.0.0" not in page_url(ListenAddress("0.0.0.0", 8765), 8765, TOKEN)


def test_month_rows_fill_the_months_between_and_keep_unknown_library_unknown() -> None:
    """Months with no photo between the first and the last are zeros (a gap is a real gap),
    across a year end; without the library every ``library`` is None, with it the library's
    months count too."""
    rows = month_rows([("2023-11", 2), ("2024-02", 5)], None)
    assert [row["month"] for row in rows] == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert [row["archived"] for row in rows] == [2, 0, 0, 5]
    assert {row["library"] for row in rows} == {None}
    rows = month_rows([("2024-02", 5)], {"2024-01": 3, "2024-02": 6})
    assert rows == [
        {"month": "2024-01", "archived": 0, "library": 3},
        {"month": "2024-02", "archived": 5, "library": 6},
    ]
    assert month_rows([], None) == []


def test_month_rows_survive_nonsense_months() -> None:
    """A capture month that is not YYYY-MM, or months centuries apart (a broken clock), give
    the months as they are instead of a loop over every month between."""
    assert [row["month"] for row in month_rows([("0001-01", 1), ("9999-12", 1)], None)] == [
        "0001-01",
        "9999-12",
    ]
    assert [row["month"] for row in month_rows([("garbage", 1), ("2024-01", 1)], None)] == [
        "2024-01",
        "garbage",
    ]
