"""The status page in a real headless browser, served by a real ``rollkeeper run`` backing up
the simulator's phone over real pymobiledevice3.

What a person would see: the phone appears, the progress bar moves while a throttled transfer
runs, the verdict turns to "backed up", and the thumbnails of the newest photos load. The
screenshots go to the test's temporary folder (never into the repository); their paths are
printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from rollkeeper.domain.files import MediaKind, media_kind
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from tests import media
from tests.browser import attribute_of, headless_chromium, script, text_of, wait_until
from tests.service_process import ServiceProcess, rollkeeper_command, write_config
from tests.web_helpers import TOKEN, bearer, request

UDID = "00008110-000A1B2C3D4E5F60"
NAME = "Ann's iPhone"
#: A video this large at this rate takes about 12 s to copy: long enough to watch it move.
BIG_VIDEO_BYTES = 48_000_000
THROTTLE_BYTES_PER_SECOND = 4_000_000


def _progress(driver: WebDriver) -> list[float] | None:
    value: list[float] | None = script(
        driver,
        "const bar = document.querySelector('article.phone progress.transfer');"
        "return bar ? [bar.value, bar.max] : null;",
    )
    return value


def _transfer_beyond(driver: WebDriver, done: float) -> float | None:
    """The progress bar's value when a transfer is under way and past ``done``, else None."""
    found = _progress(driver)
    if found is None or not done < found[0] < found[1]:
        return None
    return found[0]


def _thumbnails_loaded(driver: WebDriver, count: int) -> bool:
    loaded: bool = script(
        driver,
        "const images = [...document.querySelectorAll('img.thumbnail')];"
        "return images.length === arguments[0]"
        " && images.every((image) => image.complete && image.naturalWidth > 0);",
        count,
    )
    return loaded


def _web_port(service: ServiceProcess) -> int:
    [listening] = service.wait_for("web_listening")
    port: int = listening["port"]
    return port


@pytest.mark.slow
def test_the_page_shows_the_phone_a_moving_progress_bar_and_the_thumbnails(
    simulator: SimulatorThread,
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    """Open the page before the phone is plugged in; then plug it in: the phone's card appears
    with its name, the progress bar of the throttled transfer moves forward at least once while
    the page stays open (live, without a reload), the verdict becomes "backed up", and every
    newest photo's thumbnail loads as an image."""
    config = write_config(
        tmp_path / "web.toml", tmp_path, web={"enabled": True, "listen": "127.0.0.1:0"}
    )
    service = start_service(config=config)
    port = _web_port(service)
    roll = media.make_camera_roll(tmp_path / "phone", big_video_bytes=BIG_VIDEO_BYTES)
    photos = [item for item in roll.files if media_kind(item.name) == MediaKind.PHOTO]

    with headless_chromium(tmp_path / "profile") as driver:
        driver.get(f"http://127.0.0.1:{port}/")
        wait_until(
            driver,
            lambda page: "No phone seen yet" in (text_of(page, "#phones") or ""),
            "the page to say no phone was seen",
        )
        simulator.add_phone(
            UDID,
            roll.root,
            name=NAME,
            faults=AfcFaults(throttle_bytes_per_second=THROTTLE_BYTES_PER_SECOND),
        )
        card = f'article.phone[data-udid="{UDID}"]'
        # The service records the phone as soon as it attaches, its name a moment later.
        wait_until(
            driver,
            lambda page: NAME in (text_of(page, f"{card} h2") or ""),
            "the phone's card with its name",
        )
        first = wait_until(driver, lambda page: _transfer_beyond(page, 0.0), "a transfer under way")
        assert first is not None
        moved = wait_until(
            driver, lambda page: _transfer_beyond(page, first), "the progress bar to move"
        )
        assert moved is not None
        assert moved > first
        during = tmp_path / "status-page-during-transfer.png"
        driver.save_screenshot(str(during))
        print(f"\nscreenshot during the transfer: {during}")

        wait_until(
            driver,
            lambda page: attribute_of(page, f"{card} .verdict", "data-verdict") == "backed_up",
            "the verdict to become backed up",
            timeout=180,
        )
        assert text_of(driver, f"{card} .verdict") == "backed up"
        assert attribute_of(driver, "#summary", "data-level") == "ok"
        wait_until(
            driver,
            lambda page: _thumbnails_loaded(page, len(photos)),
            f"{len(photos)} thumbnails to load",
        )
        names = script(
            driver, "return [...document.querySelectorAll('img.thumbnail')].map((i) => i.alt)"
        )
        assert set(names) == {item.name for item in photos}
        assert script(
            driver, f"return document.querySelectorAll('{card} figure.months rect').length"
        )
        after = tmp_path / "status-page.png"
        driver.save_screenshot(str(after))
        print(f"screenshot of the backed-up phone: {after}")
    assert service.terminate() == 0


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.slow
def test_a_lan_page_opens_only_through_the_login_link_of_web_url(
    simulator: SimulatorThread,
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    """Listening on every interface with a token: without it the service's page, status and a
    real photo's thumbnail are 401 (no photo bytes); with it a thumbnail of an id not in the
    archive is 404 and ``../`` is 404. The link ``rollkeeper web url`` prints signs a browser
    in: it lands on a URL without the token, with an HttpOnly, SameSite=Strict cookie, and
    sees the phone, also when the link is followed from another site's page; a browser without
    the link gets 401."""
    port = _free_port()
    config = write_config(
        tmp_path / "web.toml",
        tmp_path,
        web={"enabled": True, "listen": f"0.0.0.0:{port}", "token": TOKEN},
    )
    service = start_service(config=config)
    assert _web_port(service) == port
    roll = media.make_camera_roll(tmp_path / "phone")
    simulator.add_phone(UDID, roll.root, name=NAME)
    service.wait_for("backup_finished", udid=UDID, timeout=120)

    assert request(port, "/").status == 401
    assert request(port, "/api/status").status == 401
    page = request(port, "/api/page", headers=bearer())
    assert page.status == 200
    photo = page.json()["recent_photos"][0]["thumbnail"]
    refused = request(port, photo)
    assert refused.status == 401
    assert not refused.body.startswith(b"\xff\xd8")
    thumbnail = request(port, photo, headers=bearer())
    assert thumbnail.status == 200
    assert thumbnail.body.startswith(b"\xff\xd8")
    assert request(port, "/thumbnails/" + "0" * 64, headers=bearer()).status == 404
    assert request(port, "/thumbnails/../api/status", headers=bearer()).status == 404

    link = subprocess.run(
        rollkeeper_command("--config", str(config), "web", "url", "--host", "127.0.0.1"),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert link == f"http://127.0.0.1:{port}/login?token={TOKEN}"
    with headless_chromium(tmp_path / "profile") as driver:
        driver.get(link)
        wait_until(
            driver,
            lambda page: text_of(page, f'article.phone[data-udid="{UDID}"]'),
            "the phone's card after signing in",
        )
        assert driver.current_url == f"http://127.0.0.1:{port}/"
        [cookie] = driver.get_cookies()
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["value"] != TOKEN
        assert script(driver, "return document.cookie") == "", "scripts cannot read the cookie"
    with headless_chromium(tmp_path / "stranger") as driver:
        driver.get(f"http://127.0.0.1:{port}/")
        assert "401" in (text_of(driver, "body") or "")
    with headless_chromium(tmp_path / "from-another-site") as driver:
        # The link clicked on another site's page (a web mail): a cross-site navigation, on
        # which the browser withholds the Strict cookie that /login has just set.
        driver.get(f"data:text/html,<a id=link href='{link}'>my photos</a>")
        driver.find_element("id", "link").click()
        wait_until(
            driver,
            lambda page: text_of(page, f'article.phone[data-udid="{UDID}"]'),
            "the phone's card after following the link from another site",
        )
        assert driver.current_url == f"http://127.0.0.1:{port}/"
    assert service.terminate() == 0


def test_the_service_refuses_to_serve_a_lan_address_without_a_token(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """``[web]`` on 0.0.0.0 with no token: ``rollkeeper run`` does not start (exit 1) and says
    which line of the config to fix, and that a token is needed."""
    config = write_config(
        tmp_path / "web.toml", tmp_path, web={"enabled": True, "listen": "0.0.0.0:8765"}
    )
    completed = subprocess.run(
        rollkeeper_command("--config", str(config), "run"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 1
    assert f"{config}:" in completed.stderr
    assert "web.listen:" in completed.stderr
    assert "token" in completed.stderr
