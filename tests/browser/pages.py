"""Driving the playground in the tests: open a view, wait for what it shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from rnnserve.testing.server import ServerThread

if TYPE_CHECKING:
    from selenium.webdriver import Chrome
    from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")
#: Seconds to wait for anything the page shows (the toy models answer in milliseconds).
PATIENCE = 10


def wait(driver: Chrome, condition: Callable[[Chrome], T], what: str, timeout: float = PATIENCE) -> T:
    """``condition``'s first truthy value, polled until ``timeout``; the test fails naming ``what``."""
    return WebDriverWait(driver, timeout, poll_frequency=0.02).until(condition, f"waited for {what}")


def by_id(driver: Chrome, element_id: str) -> WebElement:
    return driver.find_element(By.ID, element_id)


def open_view(driver: Chrome, server: ServerThread, view: str) -> None:
    """Load the playground showing ``view`` (a fresh page: no state kept from an earlier test)."""
    driver.get("about:blank")  # else a URL differing only in its #fragment would not reload the page
    driver.get(f"{server.http_url}/#{view}")
    wait(driver, lambda d: by_id(d, f"view-{view}").is_displayed(), f"the {view} view")


def choose_model(driver: Chrome, select_id: str, name: str) -> None:
    """Pick ``name`` in a model picker once the page has listed it."""
    wait(driver, lambda d: name in [o.get_attribute("value") for o in Select(by_id(d, select_id)).options],
         f"{name} in #{select_id}")
    picker = Select(by_id(driver, select_id))
    if picker.first_selected_option.get_attribute("value") != name:
        picker.select_by_value(name)


def texts(driver: Chrome, selector: str) -> list[str]:
    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, selector)]
