"""``rollkeeper web url`` prints the page's address (the login link with a token) from the
config, says why when the page is off, and ``rollkeeper web token`` makes tokens the config
accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollkeeper.cli import main
from rollkeeper.config import load_config
from tests.web_helpers import TOKEN, write_web_config


def _config(tmp_path: Path, **web: object) -> Path:
    return write_web_config(tmp_path, tmp_path / "archive", tmp_path / "state" / "s.db", **web)


def test_url_on_loopback_without_a_token_is_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the page on 127.0.0.1 and no token, the address of the page itself is printed."""
    config = _config(tmp_path, listen="127.0.0.1:8765")
    assert main(["--config", str(config), "web", "url"]) == 0
    assert capsys.readouterr().out == "http://127.0.0.1:8765/\n"


def test_url_with_a_token_is_the_login_link_for_the_host_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a token the link is /login?token=... on the name other devices know the machine
    by (--host), and standard error says the link carries the token."""
    config = _config(tmp_path, listen="0.0.0.0:8765", token=TOKEN)
    assert main(["--config", str(config), "web", "url", "--host", "nas.local"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"http://nas.local:8765/login?token={TOKEN}\n"
    assert "carries the token" in captured.err


def test_url_when_the_page_is_off_says_how_to_turn_it_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The page off (the default): exit 1, nothing on standard output, the key to set on
    standard error; port 0 (chosen at start) is exit 1 too, naming the log event."""
    config = _config(tmp_path, enabled=False)
    assert main(["--config", str(config), "web", "url"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "[web] enabled = true" in captured.err
    config = _config(tmp_path, listen="127.0.0.1:0")
    assert main(["--config", str(config), "web", "url"]) == 1
    assert "web_listening" in capsys.readouterr().err


def test_url_with_a_broken_config_names_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A LAN bind without a token is the config's problem: exit 1 with its FILE:LINE."""
    config = _config(tmp_path, listen="0.0.0.0:8765")
    assert main(["--config", str(config), "web", "url"]) == 1
    assert "web.listen:" in capsys.readouterr().err


def test_token_prints_a_token_the_config_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``web token`` prints a fresh 32-character URL-safe token each time, and a config with
    it and a LAN bind loads."""
    assert main(["web", "token"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["web", "token"]) == 0
    second = capsys.readouterr().out.strip()
    assert len(first) == 32
    assert first != second
    config = _config(tmp_path, listen="0.0.0.0:8765", token=first)
    assert load_config(config, {"HOME": str(tmp_path)}).web.token == first
