"""A real headless browser for the status page's tests: Debian's chromium through chromedriver.

The flags keep a closed network quiet (no background downloads, sync, QUIC or component
updates, which would otherwise hammer refused connections) and every run gets a fresh profile
folder, so no cookie or cache survives from another test. Tests wait on conditions in the page
(:func:`wait_until`, WebDriverWait with a ceiling), never by sleeping.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

#: Where Debian puts them (apt-get install chromium chromium-driver).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: The ceiling for one condition in the page; generous for a loaded 2-core machine.
PAGE_TIMEOUT = 90.0

_Result = TypeVar("_Result")


@contextmanager
def headless_chromium(
    profile: Path, *, width: int = 1100, height: int = 1500
) -> Iterator[WebDriver]:
    """A headless chromium with a fresh profile in ``profile``, quit at the end."""
    for needed in (CHROMIUM, CHROMEDRIVER):
        assert Path(needed).exists(), (
            f"{needed} is missing: the browser tests need `apt-get install chromium "
            "chromium-driver`"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile.mkdir(parents=True, exist_ok=True)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(
    driver: WebDriver,
    condition: Callable[[WebDriver], _Result],
    what: str,
    timeout: float = PAGE_TIMEOUT,
) -> _Result:
    """Wait for ``condition`` to be truthy (WebDriverWait, polling the page) and return it."""
    # The page redraws a phone's card on every update: an element found one moment may be
    # gone the next, which only means "look again".
    waiting = WebDriverWait(
        driver,
        timeout,
        poll_frequency=0.2,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )
    result: _Result = waiting.until(condition, message=f"waited {timeout}s for {what}")
    return result


def text_of(driver: WebDriver, selector: str) -> str | None:
    """The text of the first element matching a CSS selector, read in one step (no element
    reference to go stale); None when there is none."""
    found: str | None = script(
        driver,
        "const node = document.querySelector(arguments[0]); return node ? node.textContent : null;",
        selector,
    )
    return found


def attribute_of(driver: WebDriver, selector: str, name: str) -> str | None:
    """An attribute of the first element matching a CSS selector, read in one step."""
    found: str | None = script(
        driver,
        "const node = document.querySelector(arguments[0]);"
        "return node ? node.getAttribute(arguments[1]) : null;",
        selector,
        name,
    )
    return found


def script(driver: WebDriver, source: str, *arguments: Any) -> Any:
    """Run JavaScript in the page and return its value."""
    return driver.execute_script(source, *arguments)
