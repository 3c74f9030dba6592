"""Fixtures of the browser tests: a real server (toy models, HTTP on) and one headless Chromium per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.driver import Browser, find_browser, start_chromium
from tests.http.conftest import http_server  # noqa: F401  (the toy models over HTTP, one server per module)

if TYPE_CHECKING:
    from selenium.webdriver import Chrome


@pytest.fixture(scope="session")
def browser_paths() -> Browser:
    found = find_browser()
    if isinstance(found, str):
        pytest.skip(f"no browser for the playground tests: {found}")
    return found


@pytest.fixture(scope="module")
def chromium(browser_paths: Browser) -> Iterator[Chrome]:
    driver = start_chromium(browser_paths)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Chrome) -> list[dict[str, Any]]:
    """Console messages of level SEVERE since the last call (script errors, CSP violations, failed loads)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.fixture
def page(chromium: Chrome) -> Iterator[Chrome]:
    """The window, its console checked after the test: the page must log no error."""
    console_errors(chromium)
    yield chromium
    assert console_errors(chromium) == []
